package sse

// This file owns configuration: Config, its defaults and bounds, and the
// check that turns a programmer's mistake into an error at construction.

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"time"
)

// Config configures a [Server]: every stream it opens. The zero value of
// every field means its default. The front doors for Echo (echosse,
// echosse5) take the same fields.
type Config struct {
	// MaxClients is the number of streams that may be open at once through
	// this Server, counted exactly. A request over it does not open a
	// stream: [Server.Open] returns an error matching [ErrTooManyClients], which
	// [Server.Error] (or the door's middleware) answers as Overflow says.
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
	// all of it without a write: one goroutine per Server looks at its
	// streams every eighth of it, so an idle stream needs no timer. A
	// negative value turns heartbeats off.
	// Optional. Default value 25 seconds.
	PingInterval time.Duration

	// CloseEvent is the type of the event written when the sender closes the
	// stream's channel, just before the response ends. It carries an empty
	// "data" line, so that a browser dispatches it to
	// addEventListener(CloseEvent, ...).
	// Optional. Default value "close".
	CloseEvent string

	// MatchQuery, when set, limits streams to requests whose query string has
	// this key, whatever its value (as "/feed?sse"). For other requests [Server.Open]
	// returns an error matching [ErrNotRequested], and the handler can answer
	// them as ordinary requests.
	// Optional. Default value "" (any request may open a stream).
	MatchQuery string

	// BufferSize is the capacity of each stream's channel: how many events
	// senders can queue before a send blocks. When several events are
	// queued, the pump writes them all and flushes once; a burst larger
	// than the buffer is still written in few large writes, as the pump
	// lets blocked senders refill it before it writes. Each slot costs 80
	// bytes per stream: with the default, the channel is the largest thing
	// an idle taken-over stream holds (816 of about 3,400 bytes of heap).
	// A server of many idle streams whose senders send one event at a time
	// may choose 4, for about 0.8 KiB less per stream; senders of bursts
	// then get smaller batches (13-26% fewer events/s in the benchmarks
	// module's A2).
	// Optional. Default value 8.
	BufferSize int

	// WriteTimeout bounds every write and flush to a client. A client that
	// stops reading is dropped once its connection's buffers are full and a
	// write has waited this long; its stream ends with [ErrWriteTimeout].
	// Over HTTP/2 the stream is reset then; when the whole connection takes
	// no bytes, so that not even the reset can be sent, the connection is
	// closed once the write has waited twice this long, and every stream on
	// it ends: the http.Server needs no HTTP2Config.WriteByteTimeout.
	// The http.Server's own WriteTimeout never cuts a stream: [Server.Open] clears
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
	// http.Server shuts down (Shutdown, e.Shutdown in Echo): instead of the close event, a "retry"
	// field of this delay plus up to as much again of random jitter, and
	// the response ends. A browser then reconnects, to another instance
	// behind a load balancer, spread over that time instead of all at once.
	// Either way every stream is told at once, before any function
	// registered with [Stream.AfterFunc] runs, and the handler's
	// [Stream.Err] is [ErrShutdown]. http.Server.Shutdown returns only once every stream has written its close event or retry
	// hint and its response has ended, or when its context is done: a
	// stream whose client has stopped reading can hold it that long (or
	// until WriteTimeout drops the client), so give it a deadline.
	// Optional. Default value 0 (send the close event).
	ShutdownRetry time.Duration

	// Compress turns on the stream's own gzip compression for clients that
	// accept it. A compressed stream keeps the last 4 KB of what it sent
	// and borrows a deflate compressor (about 1 MB) from a pool of at most
	// MaxCompressors to write each event, so that a compressed stream costs
	// a few KB instead of the compressor a gzip middleware pins for the
	// response's whole life, and their total memory stays bounded however
	// many streams are busy at once. A compression middleware in front of
	// stream routes that compresses whatever the handler writes, as Echo's
	// Gzip does, would compress them twice: [Server.Open] fails with
	// [ErrDoubleCompression]. One that leaves alone a response whose
	// Content-Encoding is set, as gzhttp does, passes compressed streams
	// through as they are.
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
	// compressed streams of this Server share. Fewer than the streams
	// busy at once makes them take turns, each priming a compressor with
	// its own history, which costs CPU but never correctness or delivery.
	// Optional. Default value 4 × GOMAXPROCS, at least 8.
	MaxCompressors int

	// ErrorHandler is told about events that fail validation (the pump skips
	// them and the stream goes on) and about streams that end because a
	// write failed for a reason other than an ordinary disconnect, such as
	// a write timeout. It runs on the stream's pump; r is the stream's
	// request, valid during the call only.
	// err is a *[StreamError], which says whether it ended the stream,
	// why, and the client's address and the stream's age.
	// Optional. Default value: log the error with log/slog's default
	// logger, with the StreamError's attributes ([StreamError.Attrs]).
	ErrorHandler func(r *http.Request, err error)

	// Counters, when set, is where the streams of this Server are counted,
	// for an exporter to read at scrape time: streams open, opened,
	// refused and ended by reason, events and bytes written, heartbeats,
	// flush times, compressors. Several middlewares or Servers may share
	// one Counters; their counts add up. Counting is always on and costs
	// next to nothing; this only makes the counts reachable.
	// Optional. Default value nil ([Server.Stats] reads its own).
	Counters *Counters
}

// Overflow says how a request that would exceed Config.MaxClients is
// answered.
type Overflow int

const (
	// OverflowRetry answers 200 with an event stream that holds only a
	// "retry" field (RetryAfter plus jitter) and ends. A browser's
	// EventSource comes back after that delay. This is the default, because
	// a browser gives up for good on any status other than 200.
	OverflowRetry Overflow = iota

	// OverflowUnavailable answers 503 Service Unavailable with a Retry-After
	// header (RetryAfter plus jitter, in whole seconds); through the
	// framework's error handler in the Echo doors. Use it for clients that honour Retry-After; a browser's
	// EventSource does not reconnect after it.
	OverflowUnavailable
)

// String returns the mode's label: "retry" or "unavailable".
func (o Overflow) String() string {
	switch o {
	case OverflowRetry:
		return "retry"
	case OverflowUnavailable:
		return "unavailable"
	}
	return "unknown"
}

// Bounds of [Config] fields: [New] refuses larger values.
const (
	// MaxDelay bounds Retry, RetryAfter and ShutdownRetry: a day is
	// longer than any client should be told to wait, and keeps the jitter
	// added to them far from overflowing.
	MaxDelay = 24 * time.Hour

	// MaxBufferSize bounds BufferSize.
	MaxBufferSize = 1 << 16
)

// DefaultConfig is the default configuration of a [Server].
var DefaultConfig = Config{
	MaxClients:   10000,
	PingInterval: 25 * time.Second,
	CloseEvent:   "close",
	BufferSize:   8,
	WriteTimeout: 30 * time.Second,
	Overflow:     OverflowRetry,
	RetryAfter:   5 * time.Second,
	CompressIdle: time.Second,
	// Compressing is CPU work: more than a few per core gain nothing.
	MaxCompressors: max(8, 4*runtime.GOMAXPROCS(0)),
	ErrorHandler:   logError,
}

func logError(r *http.Request, err error) {
	var attrs []slog.Attr
	if se := (*StreamError)(nil); errors.As(err, &se) {
		attrs = se.Attrs()
	} else {
		attrs = []slog.Attr{slog.String("error", err.Error())}
	}
	slog.Default().LogAttrs(r.Context(), slog.LevelError, "sse: stream error", attrs...)
}

// withDefaults returns config with its zero fields filled from DefaultConfig,
// or an error naming the first invalid field, whose message starts with
// prefix.
func (config Config) withDefaults(prefix string) (Config, error) {
	config, err := config.fill()
	if err != nil {
		err = errors.New(prefix + err.Error())
	}
	return config, err
}

func (config Config) fill() (Config, error) {
	switch {
	case config.MaxClients < 0:
		return config, errors.New("MaxClients must not be negative (0 means the default, 10000)")
	case config.BufferSize < 0:
		return config, errors.New("BufferSize must not be negative (0 means the default, 8)")
	case config.Retry < 0:
		return config, errors.New("Retry must not be negative (0 means not sent)")
	case config.ShutdownRetry < 0:
		return config, errors.New("ShutdownRetry must not be negative (0 means send the close event)")
	case config.MaxCompressors < 0:
		return config, errors.New("MaxCompressors must not be negative (0 means the default, 4 × GOMAXPROCS)")
	case config.CompressIdle < 0:
		return config, errors.New("CompressIdle must not be negative (0 means the default, 1s)")
	case config.RetryAfter < 0:
		return config, errors.New("RetryAfter must not be negative (0 means the default, 5s)")
	case config.Retry > MaxDelay:
		return config, fmt.Errorf("Retry must be at most %v (MaxDelay)", MaxDelay)
	case config.RetryAfter > MaxDelay:
		return config, fmt.Errorf("RetryAfter must be at most %v (MaxDelay)", MaxDelay)
	case config.ShutdownRetry > MaxDelay:
		return config, fmt.Errorf("ShutdownRetry must be at most %v (MaxDelay)", MaxDelay)
	case config.BufferSize > MaxBufferSize:
		return config, fmt.Errorf("BufferSize must be at most %d (80 bytes a slot, per stream)", MaxBufferSize)
	case config.Overflow != OverflowRetry && config.Overflow != OverflowUnavailable:
		return config, errors.New("Overflow must be OverflowRetry or OverflowUnavailable")
	case strings.ContainsAny(config.CloseEvent, "\r\n"):
		return config, errors.New("CloseEvent must not contain CR or LF")
	}
	d := DefaultConfig
	if config.MaxClients == 0 {
		config.MaxClients = d.MaxClients
	}
	if config.PingInterval == 0 {
		config.PingInterval = d.PingInterval
	}
	if config.CloseEvent == "" {
		config.CloseEvent = d.CloseEvent
	}
	if config.BufferSize == 0 {
		config.BufferSize = d.BufferSize
	}
	if config.WriteTimeout == 0 {
		config.WriteTimeout = d.WriteTimeout
	}
	if config.RetryAfter == 0 {
		config.RetryAfter = d.RetryAfter
	}
	if config.CompressIdle == 0 {
		config.CompressIdle = d.CompressIdle
	}
	if config.MaxCompressors == 0 {
		config.MaxCompressors = d.MaxCompressors
	}
	if config.ErrorHandler == nil {
		config.ErrorHandler = d.ErrorHandler
	}
	return config, nil
}
