package redisbroker

import (
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
)

// isUnknownOutcome reports whether Publish said it could not tell whether
// it stored the event.
func isUnknownOutcome(err error) bool { return errors.Is(err, broker.ErrUnknownOutcome) }

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

// has reports whether r received every event o accepted.
func (r *receiver) has(o *brokertest.Outcomes) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return o.ReceivedAll(r.count)
}

// figures counts what r received against what Publish said: every event
// accepted must be received once, or be missing with the subscriber told
// (a gap event, or ErrLost from its backend); an event Publish said failed
// must not be received at all.
func (r *receiver) figures(o *brokertest.Outcomes) brokertest.Figures {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := o.Count(r.count, r.gaps > 0 || r.in.errs.count(ErrLost) > 0)
	f.Gaps = r.gaps
	return f
}

// report logs the table's rows for a fault, and fails the test unless no
// subscriber received an event twice, missed one silently, or received
// one whose Publish failed.
func report(t *testing.T, fault string, o *brokertest.Outcomes, extra string, rs ...*receiver) {
	t.Helper()
	for _, r := range rs {
		brokertest.Report(t, fault, r.name, r.figures(o), extra)
		r.mu.Lock()
		end := r.end
		r.mu.Unlock()
		if end != nil && !errors.Is(end, io.EOF) {
			t.Logf("%s's stream ended: %v", r.name, end)
		}
	}
	if msgs := o.Errors(8); msgs != "" {
		t.Logf("%s: errors Publish returned:\n%s", fault, msgs)
	}
}
