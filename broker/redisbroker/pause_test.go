package redisbroker

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker/brokertest"
	"github.com/echosse/echo-sse/internal/redistest"
)

// clientTimeout is the read and write timeout of the publishing client in
// the pause tests; go-redis retries a command that timed out, up to 3
// times (its default MaxRetries).
const clientTimeout = 250 * time.Millisecond

// The proxy's faults (pause for 2 and 10 times the client's timeout, cut,
// reset, slow) are cases of the conformance suite (TestConformance/Faults).

// Redis itself stops (SIGSTOP: a stalled VM) for 2 and 10 times the
// client's timeout, then goes on (SIGCONT) and runs every request that
// waited, those the clients gave up on included.
func TestFaultRedisStopped(t *testing.T) { inEachMode(t, testFaultRedisStopped) }

func testFaultRedisStopped(t *testing.T, mode Delivery) {
	for _, n := range []int{2, 10} {
		t.Run(fmt.Sprintf("%dx", n), func(t *testing.T) {
			srv, err := redistest.Start(t.TempDir(), false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Stop() })
			pause := func() {
				if err := srv.Pause(); err != nil {
					t.Error(err)
				}
			}
			resume := func() {
				if err := srv.Resume(); err != nil {
					t.Error(err)
				}
			}
			faultRun(t, mode, fmt.Sprintf("SIGSTOP %dx timeout", n), srv.Addr, srv.Addr,
				time.Duration(n)*clientTimeout, pause, resume)
		})
	}
}

// faultRun publishes from 4 goroutines through the Redis at pubAddr
// (two with no deadline, two with a deadline of 1 s per Publish), while
// a fault lasts d (from begin to end), and counts what Publish said and what a
// subscriber on the publishing instance and one on an instance talking to
// directAddr received.
func faultRun(t *testing.T, mode Delivery, fault, pubAddr, directAddr string, d time.Duration, begin, end func()) {
	pubClient := redis.NewClient(&redis.Options{Addr: pubAddr, ReadTimeout: clientTimeout, WriteTimeout: clientTimeout})
	t.Cleanup(func() { pubClient.Close() })
	direct := newClient(t, directAddr)
	cfg := Config{
		Delivery:       mode,
		Prefix:         testPrefix(t),
		PublishTimeout: 2 * time.Second,
		MinBackoff:     20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}
	a, b := newInstance(t, pubClient, cfg), newInstance(t, direct, cfg)
	subs := []*receiver{record(t, "on the publisher", a, "news"), record(t, "on another instance", b, "news")}

	o := brokertest.NewOutcomes()
	brokertest.PublishDuring(a.b, "news", o, settleAfter(cfg), func() {
		begin()
		time.Sleep(d)
		end()
	})
	for _, r := range subs {
		eventually(t, r.name+" to receive what was accepted", func() bool { return r.has(o) })
	}
	time.Sleep(300 * time.Millisecond) // for anything received twice
	st := a.backend.Stats()
	report(t, fault, o, fmt.Sprintf(" | publisher's stats %+v", st), subs...)
}

// settleAfter is how long after a Publish call of unknown outcome Redis
// may still store its event: its deadline, and a margin for the estimate
// of the server's clock.
func settleAfter(cfg Config) time.Duration { return cfg.PublishTimeout + 100*time.Millisecond }
