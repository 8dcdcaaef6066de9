package brokertest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/internal/faultproxy"
)

// A browser is a client that reconnects, as EventSource does, whenever its
// stream ends, with the Last-Event-ID it last saw, and counts what it
// receives by data.
type browser struct {
	name string
	in   *instance

	mu         sync.Mutex
	count      map[string]int // data -> times received
	times      []time.Time    // when each event came
	gaps       int            // gap events: Subscribe returned ErrGap
	reconnects int
	cur        *stream

	stop chan struct{}
	done chan struct{}
}

// browse starts a browser on topics at in, stopped when the test ends.
func browse(t testing.TB, name string, in *instance, topics ...string) *browser {
	t.Helper()
	first := in.subscribe(t, "", topics...)
	br := &browser{name: name, in: in, count: map[string]int{}, cur: first, stop: make(chan struct{}), done: make(chan struct{})}
	go br.run(first, topics)
	t.Cleanup(func() {
		close(br.stop)
		<-br.done
	})
	return br
}

func (br *browser) run(s *stream, topics []string) {
	defer close(br.done)
	seen := 0
	for {
		s.wait(50*time.Millisecond, func() bool { return len(s.evs) > seen || s.err != nil })
		evs := s.events()
		br.mu.Lock()
		now := time.Now()
		for _, ev := range evs[seen:] {
			d, _ := ev.Data.(string)
			br.count[d]++
			br.times = append(br.times, now)
		}
		br.mu.Unlock()
		seen = len(evs)
		select {
		case <-br.stop:
			s.close()
			return
		default:
		}
		if s.Err() == nil {
			continue
		}
		// The stream ended: come back after a retry delay.
		last := s.LastID()
		s.close()
		for {
			select {
			case <-br.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			next, err := br.in.open(last, topics...)
			if err != nil {
				continue
			}
			next.wait(10*time.Second, func() bool { return next.ready || next.err != nil })
			br.mu.Lock()
			br.reconnects++
			if next.Gap() != "" {
				br.gaps++
			}
			br.cur = next
			br.mu.Unlock()
			s, seen = next, 0
			break
		}
	}
}

// has reports whether br received every event o accepted.
func (br *browser) has(o *Outcomes) bool {
	br.mu.Lock()
	defer br.mu.Unlock()
	return o.ReceivedAll(br.count)
}

// Figures are what a fault case counts for one subscriber: what Publish
// said of the events (Accepted, Failed, Unknown), and what the subscriber
// received of them.
type Figures struct {
	Accepted, Failed, Unknown int

	Received   int // events received, duplicates included
	Duplicated int // receptions beyond the first of an event
	// MissingTold are accepted events the subscriber did not receive
	// after it was told of a gap (ErrGap); MissingSilently those it was
	// not told of.
	MissingTold, MissingSilently int
	// FailedDelivered are events whose Publish failed that the subscriber
	// received all the same; UnknownDelivered those of unknown outcome it
	// received (either is fine for those).
	FailedDelivered, UnknownDelivered int
	Reconnects, Gaps                  int
}

// figures counts what br received against what Publish said.
func (br *browser) figures(o *Outcomes) Figures {
	br.mu.Lock()
	defer br.mu.Unlock()
	f := o.Count(br.count, br.gaps > 0)
	f.Reconnects, f.Gaps = br.reconnects, br.gaps
	return f
}

// report reports a row of figures for each browser (see [Report]), and
// the errors Publish returned.
func report(t *testing.T, fault string, o *Outcomes, brs ...*browser) {
	t.Helper()
	for _, br := range brs {
		Report(t, fault, br.name, br.figures(o), "")
	}
	if msgs := o.Errors(6); msgs != "" {
		t.Logf("%s: errors Publish returned:\n%s", fault, msgs)
	}
}

// faultTimeout is the client timeout the fault cases give backends
// (Options.Timeout).
const faultTimeout = 250 * time.Millisecond

// The fault cases: while publishers publish through a proxy in front of
// the server, the proxy pauses for 2 and 10 times the client's timeout,
// cuts every connection (FIN) and resets them (RST) every 100 ms for a
// second, or delays everything by 100 ms for a second. A subscriber on the
// publishing broker (through the proxy too) and, if the backend is shared,
// one on a broker that talks to the server directly receive every event
// Publish accepted once, and none whose Publish failed.
func (r *runner) faults(t *testing.T) {
	if r.h.Addr == "" {
		t.Skip("the backend has no network (Harness.Addr is empty)")
	}
	type fault struct {
		name       string
		d          time.Duration
		begin, end func(p *faultproxy.Proxy)
	}
	pause := func(n int) fault {
		return fault{fmt.Sprintf("pause %dx timeout", n), time.Duration(n) * faultTimeout,
			(*faultproxy.Proxy).Pause, (*faultproxy.Proxy).Resume}
	}
	every := func(name string, f func(*faultproxy.Proxy) int) fault {
		var stop, stopped chan struct{}
		return fault{name + " every 100 ms, 1 s", time.Second,
			func(p *faultproxy.Proxy) {
				stop, stopped = make(chan struct{}), make(chan struct{})
				go func() {
					defer close(stopped)
					tick := time.NewTicker(100 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-tick.C:
							f(p)
						case <-stop:
							return
						}
					}
				}()
			},
			func(*faultproxy.Proxy) { close(stop); <-stopped }}
	}
	for _, f := range []fault{
		pause(2), pause(10),
		every("cut", (*faultproxy.Proxy).Cut), every("reset", (*faultproxy.Proxy).Reset),
		{"slow 100 ms, 1 s", time.Second,
			func(p *faultproxy.Proxy) { p.SetDelay(100 * time.Millisecond) },
			func(p *faultproxy.Proxy) { p.SetDelay(0) }},
	} {
		t.Run(strings.ReplaceAll(f.name, " ", "_"), func(t *testing.T) {
			p, err := faultproxy.Start(r.h.Addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			r.faultRun(t, f.name, p, f.d, func() { f.begin(p) }, func() { f.end(p) })
		})
	}
}

// faultRun publishes from 4 goroutines through the proxy (two with no
// deadline, two with a deadline of 1 s per call) while a fault lasts d,
// then waits for what Publish left unsettled, and reports.
func (r *runner) faultRun(t *testing.T, fault string, p *faultproxy.Proxy, d time.Duration, begin, end func()) {
	scope := r.scope(t)
	pub := r.start(t, Options{Scope: scope, Addr: p.Addr(), Timeout: faultTimeout})
	brs := []*browser{browse(t, "on the publisher", pub, "news")}
	if r.h.Shared {
		brs = append(brs, browse(t, "on another broker", r.start(t, Options{Scope: scope}), "news"))
	}
	o := NewOutcomes()
	PublishDuring(pub.b, "news", o, r.h.Settle, func() {
		begin()
		time.Sleep(d)
		end()
	})
	for _, br := range brs {
		deadline := time.Now().Add(20 * time.Second)
		for !br.has(o) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond) // for anything received twice
	report(t, fault, o, brs...)
}

// The server loses what the backends stored (Harness.Lose), in two ways
// the backends learn of it: a publish after the loss, and a client that
// reconnects. Either way, every subscription ends, so that its client
// comes back; one coming back with an ID from before the loss gets
// ErrGap; and events published after the loss reach every subscriber.
func (r *runner) loss(t *testing.T) {
	if r.h.Lose == nil {
		t.Skip("the harness cannot make the server lose data (Harness.Lose)")
	}
	for _, then := range []string{"publish", "reconnect"} {
		t.Run("then_"+then, func(t *testing.T) {
			scope := r.scope(t)
			a := r.start(t, Options{Scope: scope})
			ins := []*instance{a}
			if r.h.Shared {
				ins = append(ins, r.start(t, Options{Scope: scope}))
			}
			var subs []*stream
			for _, in := range ins {
				subs = append(subs, in.subscribe(t, "", "a"), in.subscribe(t, "", "a", "b"))
			}
			for i := range 5 {
				a.publish(t, "a", fmt.Sprint("before ", i))
			}
			for _, s := range subs {
				s.waitN(5, 10*time.Second)
			}
			lastID := subs[0].LastID()
			r.h.Lose(t, scope)
			switch then {
			case "publish":
				a.publish(t, "b", "after the loss")
			case "reconnect":
				if s := ins[len(ins)-1].subscribe(t, lastID, "a"); s.Gap() == "" {
					t.Errorf("reconnecting with an ID from before the loss: no gap")
				}
			}
			for i, s := range subs {
				if !s.wait(15*time.Second, func() bool { return s.err != nil }) {
					t.Fatalf("subscription %d is still open 15 s after the loss", i)
				}
			}
			for i, s := range subs {
				again := ins[i/2].subscribe(t, s.LastID(), "a", "b")
				if again.Gap() == "" {
					t.Errorf("subscription %d came back with %q, from before the loss: no gap", i, s.LastID())
				}
				subs[i] = again
			}
			a.publish(t, "a", "later")
			for i, s := range subs {
				got := datas(s.waitN(1, 10*time.Second))
				if !containsAll(got, "later") {
					t.Errorf("subscription %d after the loss received %q, want the event published after it", i, got)
				}
			}
		})
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}
