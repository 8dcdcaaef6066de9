package redisbroker

import (
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Config defines the config of a [Backend]. The zero value of every field
// means its default. Every process sharing topics must use the same Prefix,
// and should use the same limits.
type Config struct {
	// Prefix starts the name of every key the backend uses, inside a hash
	// tag so that they all live in one slot: "{echosse}:log",
	// "{echosse}:topic:chat", and so on. Processes with the same Prefix on
	// the same Redis share their topics; another Prefix is another world.
	// It must not contain '{' or '}'.
	// Optional. Default value "echosse".
	Prefix string

	// HistorySize is how many events each topic keeps for replay (XADD
	// MAXLEN, exact). A client that reconnects after more events than this
	// were published on one of its topics gets no replay:
	// broker.Broker.Subscribe returns broker.ErrGap.
	// Optional. Default value 1000.
	HistorySize int

	// HistoryAge is how long an event stays in its topic's history (XTRIM
	// MINID, on every publish on the topic and on every Trim). A negative
	// value keeps events whatever their age. It must be at least a
	// millisecond and at most 10 years.
	// Optional. Default value 1 hour.
	HistoryAge time.Duration

	// HistoryBytes bounds the bytes each topic's history holds: once more,
	// Publish drops its oldest events (a client that missed them gets
	// broker.ErrGap, as with the other limits); an event bigger than that
	// is delivered to every process's subscribers but not kept, and the
	// topic's history is emptied. An event counts the bytes of its
	// entry's field values and names (the topic's name, the event's ID,
	// Type, Data, Retry and Comment, and the Seqs it links to: what
	// Redis stores for it), plus 64 bytes. A negative value sets no byte
	// limit per topic. What Redis holds for an event and a topic is
	// measured in the package documentation (section Memory): between
	// half and one and a half times what is counted, and at least about
	// 4.4 KiB per topic.
	// Optional. Default value 4 MiB.
	HistoryBytes int64

	// LogSize is about how many events the log of all topics keeps (XADD
	// MAXLEN ~), whatever their size: lower it when events are large.
	// Each process reads new events from that log; one that falls further
	// behind (cut off from Redis while others publish) fetches what the
	// log lost from the topics' histories. With DeliverInterest, it is
	// also about how many events each process's inbox keeps.
	// Optional. Default value 10000.
	LogSize int

	// Delivery says which events this process reads from Redis:
	// DeliverAll, every event of every topic, from the one log; or
	// DeliverInterest, only the events of the topics its broker watches
	// (those with a subscriber here), which Publish copies into an inbox
	// of this process's own. DeliverAll suits topics that most processes
	// subscribe to (broadcasts, chat rooms); DeliverInterest suits topics
	// that few do (a topic per user, per order, per job), with many
	// processes. Processes sharing a Prefix may choose differently. See
	// the package documentation, section "Interest-based delivery".
	// Optional. Default value DeliverAll.
	Delivery Delivery

	// PublishTimeout bounds how long after Publish is called Redis may
	// store its event: a request of the call (go-redis's retries
	// included) that Redis runs later stores nothing, so that by then an
	// event is stored, once, or never. A ctx with an earlier deadline
	// shortens it for its call. It also bounds how long Publish sends a
	// request again when no answer came. Redis keeps a key for each call
	// until 2 s after its deadline, about 160 bytes of used_memory: at
	// 10,000 publishes a second and the default, about 19 MB.
	// It must be at least 10 ms and at most an hour.
	// Optional. Default value 10 s.
	PublishTimeout time.Duration

	// MinBackoff is how long the log reader waits before it tries again
	// after its first failure, and Publish before it sends a request
	// again; each further failure doubles the wait, up to MaxBackoff, with
	// some random jitter.
	// Optional. Default value 100 ms.
	MinBackoff time.Duration

	// MaxBackoff is the longest wait between two attempts to read the log,
	// or to publish.
	// It must be at most an hour.
	// Optional. Default value 2 s.
	MaxBackoff time.Duration

	// ErrorHandler is told when reading the log fails (every attempt, with
	// the number of failures so far), when it works again unless
	// NoticeHandler is set (an error wrapping [ErrRecovered]: a notice, not
	// a failure), and when messages could not be delivered (an error
	// wrapping [ErrLost]). It runs on the log reader's goroutine: it must
	// not block.
	// Optional. Default value: log with log/slog's default logger at level
	// Error (a notice it is given, at level Info).
	ErrorHandler func(err error)

	// NoticeHandler is told when reading the log works again after
	// failures: an error wrapping [ErrRecovered], saying how many attempts
	// failed, for how long, and the Seq delivery resumes from. It is a
	// notice, not a failure. It runs on the log reader's goroutine: it
	// must not block.
	// Optional. Default value: ErrorHandler when that is set (so an
	// ErrorHandler that looks for ErrRecovered still sees it), otherwise
	// log the notice with log/slog at level info.
	NoticeHandler func(notice error)

	// aliveFor is how long a process in DeliverInterest mode counts as
	// alive after it last said so; tests shorten it.
	aliveFor time.Duration
}

// Delivery is which events a [Backend] reads from Redis and delivers to
// its broker: see Config.Delivery.
type Delivery int

const (
	// DeliverAll delivers every event of every topic: the process reads
	// the log of all topics. It is the zero value.
	DeliverAll Delivery = iota

	// DeliverInterest delivers the events of the topics the broker
	// watches only: the backend is a [broker.Interested], and the process
	// reads an inbox of its own, into which Publish copies the events of
	// the topics it watches.
	DeliverInterest
)

// String returns the constant's name.
func (d Delivery) String() string {
	switch d {
	case DeliverAll:
		return "DeliverAll"
	case DeliverInterest:
		return "DeliverInterest"
	}
	return "Delivery(" + strconv.Itoa(int(d)) + ")"
}

// defaultAliveFor is how long a process in DeliverInterest mode counts as
// alive after it last said so (it says so about every second, and at
// least every 5 s): Publish stops copying events into the inbox of a
// process that has not said so for that long, and Trim deletes the inbox
// of one that has not for a minute more.
const defaultAliveFor = 30 * time.Second

// deadGrace is how long after it stopped counting as alive Trim deletes a
// process's inbox and its interest.
const deadGrace = time.Minute

// DefaultConfig is the default configuration of a [Backend].
var DefaultConfig = Config{
	Prefix:         "echosse",
	HistorySize:    1000,
	HistoryAge:     time.Hour,
	HistoryBytes:   4 << 20,
	LogSize:        10000,
	PublishTimeout: 10 * time.Second,
	MinBackoff:     100 * time.Millisecond,
	MaxBackoff:     2 * time.Second,
	ErrorHandler:   logError,
}

// logError is the default ErrorHandler: it logs with log/slog's default
// logger, the notice of recovery ([ErrRecovered]) at level Info and
// everything else at level Error.
func logError(err error) {
	if errors.Is(err, ErrRecovered) {
		slog.Info("redisbroker: reading the log again", "notice", err.Error())
		return
	}
	slog.Error("redisbroker: error", "error", err.Error())
}

func logNotice(notice error) { slog.Info(notice.Error()) }

// Upper bounds of the Config fields that are durations. An age is
// subtracted from the Redis server's clock, in microseconds since 1970, to
// trim by entry ID: one of 56 years or more would go before 1970.
const (
	maxHistoryAge     = 10 * 365 * 24 * time.Hour
	maxBackoff        = time.Hour
	minPublishTimeout = 10 * time.Millisecond
	maxPublishTimeout = time.Hour
)

// withDefaults returns config with its zero fields filled from
// DefaultConfig, or an error saying what to fix.
func (config Config) withDefaults() (Config, error) {
	switch {
	case strings.ContainsAny(config.Prefix, "{}"):
		return config, errors.New("redisbroker: Prefix must not contain '{' or '}'")
	case config.HistorySize < 0:
		return config, errors.New("redisbroker: HistorySize must not be negative (0 means the default, 1000)")
	case config.LogSize < 0:
		return config, errors.New("redisbroker: LogSize must not be negative (0 means the default, 10000)")
	case config.MinBackoff < 0 || config.MaxBackoff < 0:
		return config, errors.New("redisbroker: MinBackoff and MaxBackoff must not be negative")
	case config.HistoryAge > maxHistoryAge:
		return config, errors.New("redisbroker: HistoryAge must be at most 10 years (87600h); a negative value keeps events whatever their age")
	case config.MinBackoff > maxBackoff || config.MaxBackoff > maxBackoff:
		return config, errors.New("redisbroker: MinBackoff and MaxBackoff must be at most an hour")
	case config.Delivery != DeliverAll && config.Delivery != DeliverInterest:
		return config, errors.New("redisbroker: Delivery must be DeliverAll or DeliverInterest")
	case config.PublishTimeout != 0 && (config.PublishTimeout < minPublishTimeout || config.PublishTimeout > maxPublishTimeout):
		return config, errors.New("redisbroker: PublishTimeout must be between 10ms and an hour (0 means the default, 10s)")
	}
	d := DefaultConfig
	if config.Prefix == "" {
		config.Prefix = d.Prefix
	}
	if config.HistorySize == 0 {
		config.HistorySize = d.HistorySize
	}
	if config.HistoryAge == 0 {
		config.HistoryAge = d.HistoryAge
	}
	if config.HistoryBytes == 0 {
		config.HistoryBytes = d.HistoryBytes
	}
	if config.LogSize == 0 {
		config.LogSize = d.LogSize
	}
	if config.PublishTimeout == 0 {
		config.PublishTimeout = d.PublishTimeout
	}
	if config.PublishTimeout <= 0 { // DefaultConfig changed
		config.PublishTimeout = 10 * time.Second
	}
	if config.aliveFor <= 0 {
		config.aliveFor = defaultAliveFor
	}
	if config.MinBackoff == 0 {
		config.MinBackoff = d.MinBackoff
	}
	if config.MaxBackoff == 0 {
		config.MaxBackoff = max(d.MaxBackoff, config.MinBackoff)
	}
	if config.NoticeHandler == nil {
		config.NoticeHandler = config.ErrorHandler
	}
	if config.NoticeHandler == nil {
		config.NoticeHandler = logNotice
	}
	if config.ErrorHandler == nil {
		config.ErrorHandler = d.ErrorHandler
	}
	if config.ErrorHandler == nil {
		config.ErrorHandler = logError
	}
	switch {
	case config.MinBackoff > config.MaxBackoff:
		return config, errors.New("redisbroker: MinBackoff must not exceed MaxBackoff")
	case config.HistoryAge > 0 && config.HistoryAge < time.Millisecond:
		return config, errors.New("redisbroker: HistoryAge must be at least a millisecond")
	}
	return config, nil
}
