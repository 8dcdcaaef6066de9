package main

import (
	"math"
	"strings"
	"testing"
)

func TestHistogram(t *testing.T) {
	t.Parallel()
	var h histogram
	for i := int64(1); i <= 1000; i++ {
		h.add(i * 1000) // 1µs .. 1ms
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 500e3}, {0.99, 990e3}, {1, 1000e3}} {
		if got := h.quantile(c.q); math.Abs(got-c.want)/c.want > 0.01 {
			t.Errorf("quantile(%v) = %v, want %v within 1%%", c.q, got, c.want)
		}
	}
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 1 << 40, math.MaxInt64} {
		i := histIndex(v)
		if i < 0 || i >= len(h.counts) {
			t.Fatalf("histIndex(%d) = %d out of range", v, i)
		}
		if got := histValue(i); v > 0 && math.Abs(got-float64(v))/float64(v) > 0.01 {
			t.Errorf("histValue(histIndex(%d)) = %v", v, got)
		}
	}
}

func TestPayload(t *testing.T) {
	t.Parallel()
	p := makePayload(42, 1763856000000000000)
	if len(p) != payloadSize {
		t.Errorf("payload is %d bytes, want %d: %s", len(p), payloadSize, p)
	}
	seq, ts, ok := parsePayload(p)
	if !ok || seq != 42 || ts != 1763856000000000000 {
		t.Errorf("parsePayload = %d, %d, %v", seq, ts, ok)
	}
}

func TestReportRatios(t *testing.T) {
	t.Parallel()
	sc := &scenario{
		ID: "X", Title: "test", Reps: 2, Ref: "raw",
		Variants: []variant{{Server: "raw"}, {Server: "r3labs"}, {Server: "gosse"}, {Server: "echosse"}},
		Metrics:  []metric{{Key: "v", Label: "v", Better: +1, Ratio: true}},
	}
	fig := map[string][2]float64{"raw": {100, 200}, "r3labs": {50, 100}, "gosse": {80, 50}, "echosse": {90, 150}}
	var runs []runResult
	for rep := range 2 {
		for _, v := range sc.Variants {
			runs = append(runs, runResult{Scenario: "X", Variant: v, Name: v.String(), Rep: rep, Metrics: map[string]float64{"v": fig[v.Server][rep]}})
		}
	}
	r := buildReport(sc, runs)
	raw, ok := ratioCell(r, "echosse / raw", "v")
	if !ok || raw.Min != 0.75 || raw.Max != 0.9 || raw.Median != 0.825 {
		t.Errorf("echosse / raw = %+v", raw)
	}
	// Best peer per pair: gosse (80) in the first, r3labs (100) in the second.
	peer, ok := ratioCell(r, "echosse / best peer", "v")
	if !ok || peer.Min != 1.125 || peer.Max != 1.5 {
		t.Errorf("echosse / best peer = %+v", peer)
	}
	md := r.markdown()
	for _, want := range []string{"| echosse | 120 (90–150) |", "| **echosse / raw** | 0.82× (0.75×–0.90×) |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
