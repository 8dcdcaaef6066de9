package natsbroker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
	"github.com/echosse/echo-sse/broker/natsbroker"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/natstest"
)

// A 3-node JetStream cluster, the stream replicated 3 times, two
// instances (one publishing) with a subscriber each: the stream's leader
// is killed (SIGKILL) while events are published. Nothing acknowledged is
// lost, nothing is delivered twice, and the streams on both instances go
// on; the figures say how long delivery paused.
func TestClusterLeaderKill(t *testing.T) {
	servers, err := natstest.StartCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Stop()
		}
	})
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.URL
	}
	cfg := natsbroker.Config{Stream: "KILL", Subject: "kill", Replicas: 3, PublishTimeout: 5 * time.Second,
		ErrorHandler: func(err error) { t.Logf("natsbroker: %v", err) }}
	var ins []*brokertest.Instance
	var backends []*natsbroker.Backend
	for i := range 2 {
		// Each instance first talks to a server of its own, and to the
		// others once that one is gone.
		order := append(append([]string(nil), urls[i:]...), urls[:i]...)
		nc := connect(t, strings.Join(order, ","), nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		var b *natsbroker.Backend
		// StartCluster waits for the meta leader; on a loaded machine
		// JetStream can still answer 503 ("temporarily unavailable")
		// for a while, as a CI run once did for 20 s. New is retried.
		deadline := time.Now().Add(time.Minute)
		for attempt := 1; ; attempt++ {
			if b, err = natsbroker.New(nc, cfg); err == nil || time.Now().After(deadline) {
				break
			}
			t.Logf("instance %d: New, attempt %d: %v", i, attempt, err)
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		backends = append(backends, b)
		ins = append(ins, brokertest.StartInstance(t, broker.Config{Backend: b}))
	}
	var subs []*brokertest.Browser
	var names []string
	for i, in := range ins {
		names = append(names, fmt.Sprintf("on instance %d", i))
		subs = append(subs, in.Browse(t, names[i], "news"))
	}

	js, err := jetstream.New(connect(t, strings.Join(urls, ",")))
	if err != nil {
		t.Fatal(err)
	}
	o := brokertest.NewOutcomes()
	var killedAt time.Time
	var elected time.Duration
	brokertest.PublishDuring(ins[0].B, "news", o, cfg.PublishTimeout+time.Second, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, "KILL")
		if err != nil {
			t.Errorf("stream info: %v", err)
			return
		}
		leader := st.CachedInfo().Cluster.Leader
		for _, s := range servers {
			if s.Name == leader {
				killedAt = time.Now()
				s.Kill()
			}
		}
		// Publishing goes on until the cluster has elected another
		// leader, and a second more.
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := st.Info(ctx)
			cancel()
			if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != leader {
				elected = time.Since(killedAt)
				t.Logf("killed the stream's leader %s; %s took over %v later", leader, info.Cluster.Leader, elected.Round(time.Millisecond))
				break
			}
		}
		time.Sleep(time.Second)
	})
	if elected == 0 {
		t.Fatal("no new leader elected in 30 s")
	}
	if killedAt.IsZero() {
		t.Fatal("the stream's leader was not found")
	}
	for _, r := range subs {
		deadline := time.Now().Add(20 * time.Second)
		for !r.Has(o) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond) // for anything received twice
	for i, r := range subs {
		f := r.Figures(o)
		pause := r.LongestPause(killedAt.Add(-time.Second))
		brokertest.Report(t, "stream leader killed", names[i], f, fmt.Sprintf(" | new leader after %v | delivery paused %v", elected.Round(time.Millisecond), pause.Round(time.Millisecond)))
		if f.MissingTold > 0 {
			t.Errorf("%s: %d acknowledged events missing", names[i], f.MissingTold)
		}
	}
	if msgs := o.Errors(6); msgs != "" {
		t.Logf("errors Publish returned:\n%s", msgs)
	}
	for i, b := range backends {
		t.Logf("instance %d: %+v", i, b.Stats())
	}
	// The streams go on: an event published now reaches both.
	id, err := ins[0].B.Publish(context.Background(), "news", event.Event{Data: "after"})
	if err != nil {
		t.Fatalf("publishing after the failover: %v", err)
	}
	for i, r := range subs {
		deadline := time.Now().Add(10 * time.Second)
		for !r.Got("after") && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if !r.Got("after") {
			t.Errorf("%s: the event published after the failover (%s) did not come", names[i], id)
		}
	}
}
