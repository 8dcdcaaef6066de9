package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/echosse/echo-sse/event"
)

// validEvent reports whether AppendTo must accept an event with these
// fields, and if not, which fields it may blame.
func validEvent(id, typ, data, comment string, retry time.Duration) (bool, map[string]bool) {
	bad := map[string]bool{}
	if !idComesBack(id) {
		bad["id"] = true
	}
	if strings.ContainsAny(typ, "\r\n") || !utf8.ValidString(typ) {
		bad["event"] = true
	}
	if !utf8.ValidString(data) {
		bad["data"] = true
	}
	if !utf8.ValidString(comment) {
		bad["comment"] = true
	}
	if retry < 0 {
		bad["retry"] = true
	}
	return len(bad) == 0, bad
}

// idComesBack is the rule of event.CheckID, written out independently: id
// (when set) must reach a server again intact in a Last-Event-ID header.
func idComesBack(id string) bool {
	if id == "" {
		return true
	}
	if len(id) > event.MaxIDLength || !utf8.ValidString(id) || strings.TrimLeft(id, " \t") != id || strings.TrimRight(id, " \t") != id {
		return false
	}
	return !strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// checkWire checks that wire, the encoding of e, is made only of the lines
// AppendTo may write, and that its only empty line is the last.
func checkWire(t *testing.T, e event.Event, wire []byte) {
	t.Helper()
	if len(wire) == 0 {
		if e.ID != "" || e.Type != "" || e.Data != nil || e.Comment != "" || e.Retry != 0 {
			t.Fatalf("%+v encoded to nothing", e)
		}
		return
	}
	if bytes.IndexByte(wire, '\r') >= 0 {
		t.Fatalf("output contains CR: %q", wire)
	}
	lines := strings.Split(string(wire), "\n")
	if len(lines) < 3 || lines[len(lines)-1] != "" || lines[len(lines)-2] != "" {
		t.Fatalf("output does not end with one empty line: %q", wire)
	}
	counts := map[string]int{}
	for _, line := range lines[:len(lines)-2] {
		var field string
		switch {
		case line == "":
			t.Fatalf("empty line before the end: %q", wire)
		case strings.HasPrefix(line, ":"):
			field = "comment"
		case line == "data:", strings.HasPrefix(line, "data: "):
			field = "data"
		case strings.HasPrefix(line, "event: "):
			field = "event"
			if v := line[len("event: "):]; v != e.Type {
				t.Errorf("event line value: got %q, want %q", v, e.Type)
			}
		case strings.HasPrefix(line, "id: "):
			field = "id"
			if v := line[len("id: "):]; v != e.ID {
				t.Errorf("id line value: got %q, want %q", v, e.ID)
			}
		case strings.HasPrefix(line, "retry: "):
			field = "retry"
			if v, want := line[len("retry: "):], fmt.Sprint(int64(e.Retry/time.Millisecond)); v != want {
				t.Errorf("retry line value: got %q, want %q", v, want)
			}
		default:
			t.Fatalf("line %q is not one AppendTo writes, in %q", line, wire)
		}
		counts[field]++
	}
	for _, f := range []string{"event", "id", "retry"} {
		if counts[f] > 1 {
			t.Errorf("%d %s lines, want at most 1: %q", counts[f], f, wire)
		}
	}
	if (e.ID != "" || e.Type != "" || e.Data != nil) && counts["data"] == 0 {
		t.Errorf("dispatchable event has no data line: %q", wire)
	}
}

// maxSeed keeps seeds small: the fuzzer spends its time minimising
// mutations of large ones instead of exploring.
const maxSeed = 1024

func addEncodeSeeds(f *testing.F) {
	for _, tt := range encodeTests {
		e := tt.give
		var data string
		switch d := e.Data.(type) {
		case string:
			data = d
		case []byte:
			data = string(d)
		case json.RawMessage:
			data = string(d)
		case nil:
		default:
			b, err := json.Marshal(d)
			if err != nil {
				f.Fatal(err)
			}
			data = string(b)
		}
		f.Add(e.ID, e.Type, data, e.Comment, int64(e.Retry))
	}
	for _, tt := range goldenTests {
		for _, e := range tt.give {
			if s, ok := e.Data.(string); ok && len(s) <= maxSeed {
				f.Add(e.ID, e.Type, s, e.Comment, int64(e.Retry))
			}
		}
	}
	f.Add("a\nb", "t", "x", "", int64(0))
	f.Add("1", "a\rb", "x", "", int64(0))
	f.Add("a\x00b", "", "x", "", int64(0))
	f.Add("", "", "x", "", int64(-1))
	f.Add("\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", int64(time.Second))
	f.Add("", "", "", "", int64(0))
	f.Add("", "", "", "", int64(999_999))
	f.Add(" ", " ", " ", " ", int64(1))
}

func FuzzEncode(f *testing.F) {
	addEncodeSeeds(f)
	f.Fuzz(func(t *testing.T, id, typ, data, comment string, retry int64) {
		valid, bad := validEvent(id, typ, data, comment, time.Duration(retry))
		forms := []any{data, []byte(data), json.RawMessage(data)}
		if data == "" { // also as unset data, which may leave nothing to dispatch
			forms = append(forms, nil)
		}
		var first []byte
		for i, d := range forms {
			e := event.Event{ID: id, Type: typ, Data: d, Comment: comment, Retry: time.Duration(retry)}
			const prefix = "data: before\n\n"
			dst := append(make([]byte, 0, 16+i*64), prefix...)
			out, err := e.AppendTo(dst)
			if !strings.HasPrefix(string(out), prefix) {
				t.Fatalf("%T: dst prefix lost: %q", d, out)
			}
			if !valid {
				var fe *event.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("%T: invalid event (%v) gave error %v, want a *FieldError", d, bad, err)
				}
				if !bad[fe.Field] {
					t.Errorf("%T: error blames %q, want one of %v", d, fe.Field, bad)
				}
				if string(out) != prefix {
					t.Errorf("%T: got %q, want dst unchanged %q", d, out, prefix)
				}
				var w bytes.Buffer
				if n, err := e.WriteTo(&w); err == nil || n != 0 || w.Len() != 0 {
					t.Errorf("%T: WriteTo wrote %q (n=%d, err=%v), want nothing and an error", d, w.Bytes(), n, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%T: valid event gave error %v", d, err)
			}
			wire := out[len(prefix):]
			checkWire(t, e, wire)
			if d != nil {
				if first == nil {
					first = bytes.Clone(wire)
				} else if !bytes.Equal(wire, first) {
					t.Errorf("%T data encodes as %q, string data as %q", d, wire, first)
				}
			}

			var w bytes.Buffer
			if _, err := e.WriteTo(&w); err != nil || !bytes.Equal(w.Bytes(), wire) {
				t.Errorf("%T: WriteTo wrote %q, %v; want %q", d, w.Bytes(), err, wire)
			}
			p, err := e.Prepare()
			if err != nil {
				t.Fatalf("%T: Prepare: %v", d, err)
			}
			if pw, _ := p.AppendTo(nil); !bytes.Equal(pw, wire) {
				t.Errorf("%T: prepared event writes %q, want %q", d, pw, wire)
			}

			// Decoding gives back the event as a browser sees it.
			got, dec, err := decodeAll(t, bytes.NewReader(out))
			if err != io.EOF {
				t.Fatalf("%T: decoding %q: got error %v, want io.EOF", d, out, err)
			}
			want := []seen{{Type: "message", Data: "before"}}
			var b browser
			if s, ok := b.receive(t, e); ok {
				want = append(want, s)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
				t.Errorf("%T: decoding %q:\ngot  %q\nwant %q", d, out, got, want)
			}
			if dec.LastEventID() != b.lastID || dec.Retry() != b.retry {
				t.Errorf("%T: LastEventID %q, Retry %v; want %q, %v", d, dec.LastEventID(), dec.Retry(), b.lastID, b.retry)
			}
		}
	})
}

func addDecodeSeeds(f *testing.F) {
	for _, path := range decodeFixtures(f) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tt := range goldenTests {
		b, err := os.ReadFile(goldenPath(tt.name))
		if err != nil {
			f.Fatal(err)
		}
		if len(b) <= maxSeed {
			f.Add(b)
		}
	}
	for _, tt := range encodeTests {
		f.Add([]byte(tt.want))
	}
	f.Add([]byte("data: a\r"))
	f.Add([]byte("\xef\xbb"))
	f.Add([]byte("id: 1\ndata\n\nid:\ndata\n\n"))
}

func FuzzDecode(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, stream []byte) {
		got, dec, err := decodeAll(t, bytes.NewReader(stream))
		if err != io.EOF {
			t.Fatalf("got error %v, want io.EOF", err)
		}

		// How the stream is split into reads changes nothing.
		got1, dec1, err := decodeAll(t, iotest.OneByteReader(bytes.NewReader(stream)))
		if err != io.EOF {
			t.Fatalf("one byte at a time: got error %v, want io.EOF", err)
		}
		if fmt.Sprintf("%q", got1) != fmt.Sprintf("%q", got) || dec1.LastEventID() != dec.LastEventID() || dec1.Retry() != dec.Retry() {
			t.Fatalf("one byte at a time: got %q, want %q", got1, got)
		}

		var reencoded []byte
		lastID := ""
		var want []seen
		for _, s := range got {
			if !utf8.ValidString(s.Type) || !utf8.ValidString(s.Data) || !utf8.ValidString(s.ID) {
				t.Errorf("decoded invalid UTF-8: %q", s)
			}
			if s.Type == "" || strings.ContainsAny(s.Type, "\r\n") || strings.ContainsAny(s.ID, "\r\n\x00") || strings.IndexByte(s.Data, '\r') >= 0 {
				t.Errorf("decoded event a stream cannot carry: %q", s)
			}
			if s.Retry < 0 {
				t.Errorf("negative Retry: %v", s.Retry)
			}

			// Each event on its own decodes again to itself; one whose ID
			// could not come back in a Last-Event-ID header (a stream
			// from another server may carry it) is refused, as such.
			e := event.Event{ID: s.ID, Type: s.Type, Data: s.Data}
			if !idComesBack(s.ID) {
				if err := event.CheckID(s.ID); !errors.As(err, new(*event.FieldError)) {
					t.Errorf("CheckID(%q) = %v, want a *FieldError", s.ID, err)
				}
				s.ID, e.ID = "", ""
			}
			wire, err := e.AppendTo(nil)
			if err != nil {
				t.Fatalf("re-encoding %q: %v", s, err)
			}
			again, _ := decodeString(t, string(wire))
			if want := (seen{Type: s.Type, Data: s.Data, ID: s.ID}); len(again) != 1 || again[0] != want {
				t.Errorf("re-decoding %q: got %q, want [%q]", wire, again, want)
			}

			// In one stream, an event without an ID keeps the one before.
			reencoded = append(reencoded, wire...)
			if s.ID != "" {
				lastID = s.ID
			}
			want = append(want, seen{Type: s.Type, Data: s.Data, ID: lastID})
		}
		again, _ := decodeString(t, string(reencoded))
		if fmt.Sprintf("%q", again) != fmt.Sprintf("%q", want) {
			t.Errorf("re-decoding the stream:\ngot  %q\nwant %q", again, want)
		}
	})
}

// Random valid events, encoded into one stream, decode to what a browser
// would see.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(20240601, 17))
	pieces := []string{"a", "b", "xyz", "0", " ", "  ", ":", "é", "😀", "日本", "\u2028", "\ufeff", "\ufffd", "\t", `"`, "\\", "data: ", "id: ", "event: ", "retry: 1", "\x00", "\n", "\r", "\r\n", "\n\n", "\r\r"}
	const lineSafe = 20 // pieces[:lineSafe] have no NUL, CR or LF
	text := func(n int, max int) string {
		var sb strings.Builder
		for range rng.IntN(max + 1) {
			sb.WriteString(pieces[rng.IntN(n)])
		}
		return sb.String()
	}
	randomEvent := func() event.Event {
		var e event.Event
		if rng.IntN(3) > 0 {
			// As an ID must come back in a header: no tab, no space at the ends.
			e.ID = strings.Trim(strings.ReplaceAll(text(lineSafe, 4), "\t", "_"), " ")
		}
		if rng.IntN(3) == 0 {
			e.Type = text(lineSafe+1, 3) // may hold NUL
		}
		data := text(len(pieces), 12)
		switch rng.IntN(7) {
		case 0:
			e.Data = data
		case 1:
			e.Data = []byte(data)
		case 2:
			e.Data = json.RawMessage(data)
		case 3:
			e.Data = map[string]any{"s": data, "n": rng.IntN(1000)}
		case 4:
			e.Data = rng.Float64()
		case 5:
			e.Data = nil
		default:
			e.Data = data
		}
		switch rng.IntN(6) {
		case 0:
			e.Retry = time.Duration(rng.Int64N(1e13))
		case 1:
			e.Retry = time.Duration(rng.IntN(5000)) * time.Millisecond
		case 2:
			e.Retry = time.Duration(rng.IntN(int(time.Millisecond)))
		}
		if rng.IntN(5) == 0 {
			e.Comment = text(len(pieces), 5)
		}
		return e
	}

	var stream []byte
	var viaWriteTo bytes.Buffer
	var b browser
	var want []seen
	for range 3000 {
		e := randomEvent()
		var err error
		if stream, err = e.AppendTo(stream); err != nil {
			t.Fatalf("AppendTo(%+v): %v", e, err)
		}
		if _, err := e.WriteTo(&viaWriteTo); err != nil {
			t.Fatalf("WriteTo(%+v): %v", e, err)
		}
		if s, ok := b.receive(t, e); ok {
			want = append(want, s)
		}
	}
	if !bytes.Equal(viaWriteTo.Bytes(), stream) {
		t.Fatal("WriteTo and AppendTo wrote different streams")
	}
	if len(want) < 2000 {
		t.Fatalf("only %d dispatchable events generated", len(want))
	}
	for _, r := range readers[:2] {
		got, dec, err := decodeAll(t, r.wrap(bytes.NewReader(stream)))
		if err != io.EOF {
			t.Fatalf("%s: got error %v, want io.EOF", r.name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %d events, want %d", r.name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: event %d:\ngot  %q\nwant %q", r.name, i, got[i], want[i])
			}
		}
		if dec.LastEventID() != b.lastID || dec.Retry() != b.retry {
			t.Errorf("%s: LastEventID %q, Retry %v; want %q, %v", r.name, dec.LastEventID(), dec.Retry(), b.lastID, b.retry)
		}
	}
}
