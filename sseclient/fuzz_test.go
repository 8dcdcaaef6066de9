package sseclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sseclient"
)

// Any response body, served over TCP in small flushed pieces, gives the
// client exactly the events event.Decoder finds in it: no panic, and no
// event whose empty line never came.
func FuzzClient(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "decode", "*.txt"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"data: whole\n\ndata: partial",
		"data: whole\n\ndata: partial\n",
		"data: a\r\n\r\ndata: b\r",
		"id: 1\ndata: a\n\nid: 2\ndata: b",
		"retry: 99999999\ndata: a\n\n",
		"\xef\xbb\xbfdata: \xff\xfe\n\n",
		":only a comment",
		"",
	} {
		f.Add([]byte(s))
	}
	var mu sync.Mutex
	var body []byte
	srv, hc := newServer(f, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		b := body
		mu.Unlock()
		streamHead(w)
		for len(b) > 0 {
			n := min(len(b), 7)
			w.Write(b[:n])
			http.NewResponseController(w).Flush()
			b = b[n:]
		}
	}))
	f.Fuzz(func(t *testing.T, b []byte) {
		mu.Lock()
		body = b
		mu.Unlock()

		want := []got{}
		d := event.NewDecoder(bytes.NewReader(b))
		for {
			ev, err := d.Decode()
			if err != nil {
				break
			}
			want = append(want, gotFrom(t, ev))
		}

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var reason error
		c := &sseclient.Client{HTTPClient: hc, OnRetry: func(r error, _ time.Duration) {
			reason = r
			cancel() // one connection is enough
		}}
		evs := []got{}
		var err error
		for ev, e := range c.Events(ctx, get(t, srv.URL)) {
			if err = e; e != nil {
				break
			}
			evs = append(evs, gotFrom(t, ev))
		}
		if !errors.Is(err, context.Canceled) || !errors.Is(reason, sseclient.ErrStreamEnded) {
			t.Fatalf("got %v after %v, want context.Canceled after ErrStreamEnded", err, reason)
		}
		if fmt.Sprintf("%q", evs) != fmt.Sprintf("%q", want) {
			t.Fatalf("body %q:\ngot  %q\nwant %q", b, evs, want)
		}
	})
}
