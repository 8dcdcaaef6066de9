package event

import (
	"bufio"
	"bytes"
	"io"
	"time"
	"unicode/utf8"
)

// refDecoder is the Decoder as it was before it scanned its own buffer: a
// bufio.Reader, each line copied out, each event's data copied again. It is
// kept as the reference the Decoder is checked against (FuzzScanAgainstReference).
type refDecoder struct {
	// MaxEventSize, when positive, bounds the size of the event being read:
	// the bytes of its data and type so far plus those of the line being
	// read, field name included (comments before it and earlier events do
	// not count). Past it, Decode returns
	// [ErrEventTooLarge], and so does every later call: the stream cannot be
	// resynchronised, and an event is never cut short and dispatched.
	// Optional. Default value 0 (no bound).
	MaxEventSize int

	r      *bufio.Reader
	err    error // sticky: ErrEventTooLarge
	typStr string
	line   []byte
	data   []byte
	typ    []byte
	lastID string
	idBuf  []byte
	retry  time.Duration
	bom    bool // the start of the stream was checked for a BOM
	skipLF bool // the last line ended with CR, so a LF next is part of it
}

// newRefDecoder returns a refDecoder reading from r.
func newRefDecoder(r io.Reader) *refDecoder {
	return &refDecoder{r: bufio.NewReader(r)}
}

// Decode returns the next event a client would dispatch, as that client would
// see it: Type is "message" when the stream named none, Data is a string, ID
// is the last event ID (which may come from an earlier event), and Retry is
// the reconnection time the stream last set (zero if it set none). Comment is
// always empty.
//
// At the end of the stream Decode returns io.EOF, and discards an event
// whose empty line never came.
func (d *refDecoder) Decode() (Event, error) {
	if d.err != nil {
		return Event{}, d.err
	}
	for {
		line, err := d.readLine()
		if err != nil {
			// At the end of the stream, a line that never ended and
			// the event it belongs to are dropped.
			if err == ErrEventTooLarge {
				d.err = err
			}
			return Event{}, err
		}
		if len(line) > 0 {
			d.field(line)
			d.line = d.line[:0] // now in data or type, if anywhere
			if d.tooLarge(0) {
				d.err = ErrEventTooLarge
				return Event{}, d.err
			}
			continue
		}
		// An empty line: dispatch. The ID and type strings are made
		// again only when they change, since most streams repeat them
		// or leave them unset.
		if string(d.idBuf) != d.lastID {
			d.lastID = string(d.idBuf)
		}
		if len(d.data) == 0 {
			d.typ = d.typ[:0]
			continue
		}
		ev := Event{ID: d.lastID, Type: "message", Retry: d.retry}
		if len(d.typ) > 0 {
			if string(d.typ) != d.typStr {
				d.typStr = replaceInvalid(d.typ)
			}
			ev.Type = d.typStr
		}
		ev.Data = replaceInvalid(d.data[:len(d.data)-1])
		d.data, d.typ = d.data[:0], d.typ[:0]
		return ev, nil
	}
}

// LastEventID returns the last event ID string, as a client would send it in
// the Last-Event-ID header if it reconnected now.
func (d *refDecoder) LastEventID() string { return d.lastID }

// Retry returns the reconnection time the stream last set, or zero (or the
// value given to [Decoder.SetRetry]).
func (d *refDecoder) Retry() time.Duration { return d.retry }

// SetLastEventID sets the last event ID string, as if the stream had started
// with an "id" field carrying id: the events that follow report it until the
// stream sets another. A client that reconnects with a Last-Event-ID header
// starts its new stream's Decoder from the ID it sent. Bytes that are not
// UTF-8 become U+FFFD; an id containing NUL is ignored, as the field would be.
func (d *refDecoder) SetLastEventID(id string) {
	if bytes.IndexByte([]byte(id), 0) >= 0 {
		return
	}
	d.idBuf = append(d.idBuf[:0], id...)
	if !utf8.Valid(d.idBuf) {
		d.idBuf = []byte(replaceInvalid(d.idBuf))
	}
	d.lastID = string(d.idBuf)
}

// SetRetry sets the reconnection time, as if the stream had started with a
// "retry" field: events report it until the stream sets another. A client
// that reconnects starts its new stream's Decoder from the time it waited.
func (d *refDecoder) SetRetry(retry time.Duration) { d.retry = retry }

// tooLarge reports whether the event being read, with n more bytes of its
// current line, is past MaxEventSize.
func (d *refDecoder) tooLarge(n int) bool {
	return d.MaxEventSize > 0 && len(d.data)+len(d.typ)+len(d.line)+n > d.MaxEventSize
}

// field processes one non-empty line.
func (d *refDecoder) field(line []byte) {
	if line[0] == ':' {
		return
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "event":
		d.typ = append(d.typ[:0], value...)
	case "data":
		d.data = append(d.data, value...)
		d.data = append(d.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			d.idBuf = append(d.idBuf[:0], value...)
			if !utf8.Valid(d.idBuf) {
				d.idBuf = []byte(replaceInvalid(d.idBuf))
			}
		}
	case "retry":
		if ms, ok := parseDigits(value); ok {
			d.retry = ms
		}
	}
}

// readLine returns the next line without its terminator. The slice is valid
// until the next call. At the end of input it returns what is left of a
// line that never ended, with io.EOF.
func (d *refDecoder) readLine() ([]byte, error) {
	if !d.bom {
		if err := d.skipBOM(); err != nil {
			return nil, err
		}
	}
	d.line = d.line[:0]
	for {
		buf, err := d.r.Peek(1)
		if err != nil {
			return d.line, err
		}
		buf, _ = d.r.Peek(d.r.Buffered())
		if d.skipLF {
			d.skipLF = false
			if buf[0] == '\n' {
				d.r.Discard(1)
				continue
			}
		}
		i := lineEnd(buf)
		n := i
		if n < 0 {
			n = len(buf)
		}
		if d.tooLarge(n) {
			return nil, ErrEventTooLarge
		}
		if i < 0 {
			d.line = append(d.line, buf...)
			d.r.Discard(len(buf))
			continue
		}
		d.line = append(d.line, buf[:i]...)
		d.skipLF = buf[i] == '\r'
		d.r.Discard(i + 1)
		return d.line, nil
	}
}

// skipBOM drops one UTF-8 byte order mark at the start of the stream. It
// peeks one byte at a time so it never waits for bytes a short stream lacks.
func (d *refDecoder) skipBOM() error {
	bom := []byte{0xEF, 0xBB, 0xBF}
	for n := 1; n <= len(bom); n++ {
		b, err := d.r.Peek(n)
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				d.bom = true
				return nil
			}
			return err
		}
		if b[n-1] != bom[n-1] {
			d.bom = true
			return nil
		}
	}
	d.r.Discard(len(bom))
	d.bom = true
	return nil
}

// lineEnd returns the index of the first CR or LF in b, or -1. Two
// IndexByte scans, which are vectorised, the second only over what comes
// before the LF, cost a tenth of bytes.IndexAny's byte-by-byte loop on an
// event's line.
func lineEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	before := b
	if i >= 0 {
		before = b[:i]
	}
	if j := bytes.IndexByte(before, '\r'); j >= 0 {
		return j
	}
	return i
}
