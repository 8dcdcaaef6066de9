package redisbroker

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

// A client whose Last-Event-ID the history no longer covers is told so,
// as with the in-memory broker, whichever process it reconnects to.
func TestTrimmedLastEventIDIsAGap(t *testing.T) { inEachMode(t, testTrimmedLastEventIDIsAGap) }

func testTrimmedLastEventIDIsAGap(t *testing.T, mode Delivery) {
	client := newClient(t, shared.Addr)
	cfg := Config{Delivery: mode, Prefix: testPrefix(t), HistorySize: 5}
	a, b := newInstance(t, client, cfg), newInstance(t, client, cfg)
	var ids []string
	for i := range 10 {
		ids = append(ids, a.publish(t, "news", strconv.Itoa(i)))
	}

	// 5 to 9 are kept. The client that saw 4 missed nothing that is gone.
	sess := b.dial(t, ids[4], "news")
	for i := 5; i < 10; i++ {
		if ev := sess.next(t); ev.Type == "gap" || ev.ID != ids[i] {
			t.Fatalf("got %+v, want %s", ev, ids[i])
		}
	}

	// The client that saw 3 missed 4, which is gone.
	sess = b.dial(t, ids[3], "news")
	if ev := sess.next(t); ev.Type != "gap" {
		t.Fatalf("got %+v, want the handler's gap event", ev)
	}
	live := a.publish(t, "news", "live") // it is subscribed all the same
	if ev := sess.next(t); ev.ID != live || ev.Data != "live" {
		t.Fatalf("got %+v, want the live event %s", ev, live)
	}

	// An ID from another Redis, or another app.
	sess = b.dial(t, "12345", "news")
	if ev := sess.next(t); ev.Type != "gap" {
		t.Fatalf("got %+v, want the handler's gap event", ev)
	}
	if st := b.b.Stats(); st.Gaps != 2 {
		t.Fatalf("B's stats %+v, want 2 gaps", st)
	}
}

// A process that cannot read while others publish more than the log keeps
// finds the rest in the topics' histories; what is in neither is reported
// lost, never skipped silently.
func TestLaggingReaderCatchesUpFromTheHistories(t *testing.T) {
	inEachMode(t, testLaggingReaderCatchesUpFromTheHistories)
}

func testLaggingReaderCatchesUpFromTheHistories(t *testing.T, mode Delivery) {
	for _, tt := range []struct {
		name        string
		historySize int
		wantLost    bool
	}{
		{"histories have it", 1000, false},
		{"histories trimmed too", 20, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(t, shared.Addr)
			cfg := Config{Prefix: testPrefix(t), LogSize: 10, HistorySize: tt.historySize}
			publisher, _, _ := startBackend(t, client, cfg)
			cfg.Delivery = mode // the reader's: with DeliverInterest it reads its inbox

			// The reader is stuck in its first delivery while 3 topics get
			// 600 messages: the log keeps about 100 of them (MAXLEN ~
			// trims whole nodes of 100 entries).
			errs := &errorLog{}
			cfg.ErrorHandler = errs.handle
			reader, err := New(client, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { reader.Close() })
			entered, stuck := make(chan struct{}), make(chan struct{})
			var got []broker.Message
			if _, err := reader.Start(func(m broker.Message) {
				if len(got) == 0 {
					close(entered)
					<-stuck
				}
				got = append(got, m)
			}); err != nil {
				t.Fatal(err)
			}
			var published []uint64
			ctx := context.Background()
			if _, err := reader.Watch(ctx, []string{"t0", "t1", "t2"}); err != nil {
				t.Fatal(err)
			}
			feed := reader.keys.log
			if mode == DeliverInterest {
				feed = reader.keys.inbox + reader.instance
			}
			for i := range 601 {
				m := pub(t, publisher, "t"+strconv.Itoa(i%3), event.Event{Data: strconv.Itoa(i)})
				published = append(published, m.Seq)
				if i == 0 {
					select {
					case <-entered:
					case <-time.After(10 * time.Second):
						t.Fatal("the first message was not delivered")
					}
				}
			}
			if n, _ := client.XLen(ctx, feed).Result(); n > 300 {
				t.Fatalf("the %s holds %d entries: not trimmed", feedName(mode == DeliverInterest), n)
			}
			close(stuck)
			eventually(t, "the reader to catch up", func() bool { return reader.Stats().LastSeq == published[600] })

			var seqs []uint64
			for _, m := range got {
				seqs = append(seqs, m.Seq)
			}
			st := reader.Stats()
			if !tt.wantLost {
				if !slices.Equal(seqs, published) || st.Lost != 0 || st.Recovered == 0 {
					t.Fatalf("delivered %d of %d (stats %+v)", len(seqs), len(published), st)
				}
				return
			}
			if !slices.IsSorted(seqs) || len(seqs) >= len(published) || st.Lost == 0 || errs.count(ErrLost) == 0 {
				t.Fatalf("delivered %d of %d, sorted: %v (stats %+v)", len(seqs), len(published), slices.IsSorted(seqs), st)
			}
			for _, s := range seqs {
				if !slices.Contains(published, s) {
					t.Fatalf("delivered %d, never published", s)
				}
			}
			var lost error
			for _, err := range errs.errs {
				if errors.Is(err, ErrLost) {
					lost = err
				}
			}
			t.Logf("delivered %d of %d; %d recovered from the histories; told: %v", len(seqs), len(published), st.Recovered, lost)
		})
	}
}

// heldBytes returns the bytes the history of topic counts (see cost in
// scripts.go), from its entries, and how many entries it has. It checks
// that every entry's field b adds that entry's cost to the one before.
func heldBytes(t testing.TB, b *Backend, topic string) (held int64, n int) {
	t.Helper()
	entries, err := b.client.XRange(context.Background(), b.keys.topic+topic, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var first, last int64
	for i, e := range entries {
		c := int64(64)
		for k, v := range e.Values {
			if k != "b" {
				c += int64(len(k) + len(v.(string)))
			}
		}
		total, err := strconv.ParseInt(e.Values["b"].(string), 10, 64)
		if err != nil {
			t.Fatalf("entry %s: field b: %v", e.ID, err)
		}
		if i == 0 {
			first = total - c
		} else if total != last+c {
			t.Fatalf("entry %s counts %d bytes in all, want %d + its %d", e.ID, total, last, c)
		}
		last = total
	}
	if len(entries) == 0 {
		return 0, 0
	}
	return last - first, len(entries)
}

// Trimming by bytes keeps replay exact: a client resuming from an event
// still kept, or from the last one dropped, gets exactly what follows; one
// resuming from before that gets ErrGap, never a silent miss.
func TestHistoryBytesTrimsTheOldest(t *testing.T) {
	client := newClient(t, shared.Addr)
	// An event of 1000 bytes of data on "news" counts about 1100 bytes:
	// 6000 keep 5 of them.
	const limit = 6000
	b, ch, _ := startBackend(t, client, Config{Prefix: testPrefix(t), HistoryBytes: limit})
	data := strings.Repeat("x", 1000)
	var ids []string
	for range 20 {
		ids = append(ids, pub(t, b, "news", event.Event{Data: data}).Event.ID)
	}
	upTo := receive(t, ch, 20)[19].Seq

	held, n := heldBytes(t, b, "news")
	if n != 5 || held > limit {
		t.Fatalf("the history holds %d events and counts %d bytes, want 5 events within %d bytes", n, held, limit)
	}
	ctx := context.Background()
	for from := 14; from < 20; from++ {
		got, err := b.Replay(ctx, []string{"news"}, ids[from], upTo)
		if err != nil {
			t.Fatalf("replay from %d: %v", from, err)
		}
		if want := ids[from+1:]; !slices.Equal(msgIDs(got), want) {
			t.Fatalf("replay from %d: got %q, want %q", from, msgIDs(got), want)
		}
	}
	for _, from := range []int{0, 13} {
		if _, err := b.Replay(ctx, []string{"news"}, ids[from], upTo); !errors.Is(err, broker.ErrGap) {
			t.Fatalf("replay from %d (dropped): got %v, want ErrGap", from, err)
		}
	}

	// An event of 4600 bytes drops 4 at once: only 19 stays beside it.
	ids = append(ids, pub(t, b, "news", event.Event{Data: strings.Repeat("y", 4500)}).Event.ID)
	upTo = receive(t, ch, 1)[0].Seq
	if held, n := heldBytes(t, b, "news"); n != 2 || held > limit {
		t.Fatalf("the history holds %d events and counts %d bytes, want 2 events within %d bytes", n, held, limit)
	}
	if got, err := b.Replay(ctx, []string{"news"}, ids[18], upTo); err != nil || !slices.Equal(msgIDs(got), ids[19:]) {
		t.Fatalf("replay from 18: got %q, %v, want %q", msgIDs(got), err, ids[19:])
	}
	if _, err := b.Replay(ctx, []string{"news"}, ids[17], upTo); !errors.Is(err, broker.ErrGap) {
		t.Fatalf("replay from 17 (dropped): got %v, want ErrGap", err)
	}
}

// An event bigger than HistoryBytes reaches the subscribers but is not
// kept, nor is anything before it: a client that missed it gets ErrGap,
// one that received it resumes from it.
func TestHistoryBytesEventTooBigToKeep(t *testing.T) {
	client := newClient(t, shared.Addr)
	b, ch, _ := startBackend(t, client, Config{Prefix: testPrefix(t), HistoryBytes: 6000})
	before := pub(t, b, "news", event.Event{Data: "small"})
	big := pub(t, b, "news", event.Event{Data: strings.Repeat("x", 6000)})
	got := receive(t, ch, 2)
	if got[1].Event.ID != big.Event.ID || len(got[1].Event.Data.(string)) != 6000 {
		t.Fatalf("delivered %+v, want the big event %s", got[1], big.Event.ID)
	}
	if _, n := heldBytes(t, b, "news"); n != 0 {
		t.Fatalf("the history holds %d events, want none", n)
	}
	ctx := context.Background()
	if _, err := b.Replay(ctx, []string{"news"}, before.Event.ID, big.Seq); !errors.Is(err, broker.ErrGap) {
		t.Fatalf("replay from before the big event: got %v, want ErrGap", err)
	}
	after := pub(t, b, "news", event.Event{Data: "after"})
	upTo := receive(t, ch, 1)[0].Seq
	if _, err := b.Replay(ctx, []string{"news"}, before.Event.ID, upTo); !errors.Is(err, broker.ErrGap) {
		t.Fatalf("replay from before the big event, once another follows: got %v, want ErrGap", err)
	}
	replayed, err := b.Replay(ctx, []string{"news"}, big.Event.ID, upTo)
	if err != nil || !slices.Equal(msgIDs(replayed), []string{after.Event.ID}) {
		t.Fatalf("replay from the big event: got %q, %v, want [%s]", msgIDs(replayed), err, after.Event.ID)
	}
}

// By default a topic keeps at most 4 MiB as counted, which Redis holds in
// at most half as much again (see the package documentation); a negative
// HistoryBytes keeps everything HistorySize does.
func TestHistoryBytesDefault(t *testing.T) {
	for _, tt := range []struct {
		name         string
		historyBytes int64
		wantAll      bool
	}{
		{"default", 0, false},
		{"no limit", -1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(t, shared.Addr)
			b, _, _ := startBackend(t, client, Config{Prefix: testPrefix(t), HistoryBytes: tt.historyBytes})
			data := strings.Repeat("x", 64<<10)
			const published = 80 // 5 MiB
			for range published {
				pub(t, b, "big", event.Event{Data: data})
			}
			held, n := heldBytes(t, b, "big")
			mem, err := client.MemoryUsage(context.Background(), b.keys.topic+"big", 0).Result()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d events kept, counting %d bytes; MEMORY USAGE %d bytes", n, held, mem)
			if tt.wantAll {
				if n != published {
					t.Fatalf("%d events kept, want all %d", n, published)
				}
				return
			}
			if held > 4<<20 || held+(64<<10)+200 <= 4<<20 || mem > 6<<20 {
				t.Fatalf("%d events kept, counting %d bytes, MEMORY USAGE %d: want just under 4 MiB counted, 6 MiB held", n, held, mem)
			}
		})
	}
}

// The property: whatever the sizes of the events and the bound, the topic
// keeps exactly the newest events whose costs fit in it (none after an
// event too big to keep), and a replay from any event published either
// returns exactly every event after it or, when one of those is gone,
// ErrGap.
func TestPropertyHistoryBytesReplayIsExact(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	client := newClient(t, shared.Addr)
	limit := int64(500 + rng.IntN(5000))
	b, ch, _ := startBackend(t, client, Config{Prefix: testPrefix(t), HistoryBytes: limit})
	ctx := context.Background()

	type published struct {
		id   string
		cost int64
	}
	var all []published
	var kept []int // indices into all: the model of the history
	prev := "0"
	for range 300 {
		data := strings.Repeat("x", rng.IntN(int(limit)*3/2))
		m := pub(t, b, "p", event.Event{Data: data})
		upTo := receive(t, ch, 1)[0].Seq
		// t, p, q and d: names, values (two Seqs), and 64.
		c := int64(64 + 4 + len("p") + 2*len(prev) + len(data))
		prev = m.Event.ID
		all = append(all, published{m.Event.ID, c})
		if c > limit {
			kept = kept[:0]
		} else {
			kept = append(kept, len(all)-1)
			var sum int64
			for _, i := range kept {
				sum += all[i].cost
			}
			for sum > limit {
				sum -= all[kept[0]].cost
				kept = kept[1:]
			}
		}

		var want []string
		for _, i := range kept {
			want = append(want, all[i].id)
		}
		entries, err := client.XRange(ctx, b.keys.topic+"p", "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			seq, err := parseEntryID(e.ID)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, strconv.FormatUint(seq, 10))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("after %d events (bound %d): the topic keeps %q, want %q", len(all), limit, got, want)
		}
		for range 3 {
			from := rng.IntN(len(all))
			replayed, err := b.Replay(ctx, []string{"p"}, all[from].id, upTo)
			gone := from+1 < len(all) && (len(kept) == 0 || kept[0] > from+1)
			switch {
			case gone && !errors.Is(err, broker.ErrGap):
				t.Fatalf("after %d events (bound %d): replay from %d: got %q, %v, want ErrGap", len(all), limit, from, msgIDs(replayed), err)
			case gone:
			case err != nil:
				t.Fatalf("after %d events (bound %d): replay from %d: %v", len(all), limit, from, err)
			default:
				var after []string
				for _, p := range all[from+1:] {
					after = append(after, p.id)
				}
				if !slices.Equal(msgIDs(replayed), after) {
					t.Fatalf("after %d events (bound %d): replay from %d: got %q, want %q", len(all), limit, from, msgIDs(replayed), after)
				}
			}
		}
	}
}
