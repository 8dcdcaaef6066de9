package natsbroker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/natsbroker"
	"github.com/echosse/echo-sse/event"
)

// Every Watch and Unwatch replaces the live consumer: the one replaced is
// deleted from the server, which would otherwise keep it (filtered on
// every subject watched then) long after.
func TestReplacedConsumersDeleted(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, "nats://"+srv.Addr)
	b := newBackend(t, nc, natsbroker.Config{Stream: "REPLACED", Subject: "replaced"})
	if _, err := b.Start(func(broker.Message) {}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 10 {
		if _, err := b.Watch(ctx, []string{fmt.Sprint("a", i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Watch(ctx, []string{fmt.Sprint("b", i)}); err != nil {
			t.Fatal(err)
		}
		b.Unwatch([]string{fmt.Sprint("b", i)})
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "REPLACED")
	if err != nil {
		t.Fatal(err)
	}
	var consumers int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if consumers = info.State.Consumers; consumers == 1 {
			return
		}
	}
	t.Errorf("after 30 consumer replacements the server holds %d consumers, want 1 (the live one)", consumers)
}

// With more topics watched than MaxFilterSubjects, the live consumer takes
// every topic and the backend drops those not watched; a Watch then
// replaces no consumer; with half as many watched or fewer, it filters
// again.
func TestUnfiltered(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, "nats://"+srv.Addr)
	b := newBackend(t, nc, natsbroker.Config{Stream: "UNFILTERED", Subject: "unfiltered", MaxFilterSubjects: 2})
	got := make(chan broker.Message, 100)
	if _, err := b.Start(func(m broker.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	watch := func(topic string) {
		t.Helper()
		if _, err := b.Watch(ctx, []string{topic}); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(topics ...string) {
		t.Helper()
		for _, topic := range topics {
			if _, err := b.Publish(ctx, topic, event.Event{Data: topic}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// expect waits for the messages of topics, in order, and then for a
	// moment for anything else.
	expect := func(topics ...string) {
		t.Helper()
		for _, want := range topics {
			select {
			case m := <-got:
				if m.Topic != want {
					t.Fatalf("delivered a message of topic %q, want %q", m.Topic, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no message of topic %q delivered in 5 s", want)
			}
		}
		select {
		case m := <-got:
			t.Fatalf("delivered a message of topic %q, want none", m.Topic)
		case <-time.After(200 * time.Millisecond):
		}
	}

	watch("a")
	watch("b")
	publish("a", "x", "b")
	expect("a", "b")
	if s := b.Stats(); s.Unfiltered || s.Dropped != 0 {
		t.Fatalf("two topics watched of at most 2: %+v, want filtered and nothing dropped", s)
	}
	watch("c")
	publish("a", "x", "c", "y")
	expect("a", "c")
	if s := b.Stats(); !s.Unfiltered || s.Dropped != 2 {
		t.Fatalf("three topics watched of at most 2: %+v, want unfiltered and 2 dropped", s)
	}
	watch("d") // the consumer goes on; d's messages come from now on
	publish("x", "d")
	expect("d")
	b.Unwatch([]string{"a", "b"}) // c and d: still more than half of 2
	publish("a", "c")
	expect("c")
	if s := b.Stats(); !s.Unfiltered || s.Dropped != 4 {
		t.Fatalf("two topics watched after three: %+v, want unfiltered still and 4 dropped", s)
	}
	b.Unwatch([]string{"c"})
	publish("c", "x", "d")
	expect("d")
	if s := b.Stats(); s.Unfiltered || s.Dropped != 4 {
		t.Fatalf("one topic watched: %+v, want filtered again, 4 dropped", s)
	}
}
