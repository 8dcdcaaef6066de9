package main

import (
	"log/slog"
	"net/http"
	"os"

	echo5 "github.com/labstack/echo/v5"
	middleware5 "github.com/labstack/echo/v5/middleware"

	"github.com/echosse/echo-sse/echosse5"
	"github.com/echosse/echo-sse/sse"
)

// The library's other front doors, serving exactly what the echosse
// server serves (the same producer and broker, streamHub) through their
// own way in:
//
//   - echosse5: echo v5's New + echosse5.Middleware + echosse5.Open; behind
//     gzip, Echo v5's own middleware.Gzip in front of the middleware.
//   - echosse-nethttp: http.ServeMux + package sse itself, no framework:
//     /stream opens with Server.Open and pumps with Stream.Wait, /events is
//     Server.Handler. Behind gzip it runs behind Echo v4's Gzip through
//     echo.WrapHandler, as the other net/http servers (raw) do, so that
//     its gzip rows compare with theirs; a net/http program would rather
//     use the library's own compression (Config.Compress).
//
// Both take the echosse server's configuration: MaxClients raised,
// BufferSize, Compress and PingInterval (serverConfig.Heartbeat) when
// asked.

// echosse5Server is the Echo v5 door.
type echosse5Server struct{ *streamHub }

func newEchoSSE5(cfg serverConfig) (http.Handler, server, error) {
	hub, err := newStreamHub()
	if err != nil {
		return nil, nil, err
	}
	s := &echosse5Server{hub}
	mw, err := echosse5.Config{
		MaxClients:   maxClients,
		BufferSize:   cfg.BufferSize,
		Compress:     cfg.Gzip && cfg.Compress,
		PingInterval: cfg.Heartbeat,
	}.ToMiddleware()
	if err != nil {
		return nil, nil, err
	}
	e := echo5.New()
	// Echo v5 logs to standard output, which is the child's answers to
	// the driver.
	e.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	if cfg.Gzip && !cfg.Compress {
		e.Use(middleware5.Gzip()) // compression first, streams after
	}
	e.Use(mw)
	e.GET("/stream", s.serveStream)
	e.GET("/events", s.serveEvents)
	return e, s, nil
}

func (s *echosse5Server) serveStream(c *echo5.Context) error {
	p, err := parseStreamParams(c.Request())
	if err != nil {
		return echo5.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	st, err := echosse5.Open(c)
	if err != nil {
		return err
	}
	s.streamEvents(st, p)
	return nil
}

func (s *echosse5Server) serveEvents(c *echo5.Context) error {
	st, err := echosse5.Open(c)
	if err != nil {
		return err
	}
	return s.b.Subscribe(st, topic)
}

// nethttpServer is the net/http door: package sse on http.ServeMux.
type nethttpServer struct {
	*streamHub
	srv *sse.Server
}

func newNetHTTPSSE(cfg serverConfig) (http.Handler, server, error) {
	hub, err := newStreamHub()
	if err != nil {
		return nil, nil, err
	}
	srv, err := sse.New(sse.Config{
		MaxClients:   maxClients,
		BufferSize:   cfg.BufferSize,
		Compress:     cfg.Gzip && cfg.Compress,
		PingInterval: cfg.Heartbeat,
	})
	if err != nil {
		return nil, nil, err
	}
	s := &nethttpServer{streamHub: hub, srv: srv}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream", s.serveStream)
	mux.Handle("GET /events", srv.Handler(func(st *sse.Stream, _ *http.Request) error {
		return s.b.Subscribe(st, topic)
	}))
	var h http.Handler = mux
	if cfg.Gzip && !cfg.Compress {
		h = behindEchoGzip(mux)
	}
	return h, s, nil
}

func (s *nethttpServer) serveStream(w http.ResponseWriter, r *http.Request) {
	p, err := parseStreamParams(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	st, err := s.srv.Open(w, r)
	if err != nil {
		s.srv.Error(w, r, err)
		return
	}
	s.streamEvents(st, p)
	st.Wait()
}
