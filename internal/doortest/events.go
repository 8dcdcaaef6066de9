package doortest

// This file tests what the sender sends: an event that cannot be written
// as it is is skipped and reported, and the stream goes on, well formed.

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testInvalidEvent: an event whose ID holds a line break (which would
// inject a field) is not written; the error handler is told, once, with the
// event package's FieldError; the events around it arrive, and the stream
// ends with the close event.
func testInvalidEvent(t *testing.T, d Door) {
	errs := &errLog{}
	streams := make(chan *sse.Stream, 1)
	r := serve(t, d, Config{OnError: errs.add}, streamsTo(streams, sendThenClose(
		event.Event{Data: "before"},
		event.Event{ID: "1\nevent: injected", Data: "bad"},
		event.Event{Data: "after"},
	)))
	res := r.get(t, "/events")
	expectStream(t, res)
	var raw bytes.Buffer
	evs := decodeAll(t, io.TeeReader(res.Body, &raw))
	if got, want := summary(evs), "message:before message:after close:"; got != want {
		t.Fatalf("got events %q, want %q", got, want)
	}
	if strings.Contains(raw.String(), "injected") || strings.Contains(raw.String(), "bad") {
		t.Fatalf("got stream %q, want nothing of the invalid event", raw.String())
	}
	expectReason(t, ended(t, receive(t, streams, "the stream")), sse.ErrClosed)
	all := errs.all()
	if len(all) != 1 {
		t.Fatalf("the error handler was told %d errors, want 1: %v", len(all), all)
	}
	var fe *event.FieldError
	if !errors.As(all[0], &fe) || fe.Field != "id" || !errors.Is(all[0], event.ErrLineBreak) {
		t.Fatalf("the error handler was told %v, want an id FieldError with ErrLineBreak", all[0])
	}
}
