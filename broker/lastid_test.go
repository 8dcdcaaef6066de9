package broker

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// TestUnusableLastEventIDIsAGap reconnects with Last-Event-IDs that no
// event can carry (event.CheckID refuses them): each stream still opens
// with 200, which a browser needs to go on, and the broker answers it as a
// gap, so that the handler sends a refresh.
func TestUnusableLastEventIDIsAGap(t *testing.T) {
	b, _ := newBroker(t, Config{})
	publish(t, b, "a", "before")
	env := newHTTP(t, b, echosse.Config{})
	addr := strings.TrimPrefix(env.srv.URL, "http://")
	for _, tt := range []struct {
		name   string
		header string // the Last-Event-ID header's raw value, or
		query  string // the lastEventID query parameter's
	}{
		{"longer than MaxIDLength", strings.Repeat("9", event.MaxIDLength+1), ""},
		{"far longer", strings.Repeat("9", 100_000), ""},
		{"not UTF-8", "\xff\xfe", ""},
		{"a control character, in the query", "", "12\x013"},
		{"spaces at the ends, in the query", "", " 12 "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := "GET /events?topic=a&lastEventID=" + url.QueryEscape(tt.query) + " HTTP/1.1\r\nHost: x\r\n"
			if tt.header != "" {
				req += "Last-Event-ID: " + tt.header + "\r\n"
			}
			if _, err := fmt.Fprint(conn, req+"\r\n"); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			// The stream stays open: closing conn ends it (a Body.Close
			// would wait for its end).
			if res.StatusCode != http.StatusOK {
				t.Fatalf("got %s, want 200: a browser gives up on anything else", res.Status)
			}
			ev, err := event.NewDecoder(res.Body).Decode()
			if err != nil || ev.Type != "gap" {
				t.Fatalf("got %+v %v, want the handler's gap event", ev, err)
			}
		})
	}
}
