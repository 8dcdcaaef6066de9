package broker

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

func TestPublishAssignsIncreasingIDsAcrossTopics(t *testing.T) {
	b, _ := newBroker(t, Config{})
	var got []string
	for _, topic := range []string{"a", "b", "a", "c"} {
		got = append(got, publish(t, b, topic, "x"))
	}
	if want := seqIDs(1, 4); !slices.Equal(got, want) {
		t.Fatalf("got IDs %q, want %q", got, want)
	}
	id, err := b.Publish(context.Background(), "a", event.Event{ID: "row-17", Data: "x"})
	if err != nil || id != "row-17" {
		t.Fatalf("got %q, %v; want the caller's ID row-17", id, err)
	}
	if got := publish(t, b, "a", "x"); got != "6" {
		t.Fatalf("after a caller-set ID, got ID %q, want 6", got)
	}
}

func TestPublishIDsStartAtTheClock(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	b, _ := newBroker(t, Config{timeNow: func() time.Time { return start }})
	id := publish(t, b, "a", "x")
	if want := "1893553445000007"; id != want {
		t.Fatalf("got ID %q, want %q (the start time in microseconds, plus one)", id, want)
	}
}

func TestPublishEncodesOnce(t *testing.T) {
	b, _ := newBroker(t, Config{})
	f := newFake(t, 4, "")
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	data := []byte("one\ntwo")
	if _, err := b.Publish(context.Background(), "a", event.Event{Type: "note", Data: data}); err != nil {
		t.Fatal(err)
	}
	copy(data, "XXX") // the event was encoded at publish time
	ev := <-f.ch
	wire, err := ev.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "event: note\nid: 1\ndata: one\ndata: two\n\n"; string(wire) != want {
		t.Fatalf("got %q, want %q", wire, want)
	}

	if _, err := b.Publish(context.Background(), "a", event.Event{Data: map[string]int{"n": 1}}); err != nil {
		t.Fatal(err)
	}
	wire, _ = (<-f.ch).AppendTo(nil)
	if want := "id: 2\ndata: {\"n\":1}\n\n"; string(wire) != want {
		t.Fatalf("got %q, want %q", wire, want)
	}
}

func TestPublishErrors(t *testing.T) {
	b, _ := newBroker(t, Config{})
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		topic   string
		give    event.Event
		wantErr func(error) bool
	}{
		{"empty topic", ctx, "", event.Event{Data: "x"}, func(err error) bool { return strings.Contains(err.Error(), "topic") }},
		{"line break in ID", ctx, "a", event.Event{ID: "a\nb", Data: "x"}, func(err error) bool { return errors.Is(err, event.ErrLineBreak) }},
		{"NUL in ID", ctx, "a", event.Event{ID: "a\x00", Data: "x"}, func(err error) bool { return errors.Is(err, event.ErrNUL) }},
		{"ID too long", ctx, "a", event.Event{ID: strings.Repeat("i", maxIDLen+1), Data: "x"}, func(err error) bool { return strings.Contains(err.Error(), "longer") }},
		{"bad type", ctx, "a", event.Event{Type: "a\rb", Data: "x"}, func(err error) bool { return errors.Is(err, event.ErrLineBreak) }},
		{"data not JSON", ctx, "a", event.Event{Data: func() {}}, func(err error) bool {
			var fe *event.FieldError
			return errors.As(err, &fe) && fe.Field == "data"
		}},
		{"context done", cancelled, "a", event.Event{Data: "x"}, func(err error) bool { return errors.Is(err, context.Canceled) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := b.Publish(tt.ctx, tt.topic, tt.give)
			if err == nil || id != "" || !tt.wantErr(err) {
				t.Fatalf("got %q, %v", id, err)
			}
		})
	}
	// Nothing was published, and no ID was used up.
	if got := publish(t, b, "a", "x"); got != "1" {
		t.Fatalf("got ID %q, want 1", got)
	}
	if got := b.Stats().Published; got != 1 {
		t.Fatalf("got Published %d, want 1", got)
	}
}

func TestSubscribeLiveOnlyItsTopics(t *testing.T) {
	b, _ := newBroker(t, Config{})
	publish(t, b, "a", "before") // a first connection gets no history
	fa, fab := newFake(t, 16, ""), newFake(t, 16, "")
	if err := fa.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	if err := fab.subscribe(b, "b", "a", "b"); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"a", "b", "c", "a"} {
		publish(t, b, topic, topic)
	}
	if got, want := datas(fa.drain()), []string{"a", "a"}; !slices.Equal(got, want) {
		t.Errorf("subscriber of a: got %q, want %q", got, want)
	}
	evs := fab.drain()
	if got, want := datas(evs), []string{"a", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("subscriber of a and b: got %q, want %q", got, want)
	}
	if got, want := ids(evs), []string{"2", "3", "5"}; !slices.Equal(got, want) {
		t.Errorf("subscriber of a and b: got IDs %q, want %q", got, want)
	}
	st := b.Stats()
	if st.Subscribers != 2 || st.Topics["a"] != 2 || st.Topics["b"] != 1 || len(st.Topics) != 2 {
		t.Errorf("got %+v", st)
	}
}

func TestSubscribeReplaysThenLive(t *testing.T) {
	b, _ := newBroker(t, Config{})
	for _, topic := range []string{"a", "b", "a", "c", "b", "a"} { // IDs 1..6
		publish(t, b, topic, topic)
	}
	f := newFake(t, 16, "2")
	if err := f.subscribe(b, "a", "b"); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "b", "b") // 7
	publish(t, b, "c", "c") // 8
	if got, want := ids(f.drain()), []string{"3", "5", "6", "7"}; !slices.Equal(got, want) {
		t.Fatalf("got IDs %q, want %q", got, want)
	}
	if got := b.Stats().Replayed; got != 3 {
		t.Fatalf("got Replayed %d, want 3", got)
	}

	// Up to date: nothing to replay, no gap.
	f2 := newFake(t, 16, "8")
	if err := f2.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	if evs := f2.drain(); len(evs) != 0 {
		t.Fatalf("got %d events, want none", len(evs))
	}
}

func TestSubscribeReplayWaitsForRoom(t *testing.T) {
	b, _ := newBroker(t, Config{})
	for range 50 {
		publish(t, b, "a", "x")
	}
	f := newFake(t, 2, "1")
	got := make(chan []string)
	go func() {
		var ids []string
		for len(ids) < 50 {
			select {
			case ev := <-f.ch:
				ids = append(ids, ev.ID)
			case <-time.After(5 * time.Second):
				t.Error("timed out")
				got <- ids
				return
			}
		}
		got <- ids
	}()
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	// The buffer has room for a live event as soon as Subscribe returns.
	publish(t, b, "a", "x")
	if ids, want := <-got, seqIDs(2, 51); !slices.Equal(ids, want) {
		t.Fatalf("got IDs %q, want %q", ids, want)
	}
	if st := b.Stats(); st.SlowClients != 0 || st.Replayed != 49 {
		t.Fatalf("got %+v", st)
	}
}

func TestSubscribeStreamEndsDuringReplay(t *testing.T) {
	b, _ := newBroker(t, Config{})
	for range 10 {
		publish(t, b, "a", "x")
	}
	f := newFake(t, 3, "1")
	time.AfterFunc(10*time.Millisecond, func() { f.cancel(nil) })
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatalf("got %v, want nil: the stream's end is not Subscribe's error", err)
	}
	eventually(t, "the subscription to end", func() bool { return b.Stats().Subscribers == 0 })
	if got := b.Stats().Replayed; got != 3 {
		t.Fatalf("got Replayed %d, want 3", got)
	}
}

func TestSubscribeWaitsForHalfEmptyBuffer(t *testing.T) {
	b, _ := newBroker(t, Config{})
	for range 8 {
		publish(t, b, "a", "x")
	}
	f := newFake(t, 8, "1") // the replay fills 7 of 8
	returned := make(chan error)
	go func() { returned <- f.subscribe(b, "a") }()
	publish(t, b, "a", "x") // waits in pending, or is replayed
	select {
	case err := <-returned:
		t.Fatalf("Subscribe returned %v with a full buffer", err)
	case <-time.After(20 * time.Millisecond):
	}
	for range 4 {
		<-f.ch
	}
	if err := <-returned; err != nil {
		t.Fatal(err)
	}
	publish(t, b, "a", "x")
	if got, want := ids(f.drain()), seqIDs(6, 10); !slices.Equal(got, want) {
		t.Fatalf("got IDs %q, want %q", got, want)
	}

	// A stream that does not move, and ends.
	f = newFake(t, 8, "1")
	go func() { returned <- f.subscribe(b, "a") }()
	time.Sleep(10 * time.Millisecond)
	f.cancel(nil)
	if err := <-returned; err != nil {
		t.Fatal(err)
	}
}

func TestSubscribeGap(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		lastID string
		setup  func(t *testing.T, b *Broker, clk *fakeClock)
	}{
		{name: "malformed", lastID: "abc"},
		{name: "negative", lastID: "-3"},
		{name: "too long", lastID: strings.Repeat("9", maxIDLen+1)},
		{name: "huge number", lastID: "184467440737095516150"},
		{name: "in the future", lastID: "99"},
		{name: "before this broker", lastID: "0"},
		{name: "trimmed by count", cfg: Config{HistorySize: 3}, lastID: "2", setup: func(t *testing.T, b *Broker, _ *fakeClock) {
			for range 2 { // 6 events on a: 1..3 trimmed
				publish(t, b, "a", "x")
			}
		}},
		{name: "trimmed by age", cfg: Config{HistoryAge: time.Minute}, lastID: "3", setup: func(t *testing.T, b *Broker, clk *fakeClock) {
			clk.advance(time.Minute + 1)
		}},
		{name: "idle topic forgotten", cfg: Config{HistoryAge: time.Minute}, lastID: "3", setup: func(t *testing.T, b *Broker, clk *fakeClock) {
			clk.advance(2 * time.Minute)
			publish(t, b, "other", "x") // 5
			b.backend.Trim(context.Background())
		}},
		// Each event of these costs messageSize+1+1 bytes (its ID, its data).
		{name: "trimmed by bytes", cfg: Config{HistoryBytes: 3 * (messageSize + 2)}, lastID: "2", setup: func(t *testing.T, b *Broker, _ *fakeClock) {
			for range 2 { // 6 events on a: 1..3 trimmed
				publish(t, b, "a", "x")
			}
		}},
		{name: "trimmed by total bytes", cfg: Config{TotalHistoryBytes: 3 * (messageSize + 2)}, lastID: "2", setup: func(t *testing.T, b *Broker, _ *fakeClock) {
			for range 2 { // 5, 6 on other: 1..3 trimmed from a
				publish(t, b, "other", "x")
			}
		}},
		{name: "event bigger than the limit", cfg: Config{HistoryBytes: 100}, lastID: "3"},
		{name: "caller-set ID trimmed", cfg: Config{HistorySize: 2}, lastID: "row-1", setup: func(t *testing.T, b *Broker, _ *fakeClock) {
			b.Publish(context.Background(), "a", event.Event{ID: "row-1", Data: "x"})
			publish(t, b, "a", "x")
			publish(t, b, "a", "x")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clk := newBroker(t, tt.cfg)
			for range 4 { // IDs 1..4
				publish(t, b, "a", "x")
			}
			if tt.setup != nil {
				tt.setup(t, b, clk)
			}
			f := newFake(t, 16, tt.lastID)
			err := f.subscribe(b, "a", "b")
			if !errors.Is(err, ErrGap) {
				t.Fatalf("got %v, want ErrGap", err)
			}
			if evs := f.drain(); len(evs) != 0 {
				t.Fatalf("got %d events replayed, want none", len(evs))
			}
			// Live all the same.
			id := publish(t, b, "b", "live")
			if evs := f.drain(); len(evs) != 1 || evs[0].ID != id {
				t.Fatalf("got %v, want the live event %s", evs, id)
			}
			if got := b.Stats().Gaps; got != 1 {
				t.Fatalf("got Gaps %d, want 1", got)
			}
		})
	}
}

func TestSubscribeNoGap(t *testing.T) {
	b, clk := newBroker(t, Config{HistorySize: 3, HistoryAge: time.Minute})
	for _, topic := range []string{"a", "a", "b", "a", "a", "b"} { // 1..6
		publish(t, b, topic, topic)
	}
	// a kept 2, 4, 5 and trimmed 1: a client that saw 1 misses nothing.
	f := newFake(t, 16, "1")
	if err := f.subscribe(b, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(f.drain()), []string{"2", "3", "4", "5", "6"}; !slices.Equal(got, want) {
		t.Fatalf("got IDs %q, want %q", got, want)
	}

	// A topic with no history and nothing forgotten: no gap.
	f = newFake(t, 16, "6")
	if err := f.subscribe(b, "new"); err != nil {
		t.Fatal(err)
	}

	// Events just within the age limit are replayed.
	clk.advance(time.Minute)
	f = newFake(t, 16, "4")
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	if got := ids(f.drain()); !slices.Equal(got, []string{"5"}) {
		t.Fatalf("got IDs %q, want [5]", got)
	}
}

func TestHistoryAgeNegativeKeepsEvents(t *testing.T) {
	b, clk := newBroker(t, Config{HistoryAge: -1})
	publish(t, b, "a", "x")
	publish(t, b, "a", "x")
	clk.advance(1000 * time.Hour)
	b.backend.Trim(context.Background())
	f := newFake(t, 16, "1")
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	if got := ids(f.drain()); !slices.Equal(got, []string{"2"}) {
		t.Fatalf("got IDs %q, want [2]", got)
	}
}

func TestSubscribeFromCallerSetID(t *testing.T) {
	b, _ := newBroker(t, Config{})
	ctx := context.Background()
	for _, id := range []string{"row-1", "row-2", "row-3"} {
		if _, err := b.Publish(ctx, "a", event.Event{ID: id, Data: id}); err != nil {
			t.Fatal(err)
		}
	}
	f := newFake(t, 16, "row-1")
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	if got := ids(f.drain()); !slices.Equal(got, []string{"row-2", "row-3"}) {
		t.Fatalf("got IDs %q", got)
	}
}

func TestSlowClientAbort(t *testing.T) {
	// MaxBehind: events a full stream may hold back before it is slow;
	// the history, much longer, still lets it catch up after.
	b, _ := newBroker(t, Config{MaxBehind: 3})
	slow, fast := newFake(t, 2, ""), newFake(t, 16, "")
	for _, f := range []*fakeStream{slow, fast} {
		if err := f.subscribe(b, "a"); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 { // 2 in the buffer, 3 waiting, and one too many
		publish(t, b, "a", "x") // never blocks
	}
	if cause := context.Cause(slow.ctx); !errors.Is(cause, ErrSlowClient) {
		t.Fatalf("slow stream: got cause %v, want ErrSlowClient", cause)
	}
	if got := ids(fast.drain()); !slices.Equal(got, seqIDs(1, 6)) {
		t.Fatalf("fast stream: got IDs %q", got)
	}
	st := b.Stats()
	if st.SlowClients != 1 || st.Dropped != 1 || st.Subscribers != 1 || st.Topics["a"] != 1 {
		t.Fatalf("got %+v", st)
	}
	// The slow client reconnects from the last event it received and
	// misses nothing.
	got := ids(slow.drain())
	again := newFake(t, 16, got[len(got)-1])
	if err := again.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	got = append(got, ids(again.drain())...)
	if !slices.Equal(got, seqIDs(1, 6)) {
		t.Fatalf("slow stream after reconnecting: got IDs %q", got)
	}
}

// TestBurstWaitsForAStreamThatFallsBehind: a stream whose buffer is full
// for a moment is not slow yet; its events wait and reach it in order as
// its buffer empties.
func TestBurstWaitsForAStreamThatFallsBehind(t *testing.T) {
	b, _ := newBroker(t, Config{})
	f := newFake(t, 2, "")
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		publish(t, b, "a", "x")
	}
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 50 && time.Now().Before(deadline) {
		got = append(got, ids(f.drain())...)
		time.Sleep(time.Millisecond)
	}
	if !slices.Equal(got, seqIDs(1, 50)) {
		t.Fatalf("got IDs %q, want all 50 in order", got)
	}
	if err := context.Cause(f.ctx); err != nil {
		t.Fatalf("the stream was ended: %v", err)
	}
	if st := b.Stats(); st.SlowClients != 0 || st.Dropped != 0 {
		t.Fatalf("got %+v, want no slow client and nothing dropped", st)
	}
}

func TestSlowClientDrop(t *testing.T) {
	b, _ := newBroker(t, Config{SlowClient: SlowClientDrop})
	f := newFake(t, 2, "")
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		publish(t, b, "a", "x")
	}
	if got := ids(f.drain()); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("got IDs %q", got)
	}
	publish(t, b, "a", "x")
	if got := ids(f.drain()); !slices.Equal(got, []string{"5"}) {
		t.Fatalf("got IDs %q", got)
	}
	st := b.Stats()
	if f.ctx.Err() != nil || st.Dropped != 2 || st.SlowClients != 0 || st.Subscribers != 1 {
		t.Fatalf("got %+v, stream error %v", st, f.ctx.Err())
	}
}

func TestClientGoneIsNotSlow(t *testing.T) {
	b, _ := newBroker(t, Config{})
	f := newFake(t, 1, "")
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "a", "x") // the buffer is full
	// The client leaves and, before its AfterFunc runs, a Publish finds
	// its buffer full.
	b.mu.Lock()
	f.cancel(nil)
	b.full(b.subs[f.ch])
	b.mu.Unlock()
	if st := b.Stats(); st.SlowClients != 0 || st.Dropped != 0 || st.Subscribers != 0 {
		t.Fatalf("got %+v", st)
	}
}

func TestUnsubscribeWhenStreamEnds(t *testing.T) {
	b, _ := newBroker(t, Config{})
	f := newFake(t, 4, "")
	if err := f.subscribe(b, "a", "b"); err != nil {
		t.Fatal(err)
	}
	f.cancel(nil)
	eventually(t, "the subscription to end", func() bool {
		st := b.Stats()
		return st.Subscribers == 0 && len(st.Topics) == 0
	})
}

func TestSubscribeErrors(t *testing.T) {
	b, _ := newBroker(t, Config{})
	f := newFake(t, 4, "")
	for _, topics := range [][]string{nil, {""}, {"a", ""}} {
		if err := f.subscribe(b, topics...); err == nil {
			t.Errorf("topics %q: got nil, want an error", topics)
		}
	}
	if err := f.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	if err := f.subscribe(b, "b"); !errors.Is(err, ErrSubscribed) {
		t.Errorf("second Subscribe: got %v, want ErrSubscribed", err)
	}
	if err := b.Subscribe(nil, "a"); err == nil {
		t.Error("nil stream: got nil, want an error")
	}
	ended := newFake(t, 4, "")
	ended.cancel(nil)
	if err := ended.subscribe(b, "a"); err != nil {
		t.Errorf("ended stream: got %v, want nil", err)
	}
	if st := b.Stats(); st.Subscribers != 1 {
		t.Errorf("got %d subscribers, want 1", st.Subscribers)
	}
}

func TestClose(t *testing.T) {
	b, _ := newBroker(t, Config{})
	f1, f2 := newFake(t, 4, ""), newFake(t, 4, "")
	if err := f1.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	if err := f2.subscribe(b, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fakeStream{f1, f2} {
		if cause := context.Cause(f.ctx); !errors.Is(cause, ErrClosed) {
			t.Errorf("got cause %v, want ErrClosed", cause)
		}
	}
	if _, err := b.Publish(context.Background(), "a", event.Event{Data: "x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: got %v, want ErrClosed", err)
	}
	if err := newFake(t, 4, "").subscribe(b, "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: got %v, want ErrClosed", err)
	}
	if len(f1.ch)+len(f2.ch) != 0 {
		t.Error("the broker sent after Close")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: got %v", err)
	}
	if st := b.Stats(); st.Subscribers != 0 || len(st.Topics) != 0 {
		t.Errorf("got %+v", st)
	}
}

func TestCloseRacesPublishAndSubscribe(t *testing.T) {
	for range 20 {
		b, _ := newBroker(t, Config{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				if _, err := b.Publish(context.Background(), "a", event.Event{Data: "x"}); errors.Is(err, ErrClosed) {
					return
				}
				f := newFake(t, 4, "1")
				if err := f.subscribe(b, "a"); errors.Is(err, ErrClosed) {
					return
				}
			}
		}()
		time.Sleep(time.Millisecond)
		b.Close()
		<-done
	}
}

// TestUnsubscribeIsLinearInTheStreamsTopics counts the work of ending
// streams that share many topics: removing one must look at each of its
// own memberships a bounded number of times, not search those of the
// streams it shares a topic with.
func TestUnsubscribeIsLinearInTheStreamsTopics(t *testing.T) {
	b, _ := newBroker(t, Config{})
	const streams, topics = 10, 500
	names := make([]string, topics)
	for i := range names {
		names[i] = "t" + strconv.Itoa(i)
	}
	fs := make([]*fakeStream, streams)
	for i := range fs {
		fs[i] = newFake(t, 1, "")
		if err := fs[i].subscribe(b, names...); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range fs {
		f.cancel(nil)
	}
	eventually(t, "the streams to be unsubscribed", func() bool { return b.Stats().Subscribers == 0 })
	b.mu.Lock()
	steps := b.removeSteps
	b.mu.Unlock()
	if max := 2 * streams * topics; steps > max {
		t.Fatalf("unsubscribing %d streams of %d topics each took %d steps, want at most %d", streams, topics, steps, max)
	}
	publish(t, b, names[0], "after") // the broker still works
}

// TestClosedChannelEndsOnlyThatSubscription closes a subscribed stream's
// channel, which Subscribe forbids: the broker must not panic on the
// publisher's goroutine (or the janitor's), but end that subscription,
// abort the stream with ErrChannelClosed and tell the ErrorHandler, while
// the other subscribers receive every event.
func TestClosedChannelEndsOnlyThatSubscription(t *testing.T) {
	tests := []struct {
		name       string
		whenBuffer int
		whenBefore int // events published before the channel is closed
	}{
		{name: "live", whenBuffer: 64},
		{name: "overflowing", whenBuffer: 1, whenBefore: 3}, // one in the buffer, two waiting
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := make(chan error, 10)
			b, _ := newBroker(t, Config{ErrorHandler: func(err error) { errs <- err }})
			good := newFake(t, 64, "")
			bad := newFake(t, tt.whenBuffer, "")
			if err := good.subscribe(b, "a"); err != nil {
				t.Fatal(err)
			}
			if err := bad.subscribe(b, "a", "b"); err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := range tt.whenBefore {
				want = append(want, publish(t, b, "a", strconv.Itoa(i)))
			}
			// Under the broker's lock, so that the race detector sees the
			// close happen before the janitor's next send, not beside it
			// (a program that makes this mistake has a data race besides).
			b.mu.Lock()
			close(bad.ch)
			b.mu.Unlock()
			for i := range 10 {
				want = append(want, publish(t, b, "a", strconv.Itoa(i)))
			}
			if got := ids(good.drain()); !slices.Equal(got, want) {
				t.Fatalf("the other subscriber got %v, want %v", got, want)
			}
			select {
			case err := <-errs:
				if !errors.Is(err, ErrChannelClosed) || !strings.Contains(err.Error(), `"a" and 1 more topics`) {
					t.Fatalf("ErrorHandler got %v, want ErrChannelClosed naming the topics", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ErrorHandler was not told")
			}
			if cause := context.Cause(bad.ctx); !errors.Is(cause, ErrChannelClosed) {
				t.Fatalf("the stream ended with %v, want ErrChannelClosed", cause)
			}
			if st := b.Stats(); st.Subscribers != 1 || st.Topics["a"] != 1 || st.Topics["b"] != 0 {
				t.Fatalf("got %+v, want only the other subscriber left", st)
			}
		})
	}
}

// TestClosedChannelDuringReplay subscribes a reconnecting stream whose
// channel is closed: Subscribe's own sends must not panic either, and it
// says why the subscription ended.
func TestClosedChannelDuringReplay(t *testing.T) {
	b, _ := newBroker(t, Config{ErrorHandler: func(error) {}})
	first := publish(t, b, "a", "0")
	publish(t, b, "a", "1")
	bad := newFake(t, 4, first)
	close(bad.ch)
	if err := bad.subscribe(b, "a"); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("Subscribe: got %v, want ErrChannelClosed", err)
	}
	if st := b.Stats(); st.Subscribers != 0 {
		t.Fatalf("%d subscribers left", st.Subscribers)
	}
	publish(t, b, "a", "2")
}

// TestTrimByBytesKeepsReplayExact trims by bytes, per topic and in all: a
// client whose Last-Event-ID is the newest event dropped gets every event
// after it, one that is older gets ErrGap.
func TestTrimByBytesKeepsReplayExact(t *testing.T) {
	tests := []struct {
		name        string
		givenConfig Config
		whenTopics  []string // the topic of events 1..6
	}{
		{name: "per topic", givenConfig: Config{HistoryBytes: 3 * (messageSize + 2)}, whenTopics: []string{"a", "a", "a", "a", "a", "a"}},
		{name: "in all", givenConfig: Config{TotalHistoryBytes: 3 * (messageSize + 2)}, whenTopics: []string{"a", "b", "a", "b", "a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newBroker(t, tt.givenConfig)
			for _, topic := range tt.whenTopics {
				publish(t, b, topic, "x")
			}
			f := newFake(t, 16, "3")
			if err := f.subscribe(b, "a", "b"); err != nil {
				t.Fatalf("from 3: %v", err)
			}
			if got := ids(f.drain()); !slices.Equal(got, seqIDs(4, 6)) {
				t.Fatalf("from 3: got %v, want 4..6", got)
			}
			g := newFake(t, 16, "2")
			if err := g.subscribe(b, "a", "b"); !errors.Is(err, ErrGap) {
				t.Fatalf("from 2: got %v, want ErrGap", err)
			}
			m := b.backend.(*memory)
			if m.bytes != 3*(messageSize+2) {
				t.Fatalf("the history counts %d bytes, want %d", m.bytes, 3*(messageSize+2))
			}
		})
	}
}

// TestHistoryHoldsAboutItsPayload measures the heap the history holds for
// events of 64 KiB: about their payload, not twice (the data and its wire
// form), and not the caller's buffer, which it may reuse.
func TestHistoryHoldsAboutItsPayload(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 64<<10)
	const n = 50
	before := liveHeap()
	b, _ := newBroker(t, Config{HistoryBytes: -1})
	buf := make([]byte, len(payload))
	for range n {
		copy(buf, payload)
		if _, err := b.Publish(context.Background(), "big", event.Event{Data: buf}); err != nil {
			t.Fatal(err)
		}
	}
	held := float64(liveHeap()-before) / (n * float64(len(payload)))
	runtime.KeepAlive(b)
	if held > 1.5 {
		t.Fatalf("the history holds %.2fx its payload, want about 1x", held)
	}
	copy(buf, "changed")
	f := newFake(t, 2*n, "0")
	f.lastID = strconv.FormatUint(b.backend.(*memory).base+1, 10)
	if err := f.subscribe(b, "big"); err != nil {
		t.Fatal(err)
	}
	evs := f.drain()
	for _, ev := range evs {
		var w bytes.Buffer
		ev.WriteTo(&w)
		if !bytes.Contains(w.Bytes(), payload) {
			t.Fatal("a replayed event does not hold the data published")
		}
	}
	if len(evs) != n-1 {
		t.Fatalf("replayed %d events, want %d", len(evs), n-1)
	}
}

// TestCountersCostNothingPerTopic: Counters gives the counts Stats does,
// with TopicCount for the map, and allocates nothing however many topics
// have subscribers; Stats builds its map of them.
func TestCountersCostNothingPerTopic(t *testing.T) {
	b, _ := newBroker(t, Config{})
	for i := range 200 {
		f := newFake(t, 4, "")
		if err := f.subscribe(b, "user-"+strconv.Itoa(i), "all"); err != nil {
			t.Fatal(err)
		}
	}
	st, c := b.Stats(), b.Counters()
	if st.Subscribers != 200 || st.TopicCount != 201 || len(st.Topics) != 201 || st.Topics["all"] != 200 {
		t.Errorf("Stats: got Subscribers %d, TopicCount %d, %d topics, %d on all; want 200, 201, 201, 200", st.Subscribers, st.TopicCount, len(st.Topics), st.Topics["all"])
	}
	if c.Topics != nil || c.Subscribers != 200 || c.TopicCount != 201 {
		t.Errorf("Counters: got Topics %v, Subscribers %d, TopicCount %d; want nil, 200, 201", c.Topics, c.Subscribers, c.TopicCount)
	}
	if n := testing.AllocsPerRun(100, func() { b.Counters() }); n != 0 {
		t.Errorf("Counters allocates %v times, want 0", n)
	}
}

// lightStream is a fakeStream with the methods by which an *sse.Stream
// tells the broker of its end and asks for held-back events, at no cost
// of their own, so that what a subscription holds can be counted alone.
type lightStream struct {
	*fakeStream
	refill func()
}

func (l *lightStream) AfterFunc(f func()) func() bool { return stopNothing }
func (l *lightStream) SetRefill(f func())             { l.refill = f }

func stopNothing() bool { return false }

// TestSubscriptionHeap: a stream subscribed to one topic costs the broker
// at most subHeap bytes of heap: its sub (112 bytes), its membership
// (16), its place in the topic's array (24, with the room it grows into),
// its entry in the broker's map (36) and the refill function the stream
// keeps (24); 216 in all when last measured.
func TestSubscriptionHeap(t *testing.T) {
	const (
		n       = 1000
		subHeap = 224
	)
	heap := func() uint64 {
		var m runtime.MemStats
		// Two collections: what a sync.Pool dropped survives the
		// first as its victim.
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// measure subscribes n streams to a broker of their own and returns
	// the heap each one added. What the runtime allocates beside them
	// only ever adds, so the least of three runs is kept.
	measure := func() float64 {
		b, _ := newBroker(t, Config{})
		streams := make([]*lightStream, n+1)
		for i := range streams {
			streams[i] = &lightStream{fakeStream: newFake(t, 1, "")}
		}
		if err := b.subscribe(streams[0].ch, streams[0], []string{"t"}); err != nil {
			t.Fatal(err)
		}
		before := heap()
		for _, s := range streams[1:] {
			if err := b.subscribe(s.ch, s, []string{"t"}); err != nil {
				t.Fatal(err)
			}
		}
		per := float64(int64(heap())-int64(before)) / n
		runtime.KeepAlive(streams)
		runtime.KeepAlive(b)
		return per
	}
	per := measure()
	for range 2 {
		per = min(per, measure())
	}
	t.Logf("%.0f bytes of heap per subscription", per)
	if per > subHeap {
		t.Errorf("a subscription holds %.0f bytes of heap, want at most %d", per, subHeap)
	}
}
