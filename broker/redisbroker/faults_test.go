package redisbroker

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/echosse/echo-sse/broker"
)

// isUnknownOutcome reports whether Publish said it could not tell whether
// it stored the event.
func isUnknownOutcome(err error) bool { return errors.Is(err, broker.ErrUnknownOutcome) }

// What the fault tests count, and print as rows of a table (go test -v
// -run 'Fault|MemoryLimit' ./broker/redisbroker/ | grep FIGURES).

// outcomes records what Publish said of each event, by its data (every
// event of a fault test has data of its own).
type outcomes struct {
	mu       sync.Mutex
	accepted map[string]string // data -> ID
	failed   map[string]error
	unknown  map[string]error
}

func newOutcomes() *outcomes {
	return &outcomes{accepted: map[string]string{}, failed: map[string]error{}, unknown: map[string]error{}}
}

// record files the result of publishing data.
func (o *outcomes) record(data, id string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err == nil:
		o.accepted[data] = id
	case isUnknownOutcome(err):
		o.unknown[data] = err
	default:
		o.failed[data] = err
	}
}

func (o *outcomes) counts() (accepted, failed, unknown int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.accepted), len(o.failed), len(o.unknown)
}

// someErrors returns a few distinct messages of the errors recorded, for
// the log.
func (o *outcomes) someErrors() string {
	o.mu.Lock()
	defer o.mu.Unlock()
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
	var lines []string
	for msg, n := range seen {
		lines = append(lines, fmt.Sprintf("%4d x %s", n, msg))
	}
	sort.Strings(lines)
	if len(lines) > 8 {
		lines = append(lines[:8], "...")
	}
	return strings.Join(lines, "\n")
}

// receiver records what one subscriber's stream received.
type receiver struct {
	name string
	in   *instance

	mu    sync.Mutex
	count map[string]int // data -> times received
	gaps  int            // the handler's gap events (ErrGap)
	end   error          // why the stream ended

	done chan struct{}
}

// record subscribes a stream to topics on in, and records what it
// receives until the test ends.
func record(t *testing.T, name string, in *instance, topics ...string) *receiver {
	t.Helper()
	want := in.b.Stats().Subscribers + 1
	sess, err := in.open("", topics...)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{name: name, in: in, count: map[string]int{}, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			ev, err := sess.dec.Decode()
			r.mu.Lock()
			if err != nil {
				r.end = err
				r.mu.Unlock()
				return
			}
			if ev.Type == "gap" {
				r.gaps++
			} else if s, ok := ev.Data.(string); ok {
				r.count[s]++
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		sess.close()
		<-r.done
	})
	eventually(t, name+"'s subscription", func() bool { return in.b.Stats().Subscribers >= want })
	return r
}

// has reports whether r received every one of datas.
func (r *receiver) has(datas map[string]string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range datas {
		if r.count[d] == 0 {
			return false
		}
	}
	return true
}

// figures is one row of a fault test's table.
type figures struct {
	received, duplicated, missingGap, missingSilently int
	failedDelivered, unknownDelivered                 int
}

// figures counts what r received against what Publish said: every event
// accepted must be received once, or be missing with the subscriber told
// (a gap event, or ErrLost from its backend); an event Publish said failed
// must not be received at all.
func (r *receiver) figures(o *outcomes) figures {
	r.mu.Lock()
	defer r.mu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	told := r.gaps > 0 || r.in.errs.count(ErrLost) > 0
	var f figures
	for d, n := range r.count {
		f.received += n
		if n > 1 {
			f.duplicated += n - 1
		}
		if _, ok := o.failed[d]; ok {
			f.failedDelivered++
		}
		if _, ok := o.unknown[d]; ok {
			f.unknownDelivered++
		}
	}
	for d := range o.accepted {
		if r.count[d] == 0 {
			if told {
				f.missingGap++
			} else {
				f.missingSilently++
			}
		}
	}
	return f
}

// report logs the table's rows for a fault, and fails the test unless no
// subscriber received an event twice, missed one silently, or received
// one whose Publish failed.
func report(t *testing.T, fault string, o *outcomes, extra string, rs ...*receiver) {
	t.Helper()
	accepted, failed, unknown := o.counts()
	for _, r := range rs {
		f := r.figures(o)
		t.Logf("FIGURES | %-28s | accepted %4d | failed %4d | unknown %4d | %-22s | received %4d | duplicated %d | missing, ErrGap %d | missing silently %d | failed yet delivered %d | unknown delivered %d%s",
			fault, accepted, failed, unknown, r.name, f.received, f.duplicated, f.missingGap, f.missingSilently, f.failedDelivered, f.unknownDelivered, extra)
		if f.duplicated != 0 || f.missingSilently != 0 || f.failedDelivered != 0 {
			t.Errorf("%s: %s received %d events twice, missed %d accepted ones silently, and received %d whose Publish failed",
				fault, r.name, f.duplicated, f.missingSilently, f.failedDelivered)
		}
		r.mu.Lock()
		end := r.end
		r.mu.Unlock()
		if end != nil && !errors.Is(end, io.EOF) {
			t.Logf("%s's stream ended: %v", r.name, end)
		}
	}
	if msgs := o.someErrors(); msgs != "" {
		t.Logf("%s: errors Publish returned:\n%s", fault, msgs)
	}
}
