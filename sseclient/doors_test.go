package sseclient_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/doortest"
	"github.com/echosse/echo-sse/sse"
	"github.com/echosse/echo-sse/sseclient"
)

// doorHandlers returns, for each front door, a server whose streams are
// subscribed to topic "t" of b; a stream the history cannot resume gets a
// "gap" event.
func doorHandlers(t *testing.T, b *broker.Broker) map[string]http.Handler {
	return doortest.Servers(t, func(s *sse.Stream) error {
		if err := b.Subscribe(s, "t"); errors.Is(err, broker.ErrGap) {
			return s.Send(event.Event{Type: "gap", Data: ""})
		} else if err != nil {
			return err
		}
		return nil
	})
}

// TestEveryDoorExactlyOnce: the client reads a broker-backed stream of
// each front door through a proxy that cuts the connection at random
// points, while events are published; the broker replays from the
// Last-Event-ID the client sends back, and the client gets every event
// exactly once, in order, across at least 20 reconnects.
func TestEveryDoorExactlyOnce(t *testing.T) {
	for _, name := range doortest.DoorNames {
		t.Run(name, func(t *testing.T) {
			b, err := broker.New(broker.Config{})
			if err != nil {
				t.Fatal(err)
			}
			srv, _ := newServer(t, doorHandlers(t, b)[name])
			t.Cleanup(func() { b.Close() }) // before the server closes: it ends every stream
			var mu sync.Mutex
			rnd := rand.New(rand.NewPCG(2, 7))
			p := newProxy(t, srv.Listener.Addr().String(), func(int) (int, bool) {
				mu.Lock()
				defer mu.Unlock()
				return 150 + rnd.IntN(600), false
			})
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			c := &sseclient.Client{HTTPClient: &http.Client{Transport: tr}, Retry: time.Millisecond}

			const n = 300
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			// The publisher starts once the client's first stream is
			// subscribed, so that the first event is live, not history.
			published := make(chan []string, 1)
			go func() {
				for b.Stats().Subscribers == 0 && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				var ids []string
				for i := range n {
					id, err := b.Publish(ctx, "t", event.Event{Data: fmt.Sprint(name, " ", i)})
					if err != nil {
						break
					}
					ids = append(ids, id)
					time.Sleep(200 * time.Microsecond)
				}
				published <- ids
			}()
			var evs []got
			for ev, err := range c.Events(ctx, get(t, p.URL()+"/events")) {
				if err != nil {
					t.Fatalf("after %d events: %v", len(evs), err)
				}
				evs = append(evs, gotFrom(t, ev))
				if len(evs) == n {
					break
				}
			}
			cancel()
			ids := <-published
			if len(ids) != n {
				t.Fatalf("published %d events, want %d", len(ids), n)
			}
			for i, ev := range evs {
				if want := (got{"message", fmt.Sprint(name, " ", i), ids[i]}); ev != want {
					t.Fatalf("event %d: got %q, want %q", i, ev, want)
				}
			}
			if p.conns.Load() < 20 {
				t.Errorf("%d connections, want at least 20 reconnects", p.conns.Load())
			}
			t.Logf("%s: %d events exactly once over %d connections", name, n, p.conns.Load())
		})
	}
}
