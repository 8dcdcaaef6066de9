package sseclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/echosse/echo-sse/event"
)

// Defaults for the zero fields of a [Client].
const (
	DefaultRetry        = 3 * time.Second
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 30 * time.Second
	DefaultMaxEventSize = 16 << 20
)

// A Client reads event streams. Its zero value is ready to use. A Client is
// safe for concurrent use once its fields are set, and [Client.Events] reads
// them when a range loop starts.
type Client struct {
	// HTTPClient sends the requests. Its Timeout, if set, bounds a whole
	// stream, and ends it as a failed connection: use ReadIdleTimeout to
	// detect dead connections instead.
	// Optional. Default value http.DefaultClient.
	HTTPClient *http.Client

	// Retry is the reconnection time until the server sets one with a
	// "retry" field: after a stream ends, the client waits this long before
	// it requests again.
	// Optional. Default value DefaultRetry (3 s).
	Retry time.Duration

	// MinBackoff and MaxBackoff bound the wait after failed attempts in a
	// row (no answer, or a status RetryStatus retries): the n-th waits a
	// random time between half and all of MinBackoff·2ⁿ⁻¹, capped at
	// MaxBackoff, and never less than the reconnection time nor than the
	// answer's Retry-After. A stream that opened resets the count.
	// Optional. Default values DefaultMinBackoff (1 s), DefaultMaxBackoff
	// (30 s).
	MinBackoff, MaxBackoff time.Duration

	// RetryStatus, when set, reports whether an answer with this status
	// (other than 200 and 204) is retried, with backoff and honouring its
	// Retry-After header, instead of ending the stream with a
	// [*StatusError]. [Transient] retries 429 and the 5xx statuses.
	// Optional. Default value nil: as in a browser, every such status ends
	// the stream.
	RetryStatus func(code int) bool

	// ReadIdleTimeout, when positive, is how long the client waits for
	// anything from the server (the response's headers, then any byte of
	// the body, heartbeat comments included) before it treats the
	// connection as dead, closes it and reconnects.
	// Optional. Default value 0 (wait for ever).
	ReadIdleTimeout time.Duration

	// MaxEventSize bounds one event (see [event.Decoder.MaxEventSize]). A
	// longer one ends the stream with [ErrEventTooLarge]; it is never cut
	// short. Negative means no bound.
	// Optional. Default value DefaultMaxEventSize (16 MiB).
	MaxEventSize int

	// BeforeRequest, when set, is called with each request before it is
	// sent, the first and every reconnection, to change it: to set a fresh
	// token, say. An error ends the stream with it.
	// Optional.
	BeforeRequest func(*http.Request) error

	// OnRetry, when set, is called before each wait to reconnect, with the
	// reason the last attempt ended ([ErrStreamEnded], [ErrIdleTimeout], a
	// [*StatusError], a network error) and the wait. It runs in the
	// goroutine ranging over the events.
	// Optional.
	OnRetry func(reason error, delay time.Duration)
}

// Transient reports whether code is 429 Too Many Requests or a 5xx status:
// those a server answers when it may soon answer better. Set
// Client.RetryStatus to it to retry them.
func Transient(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500 && code <= 599
}

// Events sends req and returns the events of the response, reconnecting as
// an EventSource does: when the connection ends or fails, the client waits
// the reconnection time (the "retry" field, or Retry) and sends req again
// with a Last-Event-ID header carrying the last event ID the stream set, or
// none if that is empty. A Last-Event-ID header on req itself is the ID the
// first request resumes from. (HTTP drops spaces and tabs at a header
// value's ends, so an ID with them goes back without them, as from a
// browser.) Each request also carries
// "Accept: text/event-stream" and "Cache-Control: no-store" unless req sets
// them.
//
// Each event is an [event.Event] as [event.Decoder] returns it: Data is a
// string, ID the last event ID, Retry the reconnection time in force.
//
// The loop ends at the first non-nil error, which says why the stream ended
// for good: [ErrNoContent], [ErrStatus] (a [*StatusError]),
// [ErrContentType], [ErrBodyNotReplayable], [ErrEventTooLarge], an error from
// BeforeRequest, or the context's error once ctx is done. Breaking out of the
// loop, or cancelling ctx, closes the connection or stops the wait at once;
// Events starts no goroutine.
//
// A req with a body (a POST, say) is sent again only if req.GetBody is set,
// as http.NewRequest does for a *bytes.Reader, *bytes.Buffer or
// *strings.Reader body; otherwise the stream ends, when it would reconnect,
// with [ErrBodyNotReplayable]. Each range over the result sends req anew.
//
// Each event costs two allocations: its Data string, and the interface
// holding it (and the ID and type strings, when they change). [Client.Views]
// costs none.
func (c *Client) Events(ctx context.Context, req *http.Request) iter.Seq2[event.Event, error] {
	return seq[event.Event](c, ctx, req)
}

// Views is [Client.Events] for programs that read many events and keep few:
// it yields each event as an [event.View] whose slices the client lends
// until the loop's next iteration, and allocates nothing for it. The
// requests, reconnections and errors are those of Events.
//
//	for v, err := range c.Views(ctx, req) {
//		if err != nil {
//			return err
//		}
//		var tok Token
//		if err := json.Unmarshal(v.Data, &tok); err != nil { // no copy of the data
//			return err
//		}
//		kept = append(kept, string(v.Data)) // one allocation, the Data string
//	}
//
// Why a borrowed view rather than a struct of strings: the bytes are
// already in the client's buffer, and most programs hand them to a parser
// (json.Unmarshal takes a []byte), so a string would be a copy made only to
// be copied back; string(v.Data) is the one allocation for those that keep
// it. It is bufio.Scanner's rule, and the only way for the client to read
// at the speed of the buffer it reads into. Keeping a View (or its slices)
// past the iteration is the mistake to avoid: its bytes are overwritten by
// the next event's; [event.View.Event] copies one into an [event.Event].
func (c *Client) Views(ctx context.Context, req *http.Request) iter.Seq2[event.View, error] {
	return seq[event.View](c, ctx, req)
}

// seq returns the sequence of one of Events and Views, which differ only in
// how they read one event from the Decoder (stream.read).
func seq[T event.Event | event.View](c *Client, ctx context.Context, req *http.Request) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		s := &stream[T]{
			c:      c.withDefaults(),
			req:    req,
			lastID: req.Header.Get("Last-Event-ID"),
		}
		s.retry = s.c.Retry
		if err := s.run(ctx, yield); err != nil {
			var zero T
			yield(zero, err)
		}
	}
}

// withDefaults returns a copy of c with its zero fields filled in.
func (c *Client) withDefaults() Client {
	cfg := *c
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	switch {
	case cfg.MaxEventSize == 0:
		cfg.MaxEventSize = DefaultMaxEventSize
	case cfg.MaxEventSize < 0:
		cfg.MaxEventSize = 0
	}
	return cfg
}

// stream is the state of one range over Events or Views.
type stream[T event.Event | event.View] struct {
	c        Client
	req      *http.Request
	lastID   string
	retry    time.Duration
	failures int // failed attempts in a row
}

// read sets *ev to the next event of d, or returns io.EOF: for Events,
// Decode's; for Views, the one Scan lends. (A type switch rather than a
// function value, so that Scan and View are called directly: through a
// function value, Views took half as long again per event.)
func (s *stream[T]) read(d *event.Decoder, ev *T) error {
	switch p := any(ev).(type) {
	case *event.View:
		if d.Scan() {
			*p = d.View()
			return nil
		}
		if err := d.Err(); err != nil {
			return err
		}
		return io.EOF
	case *event.Event:
		var err error
		*p, err = d.Decode()
		return err
	}
	panic("sseclient: unreachable")
}

// errStop tells run's caller that yield returned false.
var errStop = errors.New("sseclient: stopped")

// run connects and reconnects until the stream ends. It returns the error
// to yield, or nil when there is none to give (yield returned false).
func (s *stream[T]) run(ctx context.Context, yield func(T, error) bool) error {
	for attempt := 0; ; attempt++ {
		reason := s.connect(ctx, attempt, yield)
		if reason == errStop {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var final *finalError
		if errors.As(reason, &final) {
			return final.err
		}
		if b := s.req.Body; b != nil && b != http.NoBody && s.req.GetBody == nil {
			return fmt.Errorf("%w: %w", ErrBodyNotReplayable, reason)
		}
		delay := s.retry
		if s.failures > 0 {
			delay = max(delay, s.backoff())
			var se *StatusError
			if errors.As(reason, &se) {
				if d, ok := se.RetryAfter(); ok {
					delay = max(delay, d)
				}
			}
		}
		if s.c.OnRetry != nil {
			s.c.OnRetry(reason, delay)
		}
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

// finalError marks a reason that ends the stream for good.
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }

// backoff returns the jittered wait after s.failures failed attempts.
func (s *stream[T]) backoff() time.Duration {
	d := s.c.MinBackoff
	for i := 1; i < s.failures && d < s.c.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.c.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d, or until ctx is done, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// connect makes one attempt and reads its events. It returns why it ended:
// errStop, a *finalError, or a reason to reconnect.
func (s *stream[T]) connect(ctx context.Context, attempt int, yield func(T, error) bool) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := newIdleTimer(s.c.ReadIdleTimeout, func() { cancel(ErrIdleTimeout) })
	defer idle.stop()

	req, err := s.request(actx, attempt)
	if err != nil {
		return &finalError{err}
	}
	idle.arm()
	res, err := s.c.HTTPClient.Do(req)
	idle.disarm()
	if err != nil {
		s.failures++
		if context.Cause(actx) == ErrIdleTimeout {
			return ErrIdleTimeout
		}
		return err
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusNoContent:
		return &finalError{ErrNoContent}
	case res.StatusCode != http.StatusOK:
		se := &StatusError{Code: res.StatusCode, Status: res.Status, Header: res.Header}
		if s.c.RetryStatus != nil && s.c.RetryStatus(res.StatusCode) {
			s.failures++
			return se
		}
		return &finalError{se}
	case !isEventStream(res.Header.Get("Content-Type")):
		return &finalError{fmt.Errorf("%w: got %q", ErrContentType, res.Header.Get("Content-Type"))}
	}
	s.failures = 0

	d := event.NewDecoder(&idleReader{r: res.Body, t: idle})
	d.MaxEventSize = s.c.MaxEventSize
	d.SetLastEventID(s.lastID)
	d.SetRetry(s.retry)
	var ev T
	for {
		err := s.read(d, &ev)
		if err == nil {
			if !yield(ev, nil) {
				return errStop
			}
			continue
		}
		// The last event ID string is made only now, when the
		// connection ended (Views allocates nothing per event), and
		// the reconnection time read.
		s.lastID, s.retry = d.LastEventID(), d.Retry()
		switch {
		case errors.Is(err, event.ErrEventTooLarge):
			return &finalError{tooLarge{s.c.MaxEventSize, err}}
		case context.Cause(actx) == ErrIdleTimeout:
			return ErrIdleTimeout
		case err == io.EOF:
			return ErrStreamEnded
		}
		return err
	}
}

// request returns the request for one attempt.
func (s *stream[T]) request(ctx context.Context, attempt int) (*http.Request, error) {
	req := s.req.Clone(ctx)
	if b := s.req.Body; b != nil && b != http.NoBody {
		if s.req.GetBody != nil {
			body, err := s.req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("sseclient: GetBody: %w", err)
			}
			req.Body = body
		} else if attempt > 0 {
			return nil, ErrBodyNotReplayable
		}
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/event-stream")
	}
	if req.Header.Get("Cache-Control") == "" {
		req.Header.Set("Cache-Control", "no-store")
	}
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	} else {
		req.Header.Del("Last-Event-ID")
	}
	if s.c.BeforeRequest != nil {
		if err := s.c.BeforeRequest(req); err != nil {
			return nil, fmt.Errorf("sseclient: BeforeRequest: %w", err)
		}
	}
	return req, nil
}

// isEventStream reports whether a Content-Type is text/event-stream, its
// parameters ignored.
func isEventStream(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// idleTimer cancels a connection that waited too long in one read. It is
// armed only while a read waits for the network, so time spent in the
// caller's loop body never counts.
type idleTimer struct {
	d time.Duration
	t *time.Timer
}

func newIdleTimer(d time.Duration, f func()) *idleTimer {
	it := &idleTimer{d: d}
	if d > 0 {
		it.t = time.AfterFunc(time.Hour, f)
		it.t.Stop()
	}
	return it
}

func (it *idleTimer) arm() {
	if it.t != nil {
		it.t.Reset(it.d)
	}
}

func (it *idleTimer) disarm() {
	if it.t != nil {
		it.t.Stop()
	}
}

func (it *idleTimer) stop() { it.disarm() }

// idleReader arms its timer around each Read.
type idleReader struct {
	r io.Reader
	t *idleTimer
}

func (r *idleReader) Read(p []byte) (int, error) {
	r.t.arm()
	n, err := r.r.Read(p)
	r.t.disarm()
	return n, err
}
