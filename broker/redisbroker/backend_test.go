package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

// startBackend starts a backend on the shared Redis (under prefix) whose
// deliveries go to the returned channel, as a broker's would.
func startBackend(t testing.TB, client *redis.Client, cfg Config) (*Backend, <-chan broker.Message, *errorLog) {
	t.Helper()
	errs := &errorLog{}
	cfg.ErrorHandler = errs.handle
	b, err := New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan broker.Message, 10000)
	if _, err := b.Start(func(m broker.Message) { ch <- m }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, ch, errs
}

// receive returns the next n messages delivered on ch.
func receive(t *testing.T, ch <-chan broker.Message, n int) []broker.Message {
	t.Helper()
	var out []broker.Message
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case m := <-ch:
			out = append(out, m)
		case <-timeout:
			t.Fatalf("received %d messages of %d", len(out), n)
		}
	}
	return out
}

func pub(t testing.TB, b *Backend, topic string, ev event.Event) broker.Message {
	t.Helper()
	m, err := b.Publish(context.Background(), topic, ev)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func msgIDs(msgs []broker.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Event.ID
	}
	return out
}

func TestEntryID(t *testing.T) {
	for _, seq := range []uint64{0, 1, 999, 1000, 1001, 1718000000123456, 1<<53 - 1, 1<<64 - 1} {
		got, err := parseEntryID(entryID(seq))
		if err != nil || got != seq {
			t.Errorf("%d -> %q -> %d, %v", seq, entryID(seq), got, err)
		}
	}
	if got := entryID(1718000000123456); got != "1718000000123-456" {
		t.Errorf("got %q, want 1718000000123-456", got)
	}
	for _, bad := range []string{"", "1", "1-1000", "a-1", "1-b", "18446744073709552-0"} {
		if _, err := parseEntryID(bad); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name        string
		givenConfig Config
		wantErr     string
	}{
		{"zero", Config{}, ""},
		{"brace in prefix", Config{Prefix: "a{b"}, "Prefix"},
		{"negative history", Config{HistorySize: -1}, "HistorySize"},
		{"negative log", Config{LogSize: -1}, "LogSize"},
		{"negative backoff", Config{MinBackoff: -time.Second}, "MinBackoff"},
		{"min above max", Config{MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "exceed"},
		{"age under a millisecond", Config{HistoryAge: time.Microsecond}, "HistoryAge"},
		{"age of 56 years", Config{HistoryAge: 56 * 365 * 24 * time.Hour}, "HistoryAge must be at most 10 years"},
		{"largest age", Config{HistoryAge: math.MaxInt64}, "HistoryAge must be at most 10 years"},
		{"backoff of a year", Config{MaxBackoff: 365 * 24 * time.Hour}, "MaxBackoff must be at most an hour"},
		{"negative publish timeout", Config{PublishTimeout: -time.Second}, "PublishTimeout"},
		{"publish timeout of a millisecond", Config{PublishTimeout: time.Millisecond}, "PublishTimeout"},
		{"publish timeout of a day", Config{PublishTimeout: 24 * time.Hour}, "PublishTimeout"},
		{"unknown delivery", Config{Delivery: 7}, "Delivery"},
		{"interest", Config{Delivery: DeliverInterest}, ""},
	}
	client := redis.NewClient(&redis.Options{Addr: shared.Addr})
	defer client.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(client, tt.givenConfig)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if b.cfg.Prefix != "echosse" || b.cfg.HistorySize != 1000 || b.cfg.HistoryAge != time.Hour ||
					b.cfg.HistoryBytes != 4<<20 || b.cfg.LogSize != 10000 || b.cfg.MaxBackoff != 2*time.Second || b.cfg.ErrorHandler == nil ||
					b.cfg.PublishTimeout != 10*time.Second || b.interest != (tt.givenConfig.Delivery == DeliverInterest) {
					t.Fatalf("defaults not filled: %+v", b.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "redisbroker: ") {
				t.Fatalf("got %v, want an error about %s", err, tt.wantErr)
			}
		})
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Fatal("New(nil): got no error")
	}
}

func TestPublishDeliversToEveryInstanceWithTheSameIDs(t *testing.T) {
	inEachMode(t, testPublishDeliversToEveryInstanceWithTheSameIDs)
}

func testPublishDeliversToEveryInstanceWithTheSameIDs(t *testing.T, mode Delivery) {
	client := newClient(t, shared.Addr)
	cfg := Config{Delivery: mode, Prefix: testPrefix(t)}
	a, fromA, _ := startBackend(t, client, cfg)
	b, fromB, _ := startBackend(t, newClient(t, shared.Addr), cfg) // another process, say
	// What the broker does: a no-op with DeliverAll.
	for _, be := range []*Backend{a, b} {
		if _, err := be.Watch(context.Background(), []string{"x", "y", "z"}); err != nil {
			t.Fatal(err)
		}
	}

	var published []string
	for i, topic := range []string{"x", "y", "x", "z"} {
		by := []*Backend{a, b}[i%2]
		m := pub(t, by, topic, event.Event{Type: "t", Data: strconv.Itoa(i)})
		if m.Topic != topic || m.Event.ID != strconv.FormatUint(m.Seq, 10) || time.Since(m.Time).Abs() > time.Minute {
			t.Fatalf("published %+v", m)
		}
		published = append(published, m.Event.ID)
	}
	for i := 1; i < len(published); i++ {
		prev, _ := strconv.ParseUint(published[i-1], 10, 64)
		if id, _ := strconv.ParseUint(published[i], 10, 64); id <= prev {
			t.Fatalf("IDs %q do not grow", published)
		}
	}
	for name, ch := range map[string]<-chan broker.Message{"a": fromA, "b": fromB} {
		got := receive(t, ch, 4)
		if !slices.Equal(msgIDs(got), published) {
			t.Fatalf("%s delivered %q, want %q", name, msgIDs(got), published)
		}
		if got[1].Topic != "y" || got[1].Event.Type != "t" || got[1].Event.Data != "1" {
			t.Fatalf("%s delivered %+v", name, got[1])
		}
		wire, err := got[1].Event.AppendTo(nil)
		if want := "event: t\nid: " + published[1] + "\ndata: 1\n\n"; err != nil || !sameEvent(t, string(wire), want) {
			t.Fatalf("%s delivered %q, want %q", name, wire, want)
		}
	}
}

func TestEventFieldsSurviveTheTrip(t *testing.T) {
	client := newClient(t, shared.Addr)
	b, ch, _ := startBackend(t, client, Config{Prefix: testPrefix(t)})
	evs := []event.Event{
		{Data: "plain"},
		{Type: "json", Data: map[string]int{"n": 1}},
		{Data: []byte("bytes\nand lines")},
		{Data: ""},
		{Type: "nodata"},
		{ID: "row-17", Data: "mine", Retry: 1500 * time.Millisecond, Comment: "note"},
	}
	for _, ev := range evs {
		pub(t, b, "a", ev)
	}
	got := receive(t, ch, len(evs))
	want := []string{
		"id: %s\ndata: plain\n\n",
		"event: json\nid: %s\ndata: {\"n\":1}\n\n",
		"id: %s\ndata: bytes\ndata: and lines\n\n",
		"id: %s\ndata\n\n",
		"event: nodata\nid: %s\ndata\n\n",
		": note\nid: row-17\nretry: 1500\ndata: mine\n\n",
	}
	for i, m := range got {
		wire, err := m.Event.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		w := want[i]
		if strings.Contains(w, "%s") {
			w = fmt.Sprintf(w, strconv.FormatUint(m.Seq, 10))
		}
		if !sameEvent(t, string(wire), w) {
			t.Errorf("event %d: got %q, want %q", i, wire, w)
		}
	}
}

// sameEvent reports whether two encoded events decode to the same event.
func sameEvent(t *testing.T, a, b string) bool {
	t.Helper()
	ea, err1 := event.NewDecoder(strings.NewReader(a)).Decode()
	eb, err2 := event.NewDecoder(strings.NewReader(b)).Decode()
	if err1 != nil || err2 != nil {
		t.Fatalf("decoding %q, %q: %v, %v", a, b, err1, err2)
	}
	return ea == eb
}

func TestPublishRejectsInvalidEvents(t *testing.T) {
	client := newClient(t, shared.Addr)
	b, _, _ := startBackend(t, client, Config{Prefix: testPrefix(t)})
	for _, ev := range []event.Event{
		{ID: "a\nb", Data: "x"},
		{Type: "a\rb", Data: "x"},
		{Data: "\xff"},
		{Data: func() {}},
		{ID: strings.Repeat("x", maxIDLen+1), Data: "x"},
	} {
		_, err := b.Publish(context.Background(), "a", ev)
		var fe *event.FieldError
		if err == nil || (!errors.As(err, &fe) && !strings.Contains(err.Error(), "longer")) {
			t.Errorf("%+v: got %v, want a *event.FieldError", ev, err)
		}
	}
	if n, _ := client.Exists(context.Background(), b.keys.seq, b.keys.log).Result(); n != 0 {
		t.Fatalf("an invalid event was stored")
	}
}

func TestReplay(t *testing.T) {
	client := newClient(t, shared.Addr)
	b, ch, _ := startBackend(t, client, Config{Prefix: testPrefix(t), HistorySize: 3})
	ctx := context.Background()
	var ids []string
	for _, topic := range []string{"a", "b", "a", "b", "c", "c", "c", "c"} {
		ids = append(ids, pub(t, b, topic, event.Event{Data: topic}).Event.ID)
	}
	custom := pub(t, b, "a", event.Event{ID: "row-17", Data: "custom"})
	ids = append(ids, custom.Event.ID)
	last := pub(t, b, "a", event.Event{Data: "after custom"})
	ids = append(ids, last.Event.ID)
	upTo := receive(t, ch, len(ids))[len(ids)-1].Seq

	tests := []struct {
		name    string
		topics  []string
		lastID  string
		upTo    uint64
		want    []string // IDs
		wantGap string   // a substring of the error
	}{
		{"merged by Seq", []string{"a", "b"}, ids[0], upTo, []string{ids[1], ids[2], ids[3], "row-17", ids[9]}, ""},
		{"up to", []string{"a", "b"}, ids[0], custom.Seq, []string{ids[1], ids[2], ids[3], "row-17"}, ""},
		{"nothing new", []string{"a"}, ids[9], upTo, nil, ""},
		{"a caller-set ID", []string{"a"}, "row-17", upTo, []string{ids[9]}, ""},
		{"a topic never published", []string{"d"}, ids[0], upTo, nil, ""},
		{"trimmed by count", []string{"c"}, ids[3], upTo, nil, `topic "c"`},
		{"trimmed, but not after the ID", []string{"c"}, ids[4], upTo, []string{ids[5], ids[6], ids[7]}, ""},
		{"one of the topics trimmed", []string{"a", "c"}, ids[3], upTo, nil, `topic "c"`},
		{"malformed", []string{"a"}, "nope", upTo, nil, "unknown"},
		{"after upTo", []string{"a"}, strconv.FormatUint(upTo+1, 10), upTo, nil, "newer"},
		{"from before this history", []string{"a"}, "12345", upTo, nil, "older"},
		{"too long", []string{"a"}, strings.Repeat("1", maxIDLen+1), upTo, nil, "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.Replay(ctx, tt.topics, tt.lastID, tt.upTo)
			if tt.wantGap != "" {
				if !errors.Is(err, broker.ErrGap) || !strings.Contains(err.Error(), tt.wantGap) {
					t.Fatalf("got %v, want ErrGap about %s", err, tt.wantGap)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(msgIDs(got), tt.want) {
				t.Fatalf("got %q, want %q", msgIDs(got), tt.want)
			}
		})
	}
}

func TestTrimByAgeForgetsTopicsAndIDs(t *testing.T) {
	client := newClient(t, shared.Addr)
	ctx := context.Background()
	b, ch, _ := startBackend(t, client, Config{Prefix: testPrefix(t), HistoryAge: 300 * time.Millisecond})
	old := pub(t, b, "old", event.Event{ID: "x", Data: "1"})
	pub(t, b, "old", event.Event{Data: "2"})
	kept := pub(t, b, "kept", event.Event{Data: "3"})
	time.Sleep(400 * time.Millisecond)
	fresh := pub(t, b, "kept", event.Event{Data: "4"}) // trims "kept" by age as it goes
	upTo := receive(t, ch, 4)[3].Seq

	if n, _ := client.XLen(ctx, b.keys.topic+"kept").Result(); n != 1 {
		t.Fatalf("topic kept holds %d entries, want 1: Publish trims by age", n)
	}
	if _, err := b.Replay(ctx, []string{"kept"}, old.Event.ID, upTo); !errors.Is(err, broker.ErrGap) {
		t.Fatalf("got %v, want ErrGap: %s was trimmed by age", err, kept.Event.ID)
	}
	if err := b.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	// "old" was empty after trimming, so it is gone, and with it ID x; a
	// client that saw x is told of the gap.
	if n, _ := client.Exists(ctx, b.keys.topic+"old").Result(); n != 0 {
		t.Fatal("the empty topic is still there")
	}
	if n, _ := client.HLen(ctx, b.keys.topics).Result(); n != 1 {
		t.Fatalf("%d topics known, want 1", n)
	}
	if n, _ := client.ZCard(ctx, b.keys.ids).Result(); n != 0 {
		t.Fatalf("%d caller-set IDs kept, want 0", n)
	}
	for _, id := range []string{"x", old.Event.ID} {
		if _, err := b.Replay(ctx, []string{"old"}, id, upTo); !errors.Is(err, broker.ErrGap) {
			t.Fatalf("from %s: got %v, want ErrGap", id, err)
		}
	}
	// Publishing on it again does not hide that.
	pub(t, b, "old", event.Event{Data: "5"})
	upTo = receive(t, ch, 1)[0].Seq
	if _, err := b.Replay(ctx, []string{"old"}, old.Event.ID, upTo); !errors.Is(err, broker.ErrGap) {
		t.Fatalf("got %v, want ErrGap after the topic came back", err)
	}
	if got, err := b.Replay(ctx, []string{"kept"}, kept.Event.ID, upTo); err != nil || !slices.Equal(msgIDs(got), []string{fresh.Event.ID}) {
		t.Fatalf("got %v, %v; want %s", got, err, fresh.Event.ID)
	}
}

func TestRecent(t *testing.T) {
	client := newClient(t, shared.Addr)
	b, _, _ := startBackend(t, client, Config{Prefix: testPrefix(t)})
	ctx := context.Background()
	msgs, last, err := b.Recent(ctx, "chat", 2)
	if err != nil || len(msgs) != 0 || last != "" {
		t.Fatalf("empty: got %v, %q, %v", msgs, last, err)
	}
	var ids []string
	for i := range 3 {
		ids = append(ids, pub(t, b, "chat", event.Event{Data: strconv.Itoa(i)}).Event.ID)
	}
	other := pub(t, b, "presence", event.Event{Data: "x"})
	msgs, last, err = b.Recent(ctx, "chat", 2)
	if err != nil || !slices.Equal(msgIDs(msgs), ids[1:]) || last != other.Event.ID || msgs[1].Event.Data != "2" {
		t.Fatalf("got %v, %q, %v; want %q and %s", msgIDs(msgs), last, err, ids[1:], other.Event.ID)
	}
	if _, _, err := b.Recent(ctx, "chat", 0); err == nil {
		t.Fatal("n=0: got no error")
	}
}

func TestCloseStopsTheReader(t *testing.T) {
	client := newClient(t, shared.Addr)
	b, err := New(client, Config{Prefix: testPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil { // never started
		t.Fatal(err)
	}
	b, err = New(client, Config{Prefix: testPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Start(func(broker.Message) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Start(func(broker.Message) {}); err == nil {
		t.Fatal("second Start: got no error")
	}
	eventually(t, "the reader to block in XREAD", func() bool { return b.tailID.Load() != 0 })
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v: CLIENT UNBLOCK should wake the reader at once", d)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(context.Background(), "a", event.Event{Data: "x"}); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Publish after Close: got %v, want ErrClosed", err)
	}
	if err := b.Sync(context.Background()); err != nil && !errors.Is(err, broker.ErrClosed) {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Connected {
		t.Fatalf("stats after Close: %+v", st)
	}
	if _, err := New(client, Config{}); err != nil {
		t.Fatal(err)
	}
}

func TestStartFailsWithoutRedis(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer client.Close()
	b, err := New(client, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.New(broker.Config{Backend: b}); err == nil || !strings.Contains(err.Error(), "redisbroker") {
		t.Fatalf("got %v, want the backend's error", err)
	}
}

// TestPublishWithAnAgeBeforeTheEpoch runs the publish script with an age
// that New refuses (it goes back before 1970 from the server's clock): the
// script must not build a negative entry ID from it, which Redis rejects
// ("Invalid stream ID"), failing every Publish.
func TestPublishWithAnAgeBeforeTheEpoch(t *testing.T) {
	client := newClient(t, shared.Addr)
	b, ch, _ := startBackend(t, client, Config{Prefix: testPrefix(t)})
	b.cfg.HistoryAge = 100 * 365 * 24 * time.Hour // past New's check
	for i := range 2 {
		if _, err := b.Publish(context.Background(), "a", event.Event{Data: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if msgs := receive(t, ch, 2); msgs[1].Event.Data != "1" {
		t.Fatalf("got %+v", msgs)
	}
	if n, err := client.XLen(context.Background(), b.keys.topic+"a").Result(); err != nil || n != 2 {
		t.Fatalf("the history holds %d events (%v), want 2", n, err)
	}
}

// TestBackoffDoesNotOverflow doubles the wait up to the largest MaxBackoff
// a Backend could hold: it must stay positive and within the bound.
func TestBackoffDoesNotOverflow(t *testing.T) {
	for _, max := range []time.Duration{time.Hour, math.MaxInt64} {
		b := &Backend{cfg: Config{MinBackoff: time.Second, MaxBackoff: max}}
		for n := 1; n <= 100; n++ {
			if d := b.backoff(n); d <= 0 || d > max {
				t.Fatalf("MaxBackoff %v: backoff(%d) = %v", max, n, d)
			}
		}
	}
}

// A number between two Seqs that no message had is an unknown
// Last-Event-ID, as the broker's documentation says: Replay used to take
// it for a position and replay from wherever it fell. Numbers that a
// message had stay known after the log forgot them, through the topic
// that links to them.
func TestReplayFromANumberNeverAssignedIsAGap(t *testing.T) {
	client := newClient(t, shared.Addr)
	cfg := Config{Prefix: testPrefix(t)}
	b, ch, _ := startBackend(t, client, cfg)
	ctx := context.Background()
	first := pub(t, b, "a", event.Event{Data: "1"})
	time.Sleep(5 * time.Millisecond)
	second := pub(t, b, "a", event.Event{Data: "2"})
	third := pub(t, b, "a", event.Event{Data: "3"})
	upTo := receive(t, ch, 3)[2].Seq
	between := strconv.FormatUint((first.Seq+second.Seq)/2, 10)
	if _, err := b.Replay(ctx, []string{"a"}, between, upTo); !errors.Is(err, broker.ErrGap) || !strings.Contains(err.Error(), "no message had it") {
		t.Fatalf("replay from %s, between %d and %d: got %v, want ErrGap for an ID no message had", between, first.Seq, second.Seq, err)
	}
	if err := client.Del(ctx, newKeys(cfg.Prefix).log).Err(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		from string
		want []string
	}{{first.Event.ID, []string{second.Event.ID, third.Event.ID}}, {third.Event.ID, nil}} {
		got, err := b.Replay(ctx, []string{"a", "b"}, tt.from, upTo)
		if err != nil || !slices.Equal(msgIDs(got), tt.want) {
			t.Errorf("replay from %s without the log: got %q %v, want %q", tt.from, msgIDs(got), err, tt.want)
		}
	}
	if _, err := b.Replay(ctx, []string{"b"}, first.Event.ID, upTo); !errors.Is(err, broker.ErrGap) {
		t.Errorf("replay on b from a's message that the log forgot: got %v, want ErrGap (nothing links to it)", err)
	}
}
