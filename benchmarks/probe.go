package main

// Probes: a few subscribers of a broadcast in processes of their own, which
// take the latency of what a client sees. The driver's own thousands of
// subscribers share one core and one Go scheduler: an event that has
// arrived waits in its socket until the driver gets round to that
// subscriber's goroutine, and that wait grows with the load and depends on
// how each server splits its writes. A probe process holds a few streams,
// so it is woken as soon as its bytes arrive (the kernel's scheduler
// favours a process that was sleeping), and it stamps each event with the
// time the read that brought it returned.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// probeEnv names the environment variable that turns this binary into a
// probe; its value is a JSON probeConfig.
const probeEnv = "ECHOSSE_BENCH_PROBE"

// probeConfig is what the driver asks a probe to subscribe to.
type probeConfig struct {
	Addr    string `json:"addr"`
	Path    string `json:"path"`
	Gzip    bool   `json:"gzip"`
	Streams int    `json:"streams"`
}

// probeReport is a probe's answer to "report": what its streams received.
type probeReport struct {
	Received int64   `json:"received"`
	Disorder int64   `json:"disorder"`
	Min      int64   `json:"min"`       // the fewest payloads one stream received
	Latency  []int64 `json:"latency"`   // ns from the ts in each payload to its read
	LastRecv int64   `json:"last_recv"` // UnixNano of the last payload
}

// probeMain runs a probe: it opens cfg.Streams streams, prints one line
// ({"streams": n}) once they are all open, then answers on its standard
// input
//
//	report N STALL    a probeReport, once every stream has N payloads or
//	                  none has arrived for STALL (Go syntax)
//
// until its input ends or says "quit".
func probeMain(spec string) int {
	var cfg probeConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bad probe configuration:", err)
		return 2
	}
	if _, err := raiseNoFile(); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	p := &probe{}
	for range cfg.Streams {
		c, err := dialSSE(context.Background(), cfg.Addr, cfg.Path, cfg.Gzip, smallReadBuffer, false, 30*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			return 1
		}
		ps := &probeStream{conn: c, lat: make([]int64, 0, 4096)}
		p.streams = append(p.streams, ps)
		p.wg.Go(func() { ps.read(p) })
	}
	defer p.close()
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(map[string]int{"streams": len(p.streams)}); err != nil {
		return 1
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "report":
			var want int64
			var stall time.Duration
			var err error
			if len(f) == 3 {
				if want, err = strconv.ParseInt(f[1], 10, 64); err == nil {
					stall, err = time.ParseDuration(f[2])
				}
			} else {
				err = errors.New("report N STALL")
			}
			if err != nil {
				_ = out.Encode(map[string]string{"error": err.Error()})
				continue
			}
			p.wait(want, stall)
			_ = out.Encode(p.report())
		case "quit":
			return 0
		default:
			_ = out.Encode(map[string]string{"error": "unknown command " + f[0]})
		}
	}
	return 0
}

type probe struct {
	streams []*probeStream
	wg      sync.WaitGroup
}

type probeStream struct {
	conn     *sseConn
	mu       sync.Mutex
	lat      []int64
	disorder int64
	count    atomic.Int64
	lastRecv atomic.Int64
}

func (s *probeStream) read(p *probe) {
	last := -1
	_ = s.conn.readEvents(func(seq int, ts, now int64) {
		s.mu.Lock()
		s.lat = append(s.lat, now-ts)
		if seq <= last {
			s.disorder++
		}
		s.mu.Unlock()
		last = seq
		s.count.Add(1)
		s.lastRecv.Store(now)
	})
}

// wait waits until every stream has want payloads, or none has arrived for
// stall.
func (p *probe) wait(want int64, stall time.Duration) {
	var last int64 = -1
	changed := time.Now()
	for {
		var total int64
		done := true
		for _, s := range p.streams {
			n := s.count.Load()
			total += n
			done = done && n >= want
		}
		if done {
			return
		}
		if total != last {
			last, changed = total, time.Now()
		} else if time.Since(changed) > stall {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *probe) report() probeReport {
	r := probeReport{Min: -1}
	for _, s := range p.streams {
		s.mu.Lock()
		r.Latency = append(r.Latency, s.lat...)
		r.Disorder += s.disorder
		s.mu.Unlock()
		n := s.count.Load()
		r.Received += n
		if r.Min < 0 || n < r.Min {
			r.Min = n
		}
		r.LastRecv = max(r.LastRecv, s.lastRecv.Load())
	}
	return r
}

func (p *probe) close() {
	for _, s := range p.streams {
		s.conn.Close()
	}
	p.wg.Wait()
}

// probeProc is the driver's handle on a probe process.
type probeProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	out     *bufio.Scanner
	stderr  *tailBuffer
	streams int
}

// startProbe starts this executable as a probe of cfg, pinned to cpu
// (taskset's syntax) unless cpu is "", and waits until its streams are
// open.
func startProbe(cfg probeConfig, cpu string) (*probeProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd, err := selfCommand(exe, cpu, probeEnv, cfg)
	if err != nil {
		return nil, err
	}
	p := &probeProc{cmd: cmd, stderr: &tailBuffer{max: 8 << 10}, streams: cfg.Streams}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.out = bufio.NewScanner(stdout)
	p.out.Buffer(make([]byte, 64<<10), 256<<20)
	var hello struct{ Streams int }
	if err := p.read(&hello); err != nil {
		p.stop()
		return nil, err
	}
	if hello.Streams != cfg.Streams {
		p.stop()
		return nil, fmt.Errorf("probe opened %d of %d streams", hello.Streams, cfg.Streams)
	}
	return p, nil
}

// read decodes the probe's next line into v. The driver only reads after
// asking, and the probe always answers or exits, so it needs no timeout.
func (p *probeProc) read(v any) error {
	if !p.out.Scan() {
		err := p.out.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("probe: %w (%s)", err, p.stderr)
	}
	line := p.out.Bytes()
	var e struct{ Error string }
	if json.Unmarshal(line, &e) == nil && e.Error != "" {
		return fmt.Errorf("probe: %s", e.Error)
	}
	return json.Unmarshal(line, v)
}

// report asks the probe for what it received once each stream has want
// payloads or none has come for stall.
func (p *probeProc) report(want int64, stall time.Duration) (probeReport, error) {
	var r probeReport
	if _, err := fmt.Fprintf(p.stdin, "report %d %s\n", want, stall); err != nil {
		return r, err
	}
	return r, p.read(&r)
}

// stop ends the probe: it closes its input, which makes it close its
// streams and exit, and kills it (by its own process id) if it has not
// within 10 seconds.
func (p *probeProc) stop() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}
