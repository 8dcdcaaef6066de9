package echosse

import (
	"errors"
	"net/http"
	"reflect"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

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
	skipper := config.Skipper
	if skipper == nil {
		skipper = DefaultConfig.Skipper
	}
	onError := config.ErrorHandler
	if onError == nil {
		onError = DefaultConfig.ErrorHandler
	}
	srv, err := door.New(config.core(), door.Hooks{
		Prefix: "echosse: ",
		Report: func(tag any, r *http.Request, err error) {
			if d, ok := tag.(detached); ok {
				tag = d.context(r)
			}
			onError(tag.(echo.Context), err)
		},
		Detach:     detach,
		Compressed: echoGzipInFront,
	})
	if err != nil {
		return nil, err
	}
	h := &hub{srv: srv}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if skipper(c) {
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

// hub is what one middleware shares across its requests: the core's
// *sse.Server.
type hub struct{ srv any }

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
			door.Panicked(s)
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
	return door.Finish(s, err)
}

// refuse answers a request over MaxClients as Config.Overflow says. With
// OverflowRetry it returns, after the answer, an error matching
// ErrTooManyClients that is no *echo.HTTPError, so that the request logger
// (LogError) reports it and the status actually sent, 200.
func (h *hub) refuse(c echo.Context, err error) error {
	unavailable, werr := door.Refuse(h.srv, c.Response())
	if !unavailable {
		// The answer is committed: Echo's error handler writes nothing
		// more, and its request logger sees the error beside status 200.
		return door.Refused(cause(err), werr)
	}
	if he := (*echo.HTTPError)(nil); !errors.As(err, &he) {
		// The handler's own cap (an error of its own wrapping
		// ErrTooManyClients): the same answer as Open's.
		err = echo.NewHTTPError(http.StatusServiceUnavailable, ErrTooManyClients.Error()).WithInternal(err)
	}
	return err // Echo's error handler answers 503
}

// echoGzipInFront reports whether Echo's Gzip middleware compresses w: it
// sets Content-Encoding only when it writes, too late for the core's check.
func echoGzipInFront(w http.ResponseWriter) bool {
	return door.Wraps(w, middlewarePkg, "gzipResponseWriter")
}

// middlewarePkg is the path of Echo's middleware package.
var middlewarePkg = reflect.TypeFor[middleware.GzipConfig]().PkgPath()

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
// echo.Context has gone back to Echo's pool, so an error is reported with
// a context of its own.
type detached struct {
	e    *echo.Echo
	path string
}

// detach makes the tag of a stream whose handler is returning while the
// stream goes on. The context Echo pools keeps its Response until it is
// reused: the Response lets go of net/http's, which holds the
// connection's read and write buffers, now the stream's no more.
func detach(tag any) any {
	c := tag.(echo.Context)
	c.Response().Writer = door.TakenOver{}
	return detached{e: c.Echo(), path: c.Path()}
}

// context returns a context for the error handler with r, the stream's
// request.
func (d detached) context(r *http.Request) echo.Context {
	c := d.e.NewContext(r, door.TakenOver{})
	c.SetPath(d.path)
	c.Response().Committed, c.Response().Status = true, http.StatusOK
	return c
}
