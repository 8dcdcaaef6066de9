package echosse5

import (
	"errors"
	"net/http"
	"reflect"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echosse/echo-sse/internal/door"
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
//	e.Use(echosse5.Middleware(echosse5.Config{}))
//
// The other way round, or as a route's own middleware, Gzip would finish
// its response when the handler returns, under the stream's feet; [Open]
// detects it and fails with [ErrWriterWrapped] instead. Gzip's MinLength
// does not delay a stream: each flush sends what Gzip holds. Echo's
// ContextTimeout middleware must skip stream routes: it would end every
// stream at its deadline.
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
	skipper := config.Skipper
	if skipper == nil {
		skipper = DefaultConfig.Skipper
	}
	onError := config.ErrorHandler
	if onError == nil {
		onError = DefaultConfig.ErrorHandler
	}
	srv, err := door.New(config.core(), door.Hooks{
		Prefix: "echosse5: ",
		Report: func(tag any, r *http.Request, err error) {
			if d, ok := tag.(detached); ok {
				tag = d.context(r)
			}
			onError(tag.(*echo.Context), err)
		},
		Detach:     detach,
		Compressed: gzipInFront,
	})
	if err != nil {
		return nil, err
	}
	h := &hub{srv: srv}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			if skipper(c) {
				return next(c)
			}
			c.Set(hubKey, h)
			c.Set(writerKey, c.Response())
			return h.serve(c, next)
		}
	}, nil
}

// Keys of the values the middleware and Open keep in the *echo.Context.
const (
	hubKey    = "echosse5.hub"
	writerKey = "echosse5.writer"
	streamKey = "echosse5.stream"
)

// hub is what one middleware shares across its requests: the core's
// *sse.Server.
type hub struct{ srv any }

// serve runs the handler and, if it opened a stream, waits for the stream to
// end, so that Echo never finishes the response under the pump.
func (h *hub) serve(c *echo.Context, next echo.HandlerFunc) (err error) {
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
			door.Panicked(s)
		}
	}()
	err = next(c)
	returned = true

	s, ok := c.Get(streamKey).(*Stream)
	if !ok {
		if errors.Is(err, ErrTooManyClients) && !committed(c.Response()) {
			return h.refuse(c, err)
		}
		return err
	}
	if pe := (*middleware.PanicStackError)(nil); errors.As(err, &pe) {
		// Echo's Recover, inside this middleware, recovered a panic of
		// the handler and returned it: the stream ends as it would
		// with Recover outside, and the error goes on unchanged.
		door.Panicked(s)
	}
	return door.Finish(s, err)
}

// refuse answers a request over MaxClients as Config.Overflow says. With
// OverflowRetry it returns, after the answer, an error matching
// ErrTooManyClients that is no *echo.HTTPError, so that the request logger
// (LogError) reports it and the status actually sent, 200.
func (h *hub) refuse(c *echo.Context, err error) error {
	unavailable, werr := door.Refuse(h.srv, c.Response())
	if !unavailable {
		// The answer is committed: Echo's error handler writes nothing
		// more, and its request logger sees the error beside status 200.
		return door.Refused(cause(err), werr)
	}
	if he := (*echo.HTTPError)(nil); !errors.As(err, &he) {
		// The handler's own cap (an error of its own wrapping
		// ErrTooManyClients): the same answer as Open's.
		err = httpError(http.StatusServiceUnavailable, ErrTooManyClients.Error(), err)
	}
	return err // Echo's error handler answers 503
}

// committed reports whether the response under w has been sent.
func committed(w http.ResponseWriter) bool {
	r, err := echo.UnwrapResponse(w)
	return err == nil && r.Committed
}

// Packages whose unexported writers the door recognises.
var (
	echoPkg       = reflect.TypeFor[echo.Context]().PkgPath()
	middlewarePkg = reflect.TypeFor[middleware.GzipConfig]().PkgPath()
)

// gzipInFront reports whether Echo's Gzip middleware compresses w: it sets
// Content-Encoding only when it writes, too late for the core's check.
func gzipInFront(w http.ResponseWriter) bool {
	return door.Wraps(w, middlewarePkg, "gzipResponseWriter")
}

// autoHead reports whether w is the writer Echo's router puts around the
// response of a GET route's handler serving a HEAD request
// (RouterConfig.AutoHandleHEAD), directly around mw, the writer the
// middleware saw. That writer discards the body, makes Flush a no-op and
// holds the status until the handler returns, to set Content-Length: the
// stream would reach the client only once it has ended, with a
// Content-Length its GET never has. The stream skips it and answers HEAD
// as the core does on any route: the headers at once, and no body.
func autoHead(r *http.Request, w, mw http.ResponseWriter) bool {
	if r.Method != http.MethodHead || !door.Is(w, echoPkg, "headResponseWriter") {
		return false
	}
	u, ok := w.(interface{ Unwrap() http.ResponseWriter })
	return ok && u.Unwrap() == mw
}

// cause returns what the *echo.HTTPError err wraps, or err itself.
func cause(err error) error {
	if he := (*echo.HTTPError)(nil); errors.As(err, &he) {
		if u := he.Unwrap(); u != nil {
			return u
		}
	}
	return err
}

// detached is the error handler's tag of a stream that took its
// connection over (Config.Takeover) once its handler has returned: the
// *echo.Context has gone back to Echo's pool, so an error is reported
// with a context of its own.
type detached struct {
	e    *echo.Echo
	path string
}

// detach makes the tag of a stream whose handler is returning while the
// stream goes on. The context Echo pools keeps its Response until it is
// reused: the Response lets go of net/http's, which holds the
// connection's read and write buffers, now the stream's no more.
func detach(tag any) any {
	c := tag.(*echo.Context)
	if r, err := echo.UnwrapResponse(c.Response()); err == nil {
		r.ResponseWriter = door.TakenOver{}
	}
	return detached{e: c.Echo(), path: c.Path()}
}

// context returns a context for the error handler with r, the stream's
// request.
func (d detached) context(r *http.Request) *echo.Context {
	c := d.e.NewContext(r, door.TakenOver{})
	c.SetPath(d.path)
	if res, err := echo.UnwrapResponse(c.Response()); err == nil {
		res.Committed, res.Status = true, http.StatusOK
	}
	return c
}
