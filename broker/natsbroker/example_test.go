package natsbroker_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/natsbroker"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/natstest"
)

// Two brokers on one JetStream stream, as two processes would be; Publish
// returns the event's ID, the stream's order in decimal.
func Example() {
	dir, err := os.MkdirTemp("", "natsbroker-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := natstest.Start(dir) // a real nats-server with JetStream
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	var brokers []*broker.Broker
	for range 2 {
		backend, err := natsbroker.New(nc, natsbroker.Config{Stream: "EXAMPLE", Subject: "example"})
		if err != nil {
			log.Fatal(err)
		}
		b, err := broker.New(broker.Config{Backend: backend})
		if err != nil {
			log.Fatal(err)
		}
		defer b.Close()
		brokers = append(brokers, b)
	}
	first, _ := brokers[0].Publish(context.Background(), "news", event.Event{Data: "one"})
	_, _ = brokers[0].Publish(context.Background(), "news", event.Event{Data: "two"})
	fmt.Println(first != "")
	// Output: true
}
