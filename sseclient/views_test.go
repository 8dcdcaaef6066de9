package sseclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sseclient"
)

// Over TCP, Views allocates nothing per event and Events two (the Data
// string and the interface holding it), while the events fit the buffer
// and their ID and type repeat; the events arrive whole and in order.
func TestViewsAllocs(t *testing.T) {
	const n = 5000
	var stream []byte
	for i := range n {
		var err error
		stream, err = event.Event{Type: "quote", Data: fmt.Sprintf(`{"seq":%06d,"symbol":"ECHO","price":17.25,"volume":1000,"exchange":"XSSE","pad":"xxxxxxxxxxxxxxxx"}`, i)}.AppendTo(stream)
		if err != nil {
			t.Fatal(err)
		}
	}
	var served atomic.Int32
	srv, hc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1)%2 == 0 { // each client's reconnection
			w.WriteHeader(http.StatusNoContent)
			return
		}
		streamHead(w)
		w.Write(stream)
	}))
	for _, tt := range []struct {
		name string
		max  float64
		read func(context.Context, *sseclient.Client, *http.Request, func(i, seq int)) error
	}{
		{"Views", 0.05, func(ctx context.Context, c *sseclient.Client, req *http.Request, f func(int, int)) error {
			i := 0
			for v, err := range c.Views(ctx, req) {
				if err != nil {
					return err
				}
				f(i, seqOf(v.Data))
				i++
			}
			return nil
		}},
		{"Events", 2.05, func(ctx context.Context, c *sseclient.Client, req *http.Request, f func(int, int)) error {
			i := 0
			for ev, err := range c.Events(ctx, req) {
				if err != nil {
					return err
				}
				f(i, seqOf(ev.Data.(string)))
				i++
			}
			return nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := &sseclient.Client{HTTPClient: hc, Retry: time.Millisecond}
			var before, after runtime.MemStats
			var bad error
			err := tt.read(ctx, c, get(t, srv.URL), func(i, seq int) {
				if seq != i && bad == nil {
					bad = fmt.Errorf("event %d: got seq %d", i, seq)
				}
				switch i {
				case 100: // the connection and buffers are made
					runtime.ReadMemStats(&before)
				case n - 1:
					runtime.ReadMemStats(&after)
				}
			})
			if !errors.Is(err, sseclient.ErrNoContent) {
				t.Fatalf("got error %v, want ErrNoContent after the stream", err)
			}
			if bad != nil {
				t.Fatal(bad)
			}
			per := float64(after.Mallocs-before.Mallocs) / float64(n-1-100)
			if per > tt.max {
				t.Errorf("got %.3f allocations per event, want at most %.2f", per, tt.max)
			}
		})
	}
}

// seqOf returns the number in `{"seq":NNNNNN`, or -1, allocating nothing.
func seqOf[T string | []byte](data T) int {
	const prefix = `{"seq":`
	if len(data) < len(prefix)+6 || string(data[:len(prefix)]) != prefix {
		return -1
	}
	n := 0
	for _, c := range []byte(data[len(prefix) : len(prefix)+6]) {
		n = n*10 + int(c-'0')
	}
	return n
}
