package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/echosse/echo-sse/sseclient"
)

// TestClientAgainstPeers: the module's client, sseclient, reads the
// streams of servers this module did not write (r3labs/sse, go-sse, the
// cookbook's hand-written loop, raw net/http), plain and behind gzip:
// every payload arrives, in order, and the broadcast endpoint delivers a
// published event.
func TestClientAgainstPeers(t *testing.T) {
	for _, name := range []string{"r3labs", "gosse", "echo-cookbook", "raw"} {
		for _, gz := range []bool{false, true} {
			t.Run(variant{Server: name, Gzip: gz}.String(), func(t *testing.T) {
				h, s, err := buildServer(serverConfig{Name: name, Gzip: gz})
				if err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(h)
				tr := &http.Transport{}
				defer func() {
					tr.CloseIdleConnections()
					srv.CloseClientConnections()
					srv.Close()
					stopPeer(s) // in a benchmark its child process ends instead
				}()
				c := &sseclient.Client{HTTPClient: &http.Client{Transport: tr}, Retry: 10 * time.Millisecond}
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()

				const n = 300
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/stream?stream=events&mode=flush&n=300", nil)
				next := 0
				for ev, err := range c.Events(ctx, req) {
					if err != nil {
						t.Fatalf("after %d events: %v", next, err)
					}
					seq, _, ok := parsePayload([]byte(ev.Data.(string)))
					if !ok || seq != next%ringSize { // the servers send a ring of payloads
						t.Fatalf("event %d: seq %d (parsed %v) in %q", next, seq, ok, ev.Data)
					}
					if next++; next == n {
						break
					}
				}

				req, _ = http.NewRequest(http.MethodGet, srv.URL+"/events?stream=events", nil)
				// Published until it arrives: the subscriber count may
				// still hold the /stream client a moment after it left.
				got := make(chan struct{})
				defer close(got)
				go func() {
					t := time.NewTicker(20 * time.Millisecond)
					defer t.Stop()
					for {
						if s.subscribers() > 0 {
							s.publish(makePayload(7, time.Now().UnixNano()))
						}
						select {
						case <-t.C:
						case <-got:
							return
						}
					}
				}()
				for ev, err := range c.Events(ctx, req) {
					if err != nil {
						t.Fatalf("broadcast: %v", err)
					}
					if seq, _, ok := parsePayload([]byte(ev.Data.(string))); !ok || seq != 7 {
						t.Fatalf("broadcast: got %q", ev.Data)
					}
					break
				}
			})
		}
	}
}

// stopPeer stops the goroutines a peer's server keeps.
func stopPeer(s server) {
	switch s := s.(type) {
	case *r3labsServer:
		s.srv.Close()
	case *goSSEServer:
		_ = s.srv.Shutdown(context.Background())
	}
}
