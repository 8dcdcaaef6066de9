package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

var (
	exitStreams = flag.Int("exit.streams", 2000, "streams held open when TestCtrlCSendsEveryStreamTheCloseEvent interrupts the demo")
	exitEarly   = flag.Bool("exit.early", false, "interrupt once headers arrived")
	exitRounds  = flag.Int("exit.rounds", 3, "how many times TestCtrlCSendsEveryStreamTheCloseEvent starts and interrupts the demo")
	exitEcho    = flag.Int("exit.echo", 4, "the demo's -echo: the major version of Echo it runs on")
)

// TestCtrlCSendsEveryStreamTheCloseEvent builds the demo, runs it as its
// own process with its real main, holds thousands of streams from this
// process, interrupts it as Ctrl-C does, and counts the close events the
// streams parse: every stream must get one, every round, while two other
// processes load both cores.
func TestCtrlCSendsEveryStreamTheCloseEvent(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "chat")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stopLoad := cpuLoad(t, runtime.NumCPU())
	defer stopLoad()
	n := *exitStreams
	for round := range *exitRounds {
		r := interruptWithStreams(t, bin, n)
		t.Logf("round %d: %d of %d streams got the close event, %d ended before the signal; the process exited %v after it",
			round, r.closed, n, r.early, r.exited.Round(time.Millisecond))
		if r.closed != n || r.early != 0 {
			t.Errorf("round %d: %d of %d streams got the close event, %d ended before the signal", round, r.closed, n, r.early)
			for _, err := range r.errs {
				t.Log(err)
			}
		}
	}
}

// exitResult is what the streams saw in one round.
type exitResult struct {
	closed int           // streams whose last event was the close event
	early  int           // streams that ended before the signal
	exited time.Duration // from the signal to the process's exit
	errs   []error       // the first few errors of streams that missed the close event
}

// interruptWithStreams starts the demo, opens n streams to it, sends it
// SIGINT once every stream has received an event, and reports what the
// streams saw.
func interruptWithStreams(t *testing.T, bin string, n int) (r exitResult) {
	t.Helper()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-echo", fmt.Sprint(*exitEcho))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder // the request log, then what main says on its way out
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-waited
		}
	}()
	out := bufio.NewScanner(stdout)
	addr := ""
	for out.Scan() {
		if a, ok := strings.CutPrefix(out.Text(), "chat room on http://"); ok {
			addr = strings.TrimSuffix(a, "/")
			break
		}
	}
	if addr == "" {
		t.Fatalf("the demo printed no address: %v", out.Err())
	}
	go io.Copy(io.Discard, stdout)

	var (
		wg        sync.WaitGroup
		ready     sync.WaitGroup
		mu        sync.Mutex
		signalled atomic.Bool
	)
	ready.Add(n)
	for range n {
		wg.Go(func() {
			gotClose, err := holdStream(addr, ready.Done)
			early := !signalled.Load()
			mu.Lock()
			defer mu.Unlock()
			if early {
				r.early++
			}
			if gotClose {
				r.closed++
			} else if len(r.errs) < 5 {
				r.errs = append(r.errs, fmt.Errorf("no close event (ended before the signal: %v): %v", early, err))
			}
		})
	}
	allReady := make(chan struct{})
	go func() { ready.Wait(); close(allReady) }()
	select {
	case <-allReady:
	case <-time.After(60 * time.Second):
		t.Fatalf("streams not open after 60 s")
	}

	signalled.Store(true)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		r.exited = time.Since(start)
		if err != nil {
			t.Errorf("the demo exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the demo did not exit within 20 s of SIGINT")
	}
	wg.Wait()
	if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); !strings.Contains(lines[len(lines)-1], "msg=request") {
		t.Logf("the demo's last words: %s", lines[len(lines)-1])
	}
	return r
}

// holdStream opens a stream on its own connection, calls opened once the
// stream has delivered its first event, and reads it until the response
// ends. It reports whether the last event it parsed was the close event.
func holdStream(addr string, opened func()) (gotClose bool, err error) {
	once := sync.OnceFunc(opened)
	defer once()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // bounds a hung test
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/events", nil)
	res, err := streamClient.Do(req) // asks for gzip, as Go's client does
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %s", res.Status)
	}
	if *exitEarly {
		once()
	}
	dec := event.NewDecoder(res.Body)
	last := ""
	for {
		ev, err := dec.Decode()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return last == "close", err
		}
		last = ev.Type
		once()
	}
}

// streamClient is the streams' client: Go's, with a connection per stream.
var streamClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1}}

// cpuLoad starts n processes that spin until the returned function is
// called.
func cpuLoad(t *testing.T, n int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	return func() {
		cancel()
		for _, cmd := range cmds {
			cmd.Wait()
		}
	}
}
