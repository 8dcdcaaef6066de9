package redisbroker

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

// A client whose Last-Event-ID the history no longer covers is told so,
// as with the in-memory broker, whichever process it reconnects to.
func TestTrimmedLastEventIDIsAGap(t *testing.T) {
	client := newClient(t, shared.Addr)
	cfg := Config{Prefix: testPrefix(t), HistorySize: 5}
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
			if n, _ := client.XLen(ctx, reader.keys.log).Result(); n > 300 {
				t.Fatalf("the log holds %d entries: not trimmed", n)
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
