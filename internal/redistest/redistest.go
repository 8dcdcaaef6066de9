// Package redistest starts and stops a real redis-server for tests: the
// Debian package's binary, on a free loopback port, with its files in a
// directory of the test's.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/echosse/echo-sse/internal/freeport"
)

// Path is where Debian's redis-server package puts the server;
// scripts/test.sh installs the package when it is missing.
const Path = "/usr/bin/redis-server"

// A Server is a redis-server process on a loopback port.
type Server struct {
	// Addr is the server's host:port.
	Addr string

	dir  string
	args []string
	cmd  *exec.Cmd
}

// Start starts a redis-server on a free loopback port with its files in
// dir, and returns once it answers PING. With persist, every write is in
// the append-only file before Redis answers it, so that a restart (Stop,
// then Start) loses nothing Redis accepted; without, nothing is written to
// disk. More redis-server options may follow ("--maxmemory", "2mb"); they
// come after the others, so they win. It returns an error saying to run
// scripts/test.sh when the server is not installed.
func Start(dir string, persist bool, options ...string) (*Server, error) {
	if _, err := os.Stat(Path); err != nil {
		return nil, fmt.Errorf("the tests need %s (Debian's redis-server package): run scripts/test.sh, which installs it", Path)
	}
	port, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Addr: "127.0.0.1:" + strconv.Itoa(port),
		dir:  dir,
		args: []string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--dir", dir,
			"--logfile", filepath.Join(dir, "redis.log"),
			"--save", "",
			"--daemonize", "no",
		},
	}
	if persist {
		s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		s.args = append(s.args, "--appendonly", "no")
	}
	s.args = append(s.args, options...)
	return s, s.Start()
}

// Start starts the server again after Stop, on the same port with the same
// files, and returns once it answers PING.
func (s *Server) Start() error {
	if s.cmd != nil {
		return errors.New("redistest: already running")
	}
	s.cmd = exec.Command(Path, s.args...)
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ping(s.Addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on %s does not answer: %v\n%s", s.Addr, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Pause stops the server's process (SIGSTOP), as a long fork or a stalled
// VM would: connections stay open and the kernel still accepts new ones,
// but nothing is read or answered until Resume.
func (s *Server) Pause() error {
	if s.cmd == nil {
		return errors.New("redistest: not running")
	}
	return s.cmd.Process.Signal(syscall.SIGSTOP)
}

// Resume lets a paused server go on (SIGCONT): it reads and answers what
// waited. Resuming a server that is not paused does nothing.
func (s *Server) Resume() error {
	if s.cmd == nil {
		return errors.New("redistest: not running")
	}
	return s.cmd.Process.Signal(syscall.SIGCONT)
}

// Stop stops the server as an operator would (SIGTERM: it writes what it
// has and exits; SIGKILL after 10 seconds), and waits for the process to
// exit. A paused server is resumed first. Stopping a stopped server does
// nothing.
func (s *Server) Stop() error {
	if s.cmd == nil {
		return nil
	}
	cmd := s.cmd
	s.cmd = nil
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		return <-done
	}
}

// Kill kills the server's process at once (SIGKILL), as a crash or the
// OOM killer would: it writes nothing more, so what is not yet in its
// append-only file is lost; and waits for it to exit. Start starts it
// again. Killing a stopped server does nothing.
func (s *Server) Kill() error {
	if s.cmd == nil {
		return nil
	}
	cmd := s.cmd
	s.cmd = nil
	cmd.Process.Kill()
	cmd.Wait()
	return nil
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return errors.New("answered " + strings.TrimSpace(line))
	}
	return nil
}
