package main

import (
	"net/http"
	"sync"
	"time"
)

// raw is plain net/http writing pre-encoded bytes and flushing through
// http.ResponseController: the practical limit. Its broadcast hub keeps a
// queue per subscriber (no preallocated buffer, so an idle subscriber costs
// what net/http costs) and never blocks the publisher. With coalesce set,
// a subscriber flushes only when its queue is empty; otherwise after every
// event. With a heartbeat (serverConfig.Heartbeat) each /events handler
// also writes a comment on a ticker of its own, as a hand-written net/http
// SSE server would.
type raw struct {
	coalesce  bool
	heartbeat time.Duration
	ring      [][]byte // pre-encoded frames for /stream

	mu   sync.Mutex
	subs map[*rawSub]struct{}
}

type rawSub struct {
	mu     sync.Mutex
	queue  [][]byte
	notify chan struct{} // cap 1: something was queued
}

func newRaw(cfg serverConfig, coalesce bool) (http.Handler, server, error) {
	s := &raw{coalesce: coalesce, heartbeat: cfg.Heartbeat, subs: map[*rawSub]struct{}{}}
	for _, p := range payloadRing() {
		s.ring = append(s.ring, rawFrame(p))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream", s.serveStream)
	mux.HandleFunc("GET /events", s.serveEvents)
	var h http.Handler = mux
	if cfg.Gzip {
		h = behindEchoGzip(mux)
	}
	return h, s, nil
}

// rawFrame encodes data (one line) as an event.
func rawFrame(data []byte) []byte {
	b := make([]byte, 0, len(data)+8)
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// rawPing is raw's heartbeat, the comment echosse writes.
var rawPing = []byte(": ping\n\n")

func startRaw(w http.ResponseWriter) *http.ResponseController {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	return rc
}

func (s *raw) serveStream(w http.ResponseWriter, r *http.Request) {
	p, err := parseStreamParams(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc := startRaw(w)
	switch p.mode {
	case modeFlush, modeBurst:
		every := 1
		if p.mode == modeBurst {
			every = p.every
		}
		for i := range p.n {
			if _, err := w.Write(s.ring[i%ringSize]); err != nil {
				return
			}
			produced.Add(1)
			if (i+1)%every == 0 || i == p.n-1 {
				if rc.Flush() != nil {
					return
				}
			}
		}
	case modeLone:
		paced(r.Context(), p.n, p.interval, func(i int) {
			_, _ = w.Write(rawFrame(makePayload(i, time.Now().UnixNano())))
			_ = rc.Flush()
		})
	}
}

func (s *raw) serveEvents(w http.ResponseWriter, r *http.Request) {
	sub := &rawSub{notify: make(chan struct{}, 1)}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	rc := startRaw(w)
	done := r.Context().Done()
	var tick <-chan time.Time // nil without a heartbeat: never ready
	if s.heartbeat > 0 {
		t := time.NewTicker(s.heartbeat)
		defer t.Stop()
		tick = t.C
	}
	var frames [][]byte
	for {
		select {
		case <-done:
			return
		case <-tick:
			if _, err := w.Write(rawPing); err != nil || rc.Flush() != nil {
				return
			}
			continue
		case <-sub.notify:
		}
		for {
			sub.mu.Lock()
			frames, sub.queue = sub.queue, frames[:0]
			sub.mu.Unlock()
			if len(frames) == 0 {
				break
			}
			for i, f := range frames {
				if _, err := w.Write(f); err != nil {
					return
				}
				frames[i] = nil
				if !s.coalesce && rc.Flush() != nil {
					return
				}
			}
			if !s.coalesce {
				break
			}
			// Coalescing: keep writing while more is queued, flush
			// once the queue is empty.
		}
		if s.coalesce && rc.Flush() != nil {
			return
		}
	}
}

func (s *raw) publish(data []byte) {
	f := rawFrame(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		sub.mu.Lock()
		sub.queue = append(sub.queue, f)
		sub.mu.Unlock()
		select {
		case sub.notify <- struct{}{}:
		default:
		}
	}
}

func (s *raw) subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}
