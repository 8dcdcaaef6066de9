package redisbroker

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

// The property, across processes: publishers on three instances, on three
// topics; subscribers on random sets of topics that drop their connection
// at random and reconnect, with the Last-Event-ID they last saw, to a
// random instance. Each subscriber receives every event of its topics
// exactly once, in the order of their IDs. Each event's Type is its topic;
// the last event of each topic has Data "end".
func TestPropertyEveryEventOnceInOrderAcrossInstances(t *testing.T) {
	inEachMode(t, testPropertyEveryEventOnceInOrderAcrossInstances)
}

func testPropertyEveryEventOnceInOrderAcrossInstances(t *testing.T, mode Delivery) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	client := newClient(t, shared.Addr)
	cfg := Config{Delivery: mode, Prefix: testPrefix(t)}
	instances := []*instance{newInstance(t, client, cfg), newInstance(t, client, cfg), newInstance(t, client, cfg)}
	topics := []string{"t0", "t1", "t2"}
	const subscribers, perPublisher = 12, 300

	type result struct {
		topics     []string
		got        []string
		reconnects int
		err        error
	}
	results := make([]result, subscribers)
	var subs sync.WaitGroup
	for i := range results {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		r := &results[i]
		for len(r.topics) == 0 {
			for _, topic := range topics {
				if rng.IntN(2) == 0 {
					r.topics = append(r.topics, topic)
				}
			}
		}
		sess, err := instances[rng.IntN(3)].open("", r.topics...)
		if err != nil {
			t.Fatal(err)
		}
		subs.Go(func() {
			ended := map[string]bool{}
			for len(ended) < len(r.topics) {
				ev, err := sess.dec.Decode()
				if err == nil {
					sess.seen = true
					if ev.Type == "gap" {
						r.err = fmt.Errorf("gap: %v", ev.Data)
						break
					}
					r.got = append(r.got, ev.Type+"/"+ev.Data.(string))
					if ev.Data == "end" {
						ended[ev.Type] = true
					}
					if len(ended) == len(r.topics) || rng.IntN(30) != 0 {
						continue
					}
				}
				// Dropped, by chance or by the server: come back elsewhere.
				sess.close()
				r.reconnects++
				time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
				if sess, err = instances[rng.IntN(3)].open(sess.lastID(), r.topics...); err != nil {
					r.err = err
					return
				}
			}
			sess.close()
		})
	}
	eventually(t, "the subscriptions", func() bool {
		n := 0
		for _, in := range instances {
			n += in.b.Stats().Subscribers
		}
		return n == subscribers
	})

	type pub struct {
		seq   uint64
		event string
	}
	var mu sync.Mutex
	var published []pub
	record := func(topic, data, id string) {
		seq, _ := strconv.ParseUint(id, 10, 64)
		mu.Lock()
		published = append(published, pub{seq, topic + "/" + data})
		mu.Unlock()
	}
	var pubs sync.WaitGroup
	for p, in := range instances {
		rng := rand.New(rand.NewPCG(seed, uint64(1000+p)))
		pubs.Go(func() {
			for n := range perPublisher {
				topic := topics[rng.IntN(len(topics))]
				data := fmt.Sprintf("p%d-%d", p, n)
				id, err := in.b.Publish(context.Background(), topic, event.Event{Type: topic, Data: data})
				if err != nil {
					t.Error(err)
					return
				}
				record(topic, data, id)
				if rng.IntN(3) == 0 {
					time.Sleep(time.Duration(rng.IntN(1000)) * time.Microsecond)
				}
			}
		})
	}
	pubs.Wait()
	for _, topic := range topics {
		id, err := instances[0].b.Publish(context.Background(), topic, event.Event{Type: topic, Data: "end"})
		if err != nil {
			t.Fatal(err)
		}
		record(topic, "end", id)
	}
	subs.Wait()

	slices.SortFunc(published, func(a, b pub) int { return cmp.Compare(a.seq, b.seq) })
	total := 0
	for i, r := range results {
		if r.err != nil {
			t.Errorf("subscriber %d: %v", i, r.err)
			continue
		}
		var want []string
		for _, p := range published {
			if slices.Contains(r.topics, p.event[:2]) {
				want = append(want, p.event)
			}
		}
		if !slices.Equal(r.got, want) {
			t.Errorf("subscriber %d on %v: got %d events, want %d", i, r.topics, len(r.got), len(want))
		}
		total += r.reconnects
	}
	var replayed uint64
	for _, in := range instances {
		replayed += in.b.Stats().Replayed
	}
	t.Logf("%d events, %d reconnections to random instances, %d events replayed", len(published), total, replayed)
	if total < subscribers {
		t.Errorf("only %d reconnections", total)
	}
}
