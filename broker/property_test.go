package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// The property: several publishers on several topics, many subscribers
// that disconnect and reconnect at random with the Last-Event-ID they last
// saw; each subscriber receives every event of its topics exactly once, in
// publish order. Each event's Type is its topic and its Data is unique; the
// last event of each topic has Data "end".

type session interface {
	next() (event.Event, error) // the next event, or why the stream ended
	lastID() string             // the Last-Event-ID to reconnect with
	close()                     // disconnect
}

type dialer func(ctx context.Context, lastID string, topics []string) (session, error)

type propConfig struct {
	topics      int
	publishers  int
	perPub      int // events each publisher publishes
	subscribers int
	disconnect  float64 // probability of disconnecting after an event
}

func runProperty(t *testing.T, b *Broker, dial dialer, pc propConfig) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	topics := make([]string, pc.topics)
	for i := range topics {
		topics[i] = "t" + strconv.Itoa(i)
	}

	// Subscribers: each on a random non-empty set of topics.
	type result struct {
		topics      []string
		got         []event.Event
		reconnects  int
		err         error
		gapReceived bool
	}
	results := make([]result, pc.subscribers)
	var subs sync.WaitGroup
	for i := range results {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		var mine []string
		for len(mine) == 0 {
			for _, topic := range topics {
				if rng.IntN(2) == 0 {
					mine = append(mine, topic)
				}
			}
		}
		r := &results[i]
		r.topics = mine
		sess, err := dial(ctx, "", mine)
		if err != nil {
			t.Fatal(err)
		}
		subs.Go(func() {
			ended := map[string]bool{}
			for len(ended) < len(mine) {
				ev, err := sess.next()
				if err == nil {
					if ev.Type == "gap" {
						r.gapReceived = true
					}
					r.got = append(r.got, ev)
					if ev.Data == "end" {
						ended[ev.Type] = true
					}
					if len(ended) == len(mine) || rng.Float64() >= pc.disconnect {
						continue
					}
				} else if ctx.Err() != nil {
					r.err = fmt.Errorf("after %d events: %w", len(r.got), ctx.Err())
					sess.close()
					return
				}
				// Disconnected, by the server (a slow client) or by
				// chance: reconnect after a while, as a browser does.
				sess.close()
				r.reconnects++
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				if sess, err = dial(ctx, sess.lastID(), mine); err != nil {
					r.err = err
					return
				}
			}
			sess.close()
		})
	}
	eventually(t, "the subscriptions", func() bool { return b.Stats().Subscribers == pc.subscribers })

	// Publishers, then the "end" event of each topic.
	type pub struct {
		seq   uint64
		topic string
		data  string
	}
	var mu sync.Mutex
	var published []pub
	record := func(topic, data, id string) {
		seq, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			t.Errorf("ID %q: %v", id, err)
		}
		mu.Lock()
		published = append(published, pub{seq, topic, data})
		mu.Unlock()
	}
	var pubs sync.WaitGroup
	for p := range pc.publishers {
		rng := rand.New(rand.NewPCG(seed, uint64(1000+p)))
		pubs.Go(func() {
			for n := range pc.perPub {
				topic := topics[rng.IntN(len(topics))]
				data := fmt.Sprintf("p%d-%d", p, n)
				id, err := b.Publish(ctx, topic, event.Event{Type: topic, Data: data})
				if err != nil {
					t.Error(err)
					return
				}
				record(topic, data, id)
				if rng.IntN(4) == 0 {
					time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
				}
			}
		})
	}
	pubs.Wait()
	for _, topic := range topics {
		id, err := b.Publish(ctx, topic, event.Event{Type: topic, Data: "end"})
		if err != nil {
			t.Fatal(err)
		}
		record(topic, "end", id)
	}
	subs.Wait()

	slices.SortFunc(published, func(a, b pub) int {
		if a.seq < b.seq {
			return -1
		}
		return 1
	})
	total := 0
	for i, r := range results {
		if r.err != nil {
			t.Errorf("subscriber %d: %v", i, r.err)
			continue
		}
		if r.gapReceived {
			t.Errorf("subscriber %d: got a gap", i)
		}
		var want, got []string
		for _, p := range published {
			if slices.Contains(r.topics, p.topic) {
				want = append(want, p.topic+"/"+p.data)
			}
		}
		for _, ev := range r.got {
			got = append(got, ev.Type+"/"+ev.Data.(string))
		}
		if !slices.Equal(got, want) {
			t.Errorf("subscriber %d on %v: got %d events, want %d\n%s", i, r.topics, len(got), len(want), firstDiff(got, want))
		}
		total += r.reconnects
	}
	st := b.Stats()
	t.Logf("%d events, %d reconnects; stats: %+v", len(published), total, st)
	if total < pc.subscribers {
		t.Errorf("only %d reconnects", total)
	}
}

// firstDiff describes where got and want first differ.
func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: got %q, want %q", i, got[i:min(i+5, len(got))], want[i:min(i+5, len(want))])
		}
	}
	return fmt.Sprintf("one is a prefix of the other; got ends %q, want ends %q", got[max(len(got)-3, 0):], want[max(len(want)-3, 0):])
}

func TestPropertyEveryEventOnceInOrderHTTP(t *testing.T) {
	b, _ := newBroker(t, Config{HistorySize: 100_000, HistoryAge: -1})
	// A small buffer, so that bursts make some clients slow.
	env := newHTTP(t, b, echosse.Config{BufferSize: 4})
	dial := func(ctx context.Context, lastID string, topics []string) (session, error) {
		return env.dial(ctx, lastID, topics)
	}
	runProperty(t, b, dial, propConfig{topics: 3, publishers: 3, perPub: 300, subscribers: 20, disconnect: 1.0 / 40})
}

// fakeSession reads a fakeStream as the echosse pump does; Subscribe runs
// on its own goroutine, as it does on the request's.
type fakeSession struct {
	f    *fakeStream
	last string
	done chan struct{} // closed when Subscribe has returned
}

func (s *fakeSession) next() (event.Event, error) {
	if s.f.ctx.Err() != nil {
		return event.Event{}, context.Cause(s.f.ctx)
	}
	select {
	case ev := <-s.f.ch:
		if ev.ID != "" {
			s.last = ev.ID
		}
		return ev, nil
	case <-s.f.ctx.Done():
		return event.Event{}, context.Cause(s.f.ctx)
	}
}

func (s *fakeSession) lastID() string { return s.last }

func (s *fakeSession) close() {
	s.f.cancel(nil)
	<-s.done
}

func TestPropertyEveryEventOnceInOrder(t *testing.T) {
	b, _ := newBroker(t, Config{HistorySize: 100_000, HistoryAge: -1})
	dial := func(ctx context.Context, lastID string, topics []string) (session, error) {
		s := &fakeSession{f: newFake(t, 4, lastID), last: lastID, done: make(chan struct{})}
		go func() {
			defer close(s.done)
			if err := s.f.subscribe(b, topics...); err != nil {
				t.Error(err)
			}
		}()
		return s, nil
	}
	runProperty(t, b, dial, propConfig{topics: 3, publishers: 3, perPub: 400, subscribers: 30, disconnect: 1.0 / 40})
}
