// Package redisbroker is a [broker.Backend] on Redis Streams, so that
// several processes behind a load balancer share topics: an event published
// through any of them reaches every subscriber of every one, and a browser
// that reconnects to another one resumes from its Last-Event-ID.
//
//	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	defer client.Close()
//	backend, err := redisbroker.New(client, redisbroker.Config{})
//	if err != nil {
//		log.Fatal(err)
//	}
//	b, err := broker.New(broker.Config{Backend: backend})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer b.Close()
//
// Handlers and publishers use the [broker.Broker] as they would with the
// in-memory history.
//
// # How it works
//
// Publish runs one Lua script, which Redis runs atomically: it assigns the
// message's Seq, appends the message (XADD) to its topic's stream, trimmed
// to Config.HistorySize (MAXLEN), Config.HistoryAge (MINID) and
// Config.HistoryBytes (the oldest entries, with MINID), and to one log
// stream of all topics, trimmed to about Config.LogSize. Seq is the
// Redis server's clock in microseconds, or one more than the previous Seq
// when that is not less; written in decimal it is the event's ID, the same
// in every process. Every process reads the log with one blocking XREAD on
// a connection of its own, and hands each message to its broker, which
// fans it out to its own subscribers: one Redis reader per process,
// whatever the number of subscribers and topics. Because the log is a
// single stream written by the same script, every process delivers the
// messages of all topics in the one order of their Seqs. (With
// Config.Delivery DeliverInterest a process reads instead an inbox of its
// own, into which Publish copies the messages of the topics it watches:
// see "Interest-based delivery".)
//
// Replay reads each topic's stream (XRANGE) after the client's
// Last-Event-ID and merges them by Seq, in one script. Every entry names
// the previous message of its topic, so the script knows exactly whether
// trimming removed something the client has not seen: then Subscribe
// returns [broker.ErrGap], as with the in-memory history. So it does for a
// Last-Event-ID that names no message: one that is not a number or a
// caller-set ID, is newer than every message, older than what Redis has, or
// a number no message had (Seqs are the server's clock, so most numbers
// between two were never assigned; a number is known while the log keeps
// its message or one of the topics links to it). Before replaying,
// the broker waits ([Backend.Sync]) until this process has read the log up
// to the last message published anywhere, so a client that reconnects to a
// process a little behind the one it left is not told of a false gap.
//
// # Interest-based delivery
//
// With the default, Config.Delivery DeliverAll, every process reads every
// event of every topic from the log: right for topics most processes
// subscribe to (a broadcast, a chat room), wasteful for topics few do (a
// topic per user, per order, per job), where with N processes behind a
// load balancer each one reads and decodes N times the events its own
// streams need. With DeliverInterest a process reads the events of the
// topics its broker watches ([broker.Interested]: those with a subscriber
// here, and for 5 s after the last one left), and no others.
//
// Each process has an inbox of its own, a stream {P}:inbox:I (I: a random
// ID the backend draws), trimmed to about Config.LogSize events. Watch
// runs one script that adds the process to the sets of watchers of the
// new topics ({P}:watch:NAME) and reads the last Seq assigned. The publish
// script, after it has stored the message in its topic's history and the
// log, copies it into the inbox of every process in the topic's watchers
// that counts as alive, chained like the log (each copy names the inbox's
// previous one). A process reads its inbox exactly as it reads the log
// otherwise, with one blocking XREAD on one connection of its own.
// Because the same script assigns the Seq and makes the copies, an inbox
// is in Seq order: a process still delivers the messages of all the
// topics it watches in the one order of their Seqs, and a stream
// subscribed to several topics receives them in the order they were
// published, as with the log. Nothing changes for Replay, event IDs, the
// gap checks or Last-Event-ID across processes: they use the topics'
// histories in both modes, and the processes of one Prefix may mix modes.
//
// The handover is exact: Watch returns the last Seq assigned when the
// process joined the watchers, once its reader has read the inbox as far
// as it went at that moment, so the broker replays a new subscriber up to
// that Seq and every later message of the topic comes through the inbox
// (brokertest's NewTopicHandover checks it). Sync reads how far the inbox
// went, and waits for the reader to get there.
//
// A process says it is alive every 250 ms ({P}:alive, a sorted set), and
// counts as alive for 30 s after. One cut off from Redis for longer gets
// no copies meanwhile; when it is back, it registers again (one script:
// alive, exactly its watched topics, the last Seq) and reads what those
// topics got since the last message it delivered from their histories,
// checked as Replay checks them (a topic whose history lost some is told
// to the broker, whose subscriptions to it end with [broker.ErrLost]).
// A Subscribe meanwhile waits for that. So it does when its inbox was
// trimmed past what it read. Trim deletes the inboxes and interest of
// processes that have not been alive for a minute more (crashed); Close
// deletes the process's own.
//
// What it costs. In Redis, a publish on a topic watched by k processes
// makes k copies (an XADD, a HSET and two reads each) besides the history
// and the log: with a topic per user, k is 1; a topic every process
// watches costs N copies where the log costs one, which is why DeliverAll
// stays the choice for broadcasts. The inboxes take about LogSize events
// each. Each process makes a request per topic it starts watching (one
// script per Subscribe, for all its new topics, and the wait for its own
// reader), one when it stops, and, idle, about 12 small requests a second
// (its XREAD waits at most 250 ms, so that it soon sees a loss, below,
// and says it is alive). It still holds one blocking connection, whatever
// its number of topics.
//
// Redis losing data shows differently. A loss of the keys leaves the
// inbox silent (no key says the process watches anything), where the log
// shows it at the next publish; the reader finds it by looking (the last
// Seq going back, or {P}:epoch, a random value every process reads when it
// starts, gone) within 250 ms or so. After a loss a process registers
// again, so that Redis has its watched topics whatever it lost; so it does
// when Redis has it watch fewer topics than it does (a Watch a failover
// lost, which no Seq shows). A failover to a replica that was behind also
// shows in an inbox's chain going back, as in the log's. In the
// package's test of it (TestLoss, FLUSHALL while about 200 events a second
// are published), a subscriber missed 80 to 140 events, told of them with
// broker.ErrGap, against about 20 with the log. A Redis at its maxmemory
// under noeviction refuses Watch too: a Subscribe to a topic no stream of
// the process watches fails, while the topics watched go on.
//
// All keys, inboxes and watchers included, stay in the one slot of
// {Prefix}: the publish script writes the history, the log, the Seq and
// the copies atomically, which is what keeps the one order of all topics,
// the exact handover and the exact replay of a stream on several topics
// (merged by Seq). Topics in slots of their own, on a cluster, would spread
// the writes over its masters, but each topic would need a sequence of its
// own and a process one XREAD per master: streams on several topics would
// lose their order, and their replay after a Last-Event-ID (one ID for
// several topics) could not be exact. So Redis's writes for one Prefix
// stay one master's, as below; what DeliverInterest cuts is the work of
// every process.
//
// The mode is a choice in Config, not made for you: which is cheaper
// depends on how many processes subscribe to each topic, which no process
// knows in advance, and DeliverAll is what every process did before.
//
// BenchmarkInstanceCPU measures it with four instance processes (each a
// broker and an Echo server of SSE streams), 20,000 topics with one
// subscriber each, spread over them (50 topics to a stream), and events
// published round every topic; beside them, at the same time, one more
// instance, on a Prefix of its own, gets exactly the events of the first
// one's topics, at the same moments, and nothing else: what an
// instance's own subscribers' events need. The benchmark publishes and
// reads the streams in a process apart. On a shared machine of 2 cores,
// with Redis, the publisher and the clients on the same cores, at 2,000
// events a second (one per topic every 10 s: one per topic per second,
// 20,000 a second, is about all one Redis on these cores publishes) for
// 10 s (go test -run '^$' -bench InstanceCPU -benchtime 1x -count 3
// ./broker/redisbroker, and once more with -count 1), in four runs:
//
//	mode             CPU of an instance   against the one with its own events only
//	DeliverAll       1392 to 1476 ms      1.24x to 1.59x
//	DeliverInterest   965 to 1100 ms      1.00x to 1.04x
//
// (the instance with its own events only: 873 to 1180 ms). Less what an
// instance spends idle for as long (14 to 40 ms), the figures are the same
// within 0.03. With the log an instance reads four times the events its
// streams need, yet spends less than twice the CPU: writing an event to an
// SSE stream, and flushing it, costs several times more than reading and
// decoding one that is dropped. With interest-based delivery an instance
// spends what its own subscribers' events need.
//
// # When Redis is unreachable, stalls or is full
//
// Publish returns an error (wrapping go-redis's) and counts it: an event is
// never dropped silently. It is never stored twice either: every request
// of one Publish call carries a key of the call's own and a deadline
// (Config.PublishTimeout, or ctx's if sooner), so that a request that
// timed out on the client and was sent again (go-redis's
// redis.Options.MaxRetries, whatever they are, and the backend's own
// retries) is stored once however late each reaches Redis, and not at all
// after the deadline. An error means nothing was stored, but for one that
// wraps [broker.ErrUnknownOutcome] (a [*broker.PublishError]): requests
// were sent and no answer came before ctx ended or the deadline passed, so
// the event is stored, and delivered to every subscriber, before that
// deadline or never; Publish sends the request again while it waits, and
// an answer settles it, unless it is that the deadline has passed: an
// unanswered request may have been stored by a server that has lost the
// write since (a master killed before its replica had it), and reached
// subscribers meanwhile, so that answer leaves the outcome unknown. A Redis at its maxmemory under maxmemory-policy
// noeviction refuses the publish with its OOM error ([redis.IsOOMError]):
// nothing is stored and the history stays as it was, while replay and
// delivery go on. Subscribed streams stay open. The log reader tries
// again with exponential backoff (Config.MinBackoff to Config.MaxBackoff)
// and resumes from the last message it delivered, so subscribers receive
// everything Redis accepted, in order; if the log was trimmed past that
// point meanwhile (other processes kept publishing), it reads the missing
// messages from the topics' histories. Each failure and anything Redis no
// longer had (which also ends the subscriptions, as below) are told to
// Config.ErrorHandler, the recovery to Config.NoticeHandler (by default
// logged at level info), and all are counted in [Backend.Stats]. For
// nothing accepted to survive a restart of Redis itself, run Redis with an
// append-only file (appendonly yes, appendfsync always or everysec). Run
// it with maxmemory-policy noeviction too: under any other policy, Redis
// at its limit drops keys the backend relies on (a topic's history; under
// volatile-* the keys that expire first, which are those that make a
// Publish idempotent and the record of each process's last stored event,
// so that a retry may store an event twice and a loss is reported that
// was none).
//
// # When Redis loses data
//
// Redis may lose messages it had accepted: a FLUSHALL, a restart without an
// append-only file (or, with appendfsync everysec, a crash of the machine),
// a failover to a replica that was behind. A process learns of it when
// Redis's last Seq is behind the last one it delivered or published (its
// log reader looks when it reconnects, and every second or so, and
// [Backend.Sync] before every replay), when the log goes on from an older
// message than the last it delivered, or when Redis no longer has the last
// event one of its own Publish calls was told was stored: a replica that
// was behind took over before any log reader had read the master's last
// writes, and the publishes since have lifted the last Seq past them, so
// that nothing else shows it. Every process keeps the Seq of its last
// stored event in a key of its own, which the publish script checks before
// it stores anything (a Publish that finds it behind stores nothing until
// the loss is handled, then stores its event after it), and the log reader
// every second or so; the check holds for events stored in the last 5
// minutes, and sees only a process's own events, so a loss of the last
// events of a process that died meanwhile goes unseen. It then raises in
// Redis the Seq at or below which IDs are unknown to the last one it
// delivered or published, and the next Seq above it, counts the loss in a
// key every process watches (so that the others learn of it within a few
// seconds even if their own view looks fine), tells Config.ErrorHandler
// ([ErrLost]), and has its broker end every subscription with
// [broker.ErrLost] ([Backend.NotifyLoss]): browsers reconnect with the ID
// of the last event they received, and get [broker.ErrGap], as for any gap.
// IDs stay plain decimal Seqs that sort and stay short: the server's clock,
// lifted past every Seq delivered, does the job of an epoch.
//
// # Memory
//
// Config.HistoryBytes bounds what each topic's history counts: for each
// event, the bytes of its entry's fields plus 64; an event of D bytes of
// data and no ID, type or comment, on a topic whose name has T bytes,
// counts D + T + 100 (its two Seqs, the field names, and the 64).
// Redis holds somewhat less or more than that, as BenchmarkMemory
// measures (Redis 7.0, its default stream-node-max-bytes 4096 and
// stream-node-max-entries 100; redis-B/event is MEMORY USAGE of the stream
// per event):
//
//	data       counted  Redis holds
//	5 B          106 B     50 B   100 small entries share a node, Seqs delta-encoded
//	100 B        201 B    159 B
//	1000 B      1101 B   1432 B   whole entries fill 4 KiB nodes
//	2000 B      2101 B   3061 B   one entry to a 4 KiB node: about the worst, 1.5x
//	64 KiB     65637 B  82450 B   one node each, rounded up by the allocator
//
// so a topic at the default 4 MiB takes between 2 and 6 MiB of Redis's
// memory. A topic of a few small events costs about 4.4 KiB all the same,
// for as long as its stream exists (until Trim finds it empty): Redis
// preallocates each stream's first node at stream-node-max-bytes, at most
// 4096 bytes. With one small
// event each, 10,000 topics grow INFO used_memory by 4,508 bytes per
// topic (the stream, its field in the topics hash, its entry in the log),
// so 100,000 topics hold about 430 MiB, almost all of it those nodes,
// until HistoryAge lets Trim drop them. Setting stream-node-max-bytes to
// 512 on the Redis server cuts that to about 900 bytes a topic, but a
// history of events of 100 bytes then takes 2.5 times the memory (fewer
// entries to a node): lower it for many topics of few events, not for few
// topics of many.
//
// Each Publish call leaves a key of about 160 bytes for Config.PublishTimeout
// and 2 s more (the call's key, for its retries): about 19 MB at 10,000
// publishes a second with the default.
//
// The log is bounded in events only: it holds about Config.LogSize events
// of every topic, whatever their size (10,000 events of 64 KiB take about
// 800 MB); lower LogSize when events are large. Replay never reads the log,
// and a process that falls behind what it keeps catches up from the
// histories, told of what they no longer have ([ErrLost]).
//
// # Keys
//
// All keys start with "{Prefix}:" (Config.Prefix, "echosse" by default),
// so that they live in one hash slot. The layout is described in
// scripts.go. Backend needs Redis 6.2 or later.
//
// # One Redis, Sentinel or a Cluster
//
// New takes a redis.UniversalClient: a *redis.Client for one Redis, or for
// Sentinel through redis.NewFailoverClient; a *redis.ClusterClient for a
// Redis Cluster. On a cluster the hash tag puts every key of one Prefix in
// one slot, so its scripts (which touch several keys) and the log reader's
// XREAD all go to the master of that slot, and the log reader's connection
// is one to that master, taken again after a failover.
//
// One slot means one master: every Publish, Replay and log read of a
// Prefix goes to the same master, whatever the number of masters in the
// cluster; the others hold its replicas at most. A cluster buys
// failover, not throughput, for one Prefix: its publishes are bounded by
// what one Redis does, as on a single server, and somewhat below it (the
// cluster client's routing, the cluster bus). Measured on a machine of 2
// cores, 16 goroutines publishing events of 100 bytes on 16 topics through
// one backend, Redis on the same cores (BenchmarkPublishThroughput, go test
// -run '^$' -bench PublishThroughput -benchtime 2s ./broker/redisbroker):
// about 21,000 events/s on one Redis, 14,000 to 17,000 on a cluster of
// three masters and three replicas. To spread the load, give independent
// sets of topics their own Prefix (each its own Backend and broker): each
// Prefix hashes to its own slot, so, most likely, to another master; and
// events of different Prefixes share no order and no IDs. Three Prefixes
// on three masters measured the same 17,000 events/s there, because the
// two cores, not one master, were the limit: the gain needs the masters on
// cores (hosts) of their own.
//
// A failover (CLUSTER FAILOVER FORCE, or a master's crash) promotes a
// replica that may lack the last writes the master accepted, since Redis
// replicates asynchronously. The backend finds the loss as it does after
// a restart without persistence (see "When Redis loses data"): the
// subscriptions end with broker.ErrLost, clients that reconnect are told of
// the gap, and delivery goes on from the new master. In the package's
// test of it (TestClusterFailover: two instances publishing about 1,200
// events/s, four subscribers), CLUSTER FAILOVER FORCE lost 50 to 80
// events accepted just before it, told with broker.ErrGap; with the
// master killed (SIGKILL), the cluster promoted its replica about 2 s
// later (node timeout 1 s), the two publishes waiting then failed (an
// error to their callers, PublishTimeout 2 s) and nothing accepted was
// lost, but in one run of six (race detector, a loaded machine), where
// the master's last writes had not reached its replica when it died,
// and the loss was told. Either way none was lost silently or delivered
// twice, and the
// streams went on. Once, under CI's load, the forced failover lost 2
// events that no log reader had read yet, and the publishes that followed
// lifted the last Seq past them at once: nothing showed the loss but the
// publishing process's own record of its last stored event, which the
// backend now checks (TestLossOfAcknowledgedEvents undoes Redis's last
// writes while every reader is held, and fails without that check).
package redisbroker
