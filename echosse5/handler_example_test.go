package echosse5_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echosse/echo-sse/echosse5"
	"github.com/echosse/echo-sse/event"
)

// Handler opens the stream and hands it to the function, which leaves it
// to a goroutine that sends on its channel and closes it to end the stream
// with the close event. Should the function panic, the stream ends and its
// slot is freed wherever Echo's Recover sits.
func ExampleHandler() {
	e := echo.New()
	e.Use(middleware.Recover())
	e.Use(echosse5.Middleware(echosse5.Config{}))
	e.GET("/events", echosse5.Handler(func(c *echo.Context, s *echosse5.Stream) error {
		go func() {
			defer close(s.C) // ends the stream with the close event
			s.Send(event.Event{Data: "hello"})
		}()
		return nil
	}))
	srv := httptest.NewServer(e)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	fmt.Print(string(b))
	// Output:
	// data: hello
	//
	// event: close
	// data:
}
