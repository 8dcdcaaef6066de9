// Package proxytest puts a real reverse proxy in front of a test server:
// Debian's nginx, on a free loopback port, with nginx's own defaults and
// its files in a directory of the test's.
package proxytest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// NginxPath is where Debian's nginx package puts the server;
// scripts/test.sh installs the package when it is missing.
const NginxPath = "/usr/sbin/nginx"

// nginxConf is the whole configuration: one foreground process (no daemon,
// no master: the test's child is the process that serves), every file in
// the test's directory, and one location that proxies to the upstream as
// the usual guides for server-sent events say: HTTP/1.1 to the upstream
// with an empty Connection header. It sets no timeout, so
// proxy_read_timeout is nginx's default (60 s), and it leaves
// proxy_buffering at its default (on): echosse answers with
// "X-Accel-Buffering: no", which turns buffering off for its streams.
// Its upstream is a group named backend, of the servers given (with
// nginx's default passive health check, max_fails=1 fail_timeout=10s,
// unless a server's line says otherwise).
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;

events {
	worker_connections 1024;
}

http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;

	upstream backend {
%[3]s	}

	server {
		listen %[2]s;

		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
`

// An Nginx is an nginx process proxying a loopback port to an upstream.
type Nginx struct {
	// Addr is the proxy's host:port.
	Addr string

	dir    string
	cmd    *exec.Cmd
	exited chan error // gets the process's exit, once
}

// StartNginx starts nginx on a free loopback port, proxying every request
// to upstream (a host:port), with its configuration, logs and temporary
// files in dir, and returns once the port accepts connections. It returns
// an error saying to run scripts/test.sh when nginx is not installed.
func StartNginx(dir, upstream string) (*Nginx, error) {
	return StartNginxUpstream(dir, upstream)
}

// StartNginxUpstream is [StartNginx] with an upstream group of several
// servers, each "host:port" followed, if need be, by its parameters
// ("127.0.0.1:8080 max_fails=0"); nginx balances them round-robin.
func StartNginxUpstream(dir string, servers ...string) (*Nginx, error) {
	if _, err := os.Stat(NginxPath); err != nil {
		return nil, fmt.Errorf("the tests need %s (Debian's nginx package): run scripts/test.sh, which installs it", NginxPath)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "nginx.conf")
	var group strings.Builder
	for _, srv := range servers {
		fmt.Fprintf(&group, "\t\tserver %s;\n", srv)
	}
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, addr, group.String()), 0o644); err != nil {
		return nil, err
	}
	// -e: the error log before the configuration is read, which would
	// otherwise be the package's /var/log/nginx/error.log.
	cmd := exec.Command(NginxPath, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &Nginx{Addr: addr, dir: dir, cmd: cmd, exited: make(chan error, 1)}
	go func() { n.exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return n, nil
		}
		select {
		case werr := <-n.exited:
			n.exited <- werr
			return nil, fmt.Errorf("nginx exited at start (%v):\n%s", werr, n.ErrorLog())
		default:
		}
		if time.Now().After(deadline) {
			n.Stop()
			return nil, fmt.Errorf("nginx on %s does not accept connections: %v\n%s", addr, err, n.ErrorLog())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ErrorLog returns what nginx has written to its error log so far.
func (n *Nginx) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b)
}

// AccessLog returns what nginx has written to its access log so far, in
// its default (combined) format: one line per request, written when the
// request ends.
func (n *Nginx) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "access.log"))
	return string(b)
}

// Stop stops nginx at once (SIGTERM, its fast shutdown, which does not
// wait for open streams; SIGKILL after 10 seconds) and waits for the
// process to exit. It returns an error if nginx had already exited by
// itself. Stopping a stopped server does nothing.
func (n *Nginx) Stop() error {
	if n.cmd == nil {
		return nil
	}
	proc := n.cmd.Process
	n.cmd = nil
	select {
	case err := <-n.exited:
		return fmt.Errorf("nginx had exited by itself (%v):\n%s", err, n.ErrorLog())
	default:
	}
	proc.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return nil
	case <-time.After(10 * time.Second):
		proc.Kill()
		<-n.exited
		return errors.New("nginx did not stop within 10 s of SIGTERM")
	}
}
