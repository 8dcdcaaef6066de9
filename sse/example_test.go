package sse_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// A stream on the standard library's ServeMux: two events, then the close
// event, and the response ends.
func Example() {
	streams, err := sse.New(sse.Config{})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events", streams.Handler(func(s *sse.Stream, r *http.Request) error {
		go func() {
			defer close(s.C) // ends the stream with the close event
			for _, msg := range []string{"hello", "world"} {
				if s.Send(event.Event{Data: msg}) != nil {
					return // the client is gone
				}
			}
		}()
		return nil
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	d := event.NewDecoder(res.Body)
	for {
		ev, err := d.Decode()
		if err != nil {
			break
		}
		fmt.Printf("%s: %q\n", ev.Type, ev.Data)
	}
	// Output:
	// message: "hello"
	// message: "world"
	// close: ""
}

// Open, Error and Wait for a handler that also serves ordinary requests:
// with MatchQuery, only requests with "?stream" get a stream.
func ExampleServer_Open() {
	streams, err := sse.New(sse.Config{MatchQuery: "stream"})
	if err != nil {
		panic(err)
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		s, err := streams.Open(w, r)
		if err == nil {
			go func() {
				s.Send(event.Event{Data: "live"})
				close(s.C)
			}()
			s.Wait() // before the handler returns
			return
		}
		if errors.Is(err, sse.ErrNotRequested) {
			fmt.Fprint(w, "an ordinary page")
			return
		}
		streams.Error(w, r, err)
	}
	srv := httptest.NewServer(http.HandlerFunc(handler))
	defer srv.Close()

	for _, url := range []string{srv.URL + "/", srv.URL + "/?stream"} {
		res, err := http.Get(url)
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Printf("%s %q\n", res.Header.Get("Content-Type"), b)
	}
	// Output:
	// text/plain; charset=utf-8 "an ordinary page"
	// text/event-stream "data: live\n\nevent: close\ndata:\n\n"
}

// Counters make the counts of a Server reachable where the Server is not,
// as behind an Echo door (echosse.Config.Counters): here one stream, two
// events, closed by its sender.
func ExampleCounters() {
	counters := new(sse.Counters)
	streams, err := sse.New(sse.Config{Counters: counters})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(streams.Handler(func(s *sse.Stream, r *http.Request) error {
		go func() {
			s.Send(event.Event{Data: "hello"})
			s.Send(event.Event{Data: "world"})
			close(s.C)
		}()
		return nil
	}))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()

	st := counters.Stats()
	fmt.Println("opened:", st.Opened, "open:", st.Open, "events:", st.Events, "bytes:", st.Bytes)
	for r := range sse.NumEndReasons {
		if n := st.Ended[r]; n > 0 {
			fmt.Printf("ended %s: %d\n", r, n)
		}
	}
	// Output:
	// opened: 1 open: 0 events: 2 bytes: 46
	// ended closed: 1
}

// ExampleConfig_takeover serves streams that leave net/http once they have
// opened: over HTTP/1 each takes its connection over and writes to it
// directly, with the response delimited by the connection's close. Over
// HTTP/2, or behind a middleware that wraps the writer, streams stay on
// net/http's path.
func ExampleConfig_takeover() {
	streams, err := sse.New(sse.Config{Takeover: true})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(streams.Handler(func(s *sse.Stream, r *http.Request) error {
		s.C <- event.Event{Data: "hello"}
		close(s.C)
		return nil
	}))
	defer ts.Close()

	res, err := http.Get(ts.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.Close, res.TransferEncoding == nil) // delimited by the close, not chunked
	fmt.Print(string(body))
	// Output:
	// true true
	// data: hello
	//
	// event: close
	// data:
}
