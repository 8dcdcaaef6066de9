// Package natsbroker is a [broker.Backend] on a NATS JetStream stream, so
// that several processes share topics, and a JetStream cluster replicates
// the history: an event published through any process reaches every
// subscriber of every one, and a browser that reconnects to another one
// resumes from its Last-Event-ID.
//
//	nc, err := nats.Connect(nats.DefaultURL)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer nc.Close()
//	backend, err := natsbroker.New(nc, natsbroker.Config{Replicas: 3})
//	if err != nil {
//		log.Fatal(err)
//	}
//	b, err := broker.New(broker.Config{Backend: backend})
//
// # How it works
//
// Every topic is a subject of one stream (Config.Subject, a dot, the
// topic's name in base64url), whose per-subject limit (MaxMsgsPerSubject)
// is Config.HistorySize and whose age limit (MaxAge) is Config.HistoryAge.
// The stream's sequence is the one order of all topics: an event's Seq is
// the stream's base (the stream's creation time in microseconds, kept in
// its metadata) plus its stream sequence, and its ID is that Seq in
// decimal, the same in every process. A stream created anew after its
// loss gets a later base, so that IDs from the old one are unknown
// (broker.ErrGap), not mistaken for new events.
//
// The backend is [broker.Interested]: each process runs one ordered
// consumer whose subject filters (FilterSubjects, nats-server 2.10 or
// later) are the topics its broker watches, those with a subscriber here;
// it delivers in stream order, with gaps for the other topics' messages.
// A process thus receives its own subscribers' events, not everyone's.
// Watching or unwatching a topic replaces the consumer (one request, and a
// few for the new consumer, which the server deletes), from the last
// position delivered, and Watch returns once every message up to the
// stream's last sequence is delivered, so that the broker's replay covers
// everything before live delivery. Making a consumer costs more than
// linearly in its subjects (a Watch took 2.7 ms with 100 topics watched,
// 118 ms with 1,000, 0.98 s with 3,000: go test -run '^$' -bench Watch
// -benchtime 20x ./broker/natsbroker), so past Config.MaxFilterSubjects
// topics (256 by default) the consumer takes every topic and the process
// drops the messages of those it does not watch: a Watch then costs no
// new consumer (0.3 ms), and the process reads every event, as with a
// single log.
//
// Publish reads the topic's last sequence and publishes with it as
// Nats-Expected-Last-Subject-Sequence, naming it in the message, so that
// Replay knows whether the history lost messages after a Last-Event-ID:
// the first message it keeps after it must name an older one. Every
// attempt of one call carries the same Nats-Msg-Id, so the stream stores
// the event once whatever reached it (within the stream's deduplication
// window); an attempt that got no acknowledgement is sent again until
// Config.PublishTimeout, and then Publish returns a [*broker.PublishError]
// wrapping [broker.ErrUnknownOutcome]. Replay reads the first message of
// each topic after the Last-Event-ID (a direct get by subject), then all
// of them in order with an ordered consumer filtered on their subjects.
//
// # Clusters
//
// With Config.Replicas 3 on a cluster of three servers, an acknowledged
// publish is on two of them at least, and the stream goes on when its
// leader dies: the cluster elects another, publishes waiting meanwhile are
// sent again with the same Nats-Msg-Id (deduplicated by the new leader),
// and the ordered consumers recreate themselves from the last message
// they delivered (a watchdog replaces one that does not: Stats.Restarts).
// In the package's TestClusterLeaderKill (three servers on one machine,
// the stream's leader killed with SIGKILL while one instance publishes,
// a subscriber on each of two instances), eight runs in a row: the
// cluster elected a new leader 5.3 to 6.3 s after the kill; nothing
// acknowledged was missing, nothing was delivered twice; the 10 to 14
// publishes waiting then returned broker.ErrUnknownOutcome (of which none
// or one was stored after all, and then delivered once); and delivery
// paused 4.6 to 6.7 s, about as long as the election took.
//
// The library's ordered consumer, left to its defaults, tries to recreate
// itself forever, holding a lock its Info and Stop wait for: after a
// leader's death it could wait on a leaderless stream long enough that
// an instance stopped delivering, without an error. The backend lets it
// try twice (then the watchdog replaces it) and never waits on its Info
// longer than Config.RequestTimeout.
//
// # Limits
//
// Caller-set event IDs are delivered and replayed, but a Last-Event-ID
// that is not one of the backend's decimal Seqs is unknown (broker.ErrGap).
// While no more than Config.MaxFilterSubjects topics are watched, each
// Watch call replaces the consumer, one call at a time per process (the
// broker gives one call the topics of every Subscribe that waited).
package natsbroker
