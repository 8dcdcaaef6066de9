// Command chat is a live chat room in the browser, the main demo of echosse.
//
// Every open page receives each message posted, at once, through the
// browser's EventSource, along with the number of pages open. A page that
// loses its connection reconnects with Last-Event-ID and receives what it
// missed, exactly once; when the server stops (Ctrl-C), every page receives
// the close event and stops too.
//
//	go run ./examples/chat -addr localhost:8080
//	open http://localhost:8080/
//
// With -redis, the room lives in Redis, and every server given the same
// Redis shares it (see README.md):
//
//	go run ./examples/chat -addr localhost:8080 -redis redis://127.0.0.1:6379/0
//	go run ./examples/chat -addr localhost:8081 -redis redis://127.0.0.1:6379/0
//
// With -echo=5 the same room runs on Echo v5, through echosse5:
//
//	go run ./examples/chat -addr localhost:8080 -echo=5
//
// The HTTP surface is plain, so it can be scripted (see README.md):
//
//	curl -N localhost:8080/events
//	curl -d name=Ada -d text=hello localhost:8080/messages
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	retry := flag.Duration("retry", 2*time.Second, "how long a page waits before it reconnects")
	redisURL := flag.String("redis", "", "keep the room in this Redis, shared with every server given it, e.g. redis://127.0.0.1:6379/0")
	compress := flag.Bool("compress", false, "let the streams compress themselves (low memory per idle page) instead of Echo's Gzip")
	echoVersion := flag.Int("echo", 4, "the major version of Echo to run on: 4 (echosse) or 5 (echosse5)")
	takeover := flag.Bool("takeover", false, "let each stream take its HTTP/1 connection over from net/http (lightest idle page; with -compress)")
	flag.Parse()

	cfg := config{Retry: *retry, Log: os.Stderr, Compress: *compress, Takeover: *takeover, Echo: *echoVersion}
	if *redisURL != "" {
		opts, err := redis.ParseURL(*redisURL)
		if err != nil {
			log.Fatalf("-redis: %v", err)
		}
		cfg.Redis = redis.NewClient(opts)
		defer cfg.Redis.Close() // after the server's shutdown
	}
	srv, err := newServer(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("chat room on http://%s/\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.serve(ln) }()
	select {
	case err := <-served:
		log.Fatal(err)
	case <-ctx.Done():
	}
	stop() // a second Ctrl-C kills the process

	fmt.Println("shutting down: every page receives the close event")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.shutdown(shutdown); err != nil {
		log.Print(err)
	}
}
