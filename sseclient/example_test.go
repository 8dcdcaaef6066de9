package sseclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sseclient"
)

// The server sends two events and ends the stream; the client reconnects
// with the last event ID, and the server, having nothing after it, answers
// 204 No Content, which ends the loop.
func ExampleClient_Events() {
	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{}))
	e.GET("/events", func(c echo.Context) error {
		if c.Request().Header.Get("Last-Event-ID") == "2" {
			return c.NoContent(http.StatusNoContent)
		}
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		go func() {
			defer close(s.C) // ends the stream with the close event
			s.Send(event.Event{ID: "1", Data: "hello"})
			s.Send(event.Event{ID: "2", Type: "price", Data: map[string]float64{"ECHO": 17.5}})
		}()
		return nil
	})
	srv := httptest.NewServer(e)
	defer srv.Close()

	c := &sseclient.Client{HTTPClient: srv.Client(), Retry: 10 * time.Millisecond}
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/events", nil)
	if err != nil {
		panic(err)
	}
	for ev, err := range c.Events(context.Background(), req) {
		if err != nil {
			fmt.Println("ended:", err, errors.Is(err, sseclient.ErrNoContent))
			break
		}
		fmt.Printf("%s id=%q data=%q\n", ev.Type, ev.ID, ev.Data)
	}
	// Output:
	// message id="1" data="hello"
	// price id="2" data="{\"ECHO\":17.5}"
	// close id="2" data=""
	// ended: sseclient: server answered 204 No Content true
}
