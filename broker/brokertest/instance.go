package brokertest

import (
	"testing"
	"time"

	"github.com/echosse/echo-sse/broker"
)

// An Instance is one process of an app, for a backend's tests beyond
// [Run]'s cases (a cluster's failover, say): a broker, and an HTTP server
// whose GET /events?topic=a&topic=b subscribes a stream to the topics,
// as Run's instances do. Both stop when the test ends.
type Instance struct {
	// B is the instance's broker.
	B *broker.Broker

	in *instance
}

// StartInstance starts an Instance on a broker configured by cfg (whose
// ErrorHandler, if nil, logs to t).
func StartInstance(t testing.TB, cfg broker.Config) *Instance {
	t.Helper()
	in := startInstance(t, cfg)
	return &Instance{B: in.b, in: in}
}

// A Browser is a client that reconnects, as EventSource does, whenever its
// stream ends, with the Last-Event-ID it last saw, and counts what it
// receives by data. It stops when the test ends.
type Browser struct {
	br *browser
}

// Browse opens a Browser's stream on topics of in, and returns once the
// handler has subscribed it.
func (in *Instance) Browse(t testing.TB, name string, topics ...string) *Browser {
	t.Helper()
	return &Browser{br: browse(t, name, in.in, topics...)}
}

// Has reports whether b received every event o accepted.
func (b *Browser) Has(o *Outcomes) bool { return b.br.has(o) }

// Got reports whether b received an event of this data.
func (b *Browser) Got(data string) bool {
	b.br.mu.Lock()
	defer b.br.mu.Unlock()
	return b.br.count[data] > 0
}

// Figures counts what b received against what o recorded (see [Report]).
func (b *Browser) Figures(o *Outcomes) Figures { return b.br.figures(o) }

// LongestPause returns the longest time between two events b received
// after since.
func (b *Browser) LongestPause(since time.Time) time.Duration {
	b.br.mu.Lock()
	defer b.br.mu.Unlock()
	var longest time.Duration
	var prev time.Time
	for _, at := range b.br.times {
		if at.Before(since) {
			continue
		}
		if !prev.IsZero() {
			longest = max(longest, at.Sub(prev))
		}
		prev = at
	}
	return longest
}
