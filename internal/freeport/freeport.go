// Package freeport finds loopback ports for the servers tests start
// (redis-server, nats-server) below the kernel's ephemeral range, so that
// a server a test restarts on the same port finds it free: a port of that
// range may go, between the stop and the start, to the local end of any
// client connection on the machine.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// base is the lowest port Loopback returns.
const base = 10000

// Loopback returns a loopback port nothing listens on, below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range), or one the kernel
// picks when the range leaves no room below it.
func Loopback() (int, error) {
	lo := ephemeralLow()
	if lo <= base+1000 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port, nil
	}
	for range 1000 {
		p := base + rand.IntN(lo-base)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue // taken
		}
		ln.Close()
		return p, nil
	}
	return 0, fmt.Errorf("freeport: no free loopback port between %d and %d", base, lo)
}

// ephemeralLow returns the lowest port of the kernel's ephemeral range.
func ephemeralLow() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return 32768 // Linux's default
}
