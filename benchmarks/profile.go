package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runProfile runs one variant of one scenario once with the server child
// writing a CPU and an allocation profile, and keeps text summaries of
// both (go tool pprof -top) under dir/profiles/, named by date.
//
// spec is SCENARIO:SERVER[+gzip][/bN][/compress], e.g. "A1:echosse",
// "B2:raw+gzip" or "C1:echosse/b1024" (BufferSize 1024).
func runProfile(ctx context.Context, o options, all []*scenario, spec, dir string) error {
	id, name, ok := strings.Cut(spec, ":")
	if !ok {
		return fmt.Errorf("-profile wants SCENARIO:SERVER[+gzip], got %q", spec)
	}
	parts := strings.Split(name, "/")
	server, gz := strings.CutSuffix(parts[0], "+gzip")
	v := variant{Server: server, Gzip: gz}
	for _, p := range parts[1:] {
		switch {
		case p == "compress":
			v.Compress, v.Gzip = true, true
		case strings.HasPrefix(p, "b"):
			if _, err := fmt.Sscan(p[1:], &v.BufferSize); err != nil {
				return fmt.Errorf("bad buffer size in %q", p)
			}
		default:
			return fmt.Errorf("unknown option %q in %q", p, spec)
		}
	}
	var sc *scenario
	for _, s := range all {
		if s.ID == id {
			sc = s
		}
	}
	if sc == nil {
		return fmt.Errorf("no scenario %q", id)
	}
	if _, ok := builders[server]; !ok {
		return fmt.Errorf("unknown server %q", server)
	}

	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	stem := fmt.Sprintf("%s-%s-%s", time.Now().Format("2006-01-02"), id, strings.NewReplacer("+", "-", "/", "-").Replace(name))
	o.cpuProfile, _ = filepath.Abs(filepath.Join(tmp, stem+".cpu.pprof"))
	o.memProfile, _ = filepath.Abs(filepath.Join(tmp, stem+".alloc.pprof"))
	// Rebuild the scenario so that its closures see the profile files.
	for _, s := range append(scenarios(o), idleCPUScenario(o), encodeScenario(o)) {
		if s.ID == id {
			sc = s
		}
	}
	m, err := sc.Run(ctx, v)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s %s: %s\n", id, v, brief(sc, m))

	profDir := filepath.Join(dir, "profiles")
	if err := os.MkdirAll(profDir, 0o755); err != nil {
		return err
	}
	command := "go run . -profile " + spec
	if o.MemProfileRate > 0 {
		command = fmt.Sprintf("go run . -mem-profile-rate %d -profile %s", o.MemProfileRate, spec)
	}
	header := fmt.Sprintf("# %s, %s, one run; figures: %s\n# command: %s\n\n", id, v, brief(sc, m), command)
	for _, p := range []struct {
		suffix, file string
		args         []string
	}{
		{"cpu", o.cpuProfile, []string{"-top", "-nodecount=40"}},
		{"cpu-cum", o.cpuProfile, []string{"-top", "-cum", "-nodecount=40"}},
		{"alloc-objects", o.memProfile, []string{"-top", "-sample_index=alloc_objects", "-nodecount=30"}},
		{"alloc-space", o.memProfile, []string{"-top", "-sample_index=alloc_space", "-nodecount=30"}},
		{"inuse-space", o.memProfile, []string{"-top", "-sample_index=inuse_space", "-nodecount=30"}},
		{"inuse-objects", o.memProfile, []string{"-top", "-sample_index=inuse_objects", "-nodecount=30"}},
	} {
		out, err := exec.Command("go", append(append([]string{"tool", "pprof"}, p.args...), p.file)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof %s: %w\n%s", p.file, err, out)
		}
		path := filepath.Join(profDir, stem+"-"+p.suffix+".txt")
		if err := os.WriteFile(path, append([]byte(header), out...), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", path)
	}
	return nil
}
