package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// childProc is the driver's handle on a server child.
type childProc struct {
	cfg    childConfig
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // the child's stdout, line by line
	stderr *tailBuffer
	hello  childHello
	quit   chan struct{} // closed when the driver stops listening
	waited chan struct{}
	err    error // the child's exit status, once waited is closed
}

// startChild starts this executable (or exe, unless it is "") as a
// server child, pinned to cpu (taskset's CPU list syntax) unless cpu is
// "", and waits for it to listen.
func startChild(cfg childConfig, cpu, exe string) (*childProc, error) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	cmd, err := selfCommand(exe, cpu, childEnv, cfg)
	if err != nil {
		return nil, err
	}
	c := &childProc{cfg: cfg, cmd: cmd, lines: make(chan string, 1), stderr: &tailBuffer{max: 8 << 10}, quit: make(chan struct{}), waited: make(chan struct{})}
	cmd.Stderr = c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			case <-c.quit: // nobody listens any more; read to the end
			}
		}
	}()
	go func() {
		<-scanned // Wait closes stdout: all reads come first
		c.err = cmd.Wait()
		close(c.waited)
	}()
	return c, c.start()
}

// start reads the child's first line.
func (c *childProc) start() error {
	if err := c.read(&c.hello, 20*time.Second); err != nil {
		c.kill()
		return fmt.Errorf("child %s did not start: %w", c.cfg.Server.Name, err)
	}
	return nil
}

// read decodes the child's next line into v.
func (c *childProc) read(v any, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line, ok := <-c.lines:
		if !ok {
			<-c.waited
			return fmt.Errorf("child exited (%v): %s", c.err, c.stderr)
		}
		if strings.Contains(line, `"error"`) {
			var e struct{ Error string }
			if json.Unmarshal([]byte(line), &e) == nil && e.Error != "" {
				return errors.New(e.Error)
			}
		}
		return json.Unmarshal([]byte(line), v)
	case <-t.C:
		return fmt.Errorf("no answer from the child within %v", timeout)
	}
}

// call sends one command line and decodes the answer into v.
func (c *childProc) call(cmd string, v any, timeout time.Duration) error {
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		return fmt.Errorf("child %s: %w (%s)", c.cfg.Server.Name, err, c.stderr)
	}
	return c.read(v, timeout)
}

func (c *childProc) stats() (procStats, error) {
	var s procStats
	return s, c.call("stats", &s, 10*time.Second)
}

func (c *childProc) subscribers() (int, error) {
	var r struct{ Subs int }
	return r.Subs, c.call("subs", &r, 10*time.Second)
}

// heapProfile asks a profiling child to write its heap profile now.
func (c *childProc) heapProfile() error {
	if c.cfg.MemProfile == "" {
		return nil
	}
	var r struct{}
	return c.call("heapprofile", &r, time.Minute)
}

// publish asks the child to publish n events, one per interval, giving up
// after deadline.
func (c *childProc) publish(n int, interval, deadline time.Duration) (publishReport, error) {
	var r publishReport
	err := c.call(fmt.Sprintf("publish %d %s %s", n, interval, deadline), &r, deadline+30*time.Second)
	return r, err
}

// stop asks the child to quit, and kills it if it has not within 15
// seconds (writing a profile can take a few).
func (c *childProc) stop() error {
	_, _ = io.WriteString(c.stdin, "quit\n")
	_ = c.stdin.Close()
	c.stopListening()
	select {
	case <-c.waited:
		return c.err
	case <-time.After(15 * time.Second):
		c.kill()
		return fmt.Errorf("child %s did not quit; killed", c.cfg.Server.Name)
	}
}

// kill ends this child (by its own process id) and waits for it.
func (c *childProc) kill() {
	c.stopListening()
	_ = c.cmd.Process.Kill()
	<-c.waited
}

func (c *childProc) stopListening() {
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// selfCommand returns a command that runs exe pinned to cpu (taskset's
// CPU list syntax) unless cpu is "", with cfg as JSON in the environment
// variable env.
func selfCommand(exe, cpu, env string, cfg any) (*exec.Cmd, error) {
	spec, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if cpu != "" {
		cmd = exec.Command("taskset", "-c", cpu, exe)
	} else {
		cmd = exec.Command(exe)
	}
	cmd.Env = append(os.Environ(), env+"="+string(spec))
	return cmd, nil
}
