package echosse_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// The handler opens a stream and leaves it to a goroutine, which sends on
// the stream's channel and closes it to end the stream with the close event.
func ExampleOpen() {
	e := echo.New()
	e.Use(middleware.Gzip()) // compression, if any, goes in front
	e.Use(echosse.Middleware(echosse.Config{}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
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

	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	fmt.Print(string(b))
	// Output:
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
	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{MatchQuery: "sse"}))
	e.GET("/feed", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if errors.Is(err, echosse.ErrNotRequested) {
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
		d := event.NewDecoder(res.Body)
		if res.Header.Get("Content-Type") != "text/event-stream" {
			b, _ := io.ReadAll(res.Body)
			fmt.Print("plain: ", string(b))
		}
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

// A handler that wants to know why its stream ended waits on Done.
func ExampleStream_Err() {
	ended := make(chan error, 1)
	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		go func() {
			<-s.Done()
			ended <- s.Err()
		}()
		close(s.C)
		return nil
	})
	srv := httptest.NewServer(e)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	fmt.Println(<-ended)
	// Output: echosse: stream closed by the sender
}

// A handler that streams from elsewhere returns at once and counts its
// stream out with AfterFunc: no goroutine waits for the stream meanwhile
// (the request's own goroutine pumps it once the handler has returned).
func ExampleStream_AfterFunc() {
	var mu sync.Mutex
	online := 0
	left := make(chan struct{}, 1)
	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		mu.Lock()
		online++
		mu.Unlock()
		s.AfterFunc(func() {
			mu.Lock()
			online--
			mu.Unlock()
			left <- struct{}{}
		})
		s.Send(event.Event{Data: "welcome"}) // buffered: the pump writes it once the handler returns
		return nil
	})
	srv := httptest.NewServer(e)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		panic(err)
	}
	line, _ := bufio.NewReader(res.Body).ReadString('\n')
	mu.Lock()
	fmt.Printf("%sonline: %d\n", line, online)
	mu.Unlock()
	res.Body.Close() // the client leaves
	<-left
	mu.Lock()
	fmt.Println("online:", online)
	mu.Unlock()
	// Output:
	// data: welcome
	// online: 1
	// online: 0
}

// With Compress the streams compress themselves and an idle one keeps a few
// KB instead of a whole compressor; Echo's Gzip still compresses the other
// routes and skips the stream route, so that nothing is compressed twice.
// Go's client asks for gzip and decompresses the stream as it arrives.
func ExampleConfig_compress() {
	e := echo.New()
	e.Use(middleware.GzipWithConfig(middleware.GzipConfig{
		Skipper: func(c echo.Context) bool { return c.Path() == "/events" },
	}))
	e.Use(echosse.Middleware(echosse.Config{Compress: true}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		go func() {
			defer close(s.C)
			s.Send(event.Event{Type: "price", Data: map[string]float64{"ECHO": 17.5}})
		}()
		return nil
	})
	srv := httptest.NewServer(e)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	fmt.Println("sent gzip'd:", res.Uncompressed)
	fmt.Print(string(b))
	// Output:
	// sent gzip'd: true
	// event: price
	// data: {"ECHO":17.5}
	//
	// event: close
	// data:
}
