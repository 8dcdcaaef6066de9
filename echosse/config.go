package echosse

import (
	"errors"
	"time"

	"github.com/echosse/echo-sse/internal/door"
	"github.com/echosse/echo-sse/sse"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/labstack/gommon/log"
)

// Config defines the config for the [Middleware]. The zero value of every
// field means its default. Its fields are [sse.Config]'s, with Echo's
// Skipper and an ErrorHandler given the echo.Context.
type Config struct {
	// Skipper defines a function to skip middleware.
	// Optional. Default value middleware.DefaultSkipper.
	Skipper middleware.Skipper

	// MaxClients is the number of streams that may be open at once through
	// this middleware, counted exactly. A request over it does not open a
	// stream: [Open] returns an error matching [ErrTooManyClients], and the
	// middleware answers it as Overflow says.
	// Optional. Default value 10000.
	MaxClients int

	// PingInterval is how long a stream may stay idle before a heartbeat
	// comment (": ping") is written, so that proxies and load balancers do
	// not cut it; every event written restarts the wait. The default stays
	// under the idle timeouts of the common proxies with a margin: nginx's
	// proxy_read_timeout and AWS ALB's idle timeout (60 s), Heroku's
	// router (55 s), CloudFront's origin response timeout (30 s) and
	// Cloudflare (100 s). Behind nginx with its defaults, a stream pinged
	// every 60 seconds (koa-sse-stream's default) is cut after 60 s of
	// idleness. A heartbeat comes after between 7/8 of PingInterval and
	// all of it without a write (see [sse.Config]). A negative value
	// turns heartbeats off.
	// Optional. Default value 25 seconds.
	PingInterval time.Duration

	// CloseEvent is the type of the event written when the sender closes the
	// stream's channel, just before the response ends. It carries an empty
	// "data" line, so that a browser dispatches it to
	// addEventListener(CloseEvent, ...).
	// Optional. Default value "close".
	CloseEvent string

	// MatchQuery, when set, limits streams to requests whose query string has
	// this key, whatever its value (as "/feed?sse"). For other requests [Open]
	// returns an error matching [ErrNotRequested], and the handler can answer
	// them as ordinary requests.
	// Optional. Default value "" (any request may open a stream).
	MatchQuery string

	// BufferSize is the capacity of each stream's channel: how many events
	// senders can queue before a send blocks. When several events are
	// queued, the pump writes them all and flushes once; a burst larger
	// than the buffer is still written in few large writes, as the pump
	// lets blocked senders refill it before it writes. Each slot costs 80
	// bytes per stream.
	// Optional. Default value 8.
	BufferSize int

	// WriteTimeout bounds every write and flush to a client. A client that
	// stops reading is dropped once its connection's buffers are full and a
	// write has waited this long; its stream ends with [ErrWriteTimeout].
	// Over HTTP/2 the stream is reset then; when the whole connection takes
	// no bytes, so that not even the reset can be sent, the connection is
	// closed once the write has waited twice this long, and every stream on
	// it ends: the http.Server needs no HTTP2Config.WriteByteTimeout.
	// The http.Server's own WriteTimeout never cuts a stream: [Open] clears
	// it. A negative value turns the timeout off.
	// Optional. Default value 30 seconds.
	WriteTimeout time.Duration

	// Retry, when positive, is sent as the "retry" field when a stream opens:
	// the delay a browser waits before it reconnects after the stream ends.
	// Optional. Default value 0 (not sent; browsers wait about 3 seconds).
	Retry time.Duration

	// Overflow says how a request over MaxClients is answered.
	// Optional. Default value OverflowRetry.
	Overflow Overflow

	// RetryAfter is the base delay after which a client refused over
	// MaxClients should come back. Each answer adds a random jitter of up to
	// the same delay again, so that refused clients do not all return at once.
	// Optional. Default value 5 seconds.
	RetryAfter time.Duration

	// ShutdownRetry, when positive, changes what a stream sends when its
	// server shuts down (e.Shutdown): instead of the close event, a "retry"
	// field of this delay plus up to as much again of random jitter, and
	// the response ends. A browser then reconnects, to another instance
	// behind a load balancer, spread over that time instead of all at once.
	// Either way every stream is told at once, before any function
	// registered with [Stream.AfterFunc] runs, and the handler's
	// [Stream.Err] is [ErrShutdown]. e.Shutdown (http.Server.Shutdown)
	// returns only once every stream has written its close event or retry
	// hint and its response has ended, or when its context is done: a
	// stream whose client has stopped reading can hold it that long (or
	// until WriteTimeout drops the client), so give it a deadline.
	// Optional. Default value 0 (send the close event).
	ShutdownRetry time.Duration

	// Compress turns on the stream's own gzip compression for clients that
	// accept it. A compressed stream keeps the last 4 KB of what it sent
	// and borrows a deflate compressor (about 1 MB) from a pool of at most
	// MaxCompressors to write each event, so that a compressed stream costs
	// a few KB instead of the compressor Echo's Gzip middleware pins for
	// the response's whole life, and their total memory stays bounded
	// however many streams are busy at once. Do not put
	// Echo's Gzip in front of stream routes as well (skip them with
	// GzipConfig.Skipper): [Open] fails with [ErrDoubleCompression].
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

	// CompressIdle is how long a compressed stream keeps the compressor it
	// used last after its last event, unless another stream needs it. A
	// stream that gets events more often usually finds it untouched; the
	// first event after a longer pause, or after another stream took it,
	// primes a compressor with the stream's last 4 KB (tens of
	// microseconds).
	// Optional. Default value 1 second.
	CompressIdle time.Duration

	// MaxCompressors bounds the compressors (about 1 MB each) that the
	// compressed streams of this middleware share. Fewer than the streams
	// busy at once makes them take turns, each priming a compressor with
	// its own history, which costs CPU but never correctness or delivery.
	// Optional. Default value 4 × GOMAXPROCS, at least 8.
	MaxCompressors int

	// ErrorHandler is told about events that fail validation (the pump skips
	// them and the stream goes on) and about streams that end because a
	// write failed for a reason other than an ordinary disconnect, such as
	// a write timeout. It runs on the stream's pump; c is valid during the
	// call only. err is a *[sse.StreamError], which says whether it ended
	// the stream, why, and the client's address and the stream's age.
	// Optional. Default value: log the error with c.Logger(), as JSON
	// fields (Errorj): message, and the StreamError's attributes
	// ([sse.StreamError.Attrs]) reason, remote_addr and stream_age.
	ErrorHandler func(c echo.Context, err error)

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
// exporter to read: the core's [sse.Counters]. Give a new(echosse.Counters) to
// Config.Counters, and read it with its Stats method, or export it with
// package metrics/prom (prom.NewStreamCollector).
type Counters = sse.Counters

// Overflow says how the middleware answers a request that would exceed
// Config.MaxClients: [OverflowRetry] or [OverflowUnavailable].
type Overflow = sse.Overflow

const (
	// OverflowRetry answers 200 with an event stream that holds only a
	// "retry" field (RetryAfter plus jitter) and ends. A browser's
	// EventSource comes back after that delay. This is the default, because
	// a browser gives up for good on any status other than 200.
	OverflowRetry = sse.OverflowRetry

	// OverflowUnavailable answers 503 Service Unavailable with a Retry-After
	// header (RetryAfter plus jitter, in whole seconds), through Echo's
	// error handler. Use it for clients that honour Retry-After; a browser's
	// EventSource does not reconnect after it.
	OverflowUnavailable = sse.OverflowUnavailable
)

// Bounds of [Config] fields: [Config.ToMiddleware] refuses larger values.
const (
	// MaxDelay bounds Retry, RetryAfter and ShutdownRetry: a day is
	// longer than any client should be told to wait, and keeps the jitter
	// added to them far from overflowing.
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

// logError logs err with Echo's logger: a *sse.StreamError as JSON, its
// message and its attributes as fields (Echo's default logger writes one
// JSON object per line), anything else as Error does.
func logError(c echo.Context, err error) {
	se := (*sse.StreamError)(nil)
	if !errors.As(err, &se) {
		c.Logger().Error(err)
		return
	}
	j := log.JSON{"message": err.Error()}
	for _, a := range se.Attrs() {
		if a.Key != "error" { // the message
			j[a.Key] = a.Value.String()
		}
	}
	c.Logger().Errorj(j)
}

// core returns the core's configuration: config's fields but Skipper and
// ErrorHandler, which the middleware keeps.
func (config Config) core() sse.Config {
	var c sse.Config
	door.CopyFields(&c, config, "ErrorHandler")
	return c
}
