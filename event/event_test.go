package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

// seen is an event as a browser's EventSource reports it: the fields of the
// MessageEvent plus the reconnection time in force when it was dispatched.
type seen struct {
	Type  string
	Data  string
	ID    string
	Retry time.Duration
}

// seenFrom converts a decoded event, whose Data the Decoder always sets to a
// string.
func seenFrom(t testing.TB, e event.Event) seen {
	t.Helper()
	data, ok := e.Data.(string)
	if !ok {
		t.Fatalf("decoded Data is %T, want string", e.Data)
	}
	if e.Comment != "" {
		t.Errorf("decoded Comment = %q, want empty", e.Comment)
	}
	return seen{Type: e.Type, Data: data, ID: e.ID, Retry: e.Retry}
}

// decodeAll decodes r to the end and returns the dispatched events, the
// decoder (for its LastEventID and Retry) and the error that ended decoding.
func decodeAll(t testing.TB, r io.Reader) ([]seen, *event.Decoder, error) {
	t.Helper()
	d := event.NewDecoder(r)
	var got []seen
	for {
		e, err := d.Decode()
		if err != nil {
			return got, d, err
		}
		got = append(got, seenFrom(t, e))
		if len(got) > 1<<20 {
			t.Fatal("decoder does not stop")
		}
	}
}

// decodeString decodes a whole stream that must end cleanly with io.EOF.
func decodeString(t testing.TB, s string) ([]seen, *event.Decoder) {
	t.Helper()
	got, d, err := decodeAll(t, strings.NewReader(s))
	if err != io.EOF {
		t.Fatalf("decoding %q: got error %v, want io.EOF", s, err)
	}
	return got, d
}

// browser models what an EventSource sees when it receives events encoded by
// AppendTo, one after the other on one stream.
type browser struct {
	lastID string
	retry  time.Duration
}

// receive returns the event the browser dispatches for e, and whether it
// dispatches one at all.
func (b *browser) receive(t testing.TB, e event.Event) (seen, bool) {
	t.Helper()
	if e.Retry > 0 {
		b.retry = e.Retry.Truncate(time.Millisecond)
	}
	if e.ID != "" {
		b.lastID = e.ID
	}
	if e.ID == "" && e.Type == "" && e.Data == nil {
		return seen{}, false
	}
	typ := e.Type
	if typ == "" {
		typ = "message"
	}
	return seen{Type: typ, Data: normalizeBreaks(dataText(t, e.Data)), ID: b.lastID, Retry: b.retry}, true
}

// dataText returns the text AppendTo writes for data, before it is split
// into lines.
func dataText(t testing.TB, data any) string {
	t.Helper()
	switch d := data.(type) {
	case nil:
		return ""
	case string:
		return d
	case []byte:
		return string(d)
	case json.RawMessage:
		return string(d)
	}
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatalf("json.Marshal(%T): %v", data, err)
	}
	return string(b)
}

// normalizeBreaks turns CRLF and lone CR into LF, as a client splitting
// lines and joining data lines with LF does.
func normalizeBreaks(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func TestFieldError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give *event.FieldError
		want string
	}{
		{"id", &event.FieldError{Field: "id", Err: event.ErrLineBreak}, "event: invalid id: contains a line break"},
		{"nul", &event.FieldError{Field: "id", Err: event.ErrNUL}, "event: invalid id: contains a NUL character"},
		{"utf8", &event.FieldError{Field: "comment", Err: event.ErrInvalidUTF8}, "event: invalid comment: is not valid UTF-8"},
		{"retry", &event.FieldError{Field: "retry", Err: event.ErrNegativeRetry}, "event: invalid retry: is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.give.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if got := tt.give.Unwrap(); got != tt.give.Err {
				t.Errorf("Unwrap: got %v, want %v", got, tt.give.Err)
			}
			wrapped := errors.Join(errors.New("sending"), tt.give)
			if !errors.Is(wrapped, tt.give.Err) {
				t.Errorf("errors.Is(%v, %v) = false, want true", wrapped, tt.give.Err)
			}
			var fe *event.FieldError
			if !errors.As(wrapped, &fe) || fe != tt.give {
				t.Errorf("errors.As: got %v, want %v", fe, tt.give)
			}
		})
	}
}

func TestSentinelsAreDistinct(t *testing.T) {
	t.Parallel()
	all := []error{event.ErrLineBreak, event.ErrNUL, event.ErrInvalidUTF8, event.ErrNegativeRetry}
	for i, a := range all {
		for j, b := range all {
			if i != j && errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = true, want false", a, b)
			}
		}
	}
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give event.Event
	}{
		{"string", event.Event{ID: "7", Type: "price", Data: "a\nb", Retry: 2 * time.Second, Comment: "hi"}},
		{"bytes", event.Event{Data: []byte("payload")}},
		{"json", event.Event{Type: "obj", Data: map[string]int{"n": 1}}},
		{"comment only", event.Event{Comment: "keep-alive"}},
		{"retry only", event.Event{Retry: time.Second}},
		{"empty", event.Event{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want, err := tt.give.AppendTo(nil)
			if err != nil {
				t.Fatalf("AppendTo: %v", err)
			}
			p, err := tt.give.Prepare()
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if p.ID != tt.give.ID || p.Type != tt.give.Type || p.Retry != tt.give.Retry || p.Comment != tt.give.Comment {
				t.Errorf("prepared fields: got %+v, want %+v", p, tt.give)
			}
			got, err := p.AppendTo([]byte("prefix\n"))
			if err != nil {
				t.Fatalf("prepared AppendTo: %v", err)
			}
			if string(got) != "prefix\n"+string(want) {
				t.Errorf("prepared AppendTo: got %q, want %q", got, "prefix\n"+string(want))
			}
			var buf bytes.Buffer
			n, err := p.WriteTo(&buf)
			if err != nil {
				t.Fatalf("prepared WriteTo: %v", err)
			}
			if buf.String() != string(want) || n != int64(len(want)) {
				t.Errorf("prepared WriteTo: got %q (n=%d), want %q (n=%d)", buf.String(), n, want, len(want))
			}
		})
	}
}

func TestPrepareFreezesWireForm(t *testing.T) {
	t.Parallel()
	data := []byte("before")
	p, err := event.Event{Type: "t", Data: data}.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	const want = "event: t\ndata: before\n\n"

	// Changing the []byte the event was prepared from changes nothing.
	copy(data, "AFTER!")
	// Nor does changing the prepared copy's fields.
	p.Type = "other"
	p.ID = "bad\nid"
	got, err := p.AppendTo(nil)
	if err != nil {
		t.Fatalf("AppendTo: %v", err)
	}
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}

	// Preparing the changed copy again encodes its new fields.
	if _, err := p.Prepare(); !errors.Is(err, event.ErrLineBreak) {
		t.Errorf("Prepare after change: got error %v, want %v", err, event.ErrLineBreak)
	}
	p.ID = "9"
	p2, err := p.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	got, _ = p2.AppendTo(nil)
	if want := "event: other\nid: 9\ndata: AFTER!\n\n"; string(got) != want {
		t.Errorf("re-prepared: got %q, want %q", got, want)
	}
}

func TestPrepareInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		give      event.Event
		wantField string
		wantErr   error
	}{
		{"id line break", event.Event{ID: "a\nb", Data: "x"}, "id", event.ErrLineBreak},
		{"type line break", event.Event{Type: "a\rb"}, "event", event.ErrLineBreak},
		{"negative retry", event.Event{Retry: -time.Millisecond}, "retry", event.ErrNegativeRetry},
		{"invalid data", event.Event{Data: "\xff"}, "data", event.ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := tt.give.Prepare()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			var fe *event.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Errorf("got %#v, want a *FieldError for %q", err, tt.wantField)
			}
			if p.ID != "" || p.Type != "" || p.Data != nil || p.Retry != 0 || p.Comment != "" {
				t.Errorf("got %+v, want the zero Event", p)
			}
			if b, err := p.AppendTo(nil); err != nil || len(b) != 0 {
				t.Errorf("zero Event after failed Prepare writes %q, %v; want nothing", b, err)
			}
		})
	}
}

// A prepared event is meant to be sent to many streams at once.
func TestPreparedConcurrentUse(t *testing.T) {
	t.Parallel()
	p, err := event.Event{ID: "1", Data: "shared"}.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	const want = "id: 1\ndata: shared\n\n"
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			buf := make([]byte, 0, 64)
			for range 100 {
				b, err := p.AppendTo(buf[:0])
				if err != nil || string(b) != want {
					errs <- string(b)
					return
				}
				var w bytes.Buffer
				if _, err := p.WriteTo(&w); err != nil || w.String() != want {
					errs <- w.String()
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for got := range errs {
		t.Errorf("got %q, want %q", got, want)
	}
}

var _ io.WriterTo = event.Event{}
