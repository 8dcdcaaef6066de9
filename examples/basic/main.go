// Command basic is the smallest echosse server: every client of GET /events
// receives "a notice", then the close event, behind Echo's Gzip middleware.
//
//	go run ./examples/basic -addr localhost:8080
//	curl -N localhost:8080/events
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

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	flag.Parse()

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Gzip()) // compression first, streams after
	e.Use(echosse.Middleware(echosse.Config{MaxClients: 5000, PingInterval: 30 * time.Second}))

	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		s.C <- event.Event{Data: "a notice"}
		close(s.C) // the client receives the close event, and the response ends
		return nil
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s/events\n", ln.Addr())
	e.Listener = ln

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		if err := e.Start(""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.Shutdown(shutdown)
}
