// Command notifications is a notification service in the shape people
// deploy: a stream per signed-in user carrying their own notifications and
// the broadcasts, authenticated by an HttpOnly cookie holding a JWT
// (echo-jwt), readable from one other origin through CORS with
// credentials, with a cap of streams per user, and streams that end when
// their token expires.
//
//	NOTIFY_SECRET=change-me go run ./examples/notifications -origin http://localhost:3000
//
// With -redis, several instances behind a load balancer share the topics:
//
//	go run ./examples/notifications -addr :8080 -redis redis://127.0.0.1:6379/0
//	go run ./examples/notifications -addr :8081 -redis redis://127.0.0.1:6379/0
//
// and with -redis-interest each reads from Redis only the events of the
// users whose streams it holds (and the broadcasts), not every user's.
//
// Behind nginx, give their upstream's servers max_fails=0
// (docs/deploying.md says why). TestPageResumesWhenAnInstanceDies runs two
// such instances behind nginx with the page below in Chromium, kills the
// page's instance (kill -9, SIGTERM, or both and one restarted), and counts
// what the page showed: every accepted notification once, in order.
// TestPageRenewsItsSession runs the page with 3 s tokens: it renews its
// session in time, and the browser resumes each stream that ends at its
// token's expiry.
//
// With -page, it also serves page/, a page to copy, on the address given,
// whose origin must be -origin's: it signs in, shows the notifications, keeps its token fresh, and re-creates its
// EventSource with ?lastEventID= when the browser gives up on it (a 502 from
// the proxy while no instance is up, say):
//
//	NOTIFY_SECRET=change-me go run ./examples/notifications -page localhost:3000
//	open http://localhost:3000/?api=http://localhost:8080
//
// From a shell:
//
//	curl -c jar -d user=ada localhost:8080/login
//	curl -b jar -N localhost:8080/events &
//	curl -b jar -d to=ada -d text=hello localhost:8080/notify
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker/redisbroker"
)

// page is the example page, served by -page.
//
//go:embed page
var page embed.FS

// pageFiles is page/ at its root.
func pageFiles() fs.FS {
	sub, err := fs.Sub(page, "page")
	if err != nil {
		panic(err)
	}
	return sub
}

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	origin := flag.String("origin", "http://localhost:3000", "the origin of the pages allowed to read the API with their cookie")
	ttl := flag.Duration("ttl", 15*time.Minute, "how long a session token is valid")
	perUser := flag.Int("streams-per-user", 5, "streams one user may hold open at once")
	redisURL := flag.String("redis", "", "share the topics through this Redis, e.g. redis://127.0.0.1:6379/0")
	pageAddr := flag.String("page", "", "also serve the example page on this address, e.g. localhost:3000 (its origin must be -origin)")
	interest := flag.Bool("redis-interest", false, "with -redis, each instance reads from Redis only the events of its own streams' topics (redisbroker.DeliverInterest), not every user's")
	flag.Parse()

	secret := os.Getenv("NOTIFY_SECRET")
	if secret == "" {
		log.Fatal("set NOTIFY_SECRET to the key session tokens are signed with (the same on every instance)")
	}
	cfg := config{
		Secret: []byte(secret), Origin: *origin, TokenTTL: *ttl, StreamsPerUser: *perUser,
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	if *redisURL != "" {
		opts, err := redis.ParseURL(*redisURL)
		if err != nil {
			log.Fatalf("-redis: %v", err)
		}
		client := redis.NewClient(opts)
		defer client.Close()
		rcfg := redisbroker.Config{}
		if *interest {
			rcfg.Delivery = redisbroker.DeliverInterest
		}
		backend, err := redisbroker.New(client, rcfg)
		if err != nil {
			log.Fatal(err)
		}
		cfg.Backend = backend
	}
	e, b, err := newApp(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close() // after the server's shutdown

	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	servers := []*http.Server{srv}
	serve(srv, *addr, "listening on http://%s")
	if *pageAddr != "" {
		pageSrv := &http.Server{Handler: http.FileServerFS(pageFiles()), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, pageSrv)
		serve(pageSrv, *pageAddr, "the page on http://%s")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutdown); err != nil {
			log.Print(err)
		}
	}
}

// serve listens on addr, says where with format, and serves srv on a
// goroutine of its own. With a port of 0, it tells the one it got.
func serve(srv *http.Server, addr, format string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf(format, ln.Addr())
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
}
