// Package natstest starts and stops real nats-server processes for tests:
// a single JetStream server, or a cluster of three, on free loopback ports,
// with their files in a directory of the test's.
//
// The server is built from github.com/nats-io/nats-server/v2, a tool of
// the module (go.mod's tool directive), with go build, once per test
// binary, into a temporary directory; the Go build cache makes the builds
// after the first one quick. Debian's package (2.9) is too old: the
// backend needs consumers with several subject filters (2.10 and later).
package natstest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/echosse/echo-sse/internal/freeport"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary returns the path of a nats-server built from the module's tool
// requirement, building it on the first call.
func Binary() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "natstest-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "nats-server")
		cmd := exec.Command("go", "build", "-o", binary, "github.com/nats-io/nats-server/v2")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("natstest: building nats-server: %v\n%s", err, out.String())
		}
	})
	return binary, buildErr
}

// Cleanup removes the built binary; call it from TestMain after the tests.
func Cleanup() {
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
}

// A Server is a nats-server process on a loopback port.
type Server struct {
	// Addr is the client port's host:port; URL is nats://Addr.
	Addr, URL string
	// Name is the server's name in its cluster.
	Name string
	// Monitor is the monitoring port's host:port (its /healthz says
	// whether JetStream is ready).
	Monitor string

	args []string
	cmd  *exec.Cmd
	log  string
}

// freePort returns a loopback port nothing listens on, one a server
// restarted on finds free (see package freeport).
func freePort() (int, error) { return freeport.Loopback() }

// Start starts a JetStream server with its store in dir, and returns once
// it accepts connections.
func Start(dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	monitor, err := freePort()
	if err != nil {
		return nil, err
	}
	s := newServer("single", port, monitor, dir)
	return s, s.Start()
}

func newServer(name string, port, monitor int, dir string) *Server {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return &Server{
		Addr: addr, URL: "nats://" + addr, Name: name,
		Monitor: "127.0.0.1:" + strconv.Itoa(monitor),
		log:     filepath.Join(dir, name+".log"),
		args: []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(monitor), "-n", name,
			"-js", "-sd", filepath.Join(dir, name), "-l", filepath.Join(dir, name+".log")},
	}
}

// Ready waits until the server's /healthz says JetStream is ready: in a
// cluster, that a meta leader is elected and the server is current with
// it. It gives up after timeout with the last answer and the log.
func (s *Server) Ready(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		var last string
		resp, err := client.Get("http://" + s.Monitor + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.log)
			return fmt.Errorf("natstest: %s's JetStream not ready after %v: %s\n%s", s.Name, timeout, last, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartCluster starts three JetStream servers in one cluster, with their
// stores under dir, and returns once each accepts connections and the
// cluster has a JetStream meta leader (a stream can be created).
func StartCluster(dir string) ([]*Server, error) {
	var ports, routes, monitors [3]int
	for i := range 3 {
		for _, p := range []*int{&ports[i], &routes[i], &monitors[i]} {
			var err error
			if *p, err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	routeList := ""
	for i := range 3 {
		if i > 0 {
			routeList += ","
		}
		routeList += "nats-route://127.0.0.1:" + strconv.Itoa(routes[i])
	}
	var servers []*Server
	for i := range 3 {
		s := newServer("n"+strconv.Itoa(i+1), ports[i], monitors[i], dir)
		s.args = append(s.args, "--cluster_name", "echosse", "--cluster", "nats://127.0.0.1:"+strconv.Itoa(routes[i]), "--routes", routeList)
		if err := s.Start(); err != nil {
			for _, o := range servers {
				o.Stop()
			}
			return nil, err
		}
		servers = append(servers, s)
	}
	// Electing the meta leader can take a while on a loaded machine.
	for _, s := range servers {
		if err := s.Ready(clusterReady); err != nil {
			for _, o := range servers {
				o.Stop()
			}
			return nil, err
		}
	}
	return servers, nil
}

// clusterReady bounds how long StartCluster waits for JetStream.
const clusterReady = time.Minute

// Start starts the server again after Stop or Kill, with the same port
// and store, and returns once it accepts connections.
func (s *Server) Start() error {
	if s.cmd != nil {
		return errors.New("natstest: already running")
	}
	bin, err := Binary()
	if err != nil {
		return err
	}
	s.cmd = exec.Command(bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.log)
			s.Kill()
			return fmt.Errorf("natstest: %s not accepting connections after 20 s: %v\n%s", s.Name, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server gracefully (SIGTERM) and waits for it.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills the server (SIGKILL) and waits for it.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}
