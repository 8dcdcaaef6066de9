package echosse5_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/echosse/echo-sse/echosse5"
	"github.com/echosse/echo-sse/event"
)

// The handler opens a stream and leaves it to a goroutine, which sends on
// the stream's channel and closes it to end the stream with the close
// event. Echo's Gzip goes in front; its MinLength does not hold events
// back.
func ExampleOpen() {
	e := echo.New()
	e.Use(middleware.GzipWithConfig(middleware.GzipConfig{MinLength: 1024}))
	e.Use(echosse5.Middleware(echosse5.Config{}))
	e.GET("/events", func(c *echo.Context) error {
		s, err := echosse5.Open(c)
		if err != nil {
			return err
		}
		go func() {
			defer close(s.C) // ends the stream with the close event
			s.Send(event.Event{Data: "a notice"})
			s.Send(event.Event{Type: "price", ID: "1", Data: map[string]float64{"ECHO": 17.5}})
		}()
		return nil
	})
	srv := httptest.NewServer(e)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/events") // asks for gzip, and decompresses
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	fmt.Println("sent gzip'd:", res.Uncompressed)
	fmt.Print(string(b))
	// Output:
	// sent gzip'd: true
	// data: a notice
	//
	// event: price
	// id: 1
	// data: {"ECHO":17.5}
	//
	// event: close
	// data:
}

// With MatchQuery set, one route serves both a stream and an ordinary
// answer: Open returns ErrNotRequested when the query key is missing.
func ExampleConfig_matchQuery() {
	e := echo.NewWithConfig(echo.Config{Logger: slog.New(slog.DiscardHandler)})
	e.Use(echosse5.Middleware(echosse5.Config{MatchQuery: "sse"}))
	e.GET("/feed", func(c *echo.Context) error {
		s, err := echosse5.Open(c)
		if errors.Is(err, echosse5.ErrNotRequested) {
			return c.String(http.StatusOK, "latest: 17.5\n")
		}
		if err != nil {
			return err
		}
		go func() {
			defer close(s.C)
			s.Send(event.Event{Data: "17.5"})
		}()
		return nil
	})
	srv := httptest.NewServer(e)
	defer srv.Close()

	for _, url := range []string{srv.URL + "/feed", srv.URL + "/feed?sse"} {
		res, err := http.Get(url)
		if err != nil {
			panic(err)
		}
		if res.Header.Get("Content-Type") != "text/event-stream" {
			b, _ := io.ReadAll(res.Body)
			fmt.Print("plain: ", string(b))
		}
		d := event.NewDecoder(res.Body)
		for {
			ev, err := d.Decode()
			if err != nil {
				break
			}
			fmt.Printf("event %s: %q\n", ev.Type, ev.Data)
		}
		res.Body.Close()
	}
	// Output:
	// plain: latest: 17.5
	// event message: "17.5"
	// event close: ""
}
