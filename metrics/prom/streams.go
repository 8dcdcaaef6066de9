package prom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/echosse/echo-sse/sse"
)

// A StreamSource is what [NewStreamCollector] reads: an *[sse.Counters]
// (what a door's Config.Counters was given) or an *[sse.Server].
type StreamSource interface {
	Stats() sse.Stats
}

// streamCollector is NewStreamCollector's collector.
type streamCollector struct {
	src StreamSource

	open, parked, opened, refused, ended *prometheus.Desc
	events, invalid, encoded, written    *prometheus.Desc
	heartbeats, flush                    *prometheus.Desc
	compressors, compressorWaits, steals *prometheus.Desc
}

// NewStreamCollector returns a collector of the counters src reads:
// the streams' metrics of the package doc. It reads them when it is
// collected, with one call of src.Stats.
func NewStreamCollector(src StreamSource) prometheus.Collector {
	return &streamCollector{
		src:    src,
		open:   desc("streams_open", "Streams open now."),
		parked: desc("streams_parked", "Open streams parked now: taken over (Config.Takeover), idle, without a goroutine of their own."),
		opened: desc("streams_opened_total", "Streams opened."),
		refused: desc("streams_refused_total",
			"Requests refused because MaxClients streams were open, by the overflow mode that answered them (retry: a stream with a retry hint; unavailable: 503).", "overflow"),
		ended: desc("streams_ended_total",
			"Streams ended, by reason: closed (by the sender), client_gone, write_timeout, shutdown, aborted, handler_error, handler_panic, pump_panic.", "reason"),
		events:     desc("events_written_total", "Events written and flushed to clients."),
		invalid:    desc("events_invalid_total", "Events skipped because they failed validation."),
		encoded:    desc("encoded_bytes_total", "Bytes of event stream the streams flushed, before their own compression (Config.Compress)."),
		written:    desc("written_bytes_total", "Bytes the streams flushed to their responses, after their own compression."),
		heartbeats: desc("heartbeats_total", "Heartbeat comments written to idle streams."),
		flush: desc("flush_duration_seconds",
			"Time a flush took, from the start of the last write before it; a slow client's take milliseconds to seconds."),
		compressors:     desc("compressors", "Compressors the compressed streams' pools have made and keep."),
		compressorWaits: desc("compressor_waits_total", "Times a compressed stream waited for a compressor, all of them compressing."),
		steals: desc("compressor_steals_total",
			"Times a compressed stream took the compressor another had used last, none being free (each costs a priming)."),
	}
}

// desc returns the description of metric echosse_name.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("echosse_"+name, help, labels, nil)
}

// Describe implements [prometheus.Collector].
func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.open, c.parked, c.opened, c.refused, c.ended, c.events, c.invalid, c.encoded, c.written,
		c.heartbeats, c.flush, c.compressors, c.compressorWaits, c.steals,
	} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	gauge(ch, c.open, float64(st.Open))
	gauge(ch, c.parked, float64(st.Parked))
	counter(ch, c.opened, st.Opened)
	for o := range st.Refused {
		counter(ch, c.refused, st.Refused[o], sse.Overflow(o).String())
	}
	for r := range sse.NumEndReasons {
		counter(ch, c.ended, st.Ended[r], r.String())
	}
	counter(ch, c.events, st.Events)
	counter(ch, c.invalid, st.InvalidEvents)
	counter(ch, c.encoded, st.Bytes)
	counter(ch, c.written, st.WrittenBytes)
	counter(ch, c.heartbeats, st.Heartbeats)

	buckets := make(map[float64]uint64, len(st.Flushes)-1)
	var cum uint64
	for i, bound := range sse.FlushBounds() {
		cum += st.Flushes[i]
		buckets[bound.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.flush, cum+st.Flushes[len(st.Flushes)-1], st.FlushTime.Seconds(), buckets)

	gauge(ch, c.compressors, float64(st.Compressors))
	counter(ch, c.compressorWaits, st.CompressorWaits)
	counter(ch, c.steals, st.CompressorSteals)
}

// counter sends a counter of d, with labels.
func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

// gauge sends a gauge of d, with labels.
func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}
