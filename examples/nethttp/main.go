// Command nethttp is the koa-sse-stream example on the standard library's
// http.ServeMux, with no web framework: every client of GET /events
// receives the time each second for five seconds, then the close event;
// GET / without "?sse" is an ordinary page.
//
//	go run ./examples/nethttp -addr localhost:8080
//	curl -N 'localhost:8080/events?sse'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: newMux()}
	fmt.Printf("listening on http://%s/events?sse\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown) // every stream gets the close event
}

// newMux returns the example's routes.
func newMux() *http.ServeMux {
	// koa-sse-stream's options: sse({maxClients: 5000, pingInterval: 30000,
	// matchQuery: "sse"}).
	streams, err := sse.New(sse.Config{MaxClients: 5000, PingInterval: 30 * time.Second, MatchQuery: "sse"})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		s, err := streams.Open(w, r)
		if errors.Is(err, sse.ErrNotRequested) {
			fmt.Fprintln(w, "add ?sse to the URL for the event stream")
			return
		} else if err != nil {
			streams.Error(w, r, err) // 503 or a retry hint over MaxClients, and so on
			return
		}
		go tick(s)
		s.Wait() // pumps the stream until it ends
	})
	return mux
}

// tick sends the time each second for five seconds, then closes the
// stream's channel: the client receives the close event.
func tick(s *sse.Stream) {
	defer close(s.C)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for i := range 5 {
		if s.Send(event.Event{ID: fmt.Sprint(i), Data: time.Now().Format(time.RFC3339)}) != nil {
			return // the client is gone
		}
		select {
		case <-t.C:
		case <-s.Context().Done():
			return
		}
	}
}
