package main

// The room on Echo v5, through echosse5 (-echo=5): what echo4.go does for
// Echo v4, in Echo v5's types.

import (
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echosse/echo-sse/echosse5"
)

// echo5App returns the room's Echo v5 app.
func echo5App(s *server, cfg config, _ io.Writer) http.Handler {
	e := echo.NewWithConfig(echo.Config{Logger: s.logger}) // echosse5's ErrorHandler logs here

	e.Use(middleware.Recover())
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod:   true,
		LogURI:      true,
		LogStatus:   true,
		LogLatency:  true,
		HandleError: true, // let Echo's error handler pick the status it logs
		LogValuesFunc: func(c *echo.Context, v middleware.RequestLoggerValues) error {
			logRequest(s.logger, v.Method, v.URI, v.Status, v.Latency, v.Error)
			return nil
		},
	}))
	// Compression first: it wraps the writer the streams flush through.
	// With cfg.Compress the streams compress themselves and Gzip skips them.
	e.Use(middleware.GzipWithConfig(middleware.GzipConfig{Skipper: func(c *echo.Context) bool {
		return cfg.Compress && c.Path() == "/events"
	}}))
	e.Use(middleware.BodyLimit(64 << 10)) // a message is at most a few KB
	e.Use(echosse5.Middleware(echosse5.Config{
		Retry:        cfg.Retry,
		Compress:     cfg.Compress,
		Takeover:     cfg.Takeover,
		MaxClients:   cfg.MaxClients,
		WriteTimeout: cfg.WriteTimeout,
		Counters:     s.counters, // for GET /metrics
	}))

	e.StaticFS("/", echo.MustSubFS(static, "static")) // GET /: the page
	e.GET("/events", func(c *echo.Context) error {
		st, err := echosse5.Open(c)
		if err != nil {
			return err
		}
		return s.subscribe(st)
	})
	e.POST("/messages", func(c *echo.Context) error {
		var in posted
		if err := c.Bind(&in); err != nil {
			return err
		}
		m, err := s.post(c.Request().Context(), in)
		if err != nil {
			return echo5Error(err)
		}
		if wantsPage(c.Request()) {
			return c.Redirect(http.StatusSeeOther, "/")
		}
		return c.JSON(http.StatusCreated, m)
	})
	e.GET("/api/messages", func(c *echo.Context) error {
		out, err := s.messages(c.Request().Context())
		if err != nil {
			return echo5Error(err)
		}
		return c.JSON(http.StatusOK, out)
	})
	e.GET("/api/stats", func(c *echo.Context) error { return c.JSON(http.StatusOK, s.stats()) })
	e.GET("/metrics", echo.WrapHandler(s.metrics))
	return e
}

// echo5Error is err for Echo v5's error handler.
func echo5Error(err error) error {
	if he := (*httpError)(nil); errors.As(err, &he) {
		return echo.NewHTTPError(he.Code, he.Msg).Wrap(he.Err)
	}
	return err
}
