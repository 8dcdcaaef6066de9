// Package door is how the framework front doors (echosse for Echo v4,
// echosse5 for Echo v5) reach the parts of the core, package sse, that a
// net/http program has no use for. Package sse fills in these functions
// when it is initialised; a door imports sse, so they are set before any
// door calls them. The values are the core's own types behind any: a door
// asserts them back (*sse.Server, *sse.Stream).
package door

import (
	"net/http"
	"reflect"
	"slices"
	"time"
)

// Hooks are what a door tells the core when it makes a Server.
type Hooks struct {
	// Prefix starts the messages of configuration errors: "echosse: ".
	Prefix string

	// Report is the door's error handler: tag is what the door gave to
	// Open in Options.Tag (its framework's context), or what Detach
	// returned, valid during the call only; r is the stream's request.
	// Nil: the Config's own ErrorHandler.
	Report func(tag any, r *http.Request, err error)

	// Detach is called, on the handler's goroutine, when the handler of
	// a stream that took its connection over (Config.Takeover) returns
	// while the stream goes on: it lets go of what the framework will
	// reuse (its pooled context, and the net/http response that context
	// holds), and returns the tag Report gets from then on. Nil: the tag
	// stays.
	Detach func(tag any) any

	// Compressed reports whether a compression middleware the core does
	// not recognise by its header wraps w.
	Compressed func(w http.ResponseWriter) bool
}

// Options are what a door gives the core when it opens a stream.
type Options struct {
	// Out is the writer the stream writes its headers and body through,
	// the framework's own response (so that its Committed and Size stay
	// true); it wraps the writer given to Open, which the stream flushes
	// and sets deadlines on. Nil: that writer.
	Out http.ResponseWriter

	// Tag is handed to Hooks.Report.
	Tag any

	// Request is set by Open to the request whose context is the stream's.
	Request *http.Request
}

var (
	// New makes a *sse.Server from an sse.Config (cfg) with the door's
	// hooks.
	New func(cfg any, h Hooks) (srv any, err error)

	// Open opens a stream as (*sse.Server).Open does, with the door's
	// options, and returns the *sse.Stream.
	Open func(srv any, w http.ResponseWriter, r *http.Request, o *Options) (stream any, err error)

	// Status is the HTTP status an error from Open answers with.
	Status func(err error) int

	// Refuse answers a request refused for MaxClients as the Server's
	// Config.Overflow says, through w: for OverflowRetry it writes the
	// whole answer and reports unavailable false (with the write's error);
	// for OverflowUnavailable it only sets the Retry-After header and
	// reports true, for the framework's error handler to answer 503.
	Refuse func(srv any, w http.ResponseWriter) (unavailable bool, err error)

	// Finish is what a door does once the handler has returned err (nil
	// or not) after it opened stream s: it ends the stream with err if
	// err is not nil, waits for it to end, and returns what the door's
	// handler should return (nil for an ordinary end).
	Finish func(s any, err error) error

	// Panicked ends stream s because its handler panicked, and waits for
	// it to end.
	Panicked func(s any)

	// PumpDelay is the core's pumpDelay, for tests.
	PumpDelay *time.Duration

	// CompressorsInUse counts the compressors streams hold, for tests.
	CompressorsInUse func() int64
)

// Wraps reports whether w, or a writer it wraps (through Unwrap, as
// http.ResponseController walks them), is a pointer to the type named name
// of the package at pkgPath: how a door recognises a writer its framework
// does not export, such as the one of Echo's Gzip middleware.
func Wraps(w http.ResponseWriter, pkgPath, name string) bool {
	for w != nil {
		if Is(w, pkgPath, name) {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
	return false
}

// Is reports whether w itself is a pointer to the type named name of the
// package at pkgPath.
func Is(w http.ResponseWriter, pkgPath, name string) bool {
	t := reflect.TypeOf(w)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().Name() == name && t.Elem().PkgPath() == pkgPath
}

// CopyFields sets every field of the struct *dst but those named in except
// to the field of the same name of the struct src: how a door turns its
// Config into the core's (sse.Config), whose fields its own repeats beside
// Skipper, with an ErrorHandler of its own type. It panics if src lacks
// one of those fields or has it with another type, which the door's tests
// catch the moment the core gains a field the door does not have.
func CopyFields(dst, src any, except ...string) {
	d := reflect.ValueOf(dst).Elem()
	s := reflect.ValueOf(src)
	for i := range d.NumField() {
		f := d.Type().Field(i)
		if slices.Contains(except, f.Name) {
			continue
		}
		v := s.FieldByName(f.Name)
		if !v.IsValid() || v.Type() != f.Type {
			panic("door: " + s.Type().String() + " has no field " + f.Name + " of type " + f.Type.String())
		}
		d.Field(i).Set(v)
	}
}

// Refused returns the error a door's middleware returns after it answered
// a request refused for MaxClients (or by the handler's own cap) with the
// retry stream of OverflowRetry: the response is committed, so the
// framework's error handler writes nothing, but its request logger sees
// why a 200 carried no events. err is what the handler returned; werr the
// answer's write error, if any. The result matches sse.ErrTooManyClients
// with errors.Is and is no HTTP error of the framework (whose status a
// logger would report instead of the 200 sent).
func Refused(err, werr error) error {
	return &refusedError{cause: err, write: werr}
}

type refusedError struct{ cause, write error }

func (e *refusedError) Error() string {
	msg := "echosse: refused with a retry hint (status 200): " + e.cause.Error()
	if e.write != nil {
		msg += "; writing the answer: " + e.write.Error()
	}
	return msg
}

func (e *refusedError) Unwrap() []error {
	if e.write != nil {
		return []error{e.cause, e.write}
	}
	return []error{e.cause}
}

// TakenOver is the response writer a door leaves in its framework's
// response once the stream has taken the connection over and the handler
// has returned: writes to it fail with http.ErrHijacked.
type TakenOver struct{}

// Header implements [http.ResponseWriter].
func (TakenOver) Header() http.Header { return http.Header{} }

// Write implements [http.ResponseWriter]: it fails with
// http.ErrHijacked.
func (TakenOver) Write([]byte) (int, error) { return 0, http.ErrHijacked }

// WriteHeader implements [http.ResponseWriter]; it does nothing.
func (TakenOver) WriteHeader(int) {}
