package sseclient_test

import (
	"context"
	"encoding/json"
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

// Views lends each event's bytes until the next iteration: parse them
// there, or copy what you keep (string(v.Data) is one allocation).
func ExampleClient_Views() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Last-Event-ID") != "" {
			w.WriteHeader(http.StatusNoContent) // nothing after it: stop
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 1\ndata: {\"price\":17.5}\n\nid: 2\ndata: {\"price\":17.25}\n\n")
	}))
	defer srv.Close()

	c := &sseclient.Client{HTTPClient: srv.Client(), Retry: 10 * time.Millisecond}
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		panic(err)
	}
	var kept []string
	for v, err := range c.Views(context.Background(), req) {
		if err != nil {
			fmt.Println("ended:", errors.Is(err, sseclient.ErrNoContent))
			break
		}
		var q struct{ Price float64 }
		if err := json.Unmarshal(v.Data, &q); err != nil { // no copy of the data
			panic(err)
		}
		fmt.Printf("id=%s price=%.2f\n", v.ID, q.Price)
		kept = append(kept, string(v.Data)) // a copy, to keep
	}
	fmt.Println(kept)
	// Output:
	// id=1 price=17.50
	// id=2 price=17.25
	// ended: true
	// [{"price":17.5} {"price":17.25}]
}
