package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/redisbroker"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// The room is framework-free: this file and redis.go. echo4.go and
// echo5.go put it on Echo v4 and Echo v5 (-echo), each with the same
// middleware and routes; they differ only in Echo's types.

// static holds the page: plain HTML, CSS and JavaScript, no build step.
//
//go:embed static
var static embed.FS

// Topics of the room's broker. Every page subscribes to both on one stream.
const (
	topicChat     = "chat"     // messages, sent as unnamed ("message") events
	topicPresence = "presence" // the number of open pages, as "presence" events
)

// Limits on what a visitor may post, in characters.
const (
	maxName = 32
	maxText = 500
)

// recentSize is how many messages GET /api/messages returns, so that a new
// page starts with the conversation so far.
const recentSize = 50

// config configures a server.
type config struct {
	// Retry is the delay a browser waits before it reconnects after its
	// stream drops. Zero leaves the browser's default (about 3 seconds).
	Retry time.Duration

	// Log receives one line per request and the library's error reports.
	// Nil logs nothing.
	Log io.Writer

	// Compress makes the streams compress themselves (the doors'
	// Config.Compress), which costs an idle page a few KB of server memory
	// instead of the compressor Echo's Gzip keeps for every stream; Gzip
	// then serves only the other routes.
	Compress bool

	// Takeover makes each stream over HTTP/1 take its connection away
	// from net/http (the doors' Config.Takeover), the lightest an idle
	// page gets. Behind Echo's Gzip (without Compress) the streams stay
	// on net/http's path.
	Takeover bool

	// Echo is the major version of Echo the room runs on: 4 (echosse) or
	// 5 (echosse5). Zero means 4.
	Echo int

	// Redis, when set, keeps the room in that Redis, shared with every
	// server that uses it: messages, their history, and the count of
	// pages online. Nil keeps the room in this process's memory.
	Redis *redis.Client

	// MaxClients and WriteTimeout are the doors' (0: their defaults).
	MaxClients   int
	WriteTimeout time.Duration
}

// message is one chat message: the data of a "message" event, and an
// element of GET /api/messages (with its ID).
type message struct {
	ID   string    `json:"id,omitempty"` // the event's ID; the event carries it in its id field instead
	Name string    `json:"name"`
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

// presence is the data of a "presence" event.
type presence struct {
	Online int `json:"online"` // pages with an open stream
}

// server is the chat room: an HTTP server with the Echo app, the broker
// that fans events out to every page, and the room's state.
type server struct {
	hs       *http.Server
	b        *broker.Broker
	shared   *sharedRoom // nil without Redis
	logger   *slog.Logger
	fresh    freshConns
	counters *sse.Counters // the door's streams, counted
	metrics  http.Handler  // GET /metrics

	// mu orders every Publish with the state it changes, so that the
	// messages in recent and lastID match the broker's order, and the
	// presence counts go out in the order they were counted. Publish never
	// waits for a subscriber, so holding mu around it is cheap.
	mu      sync.Mutex
	streams map[*sse.Stream]struct{} // open streams, for presence and dropStreams
	counted int                      // the count of pages online last published
	recent  []message                // without Redis: the last recentSize messages, oldest first
	lastID  string                   // without Redis: ID of the last event published, on any topic
	// presence publishes the count after presenceDelay; nil when no
	// count waits to be published.
	presence *time.Timer
	closing  bool // the server is shutting down: no more counts
}

// presenceDelay is how long a change in the number of pages waits before
// the count is published: the pages that arrive or leave meanwhile go out
// as one count. Publishing on every join would send a thousand pages that
// arrive at once (as after a deploy) a thousand counts each, and as many
// again when they leave: a flood that puts every page behind, up to the
// broker's slow-client bound, for a number only the last of which matters.
const presenceDelay = 100 * time.Millisecond

// newServer returns the room's server, ready to serve; serve starts it.
func newServer(cfg config) (*server, error) {
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	logger := slog.New(slog.NewTextHandler(logw, nil))
	var app func(*server, config, io.Writer) http.Handler
	switch cfg.Echo {
	case 0, 4:
		app = echo4App
	case 5:
		app = echo5App
	default:
		return nil, fmt.Errorf("Echo %d: the room runs on Echo 4 or 5", cfg.Echo)
	}
	s := &server{logger: logger, streams: make(map[*sse.Stream]struct{}), counters: new(sse.Counters)}

	var backend broker.Backend // nil: in memory
	if cfg.Redis != nil {
		shared, err := newSharedRoom(cfg.Redis, redisbroker.Config{
			Prefix: redisPrefix,
			ErrorHandler: func(err error) {
				logger.Warn("redis", "err", err) // outages and recoveries
			},
		})
		if err != nil {
			return nil, err
		}
		s.shared, backend = shared, shared.backend
	}
	b, err := broker.New(broker.Config{Backend: backend})
	if err != nil {
		return nil, err
	}
	s.b = b
	s.metrics = s.metricsHandler()

	// Publish the first presence, so that lastID is never empty: a page that
	// loads before any message is posted still resumes from a known ID, and
	// misses nothing posted between its GET /api/messages and its stream.
	s.mu.Lock()
	s.publishPresence()
	s.mu.Unlock()
	if s.shared != nil {
		go s.shared.renew(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.publishOnline(false)
		})
	}

	s.hs = &http.Server{
		Handler:   app(s, cfg, logw),
		ConnState: s.fresh.track,
		ErrorLog:  slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	s.hs.RegisterOnShutdown(s.fresh.closeAll)
	return s, nil
}

// serve serves the room on ln until shutdown is called.
func (s *server) serve(ln net.Listener) error {
	if err := s.hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// shutdown stops the server gracefully, as Ctrl-C does: every page receives
// the close event, and then the broker stops.
func (s *server) shutdown(ctx context.Context) error {
	// The pages are all leaving: counting them down would only send the
	// streams' last moments counts nobody reads.
	s.mu.Lock()
	s.closing = true
	if s.presence != nil {
		s.presence.Stop()
		s.presence = nil
	}
	s.mu.Unlock()
	err := s.hs.Shutdown(ctx)
	// Shutdown does not wait for streams that took their connection over
	// (-takeover): they end on their own goroutines, each with the close
	// event, which closing the broker would cut short.
	err = errors.Join(err, s.counters.Wait(ctx))
	if s.shared != nil {
		err = errors.Join(err, s.shared.stop(ctx))
	}
	return errors.Join(err, s.b.Close())
}

// freshConns tracks the connections that have not sent a request yet.
// Browsers open such connections ahead of need (Chromium preconnects to a
// page's origin), and http.Server.Shutdown waits about five seconds before
// it treats one as idle and closes it, long after every stream has ended.
// On shutdown the server closes them at once instead: a browser retries the
// request it may have been about to send, as it does on a closed keep-alive
// connection.
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// track is the http.Server's ConnState hook.
func (f *freshConns) track(c net.Conn, state http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state != http.StateNew {
		delete(f.conns, c)
		return
	}
	if f.conns == nil {
		f.conns = make(map[net.Conn]struct{})
	}
	f.conns[c] = struct{}{}
}

// closeAll closes the connections that have not sent a request yet.
func (f *freshConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
		delete(f.conns, c)
	}
}

// subscribe is GET /events once the door has opened st, the page's event
// stream: it replays what the page missed since its Last-Event-ID, then
// sends every message and presence change until the page leaves.
func (s *server) subscribe(st *sse.Stream) error {
	switch err := s.b.Subscribe(st, topicChat, topicPresence); {
	case errors.Is(err, broker.ErrGap):
		// The history no longer covers the page's Last-Event-ID (this
		// process restarted since, say): the stream is live, but the page
		// must know that it missed messages. No ID, so that the page keeps
		// the last one it has.
		_ = st.Send(event.Event{Type: "reset", Data: map[string]string{
			"message": "Messages posted while you were away are no longer on the server.",
		}})
	case err != nil:
		return err // the broker is closed: end the stream, the page retries
	}

	s.join(st)
	// Returning leaves the stream to the request's goroutine; the count
	// goes down when it ends (the page left, the server shuts down, or
	// dropStreams), with no goroutine waiting for that meanwhile.
	st.AfterFunc(func() { s.leave(st) })
	return nil
}

// join counts st among the open pages; every page receives the new count
// within presenceDelay.
func (s *server) join(st *sse.Stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams[st] = struct{}{}
	s.countSoon()
}

// leave is join's reverse.
func (s *server) leave(st *sse.Stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, st)
	s.countSoon()
}

// countSoon publishes the number of open pages after presenceDelay, unless
// a count is already on its way or the server is shutting down. s.mu must
// be held.
func (s *server) countSoon() {
	if s.presence != nil || s.closing {
		return
	}
	s.presence = time.AfterFunc(presenceDelay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.presence = nil
		if !s.closing {
			s.publishPresence()
		}
	})
}

// publishPresence publishes the number of open pages. s.mu must be held.
func (s *server) publishPresence() { s.publishOnline(true) }

// publishOnline publishes the number of open pages, unless it is the
// number last published and force is false. s.mu must be held.
func (s *server) publishOnline(force bool) {
	// The background context: a page that leaves still publishes, although
	// its request's context is done.
	ctx := context.Background()
	if s.shared == nil {
		id, err := s.b.Publish(ctx, topicPresence, event.Event{
			Type: "presence",
			Data: presence{Online: len(s.streams)},
		})
		if err == nil {
			s.counted, s.lastID = len(s.streams), id
		}
		// else the broker is closed: the server is shutting down.
		return
	}
	// Shared: the total of every server. Another server may count at the
	// same time and publish an older total after this one; so count again
	// after publishing, until the total holds.
	for i := range 3 {
		total, err := s.shared.online(ctx, len(s.streams))
		if err != nil {
			s.logger.Warn("counting pages online", "err", err)
			return
		}
		if total == s.counted && (i > 0 || !force) {
			return
		}
		if _, err := s.b.Publish(ctx, topicPresence, event.Event{
			Type: "presence",
			Data: presence{Online: total},
		}); err != nil {
			s.logger.Warn("publishing presence", "err", err)
			return
		}
		s.counted = total
	}
}

// errDropped is the reason dropStreams gives the streams it ends.
var errDropped = errors.New("chat: stream dropped by the server")

// dropStreams ends every open stream without the close event, as a network
// failure would: every page reconnects after its retry delay, sends its
// Last-Event-ID, and receives what it missed. The tests use it.
func (s *server) dropStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for st := range s.streams {
		st.Abort(errDropped)
	}
}

// posted is what POST /messages takes, as a form or as JSON.
type posted struct {
	Name string `json:"name" form:"name"`
	Text string `json:"text" form:"text"`
}

// httpError is an error the Echo apps answer with its status and message;
// Err, if set, is logged but not shown.
type httpError struct {
	Code int
	Msg  string
	Err  error
}

func (e *httpError) Error() string { return e.Msg }
func (e *httpError) Unwrap() error { return e.Err }

// unavailable is the answer when the broker (or Redis) cannot serve.
func unavailable(err error) error {
	return &httpError{http.StatusServiceUnavailable, http.StatusText(http.StatusServiceUnavailable), err}
}

// post is POST /messages once the app has bound in: publish a message to
// every page. The app answers 201 with the message as JSON, or 303 to the
// page for a browser's plain form POST (see wantsPage).
func (s *server) post(ctx context.Context, in posted) (message, error) {
	m := message{Name: strings.TrimSpace(in.Name), Text: strings.TrimSpace(in.Text)}
	if err := validate("name", m.Name, maxName); err != nil {
		return m, err
	}
	if err := validate("text", m.Text, maxText); err != nil {
		return m, err
	}

	s.mu.Lock()
	m.Time = time.Now().UTC().Truncate(time.Second)
	id, err := s.b.Publish(ctx, topicChat, event.Event{Data: m})
	if err == nil {
		m.ID = id
		if s.shared == nil { // else Redis keeps them
			s.lastID = id
			if len(s.recent) == recentSize {
				s.recent = append(s.recent[:0], s.recent[1:]...)
			}
			s.recent = append(s.recent, m)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return m, unavailable(err)
	}
	return m, nil
}

// wantsPage reports whether r is a form posted without JavaScript, which
// is answered with a redirect to the page.
func wantsPage(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// validate checks one posted field.
func validate(field, v string, limit int) error {
	switch {
	case v == "":
		return &httpError{Code: http.StatusBadRequest, Msg: field + " is required"}
	case !utf8.ValidString(v):
		return &httpError{Code: http.StatusBadRequest, Msg: field + " is not UTF-8"}
	case utf8.RuneCountInString(v) > limit:
		return &httpError{Code: http.StatusBadRequest, Msg: field + " is too long"}
	}
	return nil
}

// recentMessages is the answer of GET /api/messages.
type recentMessages struct {
	Messages    []message `json:"messages"`
	LastEventID string    `json:"lastEventID"`
}

// messages is GET /api/messages: the recent messages, and the ID to resume
// from, for a page that has just loaded. The page then opens
// /events?lastEventID=<lastEventID> and misses nothing posted in between.
func (s *server) messages(ctx context.Context) (recentMessages, error) {
	var out recentMessages
	if s.shared != nil {
		// From Redis, with the ID of the last event published on any
		// server when they were read.
		msgs, lastID, err := s.shared.recent(ctx, recentSize)
		if err != nil {
			return out, unavailable(err)
		}
		out.Messages, out.LastEventID = msgs, lastID
		return out, nil
	}
	s.mu.Lock()
	out.Messages, out.LastEventID = append([]message{}, s.recent...), s.lastID
	s.mu.Unlock()
	return out, nil
}

// stats is GET /api/stats: the number of open pages and the broker's
// counters.
func (s *server) stats() stats {
	s.mu.Lock()
	online, room := len(s.streams), s.counted
	s.mu.Unlock()
	bs := s.b.Stats()
	var rs *redisStats
	if s.shared != nil {
		st := s.shared.backend.Stats()
		rs = &redisStats{
			Connected:     st.Connected,
			Published:     st.Published,
			PublishErrors: st.PublishErrors,
			Delivered:     st.Delivered,
			Recovered:     st.Recovered,
			Lost:          st.Lost,
			ReadErrors:    st.ReadErrors,
			Reconnects:    st.Reconnects,
		}
	}
	return stats{
		Online: online,
		Room:   room,
		Redis:  rs,
		Broker: brokerStats{
			Topics:      bs.Topics,
			Subscribers: bs.Subscribers,
			Published:   bs.Published,
			Replayed:    bs.Replayed,
			Gaps:        bs.Gaps,
			SlowClients: bs.SlowClients,
			Dropped:     bs.Dropped,
		},
	}
}

// stats is the answer of GET /api/stats.
type stats struct {
	Online int         `json:"online"` // pages with an open stream on this server
	Room   int         `json:"room"`   // pages online in the room, on every server: the last presence published
	Broker brokerStats `json:"broker"`
	Redis  *redisStats `json:"redis,omitempty"` // with -redis: the backend's counters
}

// redisStats is [redisbroker.Stats] in JSON.
type redisStats struct {
	Connected     bool   `json:"connected"` // reading Redis now
	Published     uint64 `json:"published"` // by this server
	PublishErrors uint64 `json:"publishErrors"`
	Delivered     uint64 `json:"delivered"` // read from Redis, published by any server
	Recovered     uint64 `json:"recovered"`
	Lost          uint64 `json:"lost"`
	ReadErrors    uint64 `json:"readErrors"`
	Reconnects    uint64 `json:"reconnects"`
}

// brokerStats is [broker.Stats] in JSON.
type brokerStats struct {
	Topics      map[string]int `json:"topics"` // streams subscribed to each topic
	Subscribers int            `json:"subscribers"`
	Published   uint64         `json:"published"`
	Replayed    uint64         `json:"replayed"` // sent from the history to pages that reconnected
	Gaps        uint64         `json:"gaps"`     // reconnections the history could not cover
	SlowClients uint64         `json:"slowClients"`
	Dropped     uint64         `json:"dropped"`
}
