package echosse_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// errTokenExpired is the reason a stream ends when its token expires.
var errTokenExpired = errors.New("token expired")

// A stream outlives the request that opened it, and so the token that
// authorised it: end it when the token expires. Abort ends it without the
// close event, so a browser's EventSource reconnects after its retry delay
// with the cookie it holds then: a page that has refreshed its token
// resumes from its Last-Event-ID; one whose token is gone gets the auth
// middleware's 401, and its EventSource gives up for good.
func Example_endAtTokenExpiry() {
	ended := make(chan error, 1)
	e := echo.New()
	// Stands in for the auth middleware (echo-jwt, say), which sits
	// outside echosse's and leaves the token's expiry in the context.
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Set("expiry", time.Now().Add(50*time.Millisecond))
			return next(c)
		}
	})
	e.Use(echosse.Middleware(echosse.Config{}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		expiry := c.Get("expiry").(time.Time)
		t := time.AfterFunc(time.Until(expiry), func() { s.Abort(errTokenExpired) })
		s.AfterFunc(func() {
			t.Stop() // the stream ended first: drop the timer
			ended <- s.Err()
		})
		s.Send(event.Event{Data: "hello"})
		return nil // the stream goes on until the token expires
	})
	srv := httptest.NewServer(e)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body) // until the stream ends
	fmt.Printf("%q\n", b)
	fmt.Println(errors.Is(<-ended, errTokenExpired))
	// Output:
	// "data: hello\n\n"
	// true
}
