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

func TestReportDoorRatios(t *testing.T) {
	t.Parallel()
	sc := &scenario{
		ID: "A1", Title: "test", Reps: 2, Ref: "raw",
		Variants: []variant{{Server: "raw"}, {Server: "echosse"}, {Server: "echosse5"}, {Server: "echosse-nethttp"}},
		Metrics:  []metric{{Key: mEventsPerSec, Label: "events/s", Better: +1, Ratio: true}},
	}
	fig := map[string][2]float64{"raw": {100, 200}, "echosse": {80, 160}, "echosse5": {76, 160}, "echosse-nethttp": {90, 180}}
	var runs []runResult
	for rep := range 2 {
		for _, v := range sc.Variants {
			runs = append(runs, runResult{Scenario: "A1", Variant: v, Name: v.String(), Rep: rep, Metrics: map[string]float64{mEventsPerSec: fig[v.Server][rep]}})
		}
	}
	r := buildReport(sc, runs)
	for _, c := range []struct {
		name   string
		median float64
	}{{"echosse5 / echosse", 0.975}, {"echosse-nethttp / echosse", 1.125}, {"echosse-nethttp / raw", 0.9}, {"echosse5 / raw", 0.78}} {
		if s, ok := ratioCell(r, c.name, mEventsPerSec); !ok || math.Abs(s.Median-c.median) > 1e-9 {
			t.Errorf("%s = %+v, want median %v", c.name, s, c.median)
		}
	}
	var got []string
	for _, it := range evaluateBudget([]scenarioReport{r}) {
		if strings.HasPrefix(it.Item, "7.") && strings.Contains(it.Item, "A1") {
			got = append(got, it.Item+": "+it.Verdict+": "+it.Measured)
		}
	}
	want := []string{
		"7. Echo v5 door (echosse5): events/s (A1): meets: 0.97× (0.95×–1.00×) (median of per-pair ratios)",
		"7. net/http door (echosse-nethttp): events/s (A1): meets: 1.12× (median of per-pair ratios)",
		"7. Doors beside the reference (raw; raw-coalesce in C1): A1: reported: events/s / raw: echosse 0.80×, echosse5 0.78×, echosse-nethttp 0.90×",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("budget items:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBudgetTakeover(t *testing.T) {
	t.Parallel()
	sc := &scenario{
		ID: "B1", Title: "test", Reps: 2, Ref: "raw",
		Variants: []variant{{Server: "raw"}, {Server: "echosse"}, {Server: "echosse-takeover"}},
		Metrics:  []metric{{Key: mRSS, Label: "RSS KiB/stream", Better: -1, Ratio: true}, {Key: mGoroutines, Label: "goroutines/stream", Better: -1}},
	}
	for _, c := range []struct {
		rss  [2]float64
		want string
	}{
		{[2]float64{6, 7}, "meets"},      // 0.24× and 0.28× raw
		{[2]float64{7.5, 8.5}, "misses"}, // over 8 KiB once
		{[2]float64{7.5, 7.5}, "misses"}, // 7.5 KiB but 0.375× raw
	} {
		rss := map[string][2]float64{"raw": {25, 25}, "echosse": {27, 27}, "echosse-takeover": c.rss}
		if c.rss == [2]float64{7.5, 7.5} {
			rss["raw"] = [2]float64{20, 20}
		}
		var runs []runResult
		for rep := range 2 {
			for _, v := range sc.Variants {
				runs = append(runs, runResult{Scenario: "B1", Variant: v, Name: v.String(), Rep: rep, Metrics: map[string]float64{mRSS: rss[v.Server][rep], mGoroutines: 0.06}})
			}
		}
		found := 0
		for _, it := range evaluateBudget([]scenarioReport{buildReport(sc, runs)}) {
			switch it.Item {
			case "3. Taken-over idle streams (echosse-takeover): RSS per stream":
				found++
				if it.Verdict != c.want {
					t.Errorf("RSS %v KiB beside raw's %v: %s (%s), want %s", c.rss, rss["raw"], it.Verdict, it.Measured, c.want)
				}
			case "3. Taken-over idle streams: goroutines per stream":
				found++
				if it.Verdict != "meets" {
					t.Errorf("0.06 goroutines per stream: %s (%s), want meets", it.Verdict, it.Measured)
				}
			}
		}
		if found != 2 {
			t.Fatalf("found %d of the 2 budget items of taken-over idle streams", found)
		}
	}
}
