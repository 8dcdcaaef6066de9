// Package prom exports echosse's counters to Prometheus, with
// client_golang: collectors that read the counters at scrape time, so that
// exporting costs the streams nothing.
//
//	counters := new(echosse.Counters)
//	e.Use(echosse.Middleware(echosse.Config{Counters: counters}))
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(prom.NewStreamCollector(counters), prom.NewBrokerCollector(b))
//	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
//
// [NewStreamCollector] reads a door's [sse.Counters] (or an [sse.Server]),
// [NewBrokerCollector] a [broker.Broker], [NewRedisCollector] a
// [redisbroker.Backend]. Every name starts with "echosse_"; labels take
// values from fixed, documented sets (a stream's end reason, an overflow
// mode), never from a user's data, but for the topics a caller names to
// NewBrokerCollector. To register two collectors of one kind (two
// brokers, say), tell them apart with prometheus.WrapRegistererWith.
//
// The metrics, by collector:
//
// Streams ([NewStreamCollector]):
//
//	echosse_streams_open                    gauge    streams open now
//	echosse_streams_parked                  gauge    open streams parked now (Config.Takeover), without a goroutine
//	echosse_streams_opened_total            counter  streams opened
//	echosse_streams_refused_total           counter  requests refused over MaxClients, by overflow: retry, unavailable
//	echosse_streams_ended_total             counter  streams ended, by reason: closed, client_gone, write_timeout,
//	                                                 shutdown, aborted, handler_error, handler_panic, pump_panic
//	echosse_events_written_total            counter  events written and flushed
//	echosse_events_invalid_total            counter  events skipped as invalid
//	echosse_encoded_bytes_total             counter  bytes of event stream flushed, before the stream's own compression
//	echosse_written_bytes_total             counter  bytes flushed to the responses, after it
//	echosse_heartbeats_total                counter  heartbeat comments written
//	echosse_flush_duration_seconds          histogram  time a flush took, from its last write (buckets 1ms to 10s)
//	echosse_compressors                     gauge    compressors the pools made and keep (Config.Compress)
//	echosse_compressor_waits_total          counter  waits for a compressor, all busy
//	echosse_compressor_steals_total         counter  compressors taken from an idle stream, none free
//
// Broker ([NewBrokerCollector]):
//
//	echosse_broker_subscribers              gauge    streams subscribed
//	echosse_broker_topics                   gauge    topics with at least one subscriber
//	echosse_broker_topic_subscribers        gauge    streams subscribed to each topic named, by topic
//	echosse_broker_published_total          counter  events published
//	echosse_broker_replayed_total           counter  events replayed to reconnecting clients
//	echosse_broker_gaps_total               counter  subscriptions whose Last-Event-ID the history did not cover
//	echosse_broker_slow_clients_total       counter  streams aborted as too slow
//	echosse_broker_dropped_total            counter  events not given to a full subscriber
//
// Redis ([NewRedisCollector]):
//
//	echosse_redis_published_total           counter  messages this process published
//	echosse_redis_publish_errors_total      counter  publishes that failed
//	echosse_redis_delivered_total           counter  messages read from the log and delivered
//	echosse_redis_recovered_total           counter  of those, read from a topic's history
//	echosse_redis_lost_total                counter  times messages Redis no longer had were skipped
//	echosse_redis_read_errors_total         counter  failed reads of the log
//	echosse_redis_reconnects_total          counter  reads that worked again after failures
//	echosse_redis_connected                 gauge    1 while the log reader reads, 0 from a failure on
//	echosse_redis_reader_lag_messages       gauge    messages in the log past the reader's position
//	echosse_redis_watched_topics            gauge    topics delivered to this process (read, with DeliverInterest)
//	echosse_redis_reregistered_total        counter  times DeliverInterest registered this process again
package prom
