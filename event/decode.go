package event

import (
	"bytes"
	"errors"
	"io"
	"time"
	"unicode/utf8"
)

// A Decoder reads events from a stream the way a browser's EventSource does,
// following the WHATWG HTML standard ("interpret an event stream"):
//
//   - one leading UTF-8 byte order mark is skipped, and bytes that are not
//     UTF-8 become U+FFFD;
//   - lines end at CRLF, LF or a lone CR;
//   - lines starting with a colon are comments and are skipped;
//   - a field's value loses exactly one leading space;
//   - unknown fields, "id" values containing NUL, and "retry" values that are
//     not all ASCII digits are ignored;
//   - the last event ID carries over from one event to the next;
//   - an event with no data lines is not dispatched, and neither is an event
//     the stream ends before its empty line.
//
// There are two ways to read events, which may be mixed. [Decoder.Decode]
// returns each as an [Event] of strings, safe to keep. [Decoder.Scan], in
// the manner of bufio.Scanner, advances to the next event and leaves it in
// the Decoder, where [Decoder.View] lends its bytes until the next call:
// nothing is allocated, and an event whose data is one line is not even
// copied. Decode is Scan followed by the copies.
//
// A Decoder reads its input into a buffer of its own (4 KiB; a line that
// crosses the buffer's end is gathered in a second buffer, which grows as
// needed), so it may read past the last event it returns.
type Decoder struct {
	// MaxEventSize, when positive, bounds the size of the event being read:
	// the bytes of its data and type so far plus those of the line being
	// read, field name included (comments before it and earlier events do
	// not count). Past it, Decode returns (and Scan reports)
	// [ErrEventTooLarge], and so does every later call: the stream cannot be
	// resynchronised, and an event is never cut short and dispatched.
	// Optional. Default value 0 (no bound).
	MaxEventSize int

	rd     io.Reader
	buf    []byte // the input; buf[r:w] is not read yet
	r, w   int
	rerr   error // the reader's error, returned once buf is read
	err    error // sticky: ErrEventTooLarge
	scanEr error // what ended the last Scan; io.EOF at the end
	bom    bool  // the start of the stream was checked for a BOM
	skipLF bool  // the last line ended with CR, so a LF next is part of it

	msg  []byte // "message"
	line []byte // a line begun before buf was refilled
	cr   int    // the index in buf of the next CR, d.w if none; < d.r if not known

	// The event being read. Its data is either one line lent by buf
	// (dataRef, while ref is true) or gathered in data, each line ending
	// in LF; dataLen counts the bytes either way, LFs included.
	dataRef []byte
	ref     bool
	data    []byte
	dataLen int
	typ     []byte
	idBuf   []byte // the last event ID buffer
	retry   time.Duration

	lastIDb []byte // the last event ID string, as bytes, set at each dispatch
	lastID  string // lastIDb as a string, made again only when it changes
	typStr  string // the last type Decode returned, reused while it repeats
	fixed   []byte // data with invalid UTF-8 replaced
	// The event dispatched, lent until the next call: its data (vData),
	// its type (typ, or "message" when vNamed is false), ID (lastIDb) and
	// retry (vRetry). The event's state is reset when the next call starts.
	vData  []byte
	vRetry time.Duration
	vNamed bool
	vOK    bool // an event was dispatched and not yet reset
}

// View is an event [Decoder.Scan] dispatched, as a client would see it. Its
// slices are lent by the Decoder: they hold their bytes only until its next
// Scan or Decode call, and must not be modified. Copy what must be kept
// (string(v.Data) is one allocation; [View.Event] copies all).
type View struct {
	// Type is the event type: "message" when the stream named none.
	Type []byte

	// Data is the data lines joined with LF.
	Data []byte

	// ID is the last event ID, which may come from an earlier event.
	ID []byte

	// Retry is the reconnection time the stream last set (zero if it set
	// none).
	Retry time.Duration
}

// Event returns v as an [Event] of strings, which may be kept: Data is a
// string, Comment empty.
func (v View) Event() Event {
	return Event{ID: string(v.ID), Type: string(v.Type), Data: string(v.Data), Retry: v.Retry}
}

// ErrEventTooLarge is returned by [Decoder.Decode] for an event longer than
// [Decoder.MaxEventSize].
var ErrEventTooLarge = errors.New("event: event is longer than MaxEventSize")

// decodeBufSize is the size of a Decoder's input buffer, bufio's default.
const decodeBufSize = 4096

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	// One allocation holds the buffer and the type of unnamed events,
	// each Decoder's own, so that a View modified against its rules
	// spoils no other Decoder.
	b := make([]byte, decodeBufSize+len("message"))
	copy(b[decodeBufSize:], "message")
	return &Decoder{rd: r, buf: b[:decodeBufSize:decodeBufSize], msg: b[decodeBufSize:], cr: -1}
}

// Scan advances to the next event a client would dispatch, which [Decoder.View]
// then returns. It returns false at the end of the stream, discarding an
// event whose empty line never came, or on an error, which [Decoder.Err]
// returns. After [ErrEventTooLarge], every later Scan returns false; after
// an error from the reader, a later Scan reads on.
func (d *Decoder) Scan() bool {
	d.scanEr = d.next()
	return d.scanEr == nil
}

// Err returns the error that made [Decoder.Scan] return false, or nil if it
// was the end of the stream (or Scan has not returned false).
func (d *Decoder) Err() error {
	if d.scanEr == io.EOF {
		return nil
	}
	return d.scanEr
}

// View returns the event the last successful [Decoder.Scan] dispatched. Its
// slices are valid until the next Scan or Decode call.
func (d *Decoder) View() View {
	if !d.vOK {
		return View{}
	}
	typ := d.msg
	if d.vNamed {
		typ = d.typ
	}
	return View{Type: typ, Data: d.vData, ID: d.lastIDb, Retry: d.vRetry}
}

// Decode returns the next event a client would dispatch, as that client would
// see it: Type is "message" when the stream named none, Data is a string, ID
// is the last event ID (which may come from an earlier event), and Retry is
// the reconnection time the stream last set (zero if it set none). Comment is
// always empty. Its strings are its own: Decode allocates the data string
// (and the interface holding it), and the type and ID strings only when they
// differ from the last event's.
//
// At the end of the stream Decode returns io.EOF, and discards an event
// whose empty line never came.
func (d *Decoder) Decode() (Event, error) {
	if err := d.next(); err != nil {
		return Event{}, err
	}
	ev := Event{ID: d.LastEventID(), Type: "message", Retry: d.vRetry}
	if d.vNamed {
		if string(d.typ) != d.typStr {
			d.typStr = string(d.typ)
		}
		ev.Type = d.typStr
	}
	ev.Data = string(d.vData)
	return ev, nil
}

// next reads up to the next dispatched event and leaves it for View.
func (d *Decoder) next() error {
	if d.vOK {
		d.vOK, d.vNamed, d.ref, d.data, d.dataLen, d.typ = false, false, false, d.data[:0], 0, d.typ[:0]
	}
	if d.err != nil {
		return d.err
	}
	for {
		line, lent, err := d.readLine()
		if err != nil {
			// At the end of the stream, a line that never ended and
			// the event it belongs to are dropped.
			if err == ErrEventTooLarge {
				d.err = err
			}
			return err
		}
		if len(line) > 0 {
			d.field(line, lent)
			d.line = d.line[:0] // now in data or type, if anywhere
			if d.tooLarge(0) {
				d.err = ErrEventTooLarge
				return d.err
			}
			continue
		}
		// An empty line: dispatch.
		if !bytes.Equal(d.idBuf, d.lastIDb) {
			d.lastIDb = append(d.lastIDb[:0], d.idBuf...)
		}
		if d.dataLen == 0 {
			d.typ = d.typ[:0]
			continue
		}
		d.dispatch()
		return nil
	}
}

// dispatch leaves the event read for View; next resets it.
func (d *Decoder) dispatch() {
	data := d.dataRef
	if !d.ref {
		data = d.data[:d.dataLen-1]
	}
	if !utf8.Valid(data) {
		d.fixed = appendValid(d.fixed[:0], data)
		data = d.fixed
	}
	d.vNamed = len(d.typ) > 0
	if d.vNamed && !utf8.Valid(d.typ) {
		d.typ = appendValid(nil, d.typ)
	}
	d.vData, d.vRetry, d.vOK = data, d.retry, true
}

// LastEventID returns the last event ID string, as a client would send it in
// the Last-Event-ID header if it reconnected now.
func (d *Decoder) LastEventID() string {
	if string(d.lastIDb) != d.lastID {
		d.lastID = string(d.lastIDb)
	}
	return d.lastID
}

// Retry returns the reconnection time the stream last set, or zero (or the
// value given to [Decoder.SetRetry]).
func (d *Decoder) Retry() time.Duration { return d.retry }

// SetLastEventID sets the last event ID string, as if the stream had started
// with an "id" field carrying id: the events that follow report it until the
// stream sets another. A client that reconnects with a Last-Event-ID header
// starts its new stream's Decoder from the ID it sent. Bytes that are not
// UTF-8 become U+FFFD; an id containing NUL is ignored, as the field would be.
func (d *Decoder) SetLastEventID(id string) {
	if bytes.IndexByte([]byte(id), 0) >= 0 {
		return
	}
	d.idBuf = append(d.idBuf[:0], id...)
	if !utf8.Valid(d.idBuf) {
		d.idBuf = appendValid(nil, d.idBuf)
	}
	d.lastIDb = append(d.lastIDb[:0], d.idBuf...)
}

// SetRetry sets the reconnection time, as if the stream had started with a
// "retry" field: events report it until the stream sets another. A client
// that reconnects starts its new stream's Decoder from the time it waited.
func (d *Decoder) SetRetry(retry time.Duration) { d.retry = retry }

// tooLarge reports whether the event being read, with n more bytes of its
// current line, is past MaxEventSize.
func (d *Decoder) tooLarge(n int) bool {
	return d.MaxEventSize > 0 && d.dataLen+len(d.typ)+len(d.line)+n > d.MaxEventSize
}

// field processes one non-empty line; lent tells whether it lies in d.buf
// (and so stays there until the next refill) or in d.line.
func (d *Decoder) field(line []byte, lent bool) {
	var name, value []byte
	if len(line) >= 5 && string(line[:5]) == "data:" {
		// Most lines of most streams.
		name, value = line[:4], line[5:]
	} else {
		if line[0] == ':' {
			return
		}
		name = line
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
		}
	}
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	switch string(name) {
	case "data":
		switch {
		case d.dataLen == 0 && lent:
			d.dataRef, d.ref = value, true
		case d.ref:
			d.keep()
			fallthrough
		default:
			d.data = append(d.data, value...)
			d.data = append(d.data, '\n')
		}
		d.dataLen += len(value) + 1
	case "event":
		d.typ = append(d.typ[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			d.idBuf = append(d.idBuf[:0], value...)
			if !utf8.Valid(d.idBuf) {
				d.idBuf = appendValid(nil, d.idBuf)
			}
		}
	case "retry":
		if ms, ok := parseDigits(value); ok {
			d.retry = ms
		}
	}
}

// keep copies data lent by d.buf into d.data, before d.buf changes.
func (d *Decoder) keep() {
	if d.ref {
		d.data = append(d.data[:0], d.dataRef...)
		d.data = append(d.data, '\n')
		d.dataRef, d.ref = nil, false
	}
}

// readLine returns the next line without its terminator, and whether it
// lies in d.buf. The slice is valid until the next call. At the end of
// input it returns io.EOF, and drops what it read of a line that never
// ended.
func (d *Decoder) readLine() ([]byte, bool, error) {
	if !d.bom {
		if err := d.skipBOM(); err != nil {
			return nil, false, err
		}
	}
	d.line = d.line[:0]
	for {
		if d.r == d.w {
			if err := d.fill(); err != nil {
				return nil, false, err
			}
		}
		buf := d.buf[d.r:d.w]
		if d.skipLF {
			d.skipLF = false
			if buf[0] == '\n' {
				d.r++
				continue
			}
		}
		// The line ends at the first LF or CR. CRs are looked for once
		// per buffer (most streams have none), LFs once per line.
		if d.cr < d.r {
			d.cr = d.w
			if j := bytes.IndexByte(buf, '\r'); j >= 0 {
				d.cr = d.r + j
			}
		}
		i := bytes.IndexByte(buf, '\n')
		if c := d.cr - d.r; c < len(buf) && (i < 0 || c < i) {
			i = c
		}
		n := i
		if n < 0 {
			n = len(buf)
		}
		if d.tooLarge(n) {
			return nil, false, ErrEventTooLarge
		}
		if i < 0 {
			d.line = append(d.line, buf...)
			d.r = d.w
			continue
		}
		d.skipLF = buf[i] == '\r'
		d.r += i + 1
		if len(d.line) > 0 {
			d.line = append(d.line, buf[:i]...)
			return d.line, false, nil
		}
		return buf[:i], true, nil
	}
}

// errNegativeRead is the panic for a reader returning a count out of range,
// as bufio.Reader's.
var errNegativeRead = errors.New("event: reader returned an invalid count from Read")

// fill reads more input. When d.buf is all read, it starts again at its
// start, after keeping the data it lends. It returns an error only when it
// read nothing: a reader's error that came with bytes waits for the next
// call.
func (d *Decoder) fill() error {
	if d.rerr != nil {
		err := d.rerr
		d.rerr = nil
		return err
	}
	if d.r == d.w {
		d.keep()
		d.r, d.w = 0, 0
	}
	for range 100 {
		n, err := d.rd.Read(d.buf[d.w:])
		if n < 0 || n > len(d.buf)-d.w {
			panic(errNegativeRead)
		}
		d.w += n
		d.cr = -1
		if err != nil {
			if n > 0 {
				d.rerr = err
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}

// skipBOM drops one UTF-8 byte order mark at the start of the stream. It
// reads until it has as many bytes as it checks, so it never waits for
// bytes a short stream lacks.
func (d *Decoder) skipBOM() error {
	const bom = "\xEF\xBB\xBF"
	for n := 1; n <= len(bom); n++ {
		for d.w-d.r < n {
			if err := d.fill(); err != nil {
				if err == io.EOF && d.w > d.r {
					d.bom = true
					return nil
				}
				return err
			}
		}
		if d.buf[d.r+n-1] != bom[n-1] {
			d.bom = true
			return nil
		}
	}
	d.r += len(bom)
	d.bom = true
	return nil
}

// parseDigits parses a non-empty run of ASCII digits as milliseconds,
// saturating instead of overflowing.
func parseDigits(b []byte) (time.Duration, bool) {
	if len(b) == 0 {
		return 0, false
	}
	const max = int64(1<<63-1) / int64(time.Millisecond)
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n <= (max-9)/10 {
			n = n*10 + int64(c-'0')
		} else {
			n = max
		}
	}
	return time.Duration(n) * time.Millisecond, true
}

// replaceInvalid returns b as a string, with each maximal invalid UTF-8
// subsequence replaced by U+FFFD, as the WHATWG UTF-8 decoder does.
func replaceInvalid(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(appendValid(make([]byte, 0, len(b)+8), b))
}

// appendValid appends b to out, with each maximal invalid UTF-8
// subsequence replaced by U+FFFD, as the WHATWG UTF-8 decoder does.
func appendValid(out, b []byte) []byte {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			out = append(out, b[:n]...)
			b = b[n:]
			continue
		}
		out = utf8.AppendRune(out, utf8.RuneError)
		b = b[invalidPrefix(b):]
	}
	return out
}

// invalidPrefix returns the length of the maximal subpart of an ill-formed
// sequence at the start of b (at least 1): a lead byte followed by the
// continuation bytes it accepts, before the one that breaks the sequence.
func invalidPrefix(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(b); n++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return n
}
