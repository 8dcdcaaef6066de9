package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/echosse/echo-sse/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestExample: with ?sse the client gets the ticks in order, then the
// close event; without it, the ordinary page.
func TestExample(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()

	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if ct := res.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") || !strings.Contains(string(page), "?sse") {
		t.Fatalf("without ?sse got %q: %q", ct, page)
	}

	if testing.Short() {
		return // the stream takes five seconds
	}
	res, err = http.Get(srv.URL + "/events?sse")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	d := event.NewDecoder(res.Body)
	for i := range 5 {
		ev, err := d.Decode()
		if err != nil || ev.ID != string(rune('0'+i)) || ev.Data == "" {
			t.Fatalf("event %d: %+v, %v", i, ev, err)
		}
	}
	if ev, err := d.Decode(); err != nil || ev.Type != "close" {
		t.Fatalf("want the close event, got %+v, %v", ev, err)
	}
	if _, err := d.Decode(); err != io.EOF {
		t.Fatalf("after the close event: %v, want io.EOF", err)
	}
}
