//go:build !linux

package sse

// Elsewhere than on Linux, a taken-over stream learns that its client left
// from a goroutine of its own blocked in a read (takeover.go).

// connPoller is the poller's stand-in: it watches nothing.
type connPoller struct{}

// poller is the process's one connPoller.
var poller connPoller

// add reports false: the stream reads instead.
func (connPoller) add(*Stream) bool { return false }

// remove does nothing.
func (connPoller) remove(*Stream) {}
