package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/encode")

type point struct {
	Name  string  `json:"name"`
	Price float64 `json:"price"`
	Tags  []string
	skip  int
}

type label string

// multiLineJSON is a json.Marshaler whose output spans several lines.
type multiLineJSON struct{}

func (multiLineJSON) MarshalJSON() ([]byte, error) {
	return []byte("{\n  \"a\": 1,\n  \"b\": [1, 2]\n}"), nil
}

// badUTF8JSON is a json.Marshaler whose output is valid JSON but not UTF-8.
type badUTF8JSON struct{}

func (badUTF8JSON) MarshalJSON() ([]byte, error) { return []byte("\"\xff\""), nil }

var errMarshal = errors.New("cannot marshal")

// failingJSON is a json.Marshaler that fails.
type failingJSON struct{}

func (failingJSON) MarshalJSON() ([]byte, error) { return nil, errMarshal }

// encodeTests are valid events and their exact wire form. The fuzz targets
// use them as seeds.
var encodeTests = []struct {
	name string
	give event.Event
	want string
}{
	// Data kinds.
	{"string", event.Event{Data: "hello"}, "data: hello\n\n"},
	{"bytes", event.Event{Data: []byte("hello")}, "data: hello\n\n"},
	{"raw json verbatim", event.Event{Data: json.RawMessage(` {"a" : 1} `)}, "data:  {\"a\" : 1} \n\n"},
	{"raw json string not quoted again", event.Event{Data: json.RawMessage(`"x"`)}, "data: \"x\"\n\n"},
	{"raw json not validated", event.Event{Data: json.RawMessage("not json")}, "data: not json\n\n"},
	{"struct", event.Event{Data: point{Name: "ECHO", Price: 17.5, Tags: []string{"a"}}}, "data: {\"name\":\"ECHO\",\"price\":17.5,\"Tags\":[\"a\"]}\n\n"},
	{"struct pointer", event.Event{Data: &point{Name: "x"}}, "data: {\"name\":\"x\",\"price\":0,\"Tags\":null}\n\n"},
	{"map sorted", event.Event{Data: map[string]int{"b": 2, "a": 1}}, "data: {\"a\":1,\"b\":2}\n\n"},
	{"int", event.Event{Data: 42}, "data: 42\n\n"},
	{"float", event.Event{Data: 1.5}, "data: 1.5\n\n"},
	{"bool", event.Event{Data: true}, "data: true\n\n"},
	{"nil pointer", event.Event{Data: (*point)(nil)}, "data: null\n\n"},
	{"nil map", event.Event{Data: map[string]int(nil)}, "data: null\n\n"},
	{"named string is json", event.Event{Data: label("x")}, "data: \"x\"\n\n"},
	{"slice of strings is json", event.Event{Data: []string{"a", "b"}}, "data: [\"a\",\"b\"]\n\n"},
	{"json escapes html and line separators", event.Event{Data: map[string]string{"s": "<a>&\u2028\u2029"}}, "data: {\"s\":\"\\u003ca\\u003e\\u0026\\u2028\\u2029\"}\n\n"},
	{"json string with line breaks stays one line", event.Event{Data: map[string]string{"s": "a\nb\rc"}}, "data: {\"s\":\"a\\nb\\rc\"}\n\n"},
	{"json replaces invalid utf8", event.Event{Data: map[string]string{"s": "\xff"}}, "data: {\"s\":\"\\ufffd\"}\n\n"},
	{"json marshaler compacted", event.Event{Data: multiLineJSON{}}, "data: {\"a\":1,\"b\":[1,2]}\n\n"},

	// Line breaks in data.
	{"LF", event.Event{Data: "a\nb"}, "data: a\ndata: b\n\n"},
	{"CR", event.Event{Data: "a\rb"}, "data: a\ndata: b\n\n"},
	{"CRLF", event.Event{Data: "a\r\nb"}, "data: a\ndata: b\n\n"},
	{"mixed", event.Event{Data: "a\nb\rc\r\nd\n\re"}, "data: a\ndata: b\ndata: c\ndata: d\ndata:\ndata: e\n\n"},
	{"LF CR is two breaks", event.Event{Data: "a\n\rb"}, "data: a\ndata:\ndata: b\n\n"},
	{"CR CRLF", event.Event{Data: "\r\r\n"}, "data:\ndata:\ndata:\n\n"},
	{"only LF", event.Event{Data: "\n"}, "data:\ndata:\n\n"},
	{"only CRLF", event.Event{Data: "\r\n"}, "data:\ndata:\n\n"},
	{"trailing LF", event.Event{Data: "a\n"}, "data: a\ndata:\n\n"},
	{"leading CR", event.Event{Data: "\ra"}, "data:\ndata: a\n\n"},
	{"bytes with breaks", event.Event{Data: []byte("a\r\nb\rc")}, "data: a\ndata: b\ndata: c\n\n"},
	{"raw json with breaks", event.Event{Data: json.RawMessage("{\n  \"a\": 1\n}")}, "data: {\ndata:   \"a\": 1\ndata: }\n\n"},

	// Empty data and data that looks like something else.
	{"empty string", event.Event{Data: ""}, "data:\n\n"},
	{"empty bytes", event.Event{Data: []byte{}}, "data:\n\n"},
	{"nil bytes", event.Event{Data: []byte(nil)}, "data:\n\n"},
	{"nil raw json", event.Event{Data: json.RawMessage(nil)}, "data:\n\n"},
	{"colon first", event.Event{Data: ":x"}, "data: :x\n\n"},
	{"colon only", event.Event{Data: ":"}, "data: :\n\n"},
	{"leading space", event.Event{Data: " lead"}, "data:  lead\n\n"},
	{"only spaces", event.Event{Data: "  "}, "data:   \n\n"},
	{"trailing space", event.Event{Data: "x "}, "data: x \n\n"},
	{"field lookalikes", event.Event{Data: "id: 1\nevent: x\n\nretry: 5\r\r:c"}, "data: id: 1\ndata: event: x\ndata:\ndata: retry: 5\ndata:\ndata: :c\n\n"},
	{"NUL in data", event.Event{Data: "a\x00b"}, "data: a\x00b\n\n"},
	{"BOM in data", event.Event{Data: "\ufeffx"}, "data: \ufeffx\n\n"},
	{"unicode", event.Event{Data: "héllo 😀 \u2028"}, "data: héllo 😀 \u2028\n\n"},
	{"tab", event.Event{Data: "\tx"}, "data: \tx\n\n"},

	// ID and Type.
	{"type only", event.Event{Type: "close"}, "event: close\ndata:\n\n"},
	{"id only", event.Event{ID: "7"}, "id: 7\ndata:\n\n"},
	{"id and type", event.Event{ID: "7", Type: "close"}, "event: close\nid: 7\ndata:\n\n"},
	{"type and data", event.Event{Type: "price", Data: "17"}, "event: price\ndata: 17\n\n"},
	{"id keeps inner spaces", event.Event{ID: "4 2", Data: "x"}, "id: 4 2\ndata: x\n\n"},
	{"id of MaxIDLength bytes", event.Event{ID: strings.Repeat("é", event.MaxIDLength/2)}, "id: " + strings.Repeat("é", event.MaxIDLength/2) + "\ndata:\n\n"},
	{"type keeps spaces", event.Event{Type: " a b ", Data: "x"}, "event:  a b \ndata: x\n\n"},
	{"id with colon", event.Event{ID: "a:b", Data: "x"}, "id: a:b\ndata: x\n\n"},
	{"unicode id and type", event.Event{ID: "é😀", Type: "ü", Data: "x"}, "event: ü\nid: é😀\ndata: x\n\n"},
	{"NUL in type", event.Event{Type: "a\x00b", Data: "x"}, "event: a\x00b\ndata: x\n\n"},

	// Retry.
	{"retry with data", event.Event{Data: "x", Retry: 1500 * time.Millisecond}, "retry: 1500\ndata: x\n\n"},
	{"retry only", event.Event{Retry: 3 * time.Second}, "retry: 3000\n\n"},
	{"retry rounds down", event.Event{Retry: 2999 * time.Microsecond}, "retry: 2\n\n"},
	{"retry below a millisecond", event.Event{Retry: time.Millisecond - 1}, "retry: 0\n\n"},
	{"retry zero omitted", event.Event{Data: "x", Retry: 0}, "data: x\n\n"},
	{"retry max", event.Event{Retry: math.MaxInt64}, "retry: 9223372036854\n\n"},

	// Comments.
	{"comment only", event.Event{Comment: "keep-alive"}, ": keep-alive\n\n"},
	{"multi-line comment", event.Event{Comment: "a\nb\r\nc\rd"}, ": a\n: b\n: c\n: d\n\n"},
	{"comment with empty lines", event.Event{Comment: "a\n\nb\n"}, ": a\n:\n: b\n:\n\n"},
	{"comment cannot become a field", event.Event{Comment: "x\ndata: evil\n\nevent: evil"}, ": x\n: data: evil\n:\n: event: evil\n\n"},
	{"comment with leading space", event.Event{Comment: " x"}, ":  x\n\n"},
	{"comment and retry", event.Event{Comment: "c", Retry: time.Second}, ": c\nretry: 1000\n\n"},

	// Everything.
	{"all fields", event.Event{ID: "1", Type: "t", Data: "d1\nd2", Retry: time.Second, Comment: "c"}, ": c\nevent: t\nid: 1\nretry: 1000\ndata: d1\ndata: d2\n\n"},
	{"empty event", event.Event{}, ""},
}

func TestAppendTo(t *testing.T) {
	t.Parallel()
	for _, tt := range encodeTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.give.AppendTo(nil)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}

			// Appending keeps what dst held.
			const prefix = ": earlier\n\n"
			dst := append(make([]byte, 0, 4), prefix...)
			got, err = tt.give.AppendTo(dst)
			if err != nil {
				t.Fatalf("with prefix: got error %v, want none", err)
			}
			if string(got) != prefix+tt.want {
				t.Errorf("with prefix: got %q, want %q", got, prefix+tt.want)
			}

			// WriteTo writes the same bytes.
			var buf bytes.Buffer
			n, err := tt.give.WriteTo(&buf)
			if err != nil {
				t.Fatalf("WriteTo: got error %v, want none", err)
			}
			if buf.String() != tt.want || n != int64(len(tt.want)) {
				t.Errorf("WriteTo: got %q (n=%d), want %q (n=%d)", buf.String(), n, tt.want, len(tt.want))
			}
		})
	}
}

// Every valid event decodes to what the event says, as a browser sees it.
func TestAppendToDecodes(t *testing.T) {
	t.Parallel()
	for _, tt := range encodeTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wire, err := tt.give.AppendTo(nil)
			if err != nil {
				t.Fatal(err)
			}
			got, d := decodeString(t, string(wire))
			var b browser
			want, ok := b.receive(t, tt.give)
			if !ok {
				if len(got) != 0 {
					t.Errorf("got %+v, want no event", got)
				}
			} else if len(got) != 1 || got[0] != want {
				t.Errorf("got %+v, want [%+v]", got, want)
			}
			if d.Retry() != b.retry {
				t.Errorf("Retry(): got %v, want %v", d.Retry(), b.retry)
			}
			if d.LastEventID() != b.lastID {
				t.Errorf("LastEventID(): got %q, want %q", d.LastEventID(), b.lastID)
			}
		})
	}
}

func TestAppendToErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		give      event.Event
		wantField string
		wantErr   error // matched with errors.Is, unless nil
		wantAs    any   // a pointer to an error type to match with errors.As, unless nil
	}{
		{"LF in id", event.Event{ID: "a\nb", Data: "x"}, "id", event.ErrLineBreak, nil},
		{"CR in id", event.Event{ID: "a\rb", Data: "x"}, "id", event.ErrLineBreak, nil},
		{"CRLF in id", event.Event{ID: "a\r\n"}, "id", event.ErrLineBreak, nil},
		{"id is LF", event.Event{ID: "\n"}, "id", event.ErrLineBreak, nil},
		{"LF in type", event.Event{Type: "a\nb", Data: "x"}, "event", event.ErrLineBreak, nil},
		{"CR in type", event.Event{Type: "close\r"}, "event", event.ErrLineBreak, nil},
		{"type injects a field", event.Event{Type: "x\ndata: evil\n\n"}, "event", event.ErrLineBreak, nil},
		{"id injects an event", event.Event{ID: "1\n\ndata: evil\n\n", Data: "x"}, "id", event.ErrLineBreak, nil},
		{"NUL in id", event.Event{ID: "a\x00b", Data: "x"}, "id", event.ErrNUL, nil},
		{"id is NUL", event.Event{ID: "\x00"}, "id", event.ErrNUL, nil},
		{"negative retry", event.Event{Data: "x", Retry: -1}, "retry", event.ErrNegativeRetry, nil},
		{"negative retry only", event.Event{Retry: -time.Second}, "retry", event.ErrNegativeRetry, nil},
		{"min retry", event.Event{Retry: math.MinInt64}, "retry", event.ErrNegativeRetry, nil},
		{"channel data", event.Event{Data: make(chan int)}, "data", nil, new(*json.UnsupportedTypeError)},
		{"func data", event.Event{Data: func() {}}, "data", nil, new(*json.UnsupportedTypeError)},
		{"NaN data", event.Event{Data: math.NaN()}, "data", nil, new(*json.UnsupportedValueError)},
		{"struct with channel", event.Event{Type: "t", Data: struct{ C chan int }{}}, "data", nil, new(*json.UnsupportedTypeError)},
		{"marshaler error", event.Event{Data: failingJSON{}}, "data", errMarshal, new(*json.MarshalerError)},
		{"marshaler invalid utf8", event.Event{Data: badUTF8JSON{}}, "data", event.ErrInvalidUTF8, nil},
		{"invalid utf8 in id", event.Event{ID: "\xff", Data: "x"}, "id", event.ErrInvalidUTF8, nil},
		{"id longer than MaxIDLength", event.Event{ID: strings.Repeat("1", event.MaxIDLength+1)}, "id", event.ErrTooLong, nil},
		{"id with a control character", event.Event{ID: "a\x01b"}, "id", event.ErrControl, nil},
		{"id with DEL", event.Event{ID: "a\x7fb"}, "id", event.ErrControl, nil},
		{"id with a tab", event.Event{ID: "a\tb"}, "id", event.ErrControl, nil},
		{"id with a leading space", event.Event{ID: " 42"}, "id", event.ErrSpaceAtEnd, nil},
		{"id with a trailing space", event.Event{ID: "42 "}, "id", event.ErrSpaceAtEnd, nil},
		{"id with a trailing tab", event.Event{ID: "42\t"}, "id", event.ErrSpaceAtEnd, nil},
		{"truncated utf8 in id", event.Event{ID: "a\xc3"}, "id", event.ErrInvalidUTF8, nil},
		{"invalid utf8 in type", event.Event{Type: "\xc3(", Data: "x"}, "event", event.ErrInvalidUTF8, nil},
		{"surrogate in type", event.Event{Type: "\xed\xa0\x80"}, "event", event.ErrInvalidUTF8, nil},
		{"invalid utf8 in string data", event.Event{Data: "a\xe2\x82"}, "data", event.ErrInvalidUTF8, nil},
		{"invalid utf8 on a later data line", event.Event{Data: "ok\nok\n\xff"}, "data", event.ErrInvalidUTF8, nil},
		{"invalid utf8 in bytes data", event.Event{Data: []byte{'a', 0xff}}, "data", event.ErrInvalidUTF8, nil},
		{"invalid utf8 in raw json", event.Event{Data: json.RawMessage("\"\xff\"")}, "data", event.ErrInvalidUTF8, nil},
		{"invalid utf8 in comment", event.Event{Comment: "\xff"}, "comment", event.ErrInvalidUTF8, nil},
		{"overlong encoding in comment", event.Event{Comment: "ok\n\xc0\x80"}, "comment", event.ErrInvalidUTF8, nil},

		// A bad field after good ones: nothing of the good ones is kept.
		{"bad id after comment and type", event.Event{Comment: "c", Type: "t", ID: "bad\n", Data: "x"}, "id", event.ErrLineBreak, nil},
		{"bad data after all else", event.Event{Comment: "c", Type: "t", ID: "1", Retry: time.Second, Data: "x\n\xff"}, "data", event.ErrInvalidUTF8, nil},
		{"bad json after all else", event.Event{Comment: "c", Type: "t", ID: "1", Retry: time.Second, Data: make(chan int)}, "data", nil, new(*json.UnsupportedTypeError)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr := func(t *testing.T, err error) {
				t.Helper()
				if err == nil {
					t.Fatal("got no error, want one")
				}
				var fe *event.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("got %T %v, want a *event.FieldError", err, err)
				}
				if fe.Field != tt.wantField {
					t.Errorf("Field: got %q, want %q", fe.Field, tt.wantField)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("got %v, want errors.Is %v", err, tt.wantErr)
				}
				if tt.wantAs != nil && !errors.As(err, tt.wantAs) {
					t.Errorf("got %v, want errors.As %T", err, tt.wantAs)
				}
				if want := "event: invalid " + tt.wantField + ": "; !strings.HasPrefix(err.Error(), want) {
					t.Errorf("Error(): got %q, want prefix %q", err.Error(), want)
				}
			}

			// Nothing is appended: the result is dst, byte for byte.
			for _, capacity := range []int{0, 4096} {
				const prefix = "data: earlier\n\n"
				dst := append(make([]byte, 0, capacity), prefix...)
				got, err := tt.give.AppendTo(dst)
				checkErr(t, err)
				if string(got) != prefix {
					t.Errorf("cap %d: got %q, want dst unchanged %q", capacity, got, prefix)
				}
				if string(dst) != prefix {
					t.Errorf("cap %d: dst changed to %q", capacity, dst)
				}
			}
			if got, err := tt.give.AppendTo(nil); len(got) != 0 {
				t.Errorf("nil dst: got %q, %v; want nothing", got, err)
			}

			// WriteTo writes nothing.
			w := &recordWriter{}
			n, err := tt.give.WriteTo(w)
			checkErr(t, err)
			if n != 0 || len(w.writes) != 0 {
				t.Errorf("WriteTo: wrote %q (n=%d), want nothing", w.writes, n)
			}
		})
	}
}

// No data or comment, however it is made, adds a field or an event: the
// stream decodes to exactly the one event that was encoded.
func TestAppendToNoInjection(t *testing.T) {
	t.Parallel()
	payloads := []string{
		"\n\nevent: evil\ndata: x\n\n",
		"\r\rid: evil\r\rdata: y\r\r",
		"\r\n\r\nretry: 1\r\n\r\n",
		"x\n\r\n\revent: evil",
		"\ndata: a\n\nid: evil\n",
		"\n:\n\n",
		"\n id: evil\n",
		"\u2028event: evil\u2029\n\u0085data: x",
		"\x00\n\x00\r\x00",
	}
	for i, p := range payloads {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			for _, data := range []any{p, []byte(p), json.RawMessage(p), map[string]string{"p": p}} {
				e := event.Event{ID: "good", Type: "safe", Data: data, Comment: p}
				wire, err := e.AppendTo(nil)
				if err != nil {
					t.Fatalf("%T: %v", data, err)
				}
				if i := strings.Index(string(wire), "\n\n"); i != len(wire)-2 {
					t.Errorf("%T: empty line at %d in %q, want only at the end", data, i, wire)
				}
				got, d := decodeString(t, string(wire))
				want := seen{Type: "safe", Data: normalizeBreaks(dataText(t, data)), ID: "good"}
				if len(got) != 1 || got[0] != want {
					t.Errorf("%T: got %+v, want [%+v]", data, got, want)
				}
				if d.Retry() != 0 || d.LastEventID() != "good" {
					t.Errorf("%T: Retry %v, LastEventID %q; want 0, %q", data, d.Retry(), d.LastEventID(), "good")
				}
			}
		})
	}
}

// recordWriter records each Write call.
type recordWriter struct {
	writes []string
	err    error
	short  int // if positive, each Write accepts at most this many bytes
}

func (w *recordWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.short > 0 && n > w.short {
		n = w.short
	}
	w.writes = append(w.writes, string(p[:n]))
	return n, w.err
}

func TestWriteTo(t *testing.T) {
	t.Parallel()
	errWrite := errors.New("connection reset")
	tests := []struct {
		name       string
		give       event.Event
		w          *recordWriter
		wantWrites []string
		wantN      int64
		wantErr    error
	}{
		{"one write", event.Event{ID: "1", Type: "t", Data: "a\nb", Comment: "c"}, &recordWriter{},
			[]string{": c\nevent: t\nid: 1\ndata: a\ndata: b\n\n"}, 36, nil},
		{"empty event writes nothing", event.Event{}, &recordWriter{}, nil, 0, nil},
		{"writer error", event.Event{Data: "x"}, &recordWriter{err: errWrite}, []string{"data: x\n\n"}, 9, errWrite},
		{"short write", event.Event{Data: "xyz"}, &recordWriter{short: 4, err: errWrite}, []string{"data"}, 4, errWrite},
		{"large event", event.Event{Data: strings.Repeat("x", 10000)}, &recordWriter{},
			[]string{"data: " + strings.Repeat("x", 10000) + "\n\n"}, 10008, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, err := tt.give.WriteTo(tt.w)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("got error %v, want %v", err, tt.wantErr)
			}
			if n != tt.wantN {
				t.Errorf("n: got %d, want %d", n, tt.wantN)
			}
			if fmt.Sprintf("%q", tt.w.writes) != fmt.Sprintf("%q", tt.wantWrites) {
				t.Errorf("writes: got %q, want %q", tt.w.writes, tt.wantWrites)
			}
		})
	}
}

// The pooled buffer WriteTo uses must not leak one event's bytes into the
// next, whatever their sizes.
func TestWriteToReusesNoStaleBytes(t *testing.T) {
	t.Parallel()
	events := []event.Event{
		{Data: strings.Repeat("long ", 300)},
		{Data: "s"},
		{ID: "bad\n"},
		{Comment: "c"},
		{Data: strings.Repeat("z", 2000)},
		{},
		{Type: "t"},
	}
	for range 20 {
		for _, e := range events {
			want, wantErr := e.AppendTo(nil)
			var buf bytes.Buffer
			_, err := e.WriteTo(&buf)
			if (err == nil) != (wantErr == nil) || buf.String() != string(want) {
				t.Fatalf("got %q, %v; want %q, %v", buf.String(), err, want, wantErr)
			}
		}
	}
}

func TestAppendToDoesNotModifyData(t *testing.T) {
	t.Parallel()
	data := []byte("a\r\nb\rc\n")
	orig := string(data)
	raw := json.RawMessage("x\ry")
	e := event.Event{Data: data}
	if _, err := e.AppendTo(make([]byte, 0, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := (event.Event{Data: raw}).AppendTo(nil); err != nil {
		t.Fatal(err)
	}
	if string(data) != orig || string(raw) != "x\ry" {
		t.Errorf("got %q and %q, want %q and %q", data, raw, orig, "x\ry")
	}
}

// A long line is kept whole; clients with small line buffers are a known
// source of bugs.
func TestAppendToLongLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("0123456789", 10_000)
	wire, err := event.Event{Data: long + "\n" + long}.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "data: " + long + "\ndata: " + long + "\n\n"; string(wire) != want {
		t.Errorf("got %d bytes, want %d", len(wire), len(want))
	}
	got, _ := decodeString(t, string(wire))
	if len(got) != 1 || got[0].Data != long+"\n"+long {
		t.Errorf("decoded %d events, want 1 with the data intact", len(got))
	}
}

// goldenTests are long outputs kept in ../testdata/encode/<name>.golden.
var goldenTests = []struct {
	name string
	give []event.Event
}{
	{"full-event", []event.Event{{
		Comment: "price update\nsent by the ticker",
		Type:    "price",
		ID:      "2024-06-01T12:00:00Z#17",
		Retry:   2500 * time.Millisecond,
		Data:    "line one\nline two\r\nline three\rline four\n\n: not a comment\n leading space\nid: not an id",
	}}},
	{"json-struct", []event.Event{{
		Type: "quote",
		ID:   "q-1",
		Data: map[string]any{
			"symbol": "ECHO",
			"price":  17.25,
			"volume": 120000,
			"tags":   []string{"<b>", "a&b", "line\nbreak", "\u2028"},
			"nested": map[string]any{"ok": true, "none": nil, "unicode": "héllo 😀"},
		},
	}}},
	{"pretty-raw-json", []event.Event{{
		Type: "doc",
		Data: json.RawMessage("{\n  \"name\": \"echo-sse\",\n  \"list\": [\n    1,\n    2\n  ],\r\n  \"end\": \":\"\n}"),
	}}},
	{"stream", []event.Event{
		{Retry: 10 * time.Second},
		{Comment: "connected"},
		{ID: "1", Type: "greeting", Data: "hello"},
		{ID: "2", Data: []byte("second\nevent")},
		{Data: "no id: the last one is kept"},
		{Comment: ""},
		{Comment: "heartbeat"},
		{ID: "3", Type: "json", Data: struct {
			N int    `json:"n"`
			S string `json:"s"`
		}{3, "three"}},
		{Type: "close"},
	}},
	{"unicode", []event.Event{{
		Type: "i18n",
		ID:   "ид-1",
		Data: "English\nFrançais\nΕλληνικά\n日本語\n한국어\nالعربية\n😀👍🏽\n\ufeffBOM inside\n\u2028\u2029\u0085",
	}}},
	{"long-line", []event.Event{{
		Data: strings.Repeat("abcdefghij", 1700) + "\n" + strings.Repeat("0123456789", 820),
	}}},
}

func goldenPath(name string) string { return filepath.Join("..", "testdata", "encode", name+".golden") }

func TestAppendToGolden(t *testing.T) {
	t.Parallel()
	for _, tt := range goldenTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []byte
			var b browser
			var want []seen
			for _, e := range tt.give {
				var err error
				if got, err = e.AppendTo(got); err != nil {
					t.Fatal(err)
				}
				if s, ok := b.receive(t, e); ok {
					want = append(want, s)
				}
			}
			path := goldenPath(tt.name)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, golden) {
				t.Errorf("output differs from %s:\ngot  %q\nwant %q", path, got, golden)
			}

			// The golden stream decodes to what was encoded.
			decoded, _ := decodeString(t, string(golden))
			if fmt.Sprintf("%+v", decoded) != fmt.Sprintf("%+v", want) {
				t.Errorf("decoded %s:\ngot  %+v\nwant %+v", path, decoded, want)
			}
		})
	}
}

// AppendTo allocates nothing for text data or a prepared event when dst has
// room.
func TestAppendToAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	prepared, err := event.Event{Type: "t", Data: map[string]int{"n": 1}}.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give event.Event
	}{
		{"string", event.Event{ID: "1", Type: "t", Data: "a\nb\r\nc", Retry: time.Second, Comment: "c\nd"}},
		{"bytes", event.Event{ID: "1", Data: []byte("a\rb")}},
		{"raw json", event.Event{Type: "t", Data: json.RawMessage(`{"a":1}`)}},
		{"nil data", event.Event{Type: "close"}},
		{"comment", event.Event{Comment: "keep-alive"}},
		{"prepared", prepared},
	}
	buf := make([]byte, 0, 1024)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.give
			allocs := testing.AllocsPerRun(100, func() {
				buf, _ = e.AppendTo(buf[:0])
			})
			if allocs != 0 {
				t.Errorf("got %v allocs per AppendTo, want 0", allocs)
			}
		})
	}
}

func BenchmarkAppendTo(b *testing.B) {
	type quote struct {
		Symbol string  `json:"symbol"`
		Price  float64 `json:"price"`
		Volume int     `json:"volume"`
	}
	text := `{"symbol":"ECHO","price":17.25,"volume":120000,"exchange":"XSSE","ts":"2024-06-01T12:00:00Z"}`
	prepared, err := event.Event{ID: "42", Type: "quote", Data: text}.Prepare()
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		give event.Event
	}{
		{"string", event.Event{ID: "42", Type: "quote", Data: text}},
		{"bytes", event.Event{ID: "42", Type: "quote", Data: []byte(text)}},
		{"rawjson", event.Event{ID: "42", Type: "quote", Data: json.RawMessage(text)}},
		{"json-struct", event.Event{ID: "42", Type: "quote", Data: quote{"ECHO", 17.25, 120000}}},
		{"multiline", event.Event{ID: "42", Type: "quote", Data: strings.Repeat("a line of text\n", 7) + "last"}},
		{"prepared", prepared},
	}
	for _, c := range cases {
		wire, err := c.give.AppendTo(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			buf := make([]byte, 0, 4096)
			e := c.give
			for b.Loop() {
				buf, _ = e.AppendTo(buf[:0])
			}
		})
		b.Run(c.name+"-baseline", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				buf = append(buf[:0], wire...)
			}
		})
	}
}

func BenchmarkWriteTo(b *testing.B) {
	e := event.Event{ID: "42", Type: "quote", Data: `{"symbol":"ECHO","price":17.25}`}
	wire, _ := e.AppendTo(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	var w discard
	for b.Loop() {
		if _, err := e.WriteTo(w); err != nil {
			b.Fatal(err)
		}
	}
}

// discard is io.Discard without io.Discard's ReadFrom and WriteString
// shortcuts, like a network connection.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
