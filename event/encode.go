package event

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// AppendTo appends the wire form of e to dst, ending with the empty line
// that makes a client dispatch it, and returns the extended buffer.
//
// If e is invalid it returns dst unchanged (nothing of the event is appended)
// and a [*FieldError] saying which field is wrong and why. An event with all
// fields unset appends nothing.
//
// AppendTo allocates nothing when Data is nil, a string, a []byte or a
// json.RawMessage and dst has room; other Data values are marshalled with
// encoding/json, which allocates.
func (e Event) AppendTo(dst []byte) ([]byte, error) {
	if e.wire != nil {
		return append(dst, *e.wire...), nil
	}
	start := len(dst)
	var err error
	if dst, err = e.appendTo(dst); err != nil {
		return dst[:start], err
	}
	return dst, nil
}

func (e Event) appendTo(dst []byte) ([]byte, error) {
	if e.Retry < 0 {
		return dst, &FieldError{"retry", ErrNegativeRetry}
	}
	if e.Comment != "" {
		var ok bool
		if dst, ok = appendLines(dst, ":", ": ", e.Comment); !ok {
			return dst, &FieldError{"comment", ErrInvalidUTF8}
		}
	}
	if e.Type != "" {
		if err := checkSingleLine(e.Type, false); err != nil {
			return dst, &FieldError{"event", err}
		}
		dst = append(dst, "event: "...)
		dst = append(dst, e.Type...)
		dst = append(dst, '\n')
	}
	if e.ID != "" {
		if err := CheckID(e.ID); err != nil {
			return dst, err
		}
		dst = append(dst, "id: "...)
		dst = append(dst, e.ID...)
		dst = append(dst, '\n')
	}
	if e.Retry > 0 {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, int64(e.Retry/time.Millisecond), 10)
		dst = append(dst, '\n')
	}
	if e.Data != nil || e.ID != "" || e.Type != "" {
		var ok bool
		switch d := e.Data.(type) {
		case nil:
			dst, ok = append(dst, "data:\n"...), true
		case string:
			dst, ok = appendLines(dst, "data:", "data: ", d)
		case []byte:
			dst, ok = appendLines(dst, "data:", "data: ", d)
		case json.RawMessage:
			dst, ok = appendLines(dst, "data:", "data: ", []byte(d))
		default:
			b, err := json.Marshal(d)
			if err != nil {
				return dst, &FieldError{"data", err}
			}
			// encoding/json writes valid UTF-8 on one line.
			dst, ok = appendLines(dst, "data:", "data: ", b)
		}
		if !ok {
			return dst, &FieldError{"data", ErrInvalidUTF8}
		}
	} else if e.Comment == "" && e.Retry == 0 {
		return dst, nil // nothing set: nothing to write
	}
	return append(dst, '\n'), nil
}

// WriteTo writes the wire form of e to w, as [Event.AppendTo] builds it, in a
// single Write call. It implements [io.WriterTo]. If e is invalid, nothing is
// written and the error is a [*FieldError].
func (e Event) WriteTo(w io.Writer) (int64, error) {
	if e.wire != nil { // from where it is: w must not retain it
		if len(*e.wire) == 0 {
			return 0, nil
		}
		n, err := w.Write(*e.wire)
		return int64(n), err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b, err := e.AppendTo((*bp)[:0])
	*bp = b
	if err != nil || len(b) == 0 {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// MaxIDLength is the longest ID an [Event] may carry, in bytes: the longest
// Last-Event-ID a stream accepts back (see [CheckID]).
const MaxIDLength = 1024

// CheckID returns nil if id can be an event's ID, and otherwise a
// [*FieldError] for the "id" field saying why not. An ID must come back
// intact in the Last-Event-ID header a client sends when it reconnects, or
// the client could never resume: so it has at most [MaxIDLength] bytes of
// UTF-8, no control characters (which no HTTP header may carry: servers
// refuse the request, and a browser's EventSource closes for good), and no
// space or tab at either end (which header parsing strips).
func CheckID(id string) error {
	switch err := checkSingleLine(id, true); {
	case err != nil:
		return &FieldError{"id", err}
	case len(id) > MaxIDLength:
		return &FieldError{"id", ErrTooLong}
	case id[0] == ' ' || id[0] == '\t' || id[len(id)-1] == ' ' || id[len(id)-1] == '\t':
		return &FieldError{"id", ErrSpaceAtEnd}
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; b < 0x20 || b == 0x7f {
			return &FieldError{"id", ErrControl}
		}
	}
	return nil
}

// checkSingleLine reports why s cannot be the value of a one-line field.
func checkSingleLine(s string, noNUL bool) error {
	if strings.ContainsAny(s, "\r\n") {
		return ErrLineBreak
	}
	if noNUL && strings.IndexByte(s, 0) >= 0 {
		return ErrNUL
	}
	if !utf8.ValidString(s) {
		return ErrInvalidUTF8
	}
	return nil
}

// appendLines appends one line per line of text s, each starting with
// prefix (bare, for an empty line, so nothing trails it). Lines end at LF, CR
// or CRLF, as a client reads them. It reports false if s is not valid UTF-8.
func appendLines[T string | []byte](dst []byte, bare, prefix string, s T) ([]byte, bool) {
	if !validUTF8(s) {
		return dst, false
	}
	cr := indexByte(s, '\r') // next CR in s, or -1; found once, kept up to date
	for {
		i := indexByte(s, '\n')
		if cr >= 0 && (i < 0 || cr < i) {
			i = cr
		}
		line := s
		if i >= 0 {
			line = s[:i]
		}
		if len(line) == 0 {
			dst = append(dst, bare...)
		} else {
			dst = append(dst, prefix...)
			dst = append(dst, line...)
		}
		dst = append(dst, '\n')
		if i < 0 {
			return dst, true
		}
		next := i + 1
		if s[i] == '\r' && next < len(s) && s[next] == '\n' {
			next++
		}
		s = s[next:]
		if cr >= 0 {
			if cr -= next; cr < 0 {
				cr = indexByte(s, '\r')
			}
		}
	}
}

func indexByte[T string | []byte](s T, c byte) int {
	switch s := any(s).(type) {
	case string:
		return strings.IndexByte(s, c)
	case []byte:
		return bytes.IndexByte(s, c)
	}
	panic("unreachable")
}

func validUTF8[T string | []byte](s T) bool {
	switch s := any(s).(type) {
	case string:
		return utf8.ValidString(s)
	case []byte:
		return utf8.Valid(s)
	}
	panic("unreachable")
}
