package broker

import (
	"context"
	"encoding/json"
	"time"

	"github.com/echosse/echo-sse/event"
)

// A Message is an event as a [Backend] stored it.
type Message struct {
	// Topic is the topic the event was published on.
	Topic string

	// Seq is the message's position in the backend's single order of all
	// messages, across topics and across every process sharing the
	// backend: the n-th message published has a greater Seq than every
	// earlier one. Several processes must agree on it.
	Seq uint64

	// Time is when the message was stored; the history's age limit is
	// measured from it.
	Time time.Time

	// Event is the event, with its ID set (the one clients send back in
	// Last-Event-ID) and prepared ([event.Event.Prepare]), so that sending
	// it to a stream only copies bytes.
	Event event.Event
}

// A Backend stores events and their history, and delivers every event
// published on it to the broker it serves. [Broker] keeps the subscribers
// and the fan-out to them; a backend knows nothing of streams. The default
// one keeps the history in memory; a distributed one (Redis Streams, say:
// XADD with MAXLEN or MINID to publish and trim, XRANGE to replay, a
// blocking XREAD loop for the live tail) lets several processes share
// topics without touching handlers.
//
// IDs must name the same message in every process. A Redis backend can,
// for example, take Seq from an INCR run in the same script as the XADD,
// store it in the entry and use it in decimal as the event's ID; its Replay
// then reads each topic's stream with XRANGE and merges them by Seq.
//
// A Broker calls Start once, from [New], then the other methods from any
// goroutine, and Close once, last.
type Backend interface {
	// Start makes the backend call deliver for every message published on
	// it from now on, by this process or any other: one call at a time, in
	// Seq order, each message once. It returns the Seq of the last message
	// published before delivery starts (any value less than every Seq to
	// come if there is none). An [Interested] backend delivers the
	// messages of the topics its broker watches only: the Seqs delivered
	// then have gaps.
	Start(deliver func(Message)) (last uint64, err error)

	// Publish stores ev as the next message of topic and returns it. When
	// ev.ID is empty the backend assigns an ID that names the message's
	// position; otherwise it keeps ev.ID. It returns an
	// [*event.FieldError] for an event that cannot be encoded, and
	// [ErrClosed] after Close. A backend that sent the event somewhere
	// and does not know whether it was stored (the answer never came)
	// returns a [*PublishError] wrapping [ErrUnknownOutcome]; it must not
	// store the event twice, whatever it retries.
	Publish(ctx context.Context, topic string, ev event.Event) (Message, error)

	// Replay returns, in Seq order, the messages of topics published after
	// the one whose ID is lastEventID, up to and including the one whose
	// Seq is upTo. It returns an error wrapping [ErrGap] when it cannot
	// return all of them: the history of one of the topics was trimmed
	// after lastEventID, or lastEventID names no message it knows of
	// (malformed, or after upTo). lastEventID is never empty. The caller
	// owns the returned slice.
	Replay(ctx context.Context, topics []string, lastEventID string, upTo uint64) ([]Message, error)

	// Trim drops from the history what its limits no longer allow. A
	// backend may trim as it publishes; the Broker also calls Trim
	// periodically, so that topics nobody publishes on any more shrink too.
	Trim(ctx context.Context) error

	// Close stops delivery and releases the backend's resources. Once it
	// has returned, deliver is not called any more.
	Close() error
}

// A Syncer is a [Backend] whose delivery may lag behind the messages other
// processes publish: a distributed one reads them back from a shared log.
// A client that received an event through one process and reconnects to
// another would otherwise find its Last-Event-ID beyond what this process
// has delivered, and get a spurious [ErrGap]. Before it replays to a
// reconnecting stream, [Broker.Subscribe] calls Sync.
type Syncer interface {
	// Sync returns once the backend has called deliver for every message
	// published, by any process, before Sync was called; or with an error
	// when it cannot know (the backend is unreachable, ctx is done), in
	// which case Subscribe returns it wrapped and subscribes nothing.
	Sync(ctx context.Context) error
}

// A LossNotifier is a [Backend] that can learn that events it had
// stored, and Publish had reported published, are gone: a distributed
// one whose server lost data (a flush, a restart without persistence, a
// failover to a replica that was behind), or whose delivery skipped
// messages the server no longer had. Clients may have missed those events,
// and no replay can give them: [New] gives such a backend a function to
// call then, which ends the subscriptions of the topics concerned, with
// [ErrLost], so that their clients reconnect and are told of the gap.
type LossNotifier interface {
	// NotifyLoss gives the backend the function to call when it learns of
	// a loss; New calls it once, before Start. The backend calls lost,
	// from any goroutine, once Replay returns an error wrapping [ErrGap]
	// for every Last-Event-ID a client can have received before the loss.
	NotifyLoss(lost func(Loss))
}

// A Loss is what a [LossNotifier] tells its broker.
type Loss struct {
	// Topics are the topics that lost events; nil means every topic.
	Topics []string

	// Err says what the backend learned. Streams are aborted with an
	// error wrapping ErrLost and Err.
	Err error
}

// MarshalData returns ev with Data that is not text (a string, []byte or
// json.RawMessage) encoded as JSON into a json.RawMessage, as the event
// package would write it, or an [*event.FieldError] if encoding/json
// cannot encode it. A [Backend] calls it before it stores an event, so
// that what it stores is text.
func MarshalData(ev event.Event) (event.Event, error) {
	switch d := ev.Data.(type) {
	case nil, string, []byte, json.RawMessage:
		return ev, nil
	default:
		b, err := json.Marshal(d)
		if err != nil {
			return ev, &event.FieldError{Field: "data", Err: err}
		}
		ev.Data = json.RawMessage(b)
		return ev, nil
	}
}
