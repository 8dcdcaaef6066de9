package sse

import "time"

// SetParkAfter makes taken-over streams park after d idle (0: at the
// sweeper's next tick, a millisecond away) until the test ends.
func SetParkAfter(t interface{ Cleanup(func()) }, d time.Duration) {
	old := parkAfter.Swap(int64(d))
	t.Cleanup(func() { parkAfter.Store(old) })
}

// Parked returns how many streams are parked (or about to be), and how
// many groups wait for them.
func Parked() (streams, groups int) {
	parkers.mu.Lock()
	defer parkers.mu.Unlock()
	return parkers.streams, parkers.groups
}

// Parks returns how many times a stream has tried to park.
func Parks() int64 {
	parkers.mu.Lock()
	defer parkers.mu.Unlock()
	return parkers.parks
}
