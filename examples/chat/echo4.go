package main

// The room on Echo v4, through echosse: what echo5.go does for Echo v5.

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/echosse"
)

// echo4App returns the room's Echo v4 app.
func echo4App(s *server, cfg config, logw io.Writer) http.Handler {
	e := echo.New()
	e.Logger.SetOutput(logw) // echosse's ErrorHandler logs here

	e.Use(middleware.Recover())
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod:   true,
		LogURI:      true,
		LogStatus:   true,
		LogLatency:  true,
		LogError:    true,
		HandleError: true, // let Echo's error handler pick the status it logs
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			logRequest(s.logger, v.Method, v.URI, v.Status, v.Latency, v.Error)
			return nil
		},
	}))
	// Compression first: it wraps the writer the streams flush through.
	// With cfg.Compress the streams compress themselves and Gzip skips them.
	e.Use(middleware.GzipWithConfig(middleware.GzipConfig{Skipper: func(c echo.Context) bool {
		return cfg.Compress && c.Path() == "/events"
	}}))
	e.Use(middleware.BodyLimit("64K")) // a message is at most a few KB
	e.Use(echosse.Middleware(echosse.Config{
		Retry:        cfg.Retry,
		Compress:     cfg.Compress,
		Takeover:     cfg.Takeover,
		MaxClients:   cfg.MaxClients,
		WriteTimeout: cfg.WriteTimeout,
		Counters:     s.counters, // for GET /metrics
	}))

	e.StaticFS("/", echo.MustSubFS(static, "static")) // GET /: the page
	e.GET("/events", func(c echo.Context) error {
		st, err := echosse.Open(c)
		if err != nil {
			return err
		}
		return s.subscribe(st)
	})
	e.POST("/messages", func(c echo.Context) error {
		var in posted
		if err := c.Bind(&in); err != nil {
			return err
		}
		m, err := s.post(c.Request().Context(), in)
		if err != nil {
			return echo4Error(err)
		}
		if wantsPage(c.Request()) {
			return c.Redirect(http.StatusSeeOther, "/")
		}
		return c.JSON(http.StatusCreated, m)
	})
	e.GET("/api/messages", func(c echo.Context) error {
		out, err := s.messages(c.Request().Context())
		if err != nil {
			return echo4Error(err)
		}
		return c.JSON(http.StatusOK, out)
	})
	e.GET("/api/stats", func(c echo.Context) error { return c.JSON(http.StatusOK, s.stats()) })
	e.GET("/metrics", echo.WrapHandler(s.metrics))
	return e
}

// echo4Error is err for Echo v4's error handler.
func echo4Error(err error) error {
	if he := (*httpError)(nil); errors.As(err, &he) {
		return echo.NewHTTPError(he.Code, he.Msg).WithInternal(he.Err)
	}
	return err
}

// logRequest writes the request log's line for one request.
func logRequest(logger *slog.Logger, method, uri string, status int, latency time.Duration, err error) {
	attrs := []any{"method", method, "uri", uri, "status", status, "latency", latency.Round(time.Microsecond)}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	logger.Info("request", attrs...)
}
