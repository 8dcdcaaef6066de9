package redisbroker

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/echosse/echo-sse/internal/redistest"
)

// shared is the redis-server most tests use, each under a key prefix of
// its own; the tests that stop Redis start their own.
var shared *redistest.Server

func TestMain(m *testing.M) {
	if spec := os.Getenv(cpuChildEnv); spec != "" {
		os.Exit(cpuChild(spec)) // an instance process of BenchmarkInstanceCPU
	}
	goleak.VerifyTestMain(withRedis{m})
}

// withRedis runs the tests with the shared redis-server started, and stops
// it, waiting for its process to exit, before goleak looks for leftovers.
type withRedis struct{ m *testing.M }

func (w withRedis) Run() int {
	dir, err := os.MkdirTemp("", "redisbroker-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	shared, err = redistest.Start(dir, false)
	if err != nil {
		fmt.Fprintf(os.Stderr, "broker/redisbroker: %v\n", err)
		return 1
	}
	defer shared.Stop()
	// The example reads it, as a program would.
	os.Setenv("REDIS_URL", "redis://"+shared.Addr+"/0")
	return w.m.Run()
}
