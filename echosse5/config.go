package echosse5

import (
	"errors"
	"log/slog"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echosse/echo-sse/internal/door"
	"github.com/echosse/echo-sse/sse"
)

// Config defines the config for the [Middleware]. The zero value of every
// field means its default. Its fields are [sse.Config]'s, which documents
// each in full, with Echo's Skipper and an ErrorHandler given the
// *echo.Context.
type Config struct {
	// Skipper defines a function to skip middleware.
	// Optional. Default value middleware.DefaultSkipper.
	Skipper middleware.Skipper

	// MaxClients is the number of streams that may be open at once through
	// this middleware. A request over it does not open a stream: [Open]
	// returns an error matching [ErrTooManyClients], and the middleware
	// answers it as Overflow says. See [sse.Config].
	// Optional. Default value 10000.
	MaxClients int

	// PingInterval is how long a stream may stay idle before a heartbeat
	// comment (": ping") is written, so that proxies do not cut it. A
	// negative value turns heartbeats off. See [sse.Config].
	// Optional. Default value 25 seconds.
	PingInterval time.Duration

	// CloseEvent is the type of the event written when the sender closes
	// the stream's channel. See [sse.Config].
	// Optional. Default value "close".
	CloseEvent string

	// MatchQuery, when set, limits streams to requests whose query string
	// has this key; for others [Open] returns an error matching
	// [ErrNotRequested]. See [sse.Config].
	// Optional. Default value "" (any request may open a stream).
	MatchQuery string

	// BufferSize is the capacity of each stream's channel. See
	// [sse.Config].
	// Optional. Default value 8.
	BufferSize int

	// WriteTimeout bounds every write and flush to a client; a client that
	// stops reading is dropped with [ErrWriteTimeout]. A negative value
	// turns it off. See [sse.Config].
	// Optional. Default value 30 seconds.
	WriteTimeout time.Duration

	// Retry, when positive, is sent as the "retry" field when a stream
	// opens. See [sse.Config].
	// Optional. Default value 0 (not sent).
	Retry time.Duration

	// Overflow says how a request over MaxClients is answered. See
	// [sse.Config].
	// Optional. Default value OverflowRetry.
	Overflow Overflow

	// RetryAfter is the base delay after which a client refused over
	// MaxClients should come back, plus jitter. See [sse.Config].
	// Optional. Default value 5 seconds.
	RetryAfter time.Duration

	// ShutdownRetry, when positive, makes a stream whose server shuts down
	// send a "retry" field of this delay (plus jitter) instead of the close
	// event. See [sse.Config].
	// Optional. Default value 0 (send the close event).
	ShutdownRetry time.Duration

	// Compress turns on the stream's own gzip compression for clients that
	// accept it. Do not put Echo's Gzip in front of stream routes as well
	// (skip them with GzipConfig.Skipper): [Open] fails with
	// [ErrDoubleCompression]. See [sse.Config].
	// Optional. Default value false.
	Compress bool

	// Takeover, over HTTP/1.x, takes the connection away from net/http
	// once the stream has opened (http.ResponseController's Hijack): the
	// stream writes the status line and headers itself, then its events
	// straight to the connection, and the response is delimited by the
	// connection's close (Connection: close, no chunked framing), which
	// HTTP/1.1 permits for a response only the server ends. The handler
	// returns at once; net/http's read and write buffers, its background
	// reader and the request's header go away. On Linux one goroutine
	// for all such connections learns from epoll that a client left;
	// elsewhere a goroutine of the stream's own, blocked in a read. A
	// fresh goroutine pumps the stream while it has something to write;
	// idle (from the handler's return, and 200 ms after its last event),
	// the stream parks, with no goroutine of its own: one goroutine for
	// every 16 parked streams waits on their channels and starts a pump
	// again when an event comes, or a heartbeat, the client's leaving or
	// the stream's end. An idle stream subscribed to a broker then costs
	// 6 to 7 KiB of memory in all, against 27 KiB on net/http's path
	// (the benchmarks module's B1); Stats.Parked counts the parked ones.
	// Over HTTP/2, for HEAD requests and behind a middleware that wraps
	// the writer (Echo's Gzip), the stream stays on net/http's path by
	// itself. A logger or metrics middleware sees the request end, with
	// status 200, when the stream takes the connection over, not when it
	// ends; an error reported after that gets a request with the method,
	// URL, host, client address and TLS state, and no header.
	// http.Server.Shutdown no longer waits for a taken-over stream, which
	// still ends with the close event, promptly, but may not have
	// written it when Shutdown returns: a program waits for its streams
	// with Counters.Wait (give the door a Config.Counters) before it
	// closes their broker, whose Close would end them without the close
	// event, or exits.
	// Optional. Default value false.
	Takeover bool

	// CompressIdle is how long a compressed stream keeps its compressor
	// after its last event. See [sse.Config].
	// Optional. Default value 1 second.
	CompressIdle time.Duration

	// MaxCompressors bounds the compressors the compressed streams of this
	// middleware share. See [sse.Config].
	// Optional. Default value 4 × GOMAXPROCS, at least 8.
	MaxCompressors int

	// ErrorHandler is told about events that fail validation and about
	// streams that end because a write failed for a reason other than an
	// ordinary disconnect. It runs on the stream's pump; c is valid during
	// the call only. See [sse.Config]. err is a *[sse.StreamError], which
	// says whether it ended the stream, why, and the client's address and
	// the stream's age.
	// Optional. Default value: log the error with c.Logger(), Echo's
	// slog.Logger, with the StreamError's attributes
	// ([sse.StreamError.Attrs]): error, reason, remote_addr, stream_age.
	ErrorHandler func(c *echo.Context, err error)

	// Counters, when set, is where the streams of this middleware are counted,
	// for an exporter to read at scrape time: streams open, opened,
	// refused and ended by reason, events and bytes written, heartbeats,
	// flush times, compressors. Several middlewares or Servers may share
	// one Counters; their counts add up. Counting is always on and costs
	// next to nothing; this only makes the counts reachable.
	// Optional. Default value nil (the middleware counts on its own, out of reach).
	Counters *Counters
}

// Counters count what the streams of one or more middlewares do, for an
// exporter to read: the core's [sse.Counters]. Give a new(echosse5.Counters) to
// Config.Counters, and read it with its Stats method, or export it with
// package metrics/prom (prom.NewStreamCollector).
type Counters = sse.Counters

// Overflow says how the middleware answers a request that would exceed
// Config.MaxClients: [OverflowRetry] or [OverflowUnavailable].
type Overflow = sse.Overflow

const (
	// OverflowRetry answers 200 with an event stream that holds only a
	// "retry" field and ends, which a browser's EventSource comes back
	// after. The default. See [sse.OverflowRetry].
	OverflowRetry = sse.OverflowRetry

	// OverflowUnavailable answers 503 Service Unavailable with a
	// Retry-After header, through Echo's error handler. See
	// [sse.OverflowUnavailable].
	OverflowUnavailable = sse.OverflowUnavailable
)

// Bounds of [Config] fields: [Config.ToMiddleware] refuses larger values.
const (
	// MaxDelay bounds Retry, RetryAfter and ShutdownRetry.
	MaxDelay = sse.MaxDelay

	// MaxBufferSize bounds BufferSize.
	MaxBufferSize = sse.MaxBufferSize
)

// DefaultConfig is the default configuration of the [Middleware].
var DefaultConfig = Config{
	Skipper:        middleware.DefaultSkipper,
	MaxClients:     sse.DefaultConfig.MaxClients,
	PingInterval:   sse.DefaultConfig.PingInterval,
	CloseEvent:     sse.DefaultConfig.CloseEvent,
	BufferSize:     sse.DefaultConfig.BufferSize,
	WriteTimeout:   sse.DefaultConfig.WriteTimeout,
	Overflow:       sse.DefaultConfig.Overflow,
	RetryAfter:     sse.DefaultConfig.RetryAfter,
	CompressIdle:   sse.DefaultConfig.CompressIdle,
	MaxCompressors: sse.DefaultConfig.MaxCompressors,
	ErrorHandler:   logError,
}

// logError logs err with Echo's slog logger: a *sse.StreamError with its
// attributes, anything else with an "error" attribute.
func logError(c *echo.Context, err error) {
	var attrs []slog.Attr
	if se := (*sse.StreamError)(nil); errors.As(err, &se) {
		attrs = se.Attrs()
	} else {
		attrs = []slog.Attr{slog.String("error", err.Error())}
	}
	c.Logger().LogAttrs(c.Request().Context(), slog.LevelError, "echosse5: stream error", attrs...)
}

// core returns the core's configuration: config's fields but Skipper and
// ErrorHandler, which the middleware keeps.
func (config Config) core() sse.Config {
	var c sse.Config
	door.CopyFields(&c, config, "ErrorHandler")
	return c
}
