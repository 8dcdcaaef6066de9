package echosse

import "time"

// CompressorsInUse returns how many compressors streams hold, for tests.
func CompressorsInUse() int64 { return compressorsInUse.Load() }

// SetPumpDelay sets how long a handler may run after Open before its
// stream gets a pump goroutine, until the test ends. No stream may be open.
func SetPumpDelay(t interface{ Cleanup(func()) }, d time.Duration) {
	old := pumpDelay
	pumpDelay = d
	t.Cleanup(func() { pumpDelay = old })
}
