package main

import (
	"net/http"
	"sync/atomic"
	"time"

	r3 "github.com/r3labs/sse/v2"
)

// r3labsServer is github.com/r3labs/sse/v2's Server with one stream,
// "events". AutoReplay is turned off: left on (its default) every event
// would be kept for replay forever. For /stream, a producer publishes to
// the stream once the client is subscribed.
type r3labsServer struct {
	srv        *r3.Server
	ring       []*r3.Event
	subs       atomic.Int64
	subscribed chan struct{} // a client subscribed
}

const r3Stream = "events"

func newR3labs(cfg serverConfig) (http.Handler, server, error) {
	s := &r3labsServer{subscribed: make(chan struct{}, 1)}
	for _, p := range payloadRing() {
		s.ring = append(s.ring, &r3.Event{Data: p})
	}
	s.srv = r3.NewWithCallback(
		func(string, *r3.Subscriber) {
			s.subs.Add(1)
			select {
			case s.subscribed <- struct{}{}:
			default:
			}
		},
		func(string, *r3.Subscriber) { s.subs.Add(-1) },
	)
	s.srv.AutoReplay = false
	s.srv.CreateStream(r3Stream)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream", s.serveStream)
	mux.Handle("GET /events", s.srv)
	var h http.Handler = mux
	if cfg.Gzip {
		h = behindEchoGzip(mux)
	}
	return h, s, nil
}

func (s *r3labsServer) serveStream(w http.ResponseWriter, r *http.Request) {
	p, err := parseStreamParams(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	go func() {
		select {
		case <-s.subscribed: // OnSubscribe runs once the stream holds the client
		case <-ctx.Done():
			return
		}
		produce(ctx, p,
			func(i int) { s.srv.Publish(r3Stream, s.ring[i%ringSize]) },
			func(i int) {
				s.srv.Publish(r3Stream, &r3.Event{Data: makePayload(i, time.Now().UnixNano())})
			})
	}()
	s.srv.ServeHTTP(w, r)
}

func (s *r3labsServer) publish(data []byte) {
	s.srv.Publish(r3Stream, &r3.Event{Data: data})
}

func (s *r3labsServer) subscribers() int { return int(s.subs.Load()) }
