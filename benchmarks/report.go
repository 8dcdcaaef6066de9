package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// runResult is one run of one variant in one scenario.
type runResult struct {
	Scenario string             `json:"scenario"`
	Variant  variant            `json:"variant"`
	Name     string             `json:"name"`
	Rep      int                `json:"rep"`
	Metrics  map[string]float64 `json:"metrics,omitempty"`
	Error    string             `json:"error,omitempty"`
	Seconds  float64            `json:"seconds"`
	// ForeignCPU is how many cores other processes kept busy during the
	// run, on average: anything much above zero disturbs the figures.
	ForeignCPU float64 `json:"foreign_cpu"`
	// Retries is how many runs before this one other processes disturbed.
	Retries int `json:"retries,omitempty"`
}

// summary is the median and range of a set of figures.
type summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func summarize(xs []float64) (summary, bool) {
	xs = slices.DeleteFunc(slices.Clone(xs), func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) })
	if len(xs) == 0 {
		return summary{}, false
	}
	sort.Float64s(xs)
	m := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		m = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return summary{Median: m, Min: xs[0], Max: xs[len(xs)-1], N: len(xs)}, true
}

// scenarioReport is a scenario's table: one row per variant, then the
// ratios of echosse to the reference and to the best peer.
type scenarioReport struct {
	ID      string        `json:"id"`
	Title   string        `json:"title"`
	Notes   []string      `json:"notes"`
	Metrics []metric      `json:"metrics"`
	Ref     string        `json:"ref"`
	Rows    []rowReport   `json:"rows"`
	Ratios  []ratioReport `json:"ratios"`
	Errors  []string      `json:"errors,omitempty"`
	// Foreign summarises ForeignCPU over the runs.
	Foreign summary `json:"foreign_cpu"`
}

type rowReport struct {
	Name    string             `json:"name"`
	Variant variant            `json:"variant"`
	Runs    int                `json:"runs"`
	Failed  int                `json:"failed"`
	Cells   map[string]summary `json:"cells"`
}

type ratioReport struct {
	Name  string             `json:"name"`
	Gzip  bool               `json:"gzip"`
	Cells map[string]summary `json:"cells"`
	// Best names, per metric, the peer that was best in most pairs.
	Best map[string]string `json:"best,omitempty"`
}

// buildReport aggregates the runs of sc.
func buildReport(sc *scenario, runs []runResult) scenarioReport {
	r := scenarioReport{ID: sc.ID, Title: sc.Title, Notes: sc.Notes, Metrics: sc.Metrics, Ref: sc.Ref}
	byVariant := map[string][]runResult{}
	var foreign []float64
	for _, run := range runs {
		if run.Scenario != sc.ID {
			continue
		}
		foreign = append(foreign, run.ForeignCPU)
		byVariant[run.Name] = append(byVariant[run.Name], run)
		if run.Error != "" {
			r.Errors = append(r.Errors, fmt.Sprintf("%s, run %d: %s", run.Name, run.Rep+1, run.Error))
		}
	}
	r.Foreign, _ = summarize(foreign)
	for _, v := range sc.Variants {
		rs := byVariant[v.String()]
		row := rowReport{Name: v.String(), Variant: v, Runs: len(rs), Cells: map[string]summary{}}
		for _, run := range rs {
			if run.Error != "" {
				row.Failed++
			}
		}
		for _, m := range sc.Metrics {
			var xs []float64
			for _, run := range rs {
				if x, ok := run.Metrics[m.Key]; ok {
					xs = append(xs, x)
				}
			}
			if s, ok := summarize(xs); ok {
				row.Cells[m.Key] = s
			}
		}
		r.Rows = append(r.Rows, row)
	}

	for _, gz := range []bool{false, true} {
		es := findVariant(sc.Variants, func(v variant) bool {
			return v.Server == "echosse" && v.Gzip == gz && v.BufferSize == 0 && v.Label == "" && v.Exe == ""
		})
		ref := findVariant(sc.Variants, func(v variant) bool { return v.Server == sc.Ref && v.Gzip == gz && v.BufferSize == 0 })
		if base := findVariant(sc.Variants, func(v variant) bool { return v.Exe != "" && v.Server == "echosse" && v.Gzip == gz }); es != nil && base != nil {
			// -baseline: this commit's echosse over the other's, per
			// pair of runs of the same repetition.
			rr := ratioReport{Name: "echosse / " + base.String(), Gzip: gz, Cells: map[string]summary{}}
			for _, m := range sc.Metrics {
				var xs []float64
				for rep := range sc.Reps {
					a, okA := metricAt(byVariant[es.String()], rep, m.Key)
					b, okB := metricAt(byVariant[base.String()], rep, m.Key)
					if okA && okB && b != 0 {
						xs = append(xs, a/b)
					}
				}
				if s, ok := summarize(xs); ok && m.ratio() {
					rr.Cells[m.Key] = s
				}
			}
			r.Ratios = append(r.Ratios, rr)
		}
		var ps []variant
		for _, v := range sc.Variants {
			if isPeer(v.Server) && v.Gzip == gz && v.primary() {
				ps = append(ps, v)
			}
		}
		suffix := ""
		if gz {
			suffix = " (+gzip)"
		}
		if es != nil && ref != nil {
			rr := ratioReport{Name: "echosse / " + ref.String(), Gzip: gz, Cells: map[string]summary{}}
			for _, m := range sc.Metrics {
				if !m.ratio() {
					continue
				}
				if s, ok := pairRatios(byVariant[es.String()], byVariant[ref.String()], sc.Reps, m.Key); ok {
					rr.Cells[m.Key] = s
				}
			}
			r.Ratios = append(r.Ratios, rr)
		}
		if es != nil && len(ps) > 0 {
			rr := ratioReport{Name: "echosse / best peer" + suffix, Gzip: gz, Cells: map[string]summary{}, Best: map[string]string{}}
			for _, m := range sc.Metrics {
				if !m.ratio() {
					continue
				}
				var xs []float64
				wins := map[string]int{}
				for rep := range sc.Reps {
					a, ok := metricAt(byVariant[es.String()], rep, m.Key)
					if !ok {
						continue
					}
					best, bestName := math.NaN(), ""
					for _, p := range ps {
						x, ok := metricAt(byVariant[p.String()], rep, m.Key)
						if !ok {
							continue
						}
						if math.IsNaN(best) || float64(m.Better)*(x-best) > 0 {
							best, bestName = x, p.String()
						}
					}
					if !math.IsNaN(best) && best != 0 {
						xs = append(xs, a/best)
						wins[bestName]++
					}
				}
				if s, ok := summarize(xs); ok {
					rr.Cells[m.Key] = s
					rr.Best[m.Key] = mostWins(wins)
				}
			}
			r.Ratios = append(r.Ratios, rr)
		}
		// The other front doors: beside the Echo v4 door, and beside
		// the reference.
		for _, name := range doors {
			d := findVariant(sc.Variants, func(v variant) bool { return v.Server == name && v.Gzip == gz && v.primary() })
			if d == nil {
				continue
			}
			for _, to := range []*variant{es, ref} {
				if to == nil {
					continue
				}
				rr := ratioReport{Name: name + " / " + to.String(), Gzip: gz, Cells: map[string]summary{}}
				for _, m := range sc.Metrics {
					if !m.ratio() {
						continue
					}
					if s, ok := pairRatios(byVariant[d.String()], byVariant[to.String()], sc.Reps, m.Key); ok {
						rr.Cells[m.Key] = s
					}
				}
				r.Ratios = append(r.Ratios, rr)
			}
		}
	}
	for _, p := range sc.Pairs {
		a, b := byVariant[p[0]], byVariant[p[1]]
		if len(a) == 0 || len(b) == 0 {
			continue
		}
		rr := ratioReport{Name: p[0] + " / " + p[1], Cells: map[string]summary{}}
		for _, m := range sc.Metrics {
			if !m.ratio() {
				continue
			}
			if s, ok := pairRatios(a, b, sc.Reps, m.Key); ok {
				rr.Cells[m.Key] = s
			}
		}
		r.Ratios = append(r.Ratios, rr)
	}
	return r
}

// pairRatios summarises a/b over the repetitions both ran.
func pairRatios(a, b []runResult, reps int, key string) (summary, bool) {
	var xs []float64
	for rep := range reps {
		x, okA := metricAt(a, rep, key)
		y, okB := metricAt(b, rep, key)
		if okA && okB && y != 0 {
			xs = append(xs, x/y)
		}
	}
	return summarize(xs)
}

func (m metric) ratio() bool { return m.Ratio && m.Better != 0 }

func findVariant(vs []variant, f func(variant) bool) *variant {
	for i := range vs {
		if f(vs[i]) {
			return &vs[i]
		}
	}
	return nil
}

// metricAt is the figure of the run of repetition rep, if it succeeded.
func metricAt(runs []runResult, rep int, key string) (float64, bool) {
	for _, r := range runs {
		if r.Rep == rep && r.Error == "" {
			x, ok := r.Metrics[key]
			return x, ok && !math.IsNaN(x)
		}
	}
	return 0, false
}

func mostWins(w map[string]int) string {
	best, n := "", -1
	for k, v := range w {
		if v > n || (v == n && k < best) {
			best, n = k, v
		}
	}
	return best
}

// markdown renders the scenario's table.
func (r scenarioReport) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s. %s\n\n", r.ID, r.Title)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "%s\n", n)
	}
	b.WriteString("\n| server |")
	for _, m := range r.Metrics {
		fmt.Fprintf(&b, " %s |", m.Label)
	}
	b.WriteString("\n|---|")
	for range r.Metrics {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range r.Rows {
		name := row.Name
		if row.Failed > 0 {
			name += fmt.Sprintf(" (%d of %d runs failed)", row.Failed, row.Runs)
		}
		fmt.Fprintf(&b, "| %s |", name)
		for _, m := range r.Metrics {
			s, ok := row.Cells[m.Key]
			if !ok {
				b.WriteString(" — |")
				continue
			}
			fmt.Fprintf(&b, " %s |", fmtSummary(s, func(x float64) string { return fmtMetric(m.Key, x) }))
		}
		b.WriteString("\n")
	}
	for _, rr := range r.Ratios {
		fmt.Fprintf(&b, "| **%s** |", rr.Name)
		for _, m := range r.Metrics {
			s, ok := rr.Cells[m.Key]
			if !ok {
				b.WriteString(" |")
				continue
			}
			cell := fmtSummary(s, fmtRatio)
			if best := rr.Best[m.Key]; best != "" {
				cell += " vs " + strings.TrimSuffix(best, " +gzip")
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nOther processes on the machine kept %.2f cores busy during these runs (median; max %.2f).\n", r.Foreign.Median, r.Foreign.Max)
	if len(r.Errors) > 0 {
		b.WriteString("\nFailed runs:\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	return b.String()
}

func fmtSummary(s summary, f func(float64) string) string {
	if s.N <= 1 || f(s.Min) == f(s.Max) {
		return f(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.Median), f(s.Min), f(s.Max))
}

func fmtRatio(x float64) string { return fmt.Sprintf("%.2f×", x) }

func fmtMetric(key string, x float64) string {
	if key == mDelivered {
		return fmtPercent(x)
	}
	return fmtNum(x)
}

func fmtPercent(x float64) string {
	if x >= 1 {
		return "100%"
	}
	return fmt.Sprintf("%.2f%%", math.Floor(x*1e4)/100)
}

// fmtNum writes x with three significant digits, and k or M above 10,000.
func fmtNum(x float64) string {
	a := math.Abs(x)
	switch {
	case a == 0:
		return "0"
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", x/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", x/1e3)
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 0.01:
		return fmt.Sprintf("%.3g", x)
	default:
		return fmt.Sprintf("%.1g", x)
	}
}
