package event

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// decoded is what a client saw of one stream: the events, then the error
// that ended it and the decoder's state.
type decoded struct {
	events []Event
	err    error
	lastID string
	retry  time.Duration
}

func (r decoded) String() string {
	return fmt.Sprintf("%#v err=%v lastID=%q retry=%v", r.events, r.err, r.lastID, r.retry)
}

// sizedReader hands over its input in reads of the sizes it cycles through.
type sizedReader struct {
	b     []byte
	sizes []int
	i     int
}

func (r *sizedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := r.sizes[r.i%len(r.sizes)]
	r.i++
	n = min(n, len(p), len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

const maxEvents = 1 << 16

func decodeRef(r io.Reader, max int, lastID string) decoded {
	d := newRefDecoder(r)
	d.MaxEventSize = max
	d.SetLastEventID(lastID)
	var out decoded
	for len(out.events) < maxEvents {
		e, err := d.Decode()
		if err != nil {
			out.err = err
			break
		}
		out.events = append(out.events, e)
	}
	out.lastID, out.retry = d.LastEventID(), d.Retry()
	return out
}

// newSmallDecoder returns a Decoder whose buffer is bufSize bytes, so that
// lines cross refills of it at every place.
func newSmallDecoder(r io.Reader, bufSize int) *Decoder {
	d := NewDecoder(r)
	if bufSize > 0 {
		d.buf = make([]byte, bufSize)
	}
	return d
}

func decodeNew(r io.Reader, bufSize, max int, lastID string) decoded {
	d := newSmallDecoder(r, bufSize)
	d.MaxEventSize = max
	d.SetLastEventID(lastID)
	var out decoded
	for len(out.events) < maxEvents {
		e, err := d.Decode()
		if err != nil {
			out.err = err
			break
		}
		out.events = append(out.events, e)
	}
	out.lastID, out.retry = d.LastEventID(), d.Retry()
	return out
}

// scanNew reads r with Scan, copying each view at once, and checks that a
// view's bytes stay as they were until the next Scan.
func scanNew(t *testing.T, r io.Reader, bufSize, max int, lastID string) decoded {
	t.Helper()
	d := newSmallDecoder(r, bufSize)
	d.MaxEventSize = max
	d.SetLastEventID(lastID)
	var out decoded
	for len(out.events) < maxEvents && d.Scan() {
		v := d.View()
		e := v.Event()
		if d.LastEventID() != e.ID || d.Retry() != e.Retry {
			t.Fatalf("view %+v, but LastEventID %q, Retry %v", e, d.LastEventID(), d.Retry())
		}
		if w := d.View().Event(); fmt.Sprint(w) != fmt.Sprint(e) {
			t.Fatalf("the view changed between two calls: %+v, then %+v", e, w)
		}
		out.events = append(out.events, e)
	}
	if out.err = d.Err(); out.err == nil {
		out.err = io.EOF
	}
	out.lastID, out.retry = d.LastEventID(), d.Retry()
	return out
}

func checkAgainstReference(t *testing.T, stream []byte, max int, lastID string, sizes []int) {
	t.Helper()
	want := decodeRef(bytes.NewReader(stream), max, lastID)
	for _, bufSize := range []int{0, 3, 4, 16, 64} {
		got := []decoded{
			decodeNew(bytes.NewReader(stream), bufSize, max, lastID),
			scanNew(t, bytes.NewReader(stream), bufSize, max, lastID),
			scanNew(t, iotest.OneByteReader(bytes.NewReader(stream)), bufSize, max, lastID),
			scanNew(t, &sizedReader{b: stream, sizes: sizes}, bufSize, max, lastID),
			decodeNew(iotest.DataErrReader(&sizedReader{b: stream, sizes: sizes}), bufSize, max, lastID),
		}
		for i, g := range got {
			if g.String() != want.String() {
				t.Fatalf("buffer %d, way %d:\ngot  %v\nwant %v", bufSize, i, g, want)
			}
		}
	}
}

// TestScanAgainstReference: Scan and Decode see what the reference decoder
// sees, however the input is cut into reads and the buffer into refills.
func TestScanAgainstReference(t *testing.T) {
	t.Parallel()
	streams := []string{
		"", "\ufeff", "\xef\xbb", "\ufeffdata: 1\n\n", "data: a\r\ndata: b\r\n\r\n", "data: a\rdata: b\r\r",
		"id: 1\ndata: x\n\nid: 2\ndata: y", "event: t\ndata\n\nevent: u\n\ndata: z\n\n", "retry: 12\nretry: x\ndata: \xff\xfe\n\n",
		"data: " + strings.Repeat("x", 300) + "\n\n" + "data: 1\ndata: 2\ndata: 3\n\n", ":" + strings.Repeat("c", 100) + "\ndata: 1\n\n",
		"event: \xc3\ndata: é\r\n\r\nid: \x00\ndata: 1\n\n", "id: a\xffb\ndata: 1\n\n", "data: 1\r\r\n\n",
	}
	for _, s := range streams {
		for _, max := range []int{0, 1, 5, 12, 64} {
			for _, lastID := range []string{"", "7"} {
				checkAgainstReference(t, []byte(s), max, lastID, []int{1, 2, 7})
			}
		}
	}
}

// FuzzScanAgainstReference: on any input, any MaxEventSize, any way of
// cutting it into reads and refills, Scan and Decode dispatch exactly what
// the reference decoder does, end with the same error and leave the same
// last event ID and retry.
func FuzzScanAgainstReference(f *testing.F) {
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n"), 0, "", byte(1), byte(3))
	f.Add([]byte("\ufeffid: 1\nevent: t\ndata: x\r\rdata: y"), 8, "0", byte(2), byte(5))
	f.Add([]byte("retry: 100\n: c\ndata:\xff\n\n"), 3, "a", byte(7), byte(1))
	f.Fuzz(func(t *testing.T, stream []byte, max int, lastID string, s1, s2 byte) {
		if len(stream) > 1<<16 || max > 1<<16 {
			return
		}
		checkAgainstReference(t, stream, max, lastID, []int{int(s1%32) + 1, int(s2%32) + 1})
	})
}
