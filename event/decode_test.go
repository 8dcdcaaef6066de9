package event_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/echosse/echo-sse/event"
)

// readers wraps a stream in readers that hand it over in different pieces,
// none of which may change what is decoded.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data with EOF", func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) }},
}

// fixture is the expected outcome of decoding ../testdata/decode/<name>.txt,
// written by hand from the WHATWG rules in <name>.json.
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

func loadFixture(t testing.TB, path string) ([]byte, []seen, fixture) {
	t.Helper()
	stream, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(strings.TrimSuffix(path, ".txt") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var f fixture
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	want := []seen{}
	for _, e := range f.Events {
		want = append(want, seen{Type: e.Type, Data: e.Data, ID: e.ID, Retry: time.Duration(e.RetryMs) * time.Millisecond})
	}
	return stream, want, f
}

func decodeFixtures(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "decode", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 20 {
		t.Fatalf("found %d decode fixtures, want at least 20", len(paths))
	}
	return paths
}

func TestDecodeFixtures(t *testing.T) {
	t.Parallel()
	for _, path := range decodeFixtures(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stream, want, f := loadFixture(t, path)
			for _, r := range readers {
				got, d, err := decodeAll(t, r.wrap(bytes.NewReader(stream)))
				if err != io.EOF {
					t.Errorf("%s: got error %v, want io.EOF", r.name, err)
				}
				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
					t.Errorf("%s:\ngot  %q\nwant %q", r.name, got, want)
				}
				if d.LastEventID() != f.LastEventID {
					t.Errorf("%s: LastEventID(): got %q, want %q", r.name, d.LastEventID(), f.LastEventID)
				}
				if want := time.Duration(f.RetryMs) * time.Millisecond; d.Retry() != want {
					t.Errorf("%s: Retry(): got %v, want %v", r.name, d.Retry(), want)
				}
			}
		})
	}
}

// Every fixture has its expectations beside it, and the other way round.
func TestDecodeFixturesPaired(t *testing.T) {
	t.Parallel()
	jsons, err := filepath.Glob(filepath.Join("..", "testdata", "decode", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	txts := decodeFixtures(t)
	if len(jsons) != len(txts) {
		t.Errorf("got %d .json files for %d .txt files, want one each", len(jsons), len(txts))
	}
	for _, j := range jsons {
		if _, err := os.Stat(strings.TrimSuffix(j, ".json") + ".txt"); err != nil {
			t.Errorf("%s has no stream: %v", j, err)
		}
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	msg := func(data string) seen { return seen{Type: "message", Data: data} }
	tests := []struct {
		name string
		give string
		want []seen
	}{
		// Byte order marks.
		{"bom stripped", "\ufeffdata: 1\n\n", []seen{msg("1")}},
		{"second bom kept", "\ufeff\ufeffdata: 1\n\ndata: 2\n\n", []seen{msg("2")}},
		{"bom after start kept", "data: 1\n\n\ufeffdata: 2\n\n", []seen{msg("1")}},
		{"bom on the line after a stripped one kept", "\ufeffdata: 1\n\ufeffdata: 2\n\n", []seen{msg("1")}},
		{"bom on the event after a stripped one kept", "\ufeff\n\ufeffdata: 1\n\ndata: 2\n\n", []seen{msg("2")}},
		{"partial bom kept", "\xef\xbbdata: 1\n\ndata: 2\n\n", []seen{msg("2")}},
		{"bom alone", "\ufeff", nil},
		{"bom then blank line", "\ufeff\ndata: 1\n\n", []seen{msg("1")}},
		{"bom then comment", "\ufeff:c\ndata: 1\n\n", []seen{msg("1")}},
		{"bom inside data", "data: \ufeff\n\n", []seen{msg("\ufeff")}},

		// Line endings.
		{"LF", "data: a\ndata: b\n\n", []seen{msg("a\nb")}},
		{"CR", "data: a\rdata: b\r\r", []seen{msg("a\nb")}},
		{"CRLF", "data: a\r\ndata: b\r\n\r\n", []seen{msg("a\nb")}},
		{"LF CR is two line ends", "data: a\n\r", []seen{msg("a")}},
		{"CR CR LF", "data: a\r\r\ndata: b\n\n", []seen{msg("a"), msg("b")}},

		// Comments and fields.
		{"comment ignored", ":data: x\ndata: 1\n: another\n\n", []seen{msg("1")}},
		{"comment only", ": ping\n\n", nil},
		{"one leading space stripped", "data:  x\n\n", []seen{msg(" x")}},
		{"no leading space", "data:x\n\n", []seen{msg("x")}},
		{"tab not stripped", "data:\tx\n\n", []seen{msg("\tx")}},
		{"data without colon", "data\n\n", []seen{msg("")}},
		{"data without colon twice", "data\ndata\n\n", []seen{msg("\n")}},
		{"empty data dispatched", "event: x\ndata:\n\n", []seen{{Type: "x", Data: ""}}},
		{"Data is unknown", "Data: x\n\n", nil},
		{"space before colon is unknown", "data :x\n\n", nil},
		{"leading space in name is unknown", " data: x\n\n", nil},
		{"unknown field", "foo: x\ndata: 1\n\n", []seen{msg("1")}},
		{"only first colon splits", "data: a: b\n\n", []seen{msg("a: b")}},

		// Event type.
		{"type", "event: t\ndata: 1\n\n", []seen{{Type: "t", Data: "1"}}},
		{"type empty is message", "event:\ndata: 1\n\n", []seen{msg("1")}},
		{"type without colon is message", "event\ndata: 1\n\n", []seen{msg("1")}},
		{"type last one wins", "event: a\nevent: b\ndata: 1\n\n", []seen{{Type: "b", Data: "1"}}},
		{"type reset after dispatch", "event: a\ndata: 1\n\ndata: 2\n\n", []seen{{Type: "a", Data: "1"}, msg("2")}},
		{"type only not dispatched", "event: x\n\ndata: 1\n\n", []seen{msg("1")}},

		// ID.
		{"id", "id: 1\ndata: a\n\n", []seen{{Type: "message", Data: "a", ID: "1"}}},
		{"id sticky", "id: 1\ndata: a\n\ndata: b\n\n", []seen{{Type: "message", Data: "a", ID: "1"}, {Type: "message", Data: "b", ID: "1"}}},
		{"id empty resets", "id: 1\ndata: a\n\nid:\ndata: b\n\n", []seen{{Type: "message", Data: "a", ID: "1"}, msg("b")}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n", []seen{{Type: "message", Data: "a", ID: "1"}, {Type: "message", Data: "b", ID: "1"}}},
		{"id without data sets last id", "id: 5\n\ndata: a\n\n", []seen{{Type: "message", Data: "a", ID: "5"}}},
		{"id set after data in same event", "data: a\nid: 7\n\n", []seen{{Type: "message", Data: "a", ID: "7"}}},

		// Retry.
		{"retry", "retry: 1500\ndata: a\n\n", []seen{{Type: "message", Data: "a", Retry: 1500 * time.Millisecond}}},
		{"retry kept", "retry: 5\n\ndata: a\n\n", []seen{{Type: "message", Data: "a", Retry: 5 * time.Millisecond}}},
		{"retry -1 ignored", "retry: 5\nretry: -1\ndata: a\n\n", []seen{{Type: "message", Data: "a", Retry: 5 * time.Millisecond}}},
		{"retry 1.5 ignored", "retry: 1.5\ndata: a\n\n", []seen{msg("a")}},
		{"retry leading space ignored", "retry:  10\ndata: a\n\n", []seen{msg("a")}},
		{"retry 10ms ignored", "retry: 10ms\ndata: a\n\n", []seen{msg("a")}},
		{"retry empty ignored", "retry: 10\nretry:\ndata: a\n\n", []seen{{Type: "message", Data: "a", Retry: 10 * time.Millisecond}}},
		{"retry zero", "retry: 10\nretry: 0\ndata: a\n\n", []seen{msg("a")}},

		// End of stream.
		{"trailing event dropped", "data: a\n\ndata: b\n", []seen{msg("a")}},
		{"unterminated line dropped", "data: a\n\ndata: b", []seen{msg("a")}},
		{"trailing CR ends the event", "data: a\r\r", []seen{msg("a")}},
		{"empty stream", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, r := range readers {
				got, _, err := decodeAll(t, r.wrap(strings.NewReader(tt.give)))
				if err != io.EOF {
					t.Errorf("%s: got error %v, want io.EOF", r.name, err)
				}
				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
					t.Errorf("%s:\ngot  %q\nwant %q", r.name, got, tt.want)
				}
			}
		})
	}
}

func TestDecodeInvalidUTF8(t *testing.T) {
	t.Parallel()
	const r = "\ufffd"
	tests := []struct {
		name string
		give string
		want string
	}{
		{"truncated three-byte", "\xe2\x82", r},
		{"two invalid bytes", "\xff\xff", r + r},
		{"lead then ASCII", "a\xc3(b", "a" + r + "(b"},
		{"lone continuation", "\x80", r},
		{"overlong", "\xc0\x80", r + r},
		{"overlong three-byte", "\xe0\x80\x80", r + r + r},
		{"surrogate", "\xed\xa0\x80", r + r + r},
		{"above U+10FFFF", "\xf4\x90\x80\x80", r + r + r + r},
		{"truncated four-byte", "\xf0\x9f\x98", r},
		{"truncated four-byte then ASCII", "\xf0\x9f\x98x", r + "x"},
		{"valid around invalid", "é\xffü", "é" + r + "ü"},
		{"U+FFFD itself", "\ufffd", r},
		{"valid four-byte", "😀", "😀"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stream := "event: " + tt.give + "\nid: " + tt.give + "\ndata: " + tt.give + "\ndata: " + tt.give + "\n\n"
			got, d := decodeString(t, stream)
			want := seen{Type: tt.want, Data: tt.want + "\n" + tt.want, ID: tt.want}
			if len(got) != 1 || got[0] != want {
				t.Errorf("got %q, want [%q]", got, want)
			}
			if d.LastEventID() != tt.want {
				t.Errorf("LastEventID(): got %q, want %q", d.LastEventID(), tt.want)
			}
		})
	}
}

func TestDecodeRetryValues(t *testing.T) {
	t.Parallel()
	const before = 1234 * time.Millisecond
	tests := []struct {
		give string
		want time.Duration
	}{
		{"0", 0},
		{"1", time.Millisecond},
		{"3000", 3 * time.Second},
		{"007", 7 * time.Millisecond},
		{"9223372036854", 9223372036854 * time.Millisecond},
		{"99999999999999999999999999", time.Duration(math.MaxInt64/int64(time.Millisecond)) * time.Millisecond},
		{"-1", before},
		{"+1", before},
		{"1.5", before},
		{" 10", before},
		{"10 ", before},
		{"10ms", before},
		{"1e3", before},
		{"0x10", before},
		{"", before},
		{"\uff15", before}, // FULLWIDTH DIGIT FIVE
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.give), func(t *testing.T) {
			t.Parallel()
			got, d := decodeString(t, "retry: 1234\nretry: "+tt.give+"\ndata: x\n\n")
			if d.Retry() != tt.want {
				t.Errorf("Retry(): got %v, want %v", d.Retry(), tt.want)
			}
			if len(got) != 1 || got[0].Retry != tt.want {
				t.Errorf("event Retry: got %+v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeAccessors(t *testing.T) {
	t.Parallel()
	d := event.NewDecoder(strings.NewReader("retry: 100\nid: a\ndata: 1\n\nretry: 200\n\nid: b\n\nid: c\ndata: never dispatched"))
	if d.Retry() != 0 || d.LastEventID() != "" {
		t.Fatalf("new Decoder: Retry %v, LastEventID %q; want 0, %q", d.Retry(), d.LastEventID(), "")
	}
	e, err := d.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if got := seenFrom(t, e); got != (seen{Type: "message", Data: "1", ID: "a", Retry: 100 * time.Millisecond}) {
		t.Errorf("got %+v", got)
	}
	if d.Retry() != 100*time.Millisecond || d.LastEventID() != "a" {
		t.Errorf("after first event: Retry %v, LastEventID %q; want 100ms, %q", d.Retry(), d.LastEventID(), "a")
	}
	if _, err := d.Decode(); err != io.EOF {
		t.Fatalf("got error %v, want io.EOF", err)
	}
	// The retry field takes effect at once, an id at the blank line, and
	// the id of an event the stream never ended is not kept.
	if d.Retry() != 200*time.Millisecond || d.LastEventID() != "b" {
		t.Errorf("at EOF: Retry %v, LastEventID %q; want 200ms, %q", d.Retry(), d.LastEventID(), "b")
	}
	for range 3 {
		if e, err := d.Decode(); err != io.EOF {
			t.Errorf("after EOF: got %+v, %v; want io.EOF", e, err)
		}
	}
}

// chunkReader returns its chunks one per Read.
type chunkReader struct{ chunks []string }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if r.chunks[0] = r.chunks[0][n:]; r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// A CR that ends one read and a LF that starts the next are one line end.
func TestDecodeCRLFAcrossReads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give []string
		want []seen
	}{
		{"CR | LF", []string{"data: a\r", "\ndata: b\r\n\r\n"}, []seen{{Type: "message", Data: "a\nb"}}},
		{"every CR | LF", []string{"data: a\r", "\n", "data: b\r", "\n", "\r", "\n"}, []seen{{Type: "message", Data: "a\nb"}}},
		{"CR | CR", []string{"data: a\r", "\r", "data: b\r\r"}, []seen{{Type: "message", Data: "a"}, {Type: "message", Data: "b"}}},
		{"CR | LF LF", []string{"data: a\r", "\n\n"}, []seen{{Type: "message", Data: "a"}}},
		{"empty reads between", []string{"data: a\r", "", "\n", "", "\n"}, []seen{{Type: "message", Data: "a"}}},
		{"bom split", []string{"\xef", "\xbb", "\xbf", "data: a\n\n"}, []seen{{Type: "message", Data: "a"}}},
		{"utf8 split", []string{"data: \xe2", "\x82", "\xac\n\n"}, []seen{{Type: "message", Data: "€"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := decodeAll(t, &chunkReader{chunks: append([]string(nil), tt.give...)})
			if err != io.EOF {
				t.Errorf("got error %v, want io.EOF", err)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecodeReaderError(t *testing.T) {
	t.Parallel()
	errRead := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("data: 1\n\ndata: 2\n"), iotest.ErrReader(errRead))
	d := event.NewDecoder(r)
	e, err := d.Decode()
	if err != nil {
		t.Fatalf("first Decode: %v", err)
	}
	if got := seenFrom(t, e); got.Data != "1" {
		t.Errorf("got %q, want %q", got.Data, "1")
	}
	if _, err := d.Decode(); !errors.Is(err, errRead) {
		t.Errorf("second Decode: got error %v, want %v", err, errRead)
	}

	if _, err := event.NewDecoder(iotest.ErrReader(errRead)).Decode(); !errors.Is(err, errRead) {
		t.Errorf("failing reader: got error %v, want %v", err, errRead)
	}
}

func TestDecodeLongLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100_000)
	for _, r := range readers[:3] {
		got, _, err := decodeAll(t, r.wrap(strings.NewReader("data: "+long+"\nid: "+long+"\n\n")))
		if err != io.EOF {
			t.Errorf("%s: got error %v, want io.EOF", r.name, err)
		}
		if len(got) != 1 || got[0].Data != long || got[0].ID != long {
			t.Errorf("%s: got %d events, want 1 with a %d-byte data and id", r.name, len(got), len(long))
		}
	}
}

type decoded struct {
	e   event.Event
	err error
}

func decodeAsync(d *event.Decoder) <-chan decoded {
	ch := make(chan decoded, 1)
	go func() {
		e, err := d.Decode()
		ch <- decoded{e, err}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan decoded, what string) decoded {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Decode still blocked after 10s", what)
		return decoded{}
	}
}

// Decode returns an event as soon as its blank line has arrived, without
// waiting for bytes the stream has not sent yet.
func TestDecodeDoesNotWaitForMoreInput(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	next := make(chan struct{})
	abort := make(chan struct{})
	writerDone := make(chan struct{})
	t.Cleanup(func() {
		close(abort)
		pr.CloseWithError(errors.New("test over"))
		<-writerDone
	})
	go func() {
		defer close(writerDone)
		write := func(pieces ...string) bool {
			for _, p := range pieces {
				if _, err := io.WriteString(pw, p); err != nil {
					return false
				}
			}
			return true
		}
		wait := func() bool {
			select {
			case <-next:
				return true
			case <-abort:
				return false
			}
		}
		if !write(":\n", "data: 1", "\n", "\n") || !wait() {
			return
		}
		// The event ends with a CR; the LF after it has not been sent.
		if !write("data: 2\r\n\r") || !wait() {
			return
		}
		if !write("\n") || !wait() {
			return
		}
		pw.Close()
	}()

	d := event.NewDecoder(pr)
	r := receive(t, decodeAsync(d), "first event")
	if r.err != nil || r.e.Data != "1" {
		t.Fatalf("got %+v, %v; want data %q", r.e, r.err, "1")
	}
	next <- struct{}{}
	r = receive(t, decodeAsync(d), "event ended by CR")
	if r.err != nil || r.e.Data != "2" {
		t.Fatalf("got %+v, %v; want data %q", r.e, r.err, "2")
	}
	next <- struct{}{}
	ch := decodeAsync(d)
	select {
	case r := <-ch:
		t.Fatalf("Decode returned %+v, %v before the stream ended; want it to wait", r.e, r.err)
	case <-time.After(20 * time.Millisecond):
	}
	next <- struct{}{}
	if r := receive(t, ch, "end of stream"); r.err != io.EOF {
		t.Fatalf("got %+v, %v; want io.EOF", r.e, r.err)
	}
}

// A stream that starts with a comment, then stalls, still delivers the
// events before the stall: the BOM check looks no further than it must.
func TestDecodeShortStreamStart(t *testing.T) {
	t.Parallel()
	for _, start := range []string{":\n", "\n", "d", "data: 1\n\n", "\ufeffdata: 1\n\n"} {
		t.Run(fmt.Sprintf("%q", start), func(t *testing.T) {
			t.Parallel()
			pr, pw := io.Pipe()
			writerDone := make(chan struct{})
			release := make(chan struct{})
			abort := make(chan struct{})
			t.Cleanup(func() {
				close(abort)
				pr.CloseWithError(errors.New("test over"))
				<-writerDone
			})
			go func() {
				defer close(writerDone)
				if _, err := io.WriteString(pw, start); err != nil {
					return
				}
				select {
				case <-release:
				case <-abort:
					return
				}
				io.WriteString(pw, "\n")
				pw.Close()
			}()
			d := event.NewDecoder(pr)
			ch := decodeAsync(d)
			if strings.HasSuffix(start, "\n\n") {
				r := receive(t, ch, "event before stall")
				close(release)
				if r.err != nil || r.e.Data != "1" {
					t.Fatalf("got %+v, %v; want data %q", r.e, r.err, "1")
				}
				return
			}
			// Nothing to dispatch yet: Decode must wait, not fail.
			select {
			case r := <-ch:
				t.Fatalf("Decode returned %+v, %v; want it to wait", r.e, r.err)
			case <-time.After(20 * time.Millisecond):
			}
			close(release)
			if r := receive(t, ch, "end of stream"); r.err != io.EOF {
				t.Fatalf("got %+v, %v; want io.EOF", r.e, r.err)
			}
		})
	}
}

// benchStream is 1000 events of about 100 bytes of JSON, each with an ID
// and a type, and a heartbeat comment every 50.
func benchStream(b *testing.B) []byte {
	var stream []byte
	for i := range 1000 {
		var err error
		stream, err = event.Event{
			ID:   fmt.Sprint(i),
			Type: "quote",
			Data: fmt.Sprintf(`{"symbol":"ECHO","price":%d.%02d,"volume":%d,"exchange":"XSSE","ts":"2024-06-01T12:00:00Z"}`, 17+i%5, i%100, 1000+i),
		}.AppendTo(stream)
		if err != nil {
			b.Fatal(err)
		}
		if i%50 == 0 {
			stream = append(stream, ": heartbeat\n\n"...)
		}
	}
	return stream
}

// BenchmarkDecode, BenchmarkScan and BenchmarkBufioLines read the same
// stream: Decode's strings, Scan's borrowed views, and a bare bufio.Reader
// splitting lines, the practical limit. Each reports ns per event.
func BenchmarkDecode(b *testing.B) {
	stream := benchStream(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	r := bytes.NewReader(stream)
	for b.Loop() {
		r.Reset(stream)
		d := event.NewDecoder(r)
		n := 0
		for {
			_, err := d.Decode()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("decoded %d events, want 1000", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}

func BenchmarkScan(b *testing.B) {
	stream := benchStream(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	r := bytes.NewReader(stream)
	for b.Loop() {
		r.Reset(stream)
		d := event.NewDecoder(r)
		n := 0
		for d.Scan() {
			if len(d.View().Data) < 90 {
				b.Fatalf("event %d: data %q", n, d.View().Data)
			}
			n++
		}
		if d.Err() != nil || n != 1000 {
			b.Fatalf("scanned %d events, want 1000; error %v", n, d.Err())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}

func BenchmarkBufioLines(b *testing.B) {
	stream := benchStream(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	r := bytes.NewReader(stream)
	br := bufio.NewReader(r)
	for b.Loop() {
		r.Reset(stream)
		br.Reset(r)
		n := 0
		for {
			line, err := br.ReadSlice('\n')
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if bytes.HasPrefix(line, []byte("data:")) {
				n++
			}
		}
		if n != 1000 {
			b.Fatalf("split %d data lines, want 1000", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}

func TestDecodeSetLastEventIDAndRetry(t *testing.T) {
	t.Parallel()
	for _, r := range readers {
		d := event.NewDecoder(r.wrap(strings.NewReader("data: a\n\nretry: 7\nid: 2\ndata: b\n\nid:\ndata: c\n\n")))
		d.SetLastEventID("1")
		d.SetRetry(time.Second)
		if d.LastEventID() != "1" || d.Retry() != time.Second {
			t.Fatalf("%s: LastEventID %q, Retry %v; want %q, 1s", r.name, d.LastEventID(), d.Retry(), "1")
		}
		var got []seen
		for {
			e, err := d.Decode()
			if err != nil {
				break
			}
			got = append(got, seenFrom(t, e))
		}
		want := []seen{
			{Type: "message", Data: "a", ID: "1", Retry: time.Second},
			{Type: "message", Data: "b", ID: "2", Retry: 7 * time.Millisecond},
			{Type: "message", Data: "c", ID: "", Retry: 7 * time.Millisecond},
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("%s:\ngot  %q\nwant %q", r.name, got, want)
		}
	}
	d := event.NewDecoder(strings.NewReader(""))
	d.SetLastEventID("a\x00")
	if d.LastEventID() != "" {
		t.Errorf("an ID with NUL: got %q, want it ignored", d.LastEventID())
	}
	d.SetLastEventID("a\xffb")
	if d.LastEventID() != "a\ufffdb" {
		t.Errorf("an ID that is not UTF-8: got %q, want %q", d.LastEventID(), "a\ufffdb")
	}
}

func TestDecodeMaxEventSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    string
		max     int
		want    []seen
		wantErr error
	}{
		{"fits exactly", "data: 12345\n\n", 11, []seen{{Type: "message", Data: "12345"}}, io.EOF},
		{"data over", "data: 123456\n\n", 11, nil, event.ErrEventTooLarge},
		{"many data lines over", "data: 12\ndata: 12\ndata: 12\n\n", 12, nil, event.ErrEventTooLarge},
		{"a line that never ends", "data: " + strings.Repeat("x", 1000), 100, nil, event.ErrEventTooLarge},
		{"the limit is per event", "data: 1234\n\ndata: 1234\n\ndata: 123456789\n\n", 12,
			[]seen{{Type: "message", Data: "1234"}, {Type: "message", Data: "1234"}}, event.ErrEventTooLarge},
		{"comments do not count", ": " + strings.Repeat("x", 3) + "\n: yyy\ndata: 1\n\n", 8, []seen{{Type: "message", Data: "1"}}, io.EOF},
		{"zero is no bound", "data: " + strings.Repeat("x", 1000) + "\n\n", 0, []seen{{Type: "message", Data: strings.Repeat("x", 1000)}}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, r := range readers {
				d := event.NewDecoder(r.wrap(strings.NewReader(tt.give)))
				d.MaxEventSize = tt.max
				var got []seen
				var err error
				for {
					var e event.Event
					if e, err = d.Decode(); err != nil {
						break
					}
					got = append(got, seenFrom(t, e))
				}
				if err != tt.wantErr {
					t.Errorf("%s: got error %v, want %v", r.name, err, tt.wantErr)
				}
				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
					t.Errorf("%s:\ngot  %q\nwant %q", r.name, got, tt.want)
				}
				if tt.wantErr != io.EOF {
					if _, err := d.Decode(); err != tt.wantErr {
						t.Errorf("%s: the error is not sticky: got %v", r.name, err)
					}
				}
			}
		})
	}
}

// An event whose ID and type repeat the last ones costs its data string and
// the interface holding it, nothing more.
func TestDecodeAllocs(t *testing.T) {
	var stream []byte
	for range 100 {
		stream = append(stream, "event: quote\nid: 7\ndata: {\"price\":17}\n\n"...)
	}
	r := bytes.NewReader(stream)
	d := event.NewDecoder(r)
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := d.Decode(); err != nil {
			r.Reset(stream)
			d = event.NewDecoder(r)
		}
	})
	if allocs > 2.5 {
		t.Errorf("got %.1f allocations per event, want at most 2", allocs)
	}
}

// Scan allocates nothing, whatever the events' IDs and types: the view lends
// the Decoder's buffers.
func TestScanAllocs(t *testing.T) {
	var stream []byte
	for i := range 100 {
		stream = fmt.Appendf(stream, "event: t%d\nid: %d\ndata: {\"price\":17}\ndata: 2\n\ndata: {\"price\":18}\n\n", i%3, i)
	}
	r := bytes.NewReader(stream)
	d := event.NewDecoder(r)
	allocs := testing.AllocsPerRun(500, func() {
		if !d.Scan() {
			r.Reset(stream)
			d.Scan() // at the end, the reader is rewound and Scan reads on
		}
	})
	if allocs != 0 {
		t.Errorf("got %.2f allocations per event, want 0", allocs)
	}
}
