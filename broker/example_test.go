package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// A chat room: GET /events subscribes the client to the "chat" topic, POST
// /chat publishes a message to everyone in it. A browser that reconnects
// sends the ID of the last message it received, and gets the ones it missed
// first; one whose ID the history no longer covers is told to reload.
func Example() {
	b, err := broker.New(broker.Config{HistorySize: 500})
	if err != nil {
		panic(err)
	}

	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		if err := b.Subscribe(s, "chat"); errors.Is(err, broker.ErrGap) {
			// The client missed messages the history no longer has:
			// tell it to reload the room (it stays subscribed).
			return s.Send(event.Event{Type: "reload", Data: ""})
		} else if err != nil {
			return err
		}
		return nil // the stream goes on after the handler returns
	})
	e.POST("/chat", func(c echo.Context) error {
		id, err := b.Publish(c.Request().Context(), "chat", event.Event{Type: "message", Data: c.FormValue("text")})
		if err != nil {
			return err
		}
		return c.String(http.StatusCreated, id)
	})
	srv := httptest.NewServer(e)
	client := srv.Client()

	post := func(text string) string {
		resp, err := client.PostForm(srv.URL+"/chat", url.Values{"text": {text}})
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var id string
		fmt.Fscan(resp.Body, &id)
		return id
	}
	listen := func(lastEventID string) (*event.Decoder, func()) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/events", nil)
		req.Header.Set("Last-Event-ID", lastEventID) // as a reconnecting browser does
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		return event.NewDecoder(resp.Body), func() { resp.Body.Close() }
	}
	show := func(dec *event.Decoder) {
		ev, err := dec.Decode()
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: %q\n", ev.Type, ev.Data)
	}

	first := post("hello")
	post("anyone here?")

	// A client that saw "hello" reconnects: it gets what it missed, then
	// live messages.
	dec, disconnect := listen(first)
	show(dec)
	post("welcome back")
	show(dec)
	disconnect()

	// A client whose Last-Event-ID the history does not know.
	dec, disconnect = listen("from-another-server")
	show(dec)
	disconnect()

	b.Close() // ends every stream; browsers would reconnect
	srv.Close()
	// Output:
	// message: "anyone here?"
	// message: "welcome back"
	// reload: ""
}
