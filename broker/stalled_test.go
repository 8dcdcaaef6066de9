package broker

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

var stalledClients = flag.Int("stalled.clients", 100, "clients that stop reading in TestStalledClientsShareLargeEvents")

// TestStalledClientsShareLargeEvents publishes 1 MiB events to many
// streams whose clients stop reading, and one whose client reads: while
// the stalled streams wait to write, they hold no copy of their own of an
// event (the broker prepared it once, and the pump writes it from there),
// so the heap grows by far less than an event per stalled stream; the
// reading client gets every event.
func TestStalledClientsShareLargeEvents(t *testing.T) {
	const (
		events = 6
		size   = 1 << 20
	)
	n := *stalledClients
	b, _ := newBroker(t, Config{})
	env := newHTTP(t, b, echosse.Config{WriteTimeout: time.Minute})
	addr := strings.TrimPrefix(env.srv.URL, "http://")

	var stalled []net.Conn
	defer func() {
		for _, c := range stalled {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetReadBuffer(4 << 10) // and never read
		stalled = append(stalled, c)
		fmt.Fprint(c, "GET /events?topic=big HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	healthy, err := env.dial(t.Context(), "", []string{"big"})
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.close()
	eventually(t, "every stream subscribed", func() bool { return b.Stats().Subscribers == n+1 })

	before := liveHeap()
	data := strings.Repeat("x", size)
	start := time.Now()
	var slowest time.Duration
	for i := range events {
		sent := time.Now()
		if _, err := b.Publish(context.Background(), "big", event.Event{Data: data}); err != nil {
			t.Fatal(err)
		}
		ev, err := healthy.dec.Decode()
		if got, _ := ev.Data.(string); err != nil || len(got) != size {
			t.Fatalf("event %d: got %d bytes, %v", i, len(got), err)
		}
		slowest = max(slowest, time.Since(sent))
	}
	time.Sleep(500 * time.Millisecond) // every stalled pump reaches its blocked write
	after := liveHeap()
	perStream := float64(after-before) / float64(n)
	t.Logf("%d stalled streams, %d events of %d KiB: live heap %d -> %d MiB (%.0f KiB per stalled stream; the history holds %d MiB); the reading client's slowest event took %v, all %v",
		n, events, size>>10, before>>20, after>>20, perStream/1024, events*size>>20, slowest.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if history := float64(events * size); float64(after-before) > history+float64(n*64<<10) {
		t.Errorf("heap grew by %d MiB for %d stalled streams: more than the history (%d MiB) and 64 KiB per stream", (after-before)>>20, n, events*size>>20)
	}
}
