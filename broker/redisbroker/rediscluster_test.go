package redisbroker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/redistest"
)

// startCluster starts a Redis Cluster of three masters and three replicas
// for the test, stopped when it ends.
func startCluster(t testing.TB) *redistest.Cluster {
	t.Helper()
	c, err := redistest.StartCluster(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// newClusterClient returns a client of the cluster, closed when the test
// ends.
func newClusterClient(t testing.TB, c *redistest.Cluster) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// The Redis backend on a Redis Cluster passes the conformance suite but
// its fault cases: those put a proxy in front of one server, and a
// cluster client follows the addresses the nodes announce, not the
// proxy's. The failover test below is the cluster's fault case.
func TestClusterConformance(t *testing.T) { inEachMode(t, testClusterConformance) }

func testClusterConformance(t *testing.T, mode Delivery) {
	c := startCluster(t)
	cfg := Config{Delivery: mode, PublishTimeout: 2 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	brokertest.Run(t, brokertest.Harness{
		New: func(t testing.TB, o brokertest.Options) broker.Config {
			co := cfg
			co.Prefix, co.HistorySize, co.HistoryAge = o.Scope, o.HistorySize, o.HistoryAge
			co.ErrorHandler = func(error) {}
			b, err := New(newClusterClient(t, c), co)
			if err != nil {
				t.Fatal(err)
			}
			return broker.Config{Backend: b}
		},
		Shared: true,
		Settle: settleAfter(cfg),
		Lose: func(t testing.TB, scope string) {
			ctx := context.Background()
			master, err := newClusterClient(t, c).MasterForKey(ctx, "{"+scope+"}")
			if err != nil {
				t.Fatal(err)
			}
			keys, err := master.Keys(ctx, "{"+scope+"}:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) > 0 {
				if err := master.Del(ctx, keys...).Err(); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}

// slotOwner returns the address of the master of prefix's hash slot and of
// its replica, as the cluster says.
func slotOwner(t testing.TB, c *redistest.Cluster, prefix string) (master, replica string) {
	t.Helper()
	master, replica, nodes, err := slotNodes(c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if master == "" || replica == "" {
		t.Fatalf("no master and replica of {%s}'s slot in:\n%s", prefix, nodes)
	}
	return master, replica
}

// slotNodes is slotOwner, which returns what it found (either may be
// empty) and CLUSTER NODES.
func slotNodes(c *redistest.Cluster, prefix string) (master, replica, nodes string, err error) {
	// Ask the first node that answers: one may have been killed.
	var out, addr string
	for _, s := range c.Servers {
		if out, err = redistest.CLI(s.Addr, "CLUSTER", "KEYSLOT", "{"+prefix+"}"); err == nil {
			addr = s.Addr
			break
		}
	}
	if err != nil {
		return "", "", "", err
	}
	slot, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return "", "", "", err
	}
	nodes, err = redistest.CLI(addr, "CLUSTER", "NODES")
	if err != nil {
		return "", "", "", err
	}
	// <id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
	var masterID string
	lines := strings.Split(strings.TrimSpace(nodes), "\n")
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 8 || !strings.Contains(f[2], "master") {
			continue
		}
		for _, r := range f[8:] {
			lo, hi, _ := strings.Cut(r, "-")
			if hi == "" {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && a <= slot && slot <= b {
				masterID = f[0]
				master, _, _ = strings.Cut(f[1], "@")
			}
		}
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 4 && f[3] == masterID && strings.Contains(f[2], "slave") {
			replica, _, _ = strings.Cut(f[1], "@")
		}
	}
	return master, replica, nodes, nil
}

// subscriber reads topic at in as a browser would, reconnecting with its
// Last-Event-ID whenever the stream ends, until stop; it counts what it
// receives by data and whether it was told of a gap.
type subscriber struct {
	name       string
	mu         sync.Mutex
	received   map[string]int
	told       bool
	reconnects int
	done       chan struct{}
}

func subscribe(in *instance, name, topic string, stop <-chan struct{}) *subscriber {
	s := &subscriber{name: name, received: map[string]int{}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		last := ""
		for first := true; ; first = false {
			select {
			case <-stop:
				return
			default:
			}
			if !first {
				s.mu.Lock()
				s.reconnects++
				s.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
			sess, err := in.open(last, topic)
			if err != nil {
				continue
			}
			go func() {
				select {
				case <-stop:
				case <-s.done:
				}
				sess.close()
			}()
			for {
				ev, err := sess.dec.Decode()
				if err != nil {
					break
				}
				sess.seen = true
				s.mu.Lock()
				if ev.Type == "gap" {
					s.told = true
				} else if d, ok := ev.Data.(string); ok {
					s.received[d]++
				}
				s.mu.Unlock()
			}
			last = sess.lastID()
			sess.close()
		}
	}()
	return s
}

func (s *subscriber) snapshot() (map[string]int, bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.received))
	for d, n := range s.received {
		m[d] = n
	}
	return m, s.told, s.reconnects
}

// The master of the slot fails over to its replica while two instances
// publish and subscribers on both read: no accepted event is lost
// silently, none is delivered twice, and the streams go on with the new
// master. The failover is forced on the replica (CLUSTER FAILOVER FORCE),
// or the cluster makes it when the master is killed (SIGKILL) and its node
// timeout (1 s) passes.
func TestClusterFailover(t *testing.T) { inEachMode(t, testClusterFailover) }

func testClusterFailover(t *testing.T, mode Delivery) {
	for _, how := range []string{"FAILOVER FORCE", "kill -9"} {
		t.Run(strings.ReplaceAll(how, " ", "_"), func(t *testing.T) { clusterFailover(t, mode, how) })
	}
}

func clusterFailover(t *testing.T, mode Delivery, how string) {
	if how == "kill -9" {
		// Runs after the clients are closed: a go-redis pool that was
		// redialling the dead node looks whether it is closed once a
		// second; give its goroutine that second to end.
		t.Cleanup(func() { time.Sleep(1500 * time.Millisecond) })
	}
	c := startCluster(t)
	cfg := Config{Delivery: mode, Prefix: testPrefix(t), PublishTimeout: 2 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	a := newInstance(t, newClusterClient(t, c), cfg)
	b := newInstance(t, newClusterClient(t, c), cfg)
	master, replica := slotOwner(t, c, cfg.Prefix)

	stop := make(chan struct{})
	var subs []*subscriber
	for _, in := range []*instance{a, b} {
		name := map[*instance]string{a: "A", b: "B"}[in]
		for i := range 2 {
			subs = append(subs, subscribe(in, fmt.Sprintf("%s%d", name, i), "news", stop))
		}
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		for _, s := range subs {
			<-s.done
		}
	}()
	eventually(t, "the subscriptions", func() bool {
		return a.b.Stats().Subscribers == 2 && b.b.Stats().Subscribers == 2
	})

	out := brokertest.NewOutcomes()
	var quit atomic.Bool
	var wg sync.WaitGroup
	for p, in := range []*instance{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !quit.Load(); i++ {
				data := fmt.Sprintf("%d-%d", p, i)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				id, err := in.b.Publish(ctx, "news", event.Event{Data: data})
				cancel()
				out.Record(data, id, err)
				time.Sleep(500 * time.Microsecond)
			}
		}()
	}
	time.Sleep(time.Second)
	before, _, _ := out.Counts()
	start := time.Now()
	if how == "kill -9" {
		for _, s := range c.Servers {
			if s.Addr == master {
				s.Kill()
			}
		}
	} else if _, err := redistest.CLI(replica, "CLUSTER", "FAILOVER", "FORCE"); err != nil {
		t.Fatal(err)
	}
	if m := slotOwnerWait(t, c, cfg.Prefix, replica); m != replica {
		_, _, nodes, _ := slotNodes(c, cfg.Prefix)
		t.Fatalf("the slot's master is %s after the failover, not %s:\n%s", m, replica, nodes)
	}
	switched := time.Since(start)
	time.Sleep(1500 * time.Millisecond)
	quit.Store(true)
	wg.Wait()
	accepted, failed, unknown := out.Counts()
	after := accepted - before

	// Streams go on: one more event reaches every subscriber.
	id, err := a.b.Publish(context.Background(), "news", event.Event{Data: "last"})
	out.Record("last", id, err)
	if err != nil {
		t.Fatalf("publishing after the failover: %v", err)
	}
	time.Sleep(settleAfter(cfg))
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range subs {
		for {
			got, told, _ := s.snapshot()
			if out.ReceivedAll(got) || told && got["last"] > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	close(stop)
	for _, s := range subs {
		<-s.done
	}
	if failed+unknown > 0 {
		t.Logf("Publish errors:\n%s", out.Errors(5))
	}
	extra := fmt.Sprintf(" | old master %s, new %s in %v; accepted %d before, %d after", master, replica, switched.Round(time.Millisecond), before, after)
	for _, s := range subs {
		got, told, reconnects := s.snapshot()
		f := out.Count(got, told)
		f.Reconnects = reconnects
		if told {
			f.Gaps = 1 // at least one: the subscriber records whether, not how often
		}
		brokertest.Report(t, "cluster "+how, s.name, f, extra)
		if got["last"] != 1 {
			t.Errorf("%s: the event published after the failover arrived %d times, not once", s.name, got["last"])
		}
	}
	if after == 0 {
		t.Error("nothing was accepted after the failover")
	}
}

// slotOwnerWait waits up to 10 s until a node says want is the master of
// prefix's slot, and returns the master then.
func slotOwnerWait(t testing.TB, c *redistest.Cluster, prefix, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, _, _, err := slotNodes(c, prefix)
		if m == want || time.Now().After(deadline) {
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
}
