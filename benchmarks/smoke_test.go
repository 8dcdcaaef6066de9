package main

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestServers starts every server variant as a child process and checks
// that it serves /stream in each mode and /events broadcasts, in order.
func TestServers(t *testing.T) {
	t.Parallel()
	var vs []variant
	for _, name := range serverNames {
		vs = append(vs, variant{Server: name}, variant{Server: name, Gzip: true})
	}
	vs = append(vs, variant{Server: "echosse", Gzip: true, Compress: true}, variant{Server: "echosse", BufferSize: 64})
	// The other doors with the library's own compression too.
	for _, d := range doors {
		vs = append(vs, variant{Server: d, Gzip: true, Compress: true})
	}
	for _, v := range vs {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			smoke(t, v)
		})
	}
}

func smoke(t *testing.T, v variant) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := startChild(childConfig{Server: serverConfig{Name: v.Server, Gzip: v.Gzip, BufferSize: v.BufferSize, Compress: v.Compress}}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.stop(); err != nil {
			t.Error(err)
		}
	}()

	for _, mode := range []string{modeFlush, modeBurst} {
		conn, err := dialSSE(ctx, c.hello.Addr, fmt.Sprintf("/stream?stream=events&mode=%s&n=300", mode), v.Gzip, bigReadBuffer, true, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if n, err := conn.countEvents(300, time.Now().Add(10*time.Second)); err != nil || n < 300 {
			t.Errorf("%s: %d events of 300: %v", mode, n, err)
		}
		conn.Close()
	}

	conn, err := dialSSE(ctx, c.hello.Addr, "/stream?stream=events&mode=lone&n=5&interval=1ms", v.Gzip, smallReadBuffer, false, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int
	_ = conn.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_ = conn.readEvents(func(seq int, ts, _ int64) {
		if ts <= 0 || ts > time.Now().UnixNano() {
			t.Errorf("lone: bad ts %d", ts)
		}
		if seqs = append(seqs, seq); len(seqs) == 5 {
			conn.Close()
		}
	})
	conn.Close()
	if fmt.Sprint(seqs) != "[0 1 2 3 4]" {
		t.Errorf("lone: got seqs %v, want [0 1 2 3 4]", seqs)
	}

	o := options{DialConcurrency: 4}
	g, _, err := ramp(ctx, o, c, v.Gzip, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	before, err := c.stats()
	if err != nil {
		t.Fatal(err)
	}
	if before.RSS <= 0 || before.Goroutines <= 0 || before.CPUNanos <= 0 {
		t.Errorf("implausible stats %+v", before)
	}
	rep, err := c.publish(5, time.Millisecond, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Published != 5 {
		t.Errorf("published %d of 5", rep.Published)
	}
	if !g.waitDelivered(15, 10*time.Second) {
		t.Errorf("delivered %d of 15", g.delivered.Load())
	}
	if n := g.minCount(); n != 5 {
		t.Errorf("a subscriber got %d of 5 events", n)
	}
	if d := g.disorder.Load(); d != 0 {
		t.Errorf("%d events out of order", d)
	}
}

// TestProbes runs a small broadcast with probe processes among the
// subscribers: every subscriber, probe or not, gets every event in order,
// and the probes report one latency per event they received.
func TestProbes(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"raw-coalesce", "echosse"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := options{DialConcurrency: 4, Probes: 2, ProbeStreams: 2}
			const subs, n = 10, 20
			m, err := runFanout(t.Context(), o, variant{Server: name}, subs, n, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if m[mDelivered] != 1 {
				t.Errorf("delivered %v, want 1", m[mDelivered])
			}
			for _, k := range []string{mP50, mP99, mDriverP50, mDriverP99} {
				if v, ok := m[k]; !ok || v <= 0 || v > 10e3 {
					t.Errorf("%s = %v, want a latency in ms", k, v)
				}
			}
		})
	}
}

// A probe that has fewer subscribers than it is asked to hold is an error,
// not a run that measures something else.
func TestProbesNeedRoom(t *testing.T) {
	o := options{DialConcurrency: 4, Probes: 3, ProbeStreams: 4}
	_, err := runFanout(t.Context(), o, variant{Server: "raw-coalesce"}, 10, 5, time.Millisecond)
	if err == nil {
		t.Fatal("12 probe streams among 10 subscribers ran")
	}
}
