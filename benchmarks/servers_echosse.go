package main

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// echosseServer is echo.New + echosse.Middleware + echosse.Open, with the
// library's defaults except MaxClients (raised so that it never refuses a
// client here) and, when asked, BufferSize and PingInterval
// (serverConfig.Heartbeat). Broadcast (/events) goes through the broker
// package with its defaults: every subscriber on the topic "events".
//
// Behind gzip it runs after Echo's Gzip middleware, like the others; with
// Compress set it uses the library's own compression instead.
//
// The other front doors (echosse5, echosse-nethttp) open their streams
// their own way and share the rest: the producer (streamEvents) and the
// broker (streamHub).
type echosseServer struct{ *streamHub }

// maxClients is above any client count the scenarios use.
const maxClients = 1 << 20

const topic = "events"

// streamHub is what every echosse door's server shares: the pre-built
// events /stream cycles through, and the broker /events subscribes to.
type streamHub struct {
	ring []event.Event
	b    *broker.Broker
}

func newStreamHub() (*streamHub, error) {
	b, err := broker.New(broker.Config{})
	if err != nil {
		return nil, err
	}
	s := &streamHub{b: b}
	for _, p := range payloadRing() {
		s.ring = append(s.ring, event.Event{Data: json.RawMessage(p)})
	}
	return s, nil
}

func newEchoSSE(cfg serverConfig) (http.Handler, server, error) { return newEchoSSEMode(cfg, false) }

// newEchoSSETakeover is echosse with Config.Takeover on: over HTTP/1 each
// stream takes its connection over from net/http.
func newEchoSSETakeover(cfg serverConfig) (http.Handler, server, error) {
	return newEchoSSEMode(cfg, true)
}

func newEchoSSEMode(cfg serverConfig, takeover bool) (http.Handler, server, error) {
	hub, err := newStreamHub()
	if err != nil {
		return nil, nil, err
	}
	s := &echosseServer{hub}
	mw, err := echosse.Config{
		MaxClients: maxClients,
		BufferSize: cfg.BufferSize,
		Compress:   cfg.Gzip && cfg.Compress,
		Takeover:   takeover,
		// Zero (the default, 25 s) unless a scenario asks (B3).
		PingInterval: cfg.Heartbeat,
	}.ToMiddleware()
	if err != nil {
		return nil, nil, err
	}
	e := newEcho()
	if cfg.Gzip && !cfg.Compress {
		e.Use(middleware.Gzip()) // compression first, streams after
	}
	e.Use(mw)
	e.GET("/stream", s.serveStream)
	e.GET("/events", s.serveEvents)
	return e, s, nil
}

func (s *echosseServer) serveStream(c echo.Context) error {
	p, err := parseStreamParams(c.Request())
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	st, err := echosse.Open(c)
	if err != nil {
		return err
	}
	s.streamEvents(st, p)
	return nil
}

func (s *echosseServer) serveEvents(c echo.Context) error {
	st, err := echosse.Open(c)
	if err != nil {
		return err
	}
	// Returning hands the pump over to the request goroutine: the stream
	// lives on, with one goroutine fewer.
	return s.b.Subscribe(st, topic)
}

// streamEvents is /stream's producer for every echosse door, run by the
// handler once it has opened st: it sends p.n events in p.mode, then
// closes st.C, or returns early once the stream has ended. The door then
// waits for the stream to end (its middleware, or Wait).
func (s *streamHub) streamEvents(st *sse.Stream, p streamParams) {
	done := st.Context().Done()
	send := func(ev event.Event) bool {
		select {
		case st.C <- ev:
			return true
		case <-done:
			return false
		}
	}
	switch p.mode {
	case modeFlush:
		// The pump writes everything queued with one flush. To measure
		// a flush per event, the producer yields after each send so the
		// pump takes events one at a time (write syscalls per event,
		// reported beside, show whether it did).
		for i := range p.n {
			if !send(s.ring[i%ringSize]) {
				return
			}
			produced.Add(1)
			yield()
		}
	case modeBurst:
		for i := range p.n {
			if !send(s.ring[i%ringSize]) {
				return
			}
			produced.Add(1)
		}
	case modeLone:
		paced(st.Context(), p.n, p.interval, func(i int) {
			send(event.Event{Data: json.RawMessage(makePayload(i, time.Now().UnixNano()))})
		})
	}
	close(st.C)
}

func (s *streamHub) publish(data []byte) {
	if _, err := s.b.Publish(context.Background(), topic, event.Event{Data: json.RawMessage(data)}); err != nil {
		panic(err) // the harness builds valid JSON and never closes the broker
	}
}

func (s *streamHub) subscribers() int { return s.b.Stats().Subscribers }

// counters reports the broker's slow-client figures.
func (s *streamHub) counters() map[string]float64 {
	st := s.b.Stats()
	return map[string]float64{"slow_clients": float64(st.SlowClients), "dropped": float64(st.Dropped)}
}
