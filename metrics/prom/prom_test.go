package prom_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/redisbroker"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/metrics/prom"
	"github.com/echosse/echo-sse/sse"
)

// fixedStats is a StreamSource that reads st.
type fixedStats sse.Stats

func (f fixedStats) Stats() sse.Stats { return sse.Stats(f) }

// lint fails the test if promtool's checks find a problem with c's
// metrics.
func lint(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestStreamCollector: every field of sse.Stats is exported under its
// name, with the labels and buckets the package doc gives.
func TestStreamCollector(t *testing.T) {
	st := sse.Stats{
		Open: 3, Parked: 2, Opened: 40, Refused: [2]uint64{5, 6},
		Events: 700, InvalidEvents: 8, Bytes: 9000, WrittenBytes: 4000, Heartbeats: 11,
		Flushes:     [6]uint64{100, 4, 3, 2, 1, 1},
		FlushTime:   12500 * time.Millisecond,
		Compressors: 2, CompressorWaits: 13, CompressorSteals: 14,
	}
	for r := range sse.NumEndReasons {
		st.Ended[r] = uint64(20 + r)
	}
	c := prom.NewStreamCollector(fixedStats(st))
	lint(t, c)
	want := `
# HELP echosse_compressor_steals_total Times a compressed stream took the compressor another had used last, none being free (each costs a priming).
# TYPE echosse_compressor_steals_total counter
echosse_compressor_steals_total 14
# HELP echosse_compressor_waits_total Times a compressed stream waited for a compressor, all of them compressing.
# TYPE echosse_compressor_waits_total counter
echosse_compressor_waits_total 13
# HELP echosse_compressors Compressors the compressed streams' pools have made and keep.
# TYPE echosse_compressors gauge
echosse_compressors 2
# HELP echosse_encoded_bytes_total Bytes of event stream the streams flushed, before their own compression (Config.Compress).
# TYPE echosse_encoded_bytes_total counter
echosse_encoded_bytes_total 9000
# HELP echosse_events_invalid_total Events skipped because they failed validation.
# TYPE echosse_events_invalid_total counter
echosse_events_invalid_total 8
# HELP echosse_events_written_total Events written and flushed to clients.
# TYPE echosse_events_written_total counter
echosse_events_written_total 700
# HELP echosse_flush_duration_seconds Time a flush took, from the start of the last write before it; a slow client's take milliseconds to seconds.
# TYPE echosse_flush_duration_seconds histogram
echosse_flush_duration_seconds_bucket{le="0.001"} 100
echosse_flush_duration_seconds_bucket{le="0.01"} 104
echosse_flush_duration_seconds_bucket{le="0.1"} 107
echosse_flush_duration_seconds_bucket{le="1"} 109
echosse_flush_duration_seconds_bucket{le="10"} 110
echosse_flush_duration_seconds_bucket{le="+Inf"} 111
echosse_flush_duration_seconds_sum 12.5
echosse_flush_duration_seconds_count 111
# HELP echosse_heartbeats_total Heartbeat comments written to idle streams.
# TYPE echosse_heartbeats_total counter
echosse_heartbeats_total 11
# HELP echosse_streams_ended_total Streams ended, by reason: closed (by the sender), client_gone, write_timeout, shutdown, aborted, handler_error, handler_panic, pump_panic.
# TYPE echosse_streams_ended_total counter
echosse_streams_ended_total{reason="aborted"} 24
echosse_streams_ended_total{reason="client_gone"} 21
echosse_streams_ended_total{reason="closed"} 20
echosse_streams_ended_total{reason="handler_error"} 25
echosse_streams_ended_total{reason="handler_panic"} 26
echosse_streams_ended_total{reason="pump_panic"} 27
echosse_streams_ended_total{reason="shutdown"} 23
echosse_streams_ended_total{reason="write_timeout"} 22
# HELP echosse_streams_open Streams open now.
# TYPE echosse_streams_open gauge
echosse_streams_open 3
# HELP echosse_streams_parked Open streams parked now: taken over (Config.Takeover), idle, without a goroutine of their own.
# TYPE echosse_streams_parked gauge
echosse_streams_parked 2
# HELP echosse_streams_opened_total Streams opened.
# TYPE echosse_streams_opened_total counter
echosse_streams_opened_total 40
# HELP echosse_streams_refused_total Requests refused because MaxClients streams were open, by the overflow mode that answered them (retry: a stream with a retry hint; unavailable: 503).
# TYPE echosse_streams_refused_total counter
echosse_streams_refused_total{overflow="retry"} 5
echosse_streams_refused_total{overflow="unavailable"} 6
# HELP echosse_written_bytes_total Bytes the streams flushed to their responses, after their own compression.
# TYPE echosse_written_bytes_total counter
echosse_written_bytes_total 4000
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestStreamCollectorOfAServer: a Server is a StreamSource too, and a
// registry takes its collector beside the process's.
func TestStreamCollectorOfAServer(t *testing.T) {
	srv, err := sse.New(sse.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(prom.NewStreamCollector(srv)); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 14+7+1 {
		t.Errorf("gathered %d series, %v; want 22 (14 metrics, 8 reasons, 2 overflow modes)", n, err)
	}
}

// TestBrokerCollector: the broker's counters, and subscribers by topic for
// the topics named only.
func TestBrokerCollector(t *testing.T) {
	b, err := broker.New(broker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for range 3 {
		if _, err := b.Publish(context.Background(), "news", event.Event{Data: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	c := prom.NewBrokerCollector(b, "news", "chat")
	lint(t, c)
	want := `
# HELP echosse_broker_published_total Events published through the broker.
# TYPE echosse_broker_published_total counter
echosse_broker_published_total 3
# HELP echosse_broker_subscribers Streams subscribed to the broker (a stream on several topics counts once).
# TYPE echosse_broker_subscribers gauge
echosse_broker_subscribers 0
# HELP echosse_broker_topic_subscribers Streams subscribed to each topic named when the collector was made.
# TYPE echosse_broker_topic_subscribers gauge
echosse_broker_topic_subscribers{topic="chat"} 0
echosse_broker_topic_subscribers{topic="news"} 0
# HELP echosse_broker_topics Topics with at least one subscriber.
# TYPE echosse_broker_topics gauge
echosse_broker_topics 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"echosse_broker_published_total", "echosse_broker_subscribers", "echosse_broker_topic_subscribers", "echosse_broker_topics"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(prom.NewBrokerCollector(b)); n != 7 {
		t.Errorf("without topics named: %d series, want 7", n)
	}
}

// TestRedisCollector: the backend's counters and its reader's lag, which
// is left out when Redis does not answer.
func TestRedisCollector(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: redisServer.Addr})
	t.Cleanup(func() { client.Close() })
	backend, err := redisbroker.New(client, redisbroker.Config{Prefix: t.Name(), ErrorHandler: func(error) {}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Config{Backend: backend, ErrorHandler: func(error) {}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for range 2 {
		if _, err := b.Publish(context.Background(), "news", event.Event{Data: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	c := prom.NewRedisCollector(backend)
	lint(t, c)
	names := []string{"echosse_redis_published_total", "echosse_redis_connected", "echosse_redis_reader_lag_messages", "echosse_redis_delivered_total", "echosse_redis_watched_topics", "echosse_redis_reregistered_total"}
	want := `
# HELP echosse_redis_connected 1 while the log reader reads, 0 from its first failure until it reads again.
# TYPE echosse_redis_connected gauge
echosse_redis_connected 1
# HELP echosse_redis_delivered_total Messages, published by any process, read from the log and delivered to this process's broker.
# TYPE echosse_redis_delivered_total counter
echosse_redis_delivered_total 2
# HELP echosse_redis_published_total Messages this process published to Redis.
# TYPE echosse_redis_published_total counter
echosse_redis_published_total 2
# HELP echosse_redis_reader_lag_messages Messages the log holds past the last one this process delivered (counted up to 10000).
# TYPE echosse_redis_reader_lag_messages gauge
echosse_redis_reader_lag_messages 0
# HELP echosse_redis_reregistered_total Times, with DeliverInterest, this process registered its interest again after being taken for gone.
# TYPE echosse_redis_reregistered_total counter
echosse_redis_reregistered_total 0
# HELP echosse_redis_watched_topics Topics this process reads from Redis with DeliverInterest (0 with DeliverAll, which reads every topic).
# TYPE echosse_redis_watched_topics gauge
echosse_redis_watched_topics 0
`
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := testutil.CollectAndCompare(c, strings.NewReader(want), names...)
		if err == nil {
			break
		}
		if time.Now().After(deadline) { // the reader delivers within milliseconds
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Close() // and the backend: Lag fails
	if n := testutil.CollectAndCount(c, "echosse_redis_reader_lag_messages"); n != 0 {
		t.Errorf("with the backend closed: %d lag series, want none", n)
	}
	if n := testutil.CollectAndCount(c); n != 10 {
		t.Errorf("with the backend closed: %d series, want the 10 others", n)
	}
}
