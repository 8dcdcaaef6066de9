package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// cookbook is the shape of Echo's documented hand-written SSE loop: an
// Event struct whose MarshalTo writes each field with fmt.Fprintf, and a
// handler that sets the headers itself and calls c.Response().Flush() after
// every event. The cookbook's loop waits on a ticker; here it waits on the
// client's channel of a small hub (the publisher blocks while a client's
// 64 queued events are unsent, as a hand-written hub would), or produces
// events itself for /stream.
//
// One change from the cookbook: the handler flushes the headers as soon as
// the client is subscribed, so an idle client knows it is connected (the
// cookbook writes nothing before its first event).
type cookbook struct {
	ring []*cookbookEvent

	mu   sync.Mutex
	subs map[chan *cookbookEvent]<-chan struct{} // client's channel -> its request's Done
}

// cookbookEvent is the cookbook's Event.
type cookbookEvent struct {
	ID      []byte
	Data    []byte
	Event   []byte
	Retry   []byte
	Comment []byte
}

// MarshalTo writes ev to w in the event stream format, as the cookbook does.
func (ev *cookbookEvent) MarshalTo(w io.Writer) error {
	if len(ev.Data) == 0 && len(ev.Comment) == 0 {
		return nil
	}
	if len(ev.Data) > 0 {
		if _, err := fmt.Fprintf(w, "id: %s\n", ev.ID); err != nil {
			return err
		}
		for _, line := range bytes.Split(ev.Data, []byte("\n")) {
			if _, err := fmt.Fprintf(w, "data: %s\n", line); err != nil {
				return err
			}
		}
		if len(ev.Event) > 0 {
			if _, err := fmt.Fprintf(w, "event: %s\n", ev.Event); err != nil {
				return err
			}
		}
		if len(ev.Retry) > 0 {
			if _, err := fmt.Fprintf(w, "retry: %s\n", ev.Retry); err != nil {
				return err
			}
		}
	}
	if len(ev.Comment) > 0 {
		if _, err := fmt.Fprintf(w, ": %s\n", ev.Comment); err != nil {
			return err
		}
	}
	_, err := fmt.Fprint(w, "\n")
	return err
}

func newCookbook(cfg serverConfig) (http.Handler, server, error) {
	s := &cookbook{subs: map[chan *cookbookEvent]<-chan struct{}{}}
	for _, p := range payloadRing() {
		s.ring = append(s.ring, &cookbookEvent{Data: p})
	}
	e := newEcho()
	if cfg.Gzip {
		e.Use(middleware.Gzip())
	}
	e.GET("/stream", s.serveStream)
	e.GET("/events", s.serveEvents)
	return e, s, nil
}

func cookbookHeaders(c echo.Context) *echo.Response {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set(echo.HeaderConnection, "keep-alive")
	return w
}

func (s *cookbook) serveStream(c echo.Context) error {
	p, err := parseStreamParams(c.Request())
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	w := cookbookHeaders(c)
	w.WriteHeader(http.StatusOK)
	w.Flush()
	switch p.mode {
	case modeFlush, modeBurst:
		for i := range p.n {
			if err := s.ring[i%ringSize].MarshalTo(w); err != nil {
				return nil
			}
			w.Flush()
			produced.Add(1)
		}
	case modeLone:
		paced(c.Request().Context(), p.n, p.interval, func(i int) {
			ev := cookbookEvent{Data: makePayload(i, time.Now().UnixNano())}
			if ev.MarshalTo(w) == nil {
				w.Flush()
			}
		})
	}
	return nil
}

func (s *cookbook) serveEvents(c echo.Context) error {
	ch := make(chan *cookbookEvent, 64)
	done := c.Request().Context().Done()
	s.mu.Lock()
	s.subs[ch] = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	w := cookbookHeaders(c)
	w.WriteHeader(http.StatusOK)
	w.Flush()
	for {
		select {
		case <-done:
			return nil
		case ev := <-ch:
			if err := ev.MarshalTo(w); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}

func (s *cookbook) publish(data []byte) {
	ev := &cookbookEvent{Data: data}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch, done := range s.subs {
		select {
		case ch <- ev: // blocks while this client's queue is full
		case <-done:
		}
	}
}

func (s *cookbook) subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}
