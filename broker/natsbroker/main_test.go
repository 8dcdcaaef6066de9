package natsbroker_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/echosse/echo-sse/internal/natstest"
)

// TestMain checks for leaked goroutines, then removes the nats-server
// binary the tests built.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		natstest.Cleanup()
		os.Exit(code)
	}))
}
