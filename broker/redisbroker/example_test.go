package redisbroker_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/redisbroker"
	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// Two processes of one app share a Redis: a browser connected to one of
// them receives what is published through the other, with the same ID.
// (The tests set REDIS_URL to the Redis they start.)
func Example() {
	opts, err := redis.ParseURL(os.Getenv("REDIS_URL")) // redis://localhost:6379/0, say
	if err != nil {
		log.Fatal(err)
	}
	client := redis.NewClient(opts)
	defer client.Close() // after the brokers

	// What each process does at start: its broker on the Redis backend,
	// with the same Prefix, and its handlers, unchanged.
	newProcess := func() (*broker.Broker, *httptest.Server) {
		backend, err := redisbroker.New(client, redisbroker.Config{Prefix: "example"})
		if err != nil {
			log.Fatal(err)
		}
		b, err := broker.New(broker.Config{Backend: backend})
		if err != nil {
			log.Fatal(err) // Redis is unreachable
		}
		e := echo.New()
		e.Use(echosse.Middleware(echosse.Config{}))
		e.GET("/events", func(c echo.Context) error {
			s, err := echosse.Open(c)
			if err != nil {
				return err
			}
			return b.Subscribe(s, "chat")
		})
		return b, httptest.NewServer(e)
	}
	one, srvOne := newProcess()
	two, srvTwo := newProcess()

	// A browser on process two.
	resp, err := http.Get(srvTwo.URL + "/events")
	if err != nil {
		log.Fatal(err)
	}
	for two.Stats().Subscribers == 0 { // until its handler has subscribed
		time.Sleep(time.Millisecond)
	}

	// Published through process one.
	id, err := one.Publish(context.Background(), "chat", event.Event{Data: "hello from one"})
	if err != nil {
		log.Fatal(err) // Redis is unreachable: nothing was published
	}
	ev, err := event.NewDecoder(resp.Body).Decode()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q, same ID: %v\n", ev.Data, ev.ID == id)

	resp.Body.Close()
	one.Close()
	two.Close()
	srvOne.Close()
	srvTwo.Close()
	// Output:
	// "hello from one", same ID: true
}
