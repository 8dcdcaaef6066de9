package main

import (
	"fmt"
	"strings"
)

// budgetItem is one line of the budget, checked against the
// figures of this run.
type budgetItem struct {
	Item     string `json:"item"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Verdict  string `json:"verdict"` // "meets", "misses", "reported" or "not run"
}

// onSchedule is how late the last publish may return and still count as
// "never behind schedule": sleeps on Linux wake up to about a millisecond
// late, so a publisher that keeps up shows a millisecond or two.
const onScheduleMS = 5.0

// evaluateBudget checks the budget against the scenario reports.
func evaluateBudget(reports []scenarioReport) []budgetItem {
	by := map[string]scenarioReport{}
	for _, r := range reports {
		by[r.ID] = r
	}
	var items []budgetItem
	add := func(item, target string, f func(r scenarioReport) (string, string), id string) {
		r, ok := by[id]
		if !ok {
			items = append(items, budgetItem{item, target, "", "not run"})
			return
		}
		m, v := f(r)
		items = append(items, budgetItem{item, target, m, v})
	}
	ratio := func(ref, key string, limit float64, atLeast bool) func(r scenarioReport) (string, string) {
		return pairRatio("echosse / "+ref, key, limit, atLeast)
	}
	value := func(key string, ok func(float64) bool) func(r scenarioReport) (string, string) {
		return rowValue("echosse", key, ok)
	}

	add("1. Flush per event: throughput", "≥ 0.90 × raw", ratio("raw", mEventsPerSec, 0.90, true), "A1")
	add("1. Flush per event: server CPU per event", "≤ 1.20 × raw", ratio("raw", mCPUPerEvent, 1.20, false), "A1")
	add("1. Flush per event: allocations per event", "0 (under 0.01 over the run: set-up only)", value(mAllocs, func(x float64) bool { return x < 0.01 }), "A1")
	add("2. Burst: throughput", "≥ 0.70 × raw flushing per 64", ratio("raw", mEventsPerSec, 0.70, true), "A2")
	add("2. Lone event: p50 latency", "≤ 1.10 × raw", ratio("raw", mP50, 1.10, false), "A3")
	add("2. Lone event: p99 latency", "≤ 1.10 × raw", ratio("raw", mP99, 1.10, false), "A3")
	add("3. Idle streams: RSS per stream", "≤ 1.15 × raw", ratio("raw", mRSS, 1.15, false), "B1")
	add("3. Idle streams: RSS per stream after one event", "≤ 1.15 × raw", ratio("raw", mRSSAfter, 1.15, false), "B1")
	add("3. Idle streams: goroutines per stream", "≤ 3", value(mGoroutines, func(x float64) bool { return x <= 3.005 }), "B1")
	add("3. Idle streams: all receive a broadcast", "100%", value(mDelivered, func(float64) bool { return true }), "B1")
	fixDelivered(&items[len(items)-1], by, "B1")
	add("3. Idle CPU: per stream-second, beside today's path and raw", "reported", idleCPUBudget, "B3")
	// Config.Takeover: idle streams at a third of raw's memory, as fast.
	add("3. Taken-over idle streams (echosse-takeover): RSS per stream", "≤ 8 KiB and ≤ 0.35 × raw", takeoverRSS, "B1")
	add("3. Taken-over idle streams: goroutines per stream", "≤ 1", rowValue("echosse-takeover", mGoroutines, func(x float64) bool { return x <= 1.005 }), "B1")
	add("3. Taken-over streams: A1 events/s beside today's path", "≥ 0.95 × echosse", pairRatio("echosse-takeover / echosse", mEventsPerSec, 0.95, true), "A1")
	add("3. Taken-over streams: A3 p50 latency beside today's path", "≤ 1.05 × echosse", pairRatio("echosse-takeover / echosse", mP50, 1.05, false), "A3")
	add("4. Fan-out: every event delivered", "100%", value(mDelivered, func(float64) bool { return true }), "C1")
	fixDelivered(&items[len(items)-1], by, "C1")
	add("4. Fan-out: never behind schedule", fmt.Sprintf("last publish ≤ %.0f ms after its slot", onScheduleMS), value(mBehind, func(x float64) bool { return x <= onScheduleMS }), "C1")
	add("4. Fan-out: p99 latency", "≤ 1.25 × raw-coalesce, every event delivered", func(r scenarioReport) (string, string) {
		m, v := ratio("raw-coalesce", mP99, 1.25, false)(r)
		if d, ok := rowCell(r, "echosse", mDelivered); !ok || d.Min < 1 {
			// Latency over the streams that were not dropped says little.
			return m + fmt.Sprintf(", but over the %s of events delivered", fmtPercent(d.Min)), "misses"
		}
		return m, v
	}, "C1")
	add("4. Wide fan-out: every event delivered", "100%", value(mDelivered, func(float64) bool { return true }), "C2")
	fixDelivered(&items[len(items)-1], by, "C2")
	add("4. Wide fan-out: p50/p99 beside the peers", "reported", func(r scenarioReport) (string, string) {
		var parts []string
		for _, name := range []string{"raw-coalesce", "r3labs", "gosse", "echosse"} {
			p50, ok1 := rowCell(r, name, mP50)
			p99, ok2 := rowCell(r, name, mP99)
			d, ok3 := rowCell(r, name, mDelivered)
			if ok1 && ok2 && ok3 {
				parts = append(parts, fmt.Sprintf("%s %s/%s ms (%s delivered)", name, fmtNum(p50.Median), fmtNum(p99.Median), fmtPercent(d.Min)))
			}
		}
		return strings.Join(parts, "; "), "reported"
	}, "C2")
	for _, label := range []string{"echosse RawMessage", "echosse string", "echosse []byte"} {
		l := label
		add("5. Encoding: allocations, "+strings.TrimPrefix(l, "echosse "), "0", func(r scenarioReport) (string, string) {
			name := l
			if l == "echosse RawMessage" {
				name = "echosse"
			}
			s, ok := rowCell(r, name, "allocs_per_op")
			if !ok {
				return "no figure", "misses"
			}
			return fmtSummary(s, fmtNum), verdict(s.Max == 0)
		}, "E")
	}
	add("5. Encoding: MB/s beside append", "reported", func(r scenarioReport) (string, string) {
		a, ok1 := rowCell(r, "append", "mb_per_s")
		e, ok2 := rowCell(r, "echosse", "mb_per_s")
		q, ok3 := ratioCell(r, "echosse / append", "mb_per_s")
		if !ok1 || !ok2 || !ok3 {
			return "no figure", "misses"
		}
		return fmt.Sprintf("echosse %s MB/s, append %s MB/s: %s", fmtNum(e.Median), fmtNum(a.Median), fmtSummary(q, fmtRatio)), "reported"
	}, "E")
	for _, id := range []string{"A1", "A2", "A3", "B2", "C1", "C2"} {
		add("6. Gzip: "+id, "reported", func(r scenarioReport) (string, string) {
			return gzipSummary(r), "reported"
		}, id)
	}

	// The other front doors, beside the Echo v4 door and beside raw.
	doorRatio := func(door, key string, limit float64, atLeast bool) func(r scenarioReport) (string, string) {
		return pairRatio(door+" / echosse", key, limit, atLeast)
	}
	for _, d := range []struct{ name, label string }{{"echosse5", "Echo v5 door (echosse5)"}, {"echosse-nethttp", "net/http door (echosse-nethttp)"}} {
		add("7. "+d.label+": events/s (A1)", "≥ 0.95 × the Echo v4 door (echosse)", doorRatio(d.name, mEventsPerSec, 0.95, true), "A1")
		add("7. "+d.label+": RSS per idle stream (B1)", "≤ 1.05 × the Echo v4 door (echosse)", doorRatio(d.name, mRSS, 1.05, false), "B1")
	}
	for _, c := range []struct {
		id   string
		keys []string
	}{{"A1", []string{mEventsPerSec, mCPUPerEvent}}, {"A3", []string{mP50, mP99}}, {"B1", []string{mRSS, mHeap, mStacks}}, {"C1", []string{mEventsPerSec, mP99, mCPUPerEvent}}} {
		keys := c.keys
		add("7. Doors beside the reference (raw; raw-coalesce in C1): "+c.id, "reported (the issue expects the net/http door closest)", func(r scenarioReport) (string, string) {
			return doorsBesideRef(r, keys), "reported"
		}, c.id)
	}
	add("8. Client decode: throughput", "≥ 1.5 × the faster of r3labs's and go-sse's clients", ratio("best peer", mEventsPerSec, 1.5, true), "D1")
	add("8. Client decode: throughput beside a bare bufio.Reader line splitter", "≥ 0.5 ×", ratio("bufio.Reader lines", mEventsPerSec, 0.5, true), "D1")
	add("8. Client decode: CPU and allocations per event", "reported", func(r scenarioReport) (string, string) {
		var parts []string
		for _, name := range []string{"echosse", "echosse sseclient Events", "echosse Decoder.Scan", "echosse Decoder", "r3labs Client", "gosse Connection"} {
			c, ok1 := rowCell(r, name, mCPUNsPerEvent)
			a, ok2 := rowCell(r, name, mAllocsPerEv)
			b, ok3 := rowCell(r, name, mBytesPerEv)
			if ok1 && ok2 && ok3 {
				parts = append(parts, fmt.Sprintf("%s %s ns, %s allocs, %s B", name, fmtNum(c.Median), fmtNum(a.Median), fmtNum(b.Median)))
			}
		}
		return strings.Join(parts, "; "), "reported"
	}, "D1")
	add("8. Client streams: memory per stream beside the peers' clients", "reported", func(r scenarioReport) (string, string) {
		var parts []string
		for _, name := range []string{"echosse", "r3labs Client", "gosse Connection"} {
			rss, ok1 := rowCell(r, name, mRSS)
			h, ok2 := rowCell(r, name, mClientHeap)
			if ok1 && ok2 {
				parts = append(parts, fmt.Sprintf("%s RSS %s KiB, heap objects %s KiB", name, fmtNum(rss.Median), fmtNum(h.Median)))
			}
		}
		return strings.Join(parts, "; "), "reported"
	}, "D2")
	return items
}

// pairRatio checks the median of the per-pair ratios of row pair ("a / b")
// for key against limit: at least limit if atLeast, else at most.
func pairRatio(pair, key string, limit float64, atLeast bool) func(r scenarioReport) (string, string) {
	return func(r scenarioReport) (string, string) {
		s, ok := ratioCell(r, pair, key)
		if !ok {
			return "no figure", "misses"
		}
		ok = s.Median <= limit
		if atLeast {
			ok = s.Median >= limit
		}
		return fmtSummary(s, fmtRatio) + " (median of per-pair ratios)", verdict(ok)
	}
}

// rowValue checks the figures of row name for key, all of them (their
// largest) with ok.
func rowValue(name, key string, ok func(float64) bool) func(r scenarioReport) (string, string) {
	return func(r scenarioReport) (string, string) {
		s, found := rowCell(r, name, key)
		if !found {
			return "no figure", "misses"
		}
		return fmtSummary(s, func(x float64) string { return fmtMetric(key, x) }) + units[key], verdict(ok(s.Max))
	}
}

// takeoverRSS checks issue 18's figure: an idle taken-over stream at most
// 8 KiB of RSS, and at most 0.35 × raw's per pair.
func takeoverRSS(r scenarioReport) (string, string) {
	s, ok1 := rowCell(r, "echosse-takeover", mRSS)
	q, ok2 := ratioCell(r, "echosse-takeover / raw", mRSS)
	if !ok1 || !ok2 {
		return "no figure", "misses"
	}
	m := fmtSummary(s, func(x float64) string { return fmtMetric(mRSS, x) }) + " KiB, " + fmtSummary(q, fmtRatio) + " raw (median of per-pair ratios)"
	return m, verdict(s.Max <= 8 && q.Median <= 0.35)
}

// doorsBesideRef lists each door's ratio to the reference for keys: the
// Echo v4 door's (echosse / ref) and the others' (door / ref).
func doorsBesideRef(r scenarioReport, keys []string) string {
	var parts []string
	for _, key := range keys {
		label := key
		for _, m := range r.Metrics {
			if m.Key == key {
				label = m.Label
			}
		}
		var cells []string
		for _, name := range append([]string{"echosse"}, doors...) {
			if s, ok := ratioCell(r, name+" / "+r.Ref, key); ok {
				cells = append(cells, fmt.Sprintf("%s %s", name, fmtRatio(s.Median)))
			}
		}
		if len(cells) > 0 {
			parts = append(parts, label+" / "+r.Ref+": "+strings.Join(cells, ", "))
		}
	}
	if len(parts) == 0 {
		return "no figures"
	}
	return strings.Join(parts, "; ")
}

var units = map[string]string{mBehind: " ms"}

// fixDelivered judges a "delivered" item on the lowest figure over runs.
func fixDelivered(it *budgetItem, by map[string]scenarioReport, id string) {
	r, ok := by[id]
	if !ok {
		return
	}
	s, ok := rowCell(r, "echosse", mDelivered)
	if !ok {
		it.Verdict = "misses"
		return
	}
	it.Measured = "lowest over runs: " + fmtPercent(s.Min)
	it.Verdict = verdict(s.Min >= 1)
}

func gzipSummary(r scenarioReport) string {
	var parts []string
	for _, rr := range r.Ratios {
		if !rr.Gzip && r.ID != "B2" { // B2 is all gzip
			continue
		}
		if !strings.HasPrefix(rr.Name, "echosse / ") {
			continue // the other doors: see items 7
		}
		for _, m := range r.Metrics {
			if s, ok := rr.Cells[m.Key]; ok {
				parts = append(parts, fmt.Sprintf("%s %s: %s", rr.Name, m.Label, fmtRatio(s.Median)))
			}
		}
	}
	if len(parts) == 0 {
		return "no gzip figures"
	}
	return strings.Join(parts, "; ")
}

func verdict(ok bool) string {
	if ok {
		return "meets"
	}
	return "misses"
}

func ratioCell(r scenarioReport, name, key string) (summary, bool) {
	for _, rr := range r.Ratios {
		if rr.Name == name {
			s, ok := rr.Cells[key]
			return s, ok
		}
	}
	return summary{}, false
}

func rowCell(r scenarioReport, name, key string) (summary, bool) {
	for _, row := range r.Rows {
		if row.Name == name {
			s, ok := row.Cells[key]
			return s, ok
		}
	}
	return summary{}, false
}

func budgetMarkdown(items []budgetItem) string {
	var b strings.Builder
	b.WriteString("### Budget\n\n| item | target | measured | verdict |\n|---|---|---|---|\n")
	for _, it := range items {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", it.Item, it.Target, it.Measured, it.Verdict)
	}
	return b.String()
}
