package sseclient_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sseclient"
)

type fixture struct {
	Events []struct {
		Type    string `json:"type"`
		Data    string `json:"data"`
		ID      string `json:"id"`
		RetryMs int64  `json:"retryMs"`
	} `json:"events"`
	LastEventID string `json:"lastEventId"`
	RetryMs     int64  `json:"retryMs"`
}

// The event package's spec vectors, served over TCP whole and one byte per
// write (each flushed), read with Events and with Views: the client sees what the decoder sees, sends the
// last event ID back when it reconnects, and waits the retry the stream set.
func TestSpecVectors(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "decode", "*.txt"))
	if err != nil || len(paths) < 20 {
		t.Fatalf("found %d fixtures (%v), want at least 20", len(paths), err)
	}
	for _, path := range paths {
		stream, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(strings.TrimSuffix(path, ".txt") + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var f fixture
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		want := []got{}
		for _, e := range f.Events {
			want = append(want, got{e.Type, e.Data, e.ID})
		}
		for _, tc := range []struct{ bytewise, views bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
			bytewise := tc.bytewise
			name := strings.TrimSuffix(filepath.Base(path), ".txt") + fmt.Sprintf("/bytewise=%v/views=%v", bytewise, tc.views)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				var mu sync.Mutex
				var headers []http.Header
				srv, hc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					headers = append(headers, r.Header.Clone())
					n := len(headers)
					mu.Unlock()
					if n > 1 {
						w.WriteHeader(http.StatusNoContent)
						return
					}
					streamHead(w)
					if !bytewise {
						w.Write(stream)
						return
					}
					for i := range stream {
						w.Write(stream[i : i+1])
						http.NewResponseController(w).Flush()
					}
				}))
				var delays []time.Duration
				c := &sseclient.Client{HTTPClient: hc, Retry: 5 * time.Millisecond,
					OnRetry: func(_ error, d time.Duration) { delays = append(delays, d) }}
				collectf := collect
				if tc.views {
					collectf = collectViews
				}
				evs, err := collectf(t, c, get(t, srv.URL), 10*time.Second)
				if !errors.Is(err, sseclient.ErrNoContent) {
					t.Fatalf("got error %v, want ErrNoContent", err)
				}
				if evs == nil {
					evs = []got{}
				}
				if fmt.Sprintf("%q", evs) != fmt.Sprintf("%q", want) {
					t.Errorf("\ngot  %q\nwant %q", evs, want)
				}
				if len(headers) != 2 {
					t.Fatalf("got %d requests, want 2", len(headers))
				}
				if h := headers[0]; h.Get("Accept") != "text/event-stream" || h.Get("Cache-Control") != "no-store" || h.Values("Last-Event-ID") != nil {
					t.Errorf("first request: Accept %q, Cache-Control %q, Last-Event-ID %q", h.Get("Accept"), h.Get("Cache-Control"), h.Values("Last-Event-ID"))
				}
				if f.LastEventID == "" {
					if v := headers[1].Values("Last-Event-ID"); v != nil {
						t.Errorf("reconnect: got Last-Event-ID %q, want none", v)
					}
				} else if v, w := headers[1].Get("Last-Event-ID"), strings.Trim(f.LastEventID, " \t"); v != w {
					// HTTP drops spaces at a field value's ends.
					t.Errorf("reconnect: got Last-Event-ID %q, want %q", v, w)
				}
				// The delay is the decoder's retry at the end of the
				// stream, starting from the client's.
				d := event.NewDecoder(bytes.NewReader(stream))
				d.SetRetry(5 * time.Millisecond)
				for {
					if _, err := d.Decode(); err != nil {
						break
					}
				}
				wantDelay := d.Retry()
				if len(delays) != 1 || delays[0] != wantDelay {
					t.Errorf("got delays %v, want [%v]", delays, wantDelay)
				}
			})
		}
	}
}
