package broker

import "errors"

var (
	// ErrGap is returned, wrapped, by [Broker.Subscribe] when the stream's
	// Last-Event-ID is not covered by the history: events of its topics
	// published after that ID have been trimmed, or the ID is unknown
	// (malformed, too long, from before this broker started, or never
	// assigned). The subscription is live all the same, without replay: the
	// handler should send the client a full refresh, or an event telling it
	// to reload.
	ErrGap = errors.New("broker: history does not cover the Last-Event-ID")

	// ErrSlowClient is the cause a stream is aborted with when its buffer is
	// full under [SlowClientAbort] ([sse.Stream.Err] returns it). The
	// browser reconnects with the ID of the last event it received, and the
	// replay fills the gap.
	ErrSlowClient = errors.New("broker: client too slow, its buffer is full")

	// ErrClosed is returned by [Broker.Publish] and [Broker.Subscribe] after
	// [Broker.Close], and is the cause every subscribed stream is aborted
	// with when the broker closes: without the close event, so browsers
	// reconnect (to another instance, say) and resume. It is not
	// [sse.ErrClosed] (echosse.ErrClosed), which says that the sender
	// closed a stream's channel and the close event was sent; match the
	// package's own with errors.Is(err, broker.ErrClosed).
	ErrClosed = errors.New("broker: closed")

	// ErrChannelClosed is wrapped by the error a subscription ends with
	// when its stream's channel was closed by the handler, which
	// [Broker.Subscribe] forbids: the broker sends on it. The broker
	// notices it at its next send, unregisters the stream, aborts it with
	// that error ([sse.Stream.Err] returns it), and gives the error to
	// Config.ErrorHandler; Subscribe returns it if it notices while
	// replaying. Other subscribers are not affected.
	ErrChannelClosed = errors.New("broker: a subscribed stream's channel was closed (the broker sends on it: the handler must not close it)")

	// ErrSubscribed is returned by [Broker.Subscribe] for a stream that is
	// already subscribed: a stream subscribes to all its topics in one call.
	ErrSubscribed = errors.New("broker: stream already subscribed; subscribe to all its topics in one call")
)
