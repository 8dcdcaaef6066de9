package echosse

import (
	"time"

	"github.com/echosse/echo-sse/internal/door"
)

// CompressorsInUse returns how many compressors streams hold, for tests.
func CompressorsInUse() int64 { return door.CompressorsInUse() }

// SetPumpDelay sets how long a handler may run after Open before its
// stream gets a pump goroutine, until the test ends. No stream may be open.
func SetPumpDelay(t interface{ Cleanup(func()) }, d time.Duration) {
	old := *door.PumpDelay
	*door.PumpDelay = d
	t.Cleanup(func() { *door.PumpDelay = old })
}
