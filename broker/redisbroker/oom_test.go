package redisbroker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker/brokertest"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/internal/redistest"
)

// Redis at its memory limit under maxmemory-policy noeviction refuses to
// grow: Publish fails with Redis's OOM error and stores nothing, the
// history stays as it was, subscribers receive exactly what was accepted,
// and replay still works. With the default config, whose HistoryAge has
// the publish script trim its topic first, the script used to slip past
// Redis's guard (which only looks at a script's first write) and
// publishes were accepted far beyond the limit.
func TestPublishAtMemoryLimit(t *testing.T) { inEachMode(t, testPublishAtMemoryLimit) }

func testPublishAtMemoryLimit(t *testing.T, mode Delivery) {
	const limit = 2 << 20
	srv, err := redistest.Start(t.TempDir(), false, "--maxmemory", strconv.Itoa(limit), "--maxmemory-policy", "noeviction")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	client, admin := newClient(t, srv.Addr), newClient(t, srv.Addr)
	in := newInstance(t, client, Config{Delivery: mode, Prefix: "oom"}) // the defaults
	k := newKeys("oom")
	topics := []string{"a", "b", "c", "d"}
	sub := record(t, "subscriber", in, topics...)
	ctx := context.Background()

	// usedMemory is the memory Redis holds against maxmemory, as its own
	// check counts it: used_memory less what it does not count for
	// eviction (replication and AOF buffers).
	usedMemory := func() int64 {
		t.Helper()
		info, err := admin.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		field := func(name string) int64 {
			for line := range strings.Lines(info) {
				if v, ok := strings.CutPrefix(line, name+":"); ok {
					n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					if err != nil {
						t.Fatal(err)
					}
					return n
				}
			}
			t.Fatalf("INFO memory has no %s", name)
			return 0
		}
		return field("used_memory") - field("mem_not_counted_for_evict")
	}
	// Clients' buffers count too, and change between this test's INFO
	// and the publish that follows it: a publish counts as accepted past
	// the limit when INFO saw more than this over it. (Before Redis's
	// guard was respected, publishes went on to four times the limit.)
	const slack = 32 << 10

	o := brokertest.NewOutcomes()
	pad := strings.Repeat("x", 1000)
	var ids []string // of the events accepted, in order
	acceptedOver, refused, firstRefusal := 0, 0, -1
	peak := int64(0)
	for i := 0; i < 3000; i++ {
		used := usedMemory()
		peak = max(peak, used)
		data := fmt.Sprintf("%05d %s", i, pad)
		id, err := in.b.Publish(ctx, topics[i%len(topics)], event.Event{Data: data})
		o.Record(data, id, err)
		switch {
		case err == nil:
			ids = append(ids, id)
			if used > limit+slack {
				acceptedOver++
			}
		case redis.IsOOMError(err) && !isUnknownOutcome(err):
			refused++
			if firstRefusal < 0 {
				firstRefusal = i
			}
		default:
			t.Fatalf("publish %d: %v, want Redis's OOM error", i, err)
		}
		if firstRefusal >= 0 && i >= firstRefusal+200 {
			break
		}
	}
	final := usedMemory()
	peak = max(peak, final)

	// What Redis holds is exactly what was accepted.
	stored := map[string]bool{}
	accepted := o.Accepted()
	for _, key := range []string{k.log, k.topic + "a", k.topic + "b", k.topic + "c", k.topic + "d"} {
		entries, err := admin.XRange(ctx, key, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			d, _ := e.Values["d"].(string)
			if _, ok := accepted[d]; !ok {
				t.Errorf("%s holds %.5q, which Publish did not accept", key, d)
			}
			if key == k.log {
				stored[d] = true
			}
		}
	}
	if len(stored) != len(ids) {
		t.Errorf("the log holds %d events, %d were accepted", len(stored), len(ids))
	}

	eventually(t, "the subscriber to receive what was accepted", func() bool { return sub.has(o) })
	extra := fmt.Sprintf(" | accepted past maxmemory %d | used_memory peak %d B = %.2f x maxmemory", acceptedOver, peak, float64(peak)/limit)
	report(t, "noeviction at 2 MB", o, extra, sub)

	if refused == 0 {
		t.Fatalf("%d publishes of 1 KB accepted into a Redis of %d bytes, none refused (used_memory %d)", len(ids), limit, final)
	}
	if acceptedOver != 0 {
		t.Errorf("%d publishes accepted while used_memory was over maxmemory by more than %d bytes", acceptedOver, slack)
	}
	// One publish let in just under the limit takes an event twice (its
	// topic and the log), about 3 KB.
	if peak > limit+64<<10 {
		t.Errorf("used_memory reached %d, maxmemory is %d", peak, limit)
	}

	// Replay works at the limit: a client that saw the 11th event gets the
	// rest of what was accepted, in order.
	late := in.dial(t, ids[10], topics...)
	for _, want := range ids[11:] {
		if ev := late.next(t); ev.ID != want {
			t.Fatalf("replay at the memory limit: got %q, want %q", ev.ID, want)
		}
	}
}
