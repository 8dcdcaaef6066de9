package brokertest

// This file counts what a fault test publishes and what its subscribers
// receive, and reports it: exported, so that a backend's own fault tests
// (a server killed, its memory full) count and report as the suite does.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

// Outcomes records what Publish said of each event of a test, by the
// event's data (every event of such a test carries data of its own): it
// was accepted (with its ID), it failed, or its outcome is unknown
// ([broker.ErrUnknownOutcome]). It is safe for concurrent use.
type Outcomes struct {
	mu       sync.Mutex
	accepted map[string]string // data -> ID
	failed   map[string]error
	unknown  map[string]error
}

// NewOutcomes returns an empty record.
func NewOutcomes() *Outcomes {
	return &Outcomes{accepted: map[string]string{}, failed: map[string]error{}, unknown: map[string]error{}}
}

// Record files what Publish returned for the event carrying data.
func (o *Outcomes) Record(data, id string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err == nil:
		o.accepted[data] = id
	case errors.Is(err, broker.ErrUnknownOutcome):
		o.unknown[data] = err
	default:
		o.failed[data] = err
	}
}

// Counts returns how many events were accepted, failed, and of unknown
// outcome.
func (o *Outcomes) Counts() (accepted, failed, unknown int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.accepted), len(o.failed), len(o.unknown)
}

// Accepted returns the data of the accepted events, each with its ID: a
// copy, which the caller may keep.
func (o *Outcomes) Accepted() map[string]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := make(map[string]string, len(o.accepted))
	for d, id := range o.accepted {
		m[d] = id
	}
	return m
}

// ReceivedAll reports whether received (data -> times received) holds
// every accepted event.
func (o *Outcomes) ReceivedAll(received map[string]int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for d := range o.accepted {
		if received[d] == 0 {
			return false
		}
	}
	return true
}

// Count counts what one subscriber received (data -> times received)
// against what Publish said; told says whether the subscriber was told of
// a gap, which makes the accepted events it lacks missing but told, not
// missing silently. Reconnects and Gaps are left for the caller.
func (o *Outcomes) Count(received map[string]int, told bool) Figures {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := Figures{Accepted: len(o.accepted), Failed: len(o.failed), Unknown: len(o.unknown)}
	for d, n := range received {
		f.Received += n
		f.Duplicated += n - 1
		if _, ok := o.failed[d]; ok {
			f.FailedDelivered++
		}
		if _, ok := o.unknown[d]; ok {
			f.UnknownDelivered++
		}
	}
	for d := range o.accepted {
		if received[d] == 0 {
			if told {
				f.MissingTold++
			} else {
				f.MissingSilently++
			}
		}
	}
	return f
}

// Errors returns up to max distinct messages of the errors Publish
// returned, each with how often, one per line.
func (o *Outcomes) Errors(max int) string {
	o.mu.Lock()
	seen := map[string]int{}
	for _, m := range []map[string]error{o.failed, o.unknown} {
		for _, err := range m {
			msg := err.Error()
			if len(msg) > 240 {
				msg = msg[:240] + "..."
			}
			seen[msg]++
		}
	}
	o.mu.Unlock()
	var lines []string
	for msg, n := range seen {
		lines = append(lines, fmt.Sprintf("%4d x %s", n, msg))
	}
	sort.Strings(lines)
	if len(lines) > max {
		lines = append(lines[:max], "...")
	}
	return strings.Join(lines, "\n")
}

// Report logs f as a row of the figures table of fault, for subscriber,
// with FIGURES in front (go test -v ... | grep FIGURES) and extra at the
// end, and fails t if the subscriber received an event twice, missed an
// accepted one silently, or received one whose Publish failed.
func Report(t testing.TB, fault, subscriber string, f Figures, extra string) {
	t.Helper()
	t.Logf("FIGURES | %-28s | accepted %4d | failed %4d | unknown %4d | %-22s | received %4d | duplicated %d | missing, ErrGap %d | missing silently %d | failed yet delivered %d | unknown delivered %d | reconnects %d, gaps %d%s",
		fault, f.Accepted, f.Failed, f.Unknown, subscriber, f.Received, f.Duplicated, f.MissingTold, f.MissingSilently, f.FailedDelivered, f.UnknownDelivered, f.Reconnects, f.Gaps, extra)
	if f.Duplicated != 0 || f.MissingSilently != 0 || f.FailedDelivered != 0 {
		t.Errorf("%s: %s received %d events twice, missed %d accepted ones silently, and received %d whose Publish failed",
			fault, subscriber, f.Duplicated, f.MissingSilently, f.FailedDelivered)
	}
}

// PublishDuring publishes events of their own data on topic of b from
// four goroutines, two with no deadline and two with a deadline of a
// second per call, recording each outcome in o: for 300 ms, then while
// fault runs, then for 500 ms more. It returns once every publish of
// unknown outcome is settled: settle after that publish began.
func PublishDuring(b *broker.Broker, topic string, o *Outcomes, settle time.Duration, fault func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var settled time.Time // when the last publish of unknown outcome is settled
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if g%2 == 1 {
					ctx, cancel = context.WithTimeout(ctx, time.Second)
				}
				data := fmt.Sprintf("%d-%d", g, i)
				start := time.Now()
				id, err := b.Publish(ctx, topic, event.Event{Data: data})
				cancel()
				o.Record(data, id, err)
				if errors.Is(err, broker.ErrUnknownOutcome) {
					mu.Lock()
					if at := start.Add(settle); at.After(settled) {
						settled = at
					}
					mu.Unlock()
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	fault()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	time.Sleep(time.Until(settled))
}
