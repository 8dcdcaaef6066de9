package main

import (
	"strings"
	"testing"
	"time"
)

// TestIdleCPU runs B3 small against every server it measures: the clients
// must count about one heartbeat per stream per interval, and the server
// must have spent CPU on them.
func TestIdleCPU(t *testing.T) {
	t.Parallel()
	const beat = 100 * time.Millisecond
	o := options{IdleCPUClients: 20, IdleCPUWindow: time.Second, Heartbeat: beat, DialConcurrency: 4}
	for _, name := range idleCPUServers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m, err := runIdleCPU(t.Context(), o, variant{Server: name})
			if err != nil {
				t.Fatal(err)
			}
			// Ten per stream-second; echosse's interval starts once the
			// last heartbeat is written, so a little fewer (the race
			// detector slows every write).
			if b := m[mBeatsPerStreamSec]; b < 6 || b > 11 {
				t.Errorf("%.2f heartbeats per stream-second, want about 10", b)
			}
			if f := m[mBeatsMinPerStreamSec]; f < 3 {
				t.Errorf("a stream got %.2f heartbeats per second, want about 10", f)
			}
			if c := m[mCPUPerStreamSec]; c <= 0 {
				t.Errorf("server CPU %.3g µs per stream-second", c)
			}
			if w := m[mWritesPerStreamSec]; w < 5 {
				t.Errorf("%.2f write syscalls per stream-second, want about 10", w)
			}
		})
	}
}

// TestIdleCPUNoHeartbeat: servers asked for no heartbeat (as every other
// scenario asks) send none in the window, and B3 refuses the run rather
// than divide the CPU by heartbeats that never came.
func TestIdleCPUNoHeartbeat(t *testing.T) {
	t.Parallel()
	o := options{IdleCPUWindow: 500 * time.Millisecond, Heartbeat: 100 * time.Millisecond, DialConcurrency: 4}
	for _, name := range []string{"raw", "echosse", "echosse-takeover"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := startChild(childConfig{Server: serverConfig{Name: name}}, "", "")
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := c.stop(); err != nil {
					t.Error(err)
				}
			}()
			m, err := measureIdleCPU(t.Context(), o, c, 5)
			if err == nil || !strings.Contains(err.Error(), "received 0 heartbeats") {
				t.Errorf("got %v, want the run refused for its 0 heartbeats", err)
			}
			if b := m[mBeatsPerStreamSec]; b != 0 {
				t.Errorf("%.2f heartbeats per stream-second from a server asked for none", b)
			}
		})
	}
}
