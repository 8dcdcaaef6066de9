package main

import (
	"net/http"
	"sync/atomic"
	"time"

	gosse "github.com/tmaxmax/go-sse"
)

// goSSEServer is github.com/tmaxmax/go-sse's Server with its default
// provider, Joe. Joe registers a subscriber in its own goroutine; the
// Replayer below is how this harness learns it happened: Joe calls Replay
// just before it adds the subscriber, and Replay flushes the response
// headers (go-sse sends them only with the first event otherwise) and
// counts the subscriber. Put returns each message unchanged.
type goSSEServer struct {
	srv        *gosse.Server
	ring       []*gosse.Message
	subs       atomic.Int64
	subscribed chan struct{}
}

func newGoSSE(cfg serverConfig) (http.Handler, server, error) {
	s := &goSSEServer{subscribed: make(chan struct{}, 1)}
	for _, p := range payloadRing() {
		s.ring = append(s.ring, goSSEMessage(p))
	}
	s.srv = &gosse.Server{Provider: &gosse.Joe{Replayer: readiness{s}}}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream", s.serveStream)
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		s.srv.ServeHTTP(w, r)
		s.subs.Add(-1)
	})
	var h http.Handler = mux
	if cfg.Gzip {
		h = behindEchoGzip(mux)
	}
	return h, s, nil
}

func goSSEMessage(data []byte) *gosse.Message {
	m := &gosse.Message{}
	m.AppendData(string(data))
	return m
}

// readiness is the Replayer that reports subscriptions.
type readiness struct{ s *goSSEServer }

func (r readiness) Put(m *gosse.Message, _ []string) (*gosse.Message, error) { return m, nil }

func (r readiness) Replay(sub gosse.Subscription) error {
	err := sub.Client.Flush() // sends the headers
	r.s.subs.Add(1)
	select {
	case r.s.subscribed <- struct{}{}:
	default:
	}
	return err
}

func (s *goSSEServer) serveStream(w http.ResponseWriter, r *http.Request) {
	p, err := parseStreamParams(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	go func() {
		select {
		case <-s.subscribed:
		case <-ctx.Done():
			return
		}
		produce(ctx, p,
			func(i int) { _ = s.srv.Publish(s.ring[i%ringSize]) },
			func(i int) { _ = s.srv.Publish(goSSEMessage(makePayload(i, time.Now().UnixNano()))) })
	}()
	s.srv.ServeHTTP(w, r)
	s.subs.Add(-1)
}

func (s *goSSEServer) publish(data []byte) { _ = s.srv.Publish(goSSEMessage(data)) }

func (s *goSSEServer) subscribers() int { return int(s.subs.Load()) }
