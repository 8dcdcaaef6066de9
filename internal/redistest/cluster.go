package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/echosse/echo-sse/internal/freeport"
)

// CLIPath is where Debian's redis-tools package (a dependency of
// redis-server's) puts redis-cli.
const CLIPath = "/usr/bin/redis-cli"

// A Cluster is a Redis Cluster of three masters, each with one replica:
// six redis-server processes on free loopback ports.
type Cluster struct {
	// Servers are the cluster's nodes, the masters first as created (a
	// failover changes which is which: ask the cluster).
	Servers []*Server
}

// StartCluster starts six redis-servers with cluster mode on, each with
// its files in a directory of its own in dir and a node timeout of
// nodeTimeout, makes them a cluster of three masters and three replicas
// (redis-cli --cluster create), and returns once every node reports
// cluster_state:ok and knows every slot's replica. On an error it stops
// what it started. Stop stops them all.
func StartCluster(dir string, nodeTimeout time.Duration) (*Cluster, error) {
	if _, err := os.Stat(CLIPath); err != nil {
		return nil, fmt.Errorf("the cluster tests need %s (Debian's redis-tools package, which redis-server depends on): run scripts/test.sh, which installs them", CLIPath)
	}
	c := &Cluster{}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	var addrs []string
	for i := range 6 {
		d := filepath.Join(dir, "node"+strconv.Itoa(i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		// Its bus port, else port + 10000: in the ephemeral range.
		bus, err := freeport.Loopback()
		if err != nil {
			return nil, err
		}
		s, err := Start(d, false,
			"--cluster-enabled", "yes",
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", filepath.Join(d, "nodes.conf"),
			"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10),
			// A replica's first sync starts at once, not after 5 s.
			"--repl-diskless-sync-delay", "0")
		if err != nil {
			return nil, err
		}
		c.Servers = append(c.Servers, s)
		addrs = append(addrs, s.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, CLIPath, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.WaitOK(20 * time.Second); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// Addrs returns the nodes' host:port.
func (c *Cluster) Addrs() []string {
	var addrs []string
	for _, s := range c.Servers {
		addrs = append(addrs, s.Addr)
	}
	return addrs
}

// WaitOK returns once every running node reports cluster_state:ok and
// agrees on three masters, each with a replica, and every replica has
// synced with its master (a replica that has not cannot take over), or an
// error after timeout.
func (c *Cluster) WaitOK(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		all := true
		for _, s := range c.Servers {
			if s.cmd == nil {
				continue
			}
			info, err := CLI(s.Addr, "CLUSTER", "INFO")
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				all, last = false, s.Addr+": "+info+fmt.Sprint(err)
				break
			}
			nodes, err := CLI(s.Addr, "CLUSTER", "NODES")
			if err != nil || strings.Count(nodes, "master") < 3 || strings.Count(nodes, "slave") < 3 || strings.Contains(nodes, "fail") {
				all, last = false, s.Addr+": "+nodes+fmt.Sprint(err)
				break
			}
			repl, err := CLI(s.Addr, "INFO", "replication")
			if err != nil || strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				all, last = false, s.Addr+": "+repl+fmt.Sprint(err)
				break
			}
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("redistest: the cluster is not ok: " + last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, s := range c.Servers {
		s.Stop()
	}
}

// CLI runs redis-cli against addr with args, and returns what it printed
// (raw), or an error saying what it printed when it failed, or within 5 s.
func CLI(addr string, args ...string) (string, error) {
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, CLIPath, append([]string{"-h", host, "-p", port, "--raw"}, args...)...).CombinedOutput()
	if err == nil && strings.HasPrefix(string(out), "ERR") {
		err = errors.New(strings.TrimSpace(string(out)))
	}
	if err != nil {
		return string(out), fmt.Errorf("redis-cli %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
