package broker

import (
	"errors"
	"fmt"
)

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

	// ErrUnknownOutcome is wrapped by the error [Broker.Publish] returns,
	// a [*PublishError], when the backend sent the event but cannot tell
	// whether it stored it: the answer never came (the connection broke,
	// or the backend did not answer in time). The event may have been
	// stored, and delivered to every subscriber, or not; it is not stored
	// twice. A distributed backend says in the error until when it may
	// still store it, and whether the caller can find out which. The
	// in-memory history never returns it.
	ErrUnknownOutcome = errors.New("broker: the outcome of the publish is unknown")

	// ErrLost is the cause a subscribed stream is aborted with when its
	// backend learned that events it had stored are gone (a distributed
	// backend's server lost its data: a flush, a restart without it, a
	// failover to a replica that was behind): the stream may have missed
	// some of them, and the history no longer has them. errors.Is(ErrLost,
	// ErrGap) is true. The browser reconnects with the ID of the last event
	// it received, and [Broker.Subscribe] returns ErrGap for it, so that the
	// handler sends the full refresh it sends for any gap.
	ErrLost error = lostError{}

	// ErrSubscribed is returned by [Broker.Subscribe] for a stream that is
	// already subscribed: a stream subscribes to all its topics in one call.
	ErrSubscribed = errors.New("broker: stream already subscribed; subscribe to all its topics in one call")
)

// A PublishError is the error [Broker.Publish] returns when the backend
// cannot tell whether it stored the event: Err wraps [ErrUnknownOutcome]
// and the cause (errors.Is finds either). Other failures of Publish are
// plain errors: the event was not stored.
type PublishError struct {
	// Topic is the topic the event was published on.
	Topic string

	// ID is the ID the event has if it was stored: the one the caller
	// gave it. It is empty when the backend assigns the ID as it stores
	// the event (the Redis backend's IDs are Redis's clock when it runs
	// the publish), and so could not tell it; give events IDs of your own
	// to be able to look for them afterwards.
	ID string

	// Err says what happened; it wraps ErrUnknownOutcome.
	Err error
}

// Error says what happened to the event, naming its ID when it has one.
func (e *PublishError) Error() string {
	if e.ID != "" {
		return fmt.Sprintf("broker: publishing event %q on %q: %v", e.ID, e.Topic, e.Err)
	}
	return fmt.Sprintf("broker: publishing on %q: %v", e.Topic, e.Err)
}

// Unwrap returns Err.
func (e *PublishError) Unwrap() error { return e.Err }

// lostError is ErrLost: a gap, which the backend found out about itself.
type lostError struct{}

func (lostError) Error() string        { return "broker: the backend lost events it had stored" }
func (lostError) Is(target error) bool { return target == ErrGap }
