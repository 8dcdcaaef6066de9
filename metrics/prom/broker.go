package prom

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/echosse/echo-sse/broker"
)

// brokerCollector is NewBrokerCollector's collector.
type brokerCollector struct {
	b      *broker.Broker
	topics []string // labelled, by the caller's choice

	subscribers, topicCount, topicSubscribers *prometheus.Desc
	published, replayed, gaps, slow, dropped  *prometheus.Desc
}

// NewBrokerCollector returns a collector of b's counters ([broker.Stats]):
// the broker's metrics of the package doc. It reads them when it is
// collected, with one call of b.Stats.
//
// A topic's name is a label value only if the caller names it in topics:
// echosse_broker_topic_subscribers counts the streams subscribed to each
// of them (0 when none is). Name only topics whose names are few and
// known in advance ("chat", "prices"), never names that come from users
// (a topic per user or per document): each name is a time series of its
// own, kept for as long as the monitoring system keeps data.
func NewBrokerCollector(b *broker.Broker, topics ...string) prometheus.Collector {
	return &brokerCollector{
		b:                b,
		topics:           slices.Clone(topics),
		subscribers:      desc("broker_subscribers", "Streams subscribed to the broker (a stream on several topics counts once)."),
		topicCount:       desc("broker_topics", "Topics with at least one subscriber."),
		topicSubscribers: desc("broker_topic_subscribers", "Streams subscribed to each topic named when the collector was made.", "topic"),
		published:        desc("broker_published_total", "Events published through the broker."),
		replayed:         desc("broker_replayed_total", "Events sent from the history to streams that reconnected."),
		gaps:             desc("broker_gaps_total", "Subscriptions whose Last-Event-ID the history did not cover."),
		slow:             desc("broker_slow_clients_total", "Streams aborted because their buffer was full (SlowClientAbort)."),
		dropped:          desc("broker_dropped_total", "Times an event could not be given to a subscriber whose buffer was full."),
	}
}

// Describe implements [prometheus.Collector].
func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.subscribers, c.topicCount, c.topicSubscribers, c.published, c.replayed, c.gaps, c.slow, c.dropped,
	} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Stats()
	gauge(ch, c.subscribers, float64(st.Subscribers))
	gauge(ch, c.topicCount, float64(len(st.Topics)))
	for _, t := range c.topics {
		gauge(ch, c.topicSubscribers, float64(st.Topics[t]), t)
	}
	counter(ch, c.published, st.Published)
	counter(ch, c.replayed, st.Replayed)
	counter(ch, c.gaps, st.Gaps)
	counter(ch, c.slow, st.SlowClients)
	counter(ch, c.dropped, st.Dropped)
}
