// Package broker broadcasts server-sent events to the streams subscribed
// to a topic, and replays to a reconnecting browser the events it missed.
// A stream is an [sse.Stream], opened through any front door: echosse
// for Echo v4, echosse5 for Echo v5, or package [sse] itself for net/http;
// one broker serves them all at once.
//
// A handler opens its stream (with echosse.Open in Echo v4) and
// subscribes it to one or more topics with [Broker.Subscribe]; any
// goroutine sends an event to all of a topic's subscribers with
// [Broker.Publish]:
//
//	s, err := echosse.Open(c)
//	if err != nil {
//		return err
//	}
//	if err := b.Subscribe(s, "chat"); errors.Is(err, broker.ErrGap) {
//		// The client missed events the history no longer has: refresh it.
//		return s.Send(event.Event{Type: "reload", Data: ""})
//	} else if err != nil {
//		return err
//	}
//	return nil
//
// Each published event gets an ID, unless it has one: with the default
// backend a decimal number that grows with every event, across topics,
// starting from the broker's creation time in microseconds (so that an ID a
// browser kept from an earlier run of the process, whose history is gone,
// is known to be older than the history, not mistaken for a new one). A
// browser sends the last ID it received in the Last-Event-ID header when it
// reconnects, and Subscribe first replays the events of the stream's topics
// published after it, then goes on live: every event once, in order, even
// when a Publish races the Subscribe. Each topic keeps a history bounded by
// count, by age and by bytes (Config.HistorySize, Config.HistoryAge,
// Config.HistoryBytes), and all topics together by bytes
// (Config.TotalHistoryBytes); when the
// history no longer covers a client's Last-Event-ID, Subscribe says so with
// [ErrGap], and the handler sends a full refresh instead of letting events
// be lost silently.
//
// Publish never waits for a subscriber. It encodes the event once and puts
// it in each subscriber's channel buffer without blocking; no goroutine is
// started per subscriber. A subscriber whose buffer is full is handled by
// Config.SlowClient: by default its events wait, in order, until its buffer
// has room again (the stream takes them as soon as it has written what its
// buffer held, with the same flush: see
// [github.com/echosse/echo-sse/sse.Stream.SetRefill]), and a stream that
// falls Config.MaxBehind events behind is aborted; the browser reconnects
// and catches up from the history. [Broker.Stats] counts subscribers,
// published, replayed and dropped events, and slow clients.
//
// The history lives in memory by default. A [Backend] stores it elsewhere
// (Redis Streams, say) so that several processes share topics; handlers and
// publishers do not change. A distributed backend that is [Interested] is
// told which topics this process has subscribers for, and delivers only
// their events: a process's cost then follows its own streams.
package broker
