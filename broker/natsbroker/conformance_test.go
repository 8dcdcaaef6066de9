package natsbroker_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
	"github.com/echosse/echo-sse/broker/natsbroker"
	"github.com/echosse/echo-sse/internal/natstest"
)

// startServer starts a nats-server with JetStream, stopped when the test
// ends.
func startServer(t testing.TB) *natstest.Server {
	t.Helper()
	srv, err := natstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// connect connects to url, closed when the test ends.
func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newBackend opens a backend on nc with cfg, closed when the test ends.
func newBackend(t testing.TB, nc *nats.Conn, cfg natsbroker.Config) *natsbroker.Backend {
	t.Helper()
	b, err := natsbroker.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// The backend on one JetStream server passes the conformance suite, the
// fault cases through a TCP proxy included: with its live consumer
// filtered on the topics watched, and taking every topic (more watched
// than MaxFilterSubjects, here 1).
func TestConformance(t *testing.T) {
	srv := startServer(t)
	for _, mode := range []struct {
		name       string
		maxFilters int
	}{{"filtered", 0}, {"unfiltered", 1}} {
		t.Run(mode.name, func(t *testing.T) {
			brokertest.Run(t, brokertest.Harness{
				New: func(t testing.TB, o brokertest.Options) broker.Config {
					var opts []nats.Option
					if o.Timeout > 0 {
						opts = append(opts, nats.Timeout(o.Timeout), nats.ReconnectWait(o.Timeout/2), nats.MaxReconnects(-1))
					}
					nc := connect(t, "nats://"+o.Addr, opts...)
					cfg := natsbroker.Config{
						Stream:            strings.ToUpper(strings.NewReplacer("-", "_").Replace(o.Scope)),
						Subject:           strings.NewReplacer("-", "_").Replace(o.Scope),
						HistorySize:       o.HistorySize,
						HistoryAge:        o.HistoryAge,
						MaxFilterSubjects: mode.maxFilters,
						ErrorHandler:      func(err error) { t.Logf("natsbroker: %v", err) },
					}
					if o.Timeout > 0 {
						cfg.RequestTimeout = o.Timeout
						cfg.PublishTimeout = 2 * o.Timeout * 10
					}
					b, err := natsbroker.New(nc, cfg)
					if err != nil {
						t.Fatal(err)
					}
					return broker.Config{Backend: b}
				},
				Addr:   srv.Addr,
				Shared: true,
			})
		})
	}
}
