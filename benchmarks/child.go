package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// childEnv names the environment variable that turns this binary (or the
// test binary) into a server child; its value is a JSON childConfig.
const childEnv = "ECHOSSE_BENCH_CHILD"

// childConfig is what the driver asks a server child to run.
type childConfig struct {
	Server serverConfig `json:"server"`
	// CPUProfile and MemProfile, when set, are files the child writes a
	// CPU profile (from start to quit) and an allocation profile to.
	CPUProfile string `json:"cpu_profile,omitempty"`
	MemProfile string `json:"mem_profile,omitempty"`
	// MemProfileRate is runtime.MemProfileRate while MemProfile is set;
	// zero means one sample per 4 KiB allocated.
	MemProfileRate int `json:"mem_profile_rate,omitempty"`
}

// childHello is the first line a child prints.
type childHello struct {
	Addr   string `json:"addr"`
	NoFile uint64 `json:"nofile"`
	Procs  int    `json:"gomaxprocs"`
}

// publishReport is a child's answer to "publish".
type publishReport struct {
	Published int   `json:"published"`
	FirstNS   int64 `json:"first_ns"`   // when the first publish started (UnixNano)
	LagMaxNS  int64 `json:"lag_max_ns"` // largest delay of a publish start after its slot
	LagEndNS  int64 `json:"lag_end_ns"` // how long after the last slot the last publish returned
	TookNS    int64 `json:"took_ns"`
}

// runChild serves until its standard input says "quit" or ends. It answers
// one line of JSON per command line:
//
//	stats                          procStats
//	subs                           {"subs": n}
//	publish N INTERVAL DEADLINE    publishReport (N events, one per INTERVAL,
//	                               giving up at DEADLINE after the start;
//	                               durations in Go syntax)
//	heapprofile                    {} once the allocation profile is written
//	                               (profiling only)
//	quit                           exits
func runChild(cfg childConfig) error {
	log.SetPrefix("child " + cfg.Server.Name + ": ")
	nofile, err := raiseNoFile()
	if err != nil {
		return fmt.Errorf("raising the open-file limit: %w", err)
	}
	if cfg.MemProfile != "" {
		runtime.MemProfileRate = cmp.Or(cfg.MemProfileRate, 4096)
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	h, srv, err := buildServer(cfg.Server)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // clients vanish by design
	}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()

	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(childHello{Addr: ln.Addr().String(), NoFile: nofile, Procs: runtime.GOMAXPROCS(0)}); err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		var reply any
		switch f[0] {
		case "stats":
			st := readProcStats()
			st.Produced = produced.Load()
			if c, ok := srv.(counterer); ok {
				st.Counters = c.counters()
			}
			reply = st
		case "subs":
			reply = map[string]int{"subs": srv.subscribers()}
		case "publish":
			p, err := parsePublish(f[1:])
			if err != nil {
				reply = map[string]string{"error": err.Error()}
				break
			}
			reply = p.run(srv)
		case "heapprofile":
			// The heap as it is now (the streams still open), rather than
			// at quit.
			runtime.GC()
			reply = map[string]string{}
			if err := writeMemProfile(cfg); err != nil {
				reply = map[string]string{"error": err.Error()}
			}
			cfg.MemProfile = "" // keep this one
		case "quit":
			return stopChild(cfg)
		default:
			reply = map[string]string{"error": "unknown command " + f[0]}
		}
		if err := out.Encode(reply); err != nil {
			return err
		}
	}
	return stopChild(cfg)
}

func stopChild(cfg childConfig) error {
	if cfg.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	return writeMemProfile(cfg)
}

func writeMemProfile(cfg childConfig) error {
	if cfg.MemProfile == "" {
		return nil
	}
	f, err := os.Create(cfg.MemProfile)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type publishCmd struct {
	n                  int
	interval, deadline time.Duration
}

func parsePublish(args []string) (publishCmd, error) {
	var p publishCmd
	if len(args) != 3 {
		return p, errors.New("publish N INTERVAL DEADLINE")
	}
	var err error
	if p.n, err = strconv.Atoi(args[0]); err != nil {
		return p, err
	}
	if p.interval, err = time.ParseDuration(args[1]); err != nil {
		return p, err
	}
	if p.deadline, err = time.ParseDuration(args[2]); err != nil {
		return p, err
	}
	return p, nil
}

// run publishes p.n events on schedule: event i is due at start +
// i*interval. Each carries the time its publish started, so the client
// measures the delivery latency of the implementation, and the report says
// how far behind schedule the publisher fell.
func (p publishCmd) run(srv server) publishReport {
	var r publishReport
	start := time.Now()
	r.FirstNS = start.UnixNano()
	var due time.Time
	for i := range p.n {
		due = start.Add(time.Duration(i) * p.interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		now := time.Now()
		if now.Sub(start) > p.deadline {
			break
		}
		if lag := now.Sub(due); lag > time.Duration(r.LagMaxNS) {
			r.LagMaxNS = int64(lag)
		}
		srv.publish(makePayload(i, now.UnixNano()))
		r.Published++
	}
	end := time.Now()
	r.LagEndNS = int64(max(end.Sub(due), 0))
	r.TookNS = int64(end.Sub(start))
	return r
}
