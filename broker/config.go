package broker

import (
	"errors"
	"log"
	"time"
)

// Config defines the config of a [Broker]. The zero value of every field
// means its default.
type Config struct {
	// HistorySize is how many events each topic keeps for replay. A client
	// that reconnects after more events than this were published on one of
	// its topics gets no replay: [Broker.Subscribe] returns [ErrGap].
	// It configures the in-memory history: with a Backend, leave it zero
	// and set the backend's own limits. It must be at most 10,000,000.
	// Optional. Default value 1000.
	HistorySize int

	// HistoryAge is how long an event stays in its topic's history. A
	// negative value keeps events whatever their age (HistorySize still
	// bounds them). It must be at most 10 years. It configures the
	// in-memory history: with a Backend, leave it zero and set the
	// backend's own limits.
	// Optional. Default value 1 hour.
	HistoryAge time.Duration

	// HistoryBytes bounds the bytes each topic's history holds: once more,
	// its oldest events are dropped (a client that missed them gets
	// [ErrGap], as with the other limits); an event bigger than that is
	// sent to the live subscribers but not kept. An event counts the
	// bytes of its ID, Type, Data (as encoding/json writes it, for data
	// that is not text) and Comment, plus 128 bytes; the heap holds about
	// that much for it (the stored event, and its slot in the topic's
	// ring buffer). A topic costs about 300 bytes more, for as long as it
	// holds an event. A negative value sets no byte limit per topic. It
	// configures the in-memory history, as HistorySize does.
	// Optional. Default value 4 MiB.
	HistoryBytes int64

	// TotalHistoryBytes bounds the bytes the histories of all topics hold
	// together, counted as for HistoryBytes: once more, the oldest events
	// of all topics are dropped. A negative value sets no total limit. It
	// configures the in-memory history, as HistorySize does.
	// Optional. Default value 256 MiB.
	TotalHistoryBytes int64

	// MaxBehind is how many live events a stream may fall behind, held
	// back while its buffer is full or its replay is being sent, before it
	// counts as a slow client (see SlowClientAbort). The default follows
	// HistorySize: a stream further behind than the history could not
	// catch up by a replay after it reconnects anyway. Set it apart from
	// the history when events are large (each stream holds up to
	// MaxBehind of them back) or with a Backend, whose history is its own.
	// It must be at most 10,000,000.
	// Optional. Default value HistorySize (1000 with a Backend).
	MaxBehind int

	// SlowClient says what Publish does with a subscriber whose buffer
	// (echosse Config.BufferSize) is full. Publish never waits for one.
	// Optional. Default value SlowClientAbort.
	SlowClient SlowClientPolicy

	// Backend stores the events and their history, and delivers the events
	// to this broker (see [Backend]). Replace it with a distributed one to
	// share topics between several processes; handlers do not change.
	// Optional. Default value nil (the history is kept in this process's
	// memory, bounded by HistorySize and HistoryAge).
	Backend Backend

	// ErrorHandler is told about errors the broker meets outside any call:
	// a failed periodic Backend.Trim, and a subscribed stream whose channel
	// its handler closed ([ErrChannelClosed]). It runs on the broker's own
	// goroutine.
	// Optional. Default value: log the error with the standard log package.
	ErrorHandler func(err error)

	// timeNow is the clock of the in-memory history; tests replace it.
	timeNow func() time.Time

	// interestLinger is how long a topic stays watched after its last
	// subscriber left (see Interested); tests shorten it.
	interestLinger time.Duration
}

// SlowClientPolicy says what [Broker.Publish] does with a subscriber whose
// buffer is full.
type SlowClientPolicy int

const (
	// SlowClientAbort holds a full subscriber's events back (in order, and
	// moved into its buffer as it empties, so a burst or a busy moment
	// loses nothing); once it is Config.MaxBehind events behind it ends its
	// stream with [ErrSlowClient], without the close event, and counts it
	// in Stats.SlowClients. A browser reconnects after its retry delay with the
	// ID of the last event it received, and the replay brings it back
	// without loss, as long as the history still covers that ID.
	SlowClientAbort SlowClientPolicy = iota

	// SlowClientDrop skips the event for that subscriber only and counts
	// it in Stats.Dropped; the stream stays open and the client never
	// learns it missed the event. Use it for topics where each event
	// supersedes the previous ones (prices, positions, progress).
	SlowClientDrop
)

// DefaultConfig is the default configuration of a [Broker].
var DefaultConfig = Config{
	HistorySize:       1000,
	HistoryAge:        time.Hour,
	HistoryBytes:      4 << 20,
	TotalHistoryBytes: 256 << 20,
	SlowClient:        SlowClientAbort,
	ErrorHandler:      logError,
}

func logError(err error) { log.Print(err) }

// Upper bounds of Config fields: beyond them a value is a mistake (a unit
// mixed up, a sentinel such as math.MaxInt64), not a limit someone wants,
// and New says so rather than let it stand for "no limit".
const (
	maxHistorySize = 10_000_000
	maxHistoryAge  = 10 * 365 * 24 * time.Hour
)

// withDefaults returns config with its zero fields filled from
// DefaultConfig, or an error saying what to fix.
func (config Config) withDefaults() (Config, error) {
	switch {
	case config.HistorySize < 0:
		return config, errors.New("broker: HistorySize must not be negative (0 means the default, 1000)")
	case config.HistorySize > maxHistorySize:
		return config, errors.New("broker: HistorySize must be at most 10,000,000 events per topic")
	case config.HistoryAge > maxHistoryAge:
		return config, errors.New("broker: HistoryAge must be at most 10 years (87600h); a negative value keeps events whatever their age")
	case config.MaxBehind < 0:
		return config, errors.New("broker: MaxBehind must not be negative (0 means the default, HistorySize)")
	case config.MaxBehind > maxHistorySize:
		return config, errors.New("broker: MaxBehind must be at most 10,000,000 events")
	case config.SlowClient != SlowClientAbort && config.SlowClient != SlowClientDrop:
		return config, errors.New("broker: SlowClient must be SlowClientAbort or SlowClientDrop")
	case config.Backend != nil && (config.HistorySize != 0 || config.HistoryAge != 0 || config.HistoryBytes != 0 || config.TotalHistoryBytes != 0):
		return config, errors.New("broker: HistorySize, HistoryAge, HistoryBytes and TotalHistoryBytes configure the in-memory history; with a Backend, set the backend's own limits")
	}
	d := DefaultConfig
	if config.HistorySize == 0 {
		config.HistorySize = d.HistorySize
	}
	if config.MaxBehind == 0 {
		config.MaxBehind = config.HistorySize
	}
	if config.HistoryAge == 0 {
		config.HistoryAge = d.HistoryAge
	}
	if config.HistoryBytes == 0 {
		config.HistoryBytes = d.HistoryBytes
	}
	if config.TotalHistoryBytes == 0 {
		config.TotalHistoryBytes = d.TotalHistoryBytes
	}
	if config.ErrorHandler == nil {
		config.ErrorHandler = d.ErrorHandler
	}
	if config.ErrorHandler == nil {
		config.ErrorHandler = logError
	}
	if config.timeNow == nil {
		config.timeNow = time.Now
	}
	if config.interestLinger <= 0 {
		config.interestLinger = defaultInterestLinger
	}
	return config, nil
}
