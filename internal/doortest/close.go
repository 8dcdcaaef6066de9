package doortest

// This file tests the end a sender chooses: it closes the stream's channel,
// and the client receives the close event, with empty data so that a
// browser dispatches it, and then the end of the response.

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testCloseEvent: the events sent, then the close event ("close" by
// default, Config.CloseEvent's type when set) with an empty data line, then
// the end of the response; the stream's reason is ErrClosed.
func testCloseEvent(t *testing.T, d Door) {
	for _, tc := range []struct {
		name, closeEvent, wantType string
	}{
		{"default", "", "close"},
		{"custom", "bye", "bye"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			streams := make(chan *sse.Stream, 1)
			cfg := Config{Config: sse.Config{CloseEvent: tc.closeEvent}}
			r := serve(t, d, cfg, streamsTo(streams, sendThenClose(event.Event{Data: "a"}, event.Event{Data: "b"})))
			res := r.get(t, "/events")
			expectStream(t, res)
			var raw bytes.Buffer
			dec := event.NewDecoder(io.TeeReader(res.Body, &raw))
			expectEvent(t, dec, "message", "a")
			expectEvent(t, dec, "message", "b")
			expectEvent(t, dec, tc.wantType, "")
			expectEnd(t, dec)
			if want := "event: " + tc.wantType + "\ndata:\n\n"; !strings.HasSuffix(raw.String(), want) {
				t.Fatalf("got stream %q, want it to end with %q", raw.String(), want)
			}
			s := receive(t, streams, "the stream")
			expectReason(t, ended(t, s), sse.ErrClosed)
		})
	}
}
