package event

import (
	"bytes"
	"errors"
	"time"
)

// Event is one server-sent event. The zero value of each field means
// "not set"; an Event whose fields are all unset encodes to nothing.
//
// An Event is a plain value: it is safe to copy and to send on a channel.
// Data is read, never modified, when the event is encoded.
type Event struct {
	// ID is written as the "id" field. A client remembers the last ID it saw
	// and sends it back in the Last-Event-ID header when it reconnects, so
	// an ID must be one that header carries intact (see [CheckID]): at most
	// [MaxIDLength] bytes of UTF-8, no control characters (CR, LF, NUL, tab,
	// DEL and the rest below U+0020), and no space at either end.
	ID string

	// Type is written as the "event" field: the name a browser listens to
	// with addEventListener. Unset, the client dispatches a "message" event.
	// It must not contain CR or LF.
	Type string

	// Data is the payload. A string, []byte or json.RawMessage is written as
	// it is; any other value is encoded with encoding/json. Text with line
	// breaks (LF, CR or CRLF) is written as one "data" line per line, and the
	// client joins them with LF.
	//
	// An event with an ID, a Type or non-nil Data always has at least one
	// "data" line, even when the data is empty, because a client drops an
	// event that has none.
	Data any

	// Retry, when positive, is written as the "retry" field in whole
	// milliseconds (rounded down): the delay a client waits before it
	// reconnects. It must not be negative.
	Retry time.Duration

	// Comment is written as comment lines, one per line of text. Clients
	// ignore comments; they keep idle connections alive.
	Comment string

	// wire is the wire form, set by Prepare and never changed: prepared
	// copies share it, and WriteTo writes it from where it is.
	wire *[]byte
}

// Prepare validates and encodes e once, and returns a copy of e that
// carries its wire form: encoding the copy again ([Event.AppendTo],
// [Event.WriteTo]) only copies those bytes. Use it for an event sent to many
// streams. The copy's fields still read as e's, but changing them does not
// change what is written; prepare the changed event again instead.
//
// Every copy of the prepared event shares one wire form, and
// [Event.WriteTo] writes it without copying it: a large event sent to many
// streams is held once, however many of them wait to write it.
func (e Event) Prepare() (Event, error) {
	e.wire = nil
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b, err := e.AppendTo((*bp)[:0])
	*bp = b[:0]
	if err != nil {
		return Event{}, err
	}
	wire := bytes.Clone(b)
	e.wire = &wire
	return e, nil
}

// PreparedLen returns the length of e's wire form and true if e was
// returned by [Event.Prepare], or 0 and false.
func (e Event) PreparedLen() (int, bool) {
	if e.wire == nil {
		return 0, false
	}
	return len(*e.wire), true
}

// Reasons an [Event] is rejected, wrapped in a [*FieldError].
var (
	ErrLineBreak     = errors.New("contains a line break")
	ErrNUL           = errors.New("contains a NUL character")
	ErrInvalidUTF8   = errors.New("is not valid UTF-8")
	ErrNegativeRetry = errors.New("is negative")
	ErrTooLong       = errors.New("is longer than MaxIDLength bytes")
	ErrControl       = errors.New("contains a control character")
	ErrSpaceAtEnd    = errors.New("starts or ends with a space or tab")
)

// FieldError reports an [Event] field that cannot be encoded. Err is one of
// [ErrLineBreak], [ErrNUL], [ErrInvalidUTF8], [ErrNegativeRetry], [ErrTooLong],
// [ErrControl], [ErrSpaceAtEnd], or the error
// encoding/json returned for Data.
type FieldError struct {
	Field string // "id", "event", "data", "retry" or "comment"
	Err   error
}

// Error implements the error interface.
func (e *FieldError) Error() string {
	return "event: invalid " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns e.Err, so that errors.Is(err, ErrLineBreak) and the like
// work on a returned error.
func (e *FieldError) Unwrap() error { return e.Err }
