package natsbroker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/natsbroker"
	"github.com/echosse/echo-sse/internal/natstest"
)

// Every Watch and Unwatch replaces the live consumer: the one replaced is
// deleted from the server, which would otherwise keep it (filtered on
// every subject watched then) long after.
func TestReplacedConsumersDeleted(t *testing.T) {
	srv, err := natstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	nc := connect(t, "nats://"+srv.Addr)
	b, err := natsbroker.New(nc, natsbroker.Config{Stream: "REPLACED", Subject: "replaced"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
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
