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
// to Config.HistorySize (MAXLEN) and Config.HistoryAge (MINID), and to one
// log stream of all topics, trimmed to about Config.LogSize. Seq is the
// Redis server's clock in microseconds, or one more than the previous Seq
// when that is not less; written in decimal it is the event's ID, the same
// in every process. Every process reads the log with one blocking XREAD on
// a connection of its own, and hands each message to its broker, which
// fans it out to its own subscribers: one Redis reader per process,
// whatever the number of subscribers and topics. Because the log is a
// single stream written by the same script, every process delivers the
// messages of all topics in the one order of their Seqs.
//
// Replay reads each topic's stream (XRANGE) after the client's
// Last-Event-ID and merges them by Seq, in one script. Every entry names
// the previous message of its topic, so the script knows exactly whether
// trimming removed something the client has not seen: then Subscribe
// returns [broker.ErrGap], as with the in-memory history. Before replaying,
// the broker waits ([Backend.Sync]) until this process has read the log up
// to the last message published anywhere, so a client that reconnects to a
// process a little behind the one it left is not told of a false gap.
//
// # When Redis is unreachable
//
// Publish returns an error (wrapping go-redis's) and counts it: an event is
// never dropped silently. Subscribed streams stay open. The log reader tries
// again with exponential backoff (Config.MinBackoff to Config.MaxBackoff)
// and resumes from the last message it delivered, so subscribers receive
// everything Redis accepted, in order; if the log was trimmed past that
// point meanwhile (other processes kept publishing), it reads the missing
// messages from the topics' histories. Each failure, the recovery, and
// anything Redis no longer had are told to Config.ErrorHandler and counted
// in [Backend.Stats]. For nothing accepted to survive a restart of Redis
// itself, run Redis with an append-only file (appendonly yes, appendfsync
// always or everysec).
//
// # Keys
//
// All keys start with "{Prefix}:" (Config.Prefix, "echosse" by default),
// so that they live in one hash slot; Backend needs a *redis.Client (one
// Redis, or Sentinel through redis.NewFailoverClient) and Redis 6.2 or
// later. The layout is described in scripts.go.
package redisbroker
