package doortest

// This file tests Config.Counters: a door hands it to the core, which
// counts the door's streams in it.

import (
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testCounters: a stream closed by its sender, one whose handler fails
// and one refused over MaxClients are counted in the Counters given to
// the door, with the events and bytes the client read.
func testCounters(t *testing.T, d Door) {
	counters := new(sse.Counters)
	streams := make(chan *sse.Stream, 3)
	errFailed := errors.New("doortest: failed")
	cfg := Config{Config: sse.Config{MaxClients: 1, Counters: counters}, OnError: logErrors(t)}
	r := serve(t, d, cfg, streamsTo(streams, func(s *sse.Stream, req *http.Request) error {
		switch {
		case req.URL.Query().Has("fail"):
			return errFailed
		case req.URL.Query().Has("hold"):
			return nil // until the test ends
		}
		return sendThenClose(event.Event{Data: "one"}, event.Event{Data: "two"})(s, req)
	}))

	res := r.get(t, "/events")
	expectStream(t, res)
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	ended(t, receive(t, streams, "the stream"))
	res = r.get(t, "/events?fail")
	io.Copy(io.Discard, res.Body)
	ended(t, receive(t, streams, "the failing stream"))
	res = r.get(t, "/events?hold")
	expectStream(t, res)
	held := receive(t, streams, "the held stream")
	res = r.get(t, "/events") // over MaxClients
	io.Copy(io.Discard, res.Body)

	st := counters.Stats()
	var want sse.Stats
	want.Open, want.Opened = 1, 3
	want.Refused[sse.OverflowRetry] = 1
	want.Ended[sse.EndClosed], want.Ended[sse.EndHandlerError] = 1, 1
	want.Events, want.Bytes, want.WrittenBytes = 2, uint64(len(body)), uint64(len(body))
	st.Flushes, st.FlushTime = want.Flushes, want.FlushTime
	// The held stream parks once its handler has returned, if it took
	// its connection over (Config.Takeover).
	if st.Parked != 0 && st.Parked != 1 {
		t.Errorf("Stats.Parked = %d with one stream open, want 0 or 1", st.Parked)
	}
	want.Parked = st.Parked
	if st != want {
		t.Errorf("Stats:\n got %+v\nwant %+v", st, want)
	}
	held.Abort(nil)
	ended(t, held)
	if got := counters.Stats().Ended[sse.EndAborted]; got != 1 {
		t.Errorf("Ended[aborted] = %d after Abort, want 1", got)
	}
}
