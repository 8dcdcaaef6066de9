package prom

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/echosse/echo-sse/broker/redisbroker"
)

// LagTimeout bounds the request to Redis that a collection of
// [NewRedisCollector]'s collector makes to measure the reader's lag.
const LagTimeout = time.Second

// redisCollector is NewRedisCollector's collector.
type redisCollector struct {
	b *redisbroker.Backend

	published, publishErrors, delivered, recovered, lost *prometheus.Desc
	readErrors, reconnects, connected, lag               *prometheus.Desc
	watched, reregistered                                *prometheus.Desc
}

// NewRedisCollector returns a collector of b's counters
// ([redisbroker.Stats]) and of its reader's lag ([redisbroker.Backend.Lag]):
// the Redis metrics of the package doc. It reads the counters when it is
// collected, and asks Redis for the lag, within LagTimeout; when Redis
// does not answer, echosse_redis_reader_lag_messages is left out of that
// scrape (echosse_redis_connected says why), rather than failing it.
func NewRedisCollector(b *redisbroker.Backend) prometheus.Collector {
	return &redisCollector{
		b:             b,
		published:     desc("redis_published_total", "Messages this process published to Redis."),
		publishErrors: desc("redis_publish_errors_total", "Publishes that failed because Redis could not be reached or did not answer."),
		delivered:     desc("redis_delivered_total", "Messages, published by any process, read from the log and delivered to this process's broker."),
		recovered:     desc("redis_recovered_total", "Delivered messages read from a topic's history because the log no longer had them."),
		lost:          desc("redis_lost_total", "Times delivery skipped messages Redis no longer had."),
		readErrors:    desc("redis_read_errors_total", "Failed attempts to read the log."),
		reconnects:    desc("redis_reconnects_total", "Times reading the log worked again after failures."),
		connected:     desc("redis_connected", "1 while the log reader reads, 0 from its first failure until it reads again."),
		lag: desc("redis_reader_lag_messages",
			"Messages the log holds past the last one this process delivered (counted up to 10000)."),
		watched:      desc("redis_watched_topics", "Topics this process reads from Redis with DeliverInterest (0 with DeliverAll, which reads every topic)."),
		reregistered: desc("redis_reregistered_total", "Times, with DeliverInterest, this process registered its interest again after being taken for gone."),
	}
}

// Describe implements [prometheus.Collector].
func (c *redisCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.published, c.publishErrors, c.delivered, c.recovered, c.lost, c.readErrors, c.reconnects, c.connected, c.lag,
		c.watched, c.reregistered,
	} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (c *redisCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Stats()
	counter(ch, c.published, st.Published)
	counter(ch, c.publishErrors, st.PublishErrors)
	counter(ch, c.delivered, st.Delivered)
	counter(ch, c.recovered, st.Recovered)
	counter(ch, c.lost, st.Lost)
	counter(ch, c.readErrors, st.ReadErrors)
	counter(ch, c.reconnects, st.Reconnects)
	counter(ch, c.reregistered, st.Reregistered)
	gauge(ch, c.watched, float64(st.Watched))
	connected := 0.0
	if st.Connected {
		connected = 1
	}
	gauge(ch, c.connected, connected)
	ctx, cancel := context.WithTimeout(context.Background(), LagTimeout)
	defer cancel()
	if n, err := c.b.Lag(ctx); err == nil {
		gauge(ch, c.lag, float64(n))
	}
}
