package doortest

// This file builds one server per front door around the same handler, for
// tests of what sits behind the doors (a broker, a client).

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"
	echo5 "github.com/labstack/echo/v5"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/echosse5"
	"github.com/echosse/echo-sse/sse"
)

// DoorNames names the front doors Servers builds, in a fixed order.
var DoorNames = []string{"echo4", "echo5", "nethttp"}

// Servers returns, for each front door (by its name in DoorNames), a
// handler whose GET /events opens a stream through that door, with the
// door's default Config, and hands it to serve; an error serve returns is
// the handler's.
func Servers(t testing.TB, serve func(s *sse.Stream) error) map[string]http.Handler {
	t.Helper()
	e4 := echo.New()
	e4.Use(echosse.Middleware(echosse.Config{}))
	e4.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		return serve(s)
	})
	e5 := echo5.New()
	e5.Use(echosse5.Middleware(echosse5.Config{}))
	e5.GET("/events", func(c *echo5.Context) error {
		s, err := echosse5.Open(c)
		if err != nil {
			return err
		}
		return serve(s)
	})
	core, err := sse.New(sse.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events", core.Handler(func(s *sse.Stream, _ *http.Request) error { return serve(s) }))
	return map[string]http.Handler{"echo4": e4, "echo5": e5, "nethttp": mux}
}
