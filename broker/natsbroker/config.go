package natsbroker

import (
	"errors"
	"log"
	"strings"
	"time"
)

// Config defines the config of a [Backend]. The zero value of every field
// means its default. Every process sharing topics must use the same Stream
// and Subject, and the same limits.
type Config struct {
	// Stream is the name of the JetStream stream that holds every topic's
	// history; New creates it if it does not exist. Processes with the
	// same Stream on the same NATS system share their topics.
	// Optional. Default value "ECHOSSE".
	Stream string

	// Subject starts the subject of every topic: a topic's messages are
	// published on Subject + "." + the topic's name in unpadded base64url
	// (so that any name is a valid subject token). The stream's subjects
	// are Subject + ".>". It must be a valid subject without wildcards.
	// Optional. Default value "echosse".
	Subject string

	// HistorySize is how many events each topic keeps for replay (the
	// stream's MaxMsgsPerSubject). A client that reconnects after more
	// events than this were published on one of its topics gets
	// broker.ErrGap.
	// Optional. Default value 1000.
	HistorySize int

	// HistoryAge is how long an event stays in the stream (its MaxAge). A
	// negative value keeps events whatever their age. It must be at least
	// 100 ms (JetStream's least MaxAge) and at most 10 years.
	// Optional. Default value 1 hour.
	HistoryAge time.Duration

	// Replicas is how many servers of a JetStream cluster hold the stream
	// (1, 3 or 5): with 3, the stream survives the loss of one server, and
	// what Publish acknowledged is on two of them at least.
	// Optional. Default value 1.
	Replicas int

	// MemoryStorage keeps the stream in the servers' memory instead of
	// files: faster, gone when a server restarts.
	// Optional. Default value false.
	MemoryStorage bool

	// PublishTimeout bounds how long one Publish call sends its event
	// again when no acknowledgement came (a server failing over, a
	// connection lost); every attempt carries the same Nats-Msg-Id, so the
	// stream stores the event once whatever reached it. It must be less
	// than the stream's deduplication window, which New sets to twice
	// it, at least 2 minutes, but at most HistoryAge (JetStream's rule).
	// Optional. Default value 10 s.
	PublishTimeout time.Duration

	// RequestTimeout bounds each request to the servers (one publish
	// attempt, a replay's read).
	// Optional. Default value 2 s.
	RequestTimeout time.Duration

	// MaxFilterSubjects is the most topics the live consumer is filtered
	// on. With more watched, it takes every message of the stream and
	// the backend drops those of topics not watched (Stats.Dropped): a
	// Watch then makes no new consumer, but the instance reads every
	// topic's events, as an instance of a single log does. (Making a
	// consumer costs more than linearly in its subjects: BenchmarkWatch
	// measured a Watch at 2.7 ms with 100 topics watched, 88 ms with
	// 1,000 and 0.72 s with 3,000.) It goes back to filtering once no
	// more than half of it are watched. A negative value filters on every
	// topic watched, however many.
	// Optional. Default value 256.
	MaxFilterSubjects int

	// ErrorHandler is told about failures of live delivery (the consumer
	// recreated) and of messages skipped because they were not this
	// package's. It must not block.
	// Optional. Default value: log the error with the standard log package.
	ErrorHandler func(err error)
}

// DefaultConfig is the default configuration of a [Backend].
var DefaultConfig = Config{
	Stream:            "ECHOSSE",
	Subject:           "echosse",
	HistorySize:       1000,
	HistoryAge:        time.Hour,
	Replicas:          1,
	PublishTimeout:    10 * time.Second,
	RequestTimeout:    2 * time.Second,
	MaxFilterSubjects: 256,
	ErrorHandler:      func(err error) { log.Print(err) },
}

func (config Config) withDefaults() (Config, error) {
	d := DefaultConfig
	switch {
	case strings.ContainsAny(config.Stream, ". *>\t\r\n/\\"):
		return config, errors.New("natsbroker: Stream must be a stream name: no '.', '*', '>', '/', '\\' or white space")
	case strings.ContainsAny(config.Subject, "*> \t\r\n") || strings.HasPrefix(config.Subject, ".") || strings.HasSuffix(config.Subject, ".") || strings.Contains(config.Subject, ".."):
		return config, errors.New("natsbroker: Subject must be a subject without wildcards, white space or empty tokens")
	case config.HistorySize < 0:
		return config, errors.New("natsbroker: HistorySize must not be negative (0 means the default, 1000)")
	case config.HistoryAge > 10*365*24*time.Hour:
		return config, errors.New("natsbroker: HistoryAge must be at most 10 years (87600h); a negative value keeps events whatever their age")
	case config.HistoryAge > 0 && config.HistoryAge < 100*time.Millisecond:
		return config, errors.New("natsbroker: HistoryAge must be at least 100ms")
	case config.Replicas != 0 && config.Replicas != 1 && config.Replicas != 3 && config.Replicas != 5:
		return config, errors.New("natsbroker: Replicas must be 1, 3 or 5")
	case config.PublishTimeout < 0 || config.RequestTimeout < 0:
		return config, errors.New("natsbroker: PublishTimeout and RequestTimeout must not be negative")
	case config.PublishTimeout > time.Hour:
		return config, errors.New("natsbroker: PublishTimeout must be at most an hour")
	}
	if config.Stream == "" {
		config.Stream = d.Stream
	}
	if config.Subject == "" {
		config.Subject = d.Subject
	}
	if config.HistorySize == 0 {
		config.HistorySize = d.HistorySize
	}
	if config.HistoryAge == 0 {
		config.HistoryAge = d.HistoryAge
	}
	if config.Replicas == 0 {
		config.Replicas = max(d.Replicas, 1)
	}
	if config.PublishTimeout == 0 {
		config.PublishTimeout = d.PublishTimeout
	}
	if config.RequestTimeout == 0 {
		config.RequestTimeout = d.RequestTimeout
	}
	if config.MaxFilterSubjects == 0 {
		config.MaxFilterSubjects = d.MaxFilterSubjects
	}
	if config.ErrorHandler == nil {
		config.ErrorHandler = d.ErrorHandler
	}
	if config.ErrorHandler == nil {
		config.ErrorHandler = func(err error) { log.Print(err) }
	}
	return config, nil
}
