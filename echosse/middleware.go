package echosse

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/event"
)

// Middleware returns an Echo middleware that lets handlers open event
// streams with [Open]. It panics if config is invalid; see
// [Config.ToMiddleware] for the error instead.
//
// It is safe to install globally: requests whose handler never calls Open
// pass through untouched. Install it after (inside) any middleware that wraps
// the response writer, such as Echo's Gzip:
//
//	e.Use(middleware.Gzip())
//	e.Use(echosse.Middleware(echosse.Config{}))
//
// The other way round, Gzip would finish its response when the handler
// returns, under the stream's feet; [Open] detects it and fails with
// [ErrWriterWrapped] instead. Echo's ContextTimeout middleware (and the
// deprecated Timeout) must skip stream routes: the first would end every
// stream at its deadline, the second swaps the writer.
func Middleware(config Config) echo.MiddlewareFunc {
	mw, err := config.ToMiddleware()
	if err != nil {
		panic(err)
	}
	return mw
}

// ToMiddleware converts config to an Echo middleware, filling its zero
// fields from [DefaultConfig], or returns an error saying which field is
// invalid.
func (config Config) ToMiddleware() (echo.MiddlewareFunc, error) {
	cfg, err := config.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &hub{cfg: cfg}
	if cfg.Compress {
		h.compressors = newCompressorPool(cfg.MaxCompressors)
	}
	if cfg.Retry > 0 {
		if h.openFrame, err = (event.Event{Retry: cfg.Retry}).AppendTo(nil); err != nil {
			return nil, fmt.Errorf("echosse: invalid Retry: %w", err)
		}
	}
	if h.closeFrame, err = (event.Event{Type: cfg.CloseEvent, Data: ""}).AppendTo(nil); err != nil {
		return nil, fmt.Errorf("echosse: invalid CloseEvent: %w", err)
	}
	h.pingFrame, _ = event.Event{Comment: "ping"}.AppendTo(nil)

	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if cfg.Skipper(c) {
				return next(c)
			}
			c.Set(hubKey, h)
			c.Set(writerKey, c.Response().Writer)
			return h.serve(c, next)
		}
	}, nil
}

// Keys of the values the middleware and Open keep in the echo.Context.
const (
	hubKey    = "echosse.hub"
	writerKey = "echosse.writer"
	streamKey = "echosse.stream"
)

// hub is the state one middleware shares across its requests.
type hub struct {
	cfg        Config
	clients    atomic.Int64 // open streams
	openFrame  []byte       // written when a stream opens: Config.Retry's field, if set
	closeFrame []byte       // written when the sender closes its channel
	pingFrame  []byte       // written when a stream has been idle
	servers    servers      // open streams by server, for Shutdown
	// compressors are lent to compressed streams; nil unless Config.Compress.
	compressors *compressorPool
}

// serve runs the handler and, if it opened a stream, waits for the stream to
// end, so that Echo never finishes the response under the pump.
func (h *hub) serve(c echo.Context, next echo.HandlerFunc) (err error) {
	returned := false
	defer func() {
		if returned {
			return
		}
		// The handler panicked. Without recovering (Echo's Recover
		// middleware does that, with the panic's stack intact), end the
		// stream and wait for it, so the slot is freed and nothing
		// writes to the response any more.
		if s, ok := c.Get(streamKey).(*Stream); ok {
			s.cancel(ErrHandlerPanicked)
			s.wait()
		}
	}()
	err = next(c)
	returned = true

	s, ok := c.Get(streamKey).(*Stream)
	if !ok {
		if errors.Is(err, ErrTooManyClients) && !c.Response().Committed {
			return h.refuse(c, err)
		}
		return err
	}
	if err != nil {
		s.cancel(err)
	}
	s.wait()
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrClientGone) || errors.Is(err, ErrShutdown) {
		return nil // an ordinary end, returned from Stream.Err
	}
	return err
}

// refuse answers a request over MaxClients as cfg.Overflow says.
func (h *hub) refuse(c echo.Context, err error) error {
	delay := jittered(h.cfg.RetryAfter)
	res := c.Response()
	if h.cfg.Overflow == OverflowUnavailable {
		secs := int64((delay + time.Second - 1) / time.Second)
		res.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		if he := (*echo.HTTPError)(nil); !errors.As(err, &he) {
			// The handler's own cap (an error of its own wrapping
			// ErrTooManyClients): the same answer as Open's.
			err = echo.NewHTTPError(http.StatusServiceUnavailable, ErrTooManyClients.Error()).WithInternal(err)
		}
		return err // Echo's error handler answers 503
	}
	b, _ := event.Event{Comment: "too many clients, retry later", Retry: delay}.AppendTo(nil)
	setStreamHeaders(res.Header())
	res.WriteHeader(http.StatusOK)
	_, werr := res.Write(b)
	return werr
}

// jittered returns d plus a random jitter of up to d again. Config bounds
// d by MaxDelay, far from where d+d would overflow.
func jittered(d time.Duration) time.Duration {
	d = min(d, MaxDelay)
	return d + rand.N(d+1)
}

// setStreamHeaders sets the headers of an event stream response.
func setStreamHeaders(h http.Header) {
	h["Content-Type"] = contentType
	h["Cache-Control"] = noCache
	h["X-Accel-Buffering"] = accelNo
	h.Del("Content-Length")
}

// Header values, allocated once and shared read-only.
var (
	contentType  = []string{"text/event-stream"}
	noCache      = []string{"no-cache"}
	accelNo      = []string{"no"}
	gzipEncoding = []string{"gzip"}
)
