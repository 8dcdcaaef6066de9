package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/doortest"
	"github.com/echosse/echo-sse/sse"
)

// doorServers returns one server per front door, each of whose GET
// /events subscribes its stream to topic "t" of b; on ErrGap the handler
// sends a "gap" event.
func doorServers(t *testing.T, b *Broker) map[string]*httptest.Server {
	t.Helper()
	servers := map[string]*httptest.Server{}
	for name, h := range doortest.Servers(t, func(s *sse.Stream) error {
		if err := b.Subscribe(s, "t"); errors.Is(err, ErrGap) {
			return s.Send(event.Event{Type: "gap", Data: ""})
		} else if err != nil {
			return err
		}
		return nil
	}) {
		servers[name] = httptest.NewServer(h)
	}
	for _, srv := range servers {
		t.Cleanup(func() {
			b.Close() // ends every stream
			srv.CloseClientConnections()
			srv.Close()
		})
	}
	return servers
}

// TestStreamsOfEveryDoor: one broker, streams opened through every front
// door at once. Each gets every event, in order, once; a client that
// reconnects through another door than the one it left gets the events it
// missed, replayed by Last-Event-ID.
func TestStreamsOfEveryDoor(t *testing.T) {
	b, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	servers := doorServers(t, b)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range servers {
			if !yield(n) {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	open := func(name, lastID string) (*http.Response, *event.Decoder) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, servers[name].URL+"/events", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: got %s", name, res.Status)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res, event.NewDecoder(res.Body)
	}
	const streamsPerDoor = 3
	type client struct {
		door string
		res  *http.Response
		dec  *event.Decoder
	}
	var clients []client
	for _, n := range names {
		for range streamsPerDoor {
			res, dec := open(n, "")
			clients = append(clients, client{n, res, dec})
		}
	}
	eventually(t, "every stream subscribed", func() bool { return b.Stats().Subscribers == streamsPerDoor*len(names) })

	const events = 50
	var sent []string
	for i := range events {
		sent = append(sent, publish(t, b, "t", fmt.Sprint("e", i)))
	}
	for _, c := range clients {
		for i := range events {
			ev, err := c.dec.Decode()
			if err != nil {
				t.Fatalf("%s: event %d: %v", c.door, i, err)
			}
			if ev.ID != sent[i] || ev.Data != fmt.Sprint("e", i) {
				t.Fatalf("%s: event %d is %q %q, want %q %q", c.door, i, ev.ID, ev.Data, sent[i], fmt.Sprint("e", i))
			}
		}
	}

	// A client of each door leaves after event 9 and comes back through
	// the next door: the replay sends it events 10 to 49, then live ones.
	for i, n := range names {
		next := names[(i+1)%len(names)]
		_, dec := open(next, sent[9])
		for j := 10; j < events; j++ {
			ev, err := dec.Decode()
			if err != nil {
				t.Fatalf("%s after %s: replayed event %d: %v", next, n, j, err)
			}
			if ev.ID != sent[j] {
				t.Fatalf("%s after %s: replayed event has ID %q, want %q", next, n, ev.ID, sent[j])
			}
		}
	}
	eventually(t, "the reconnected streams subscribed", func() bool {
		return b.Stats().Subscribers == streamsPerDoor*len(names)+len(names)
	})
	live := publish(t, b, "t", "live")
	for _, c := range clients {
		if ev, err := c.dec.Decode(); err != nil || ev.ID != live {
			t.Fatalf("%s: live event %+v, %v; want ID %q", c.door, ev, err, live)
		}
	}
}
