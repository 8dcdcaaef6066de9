package prom_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/echosse/echo-sse/internal/redistest"
)

// redisServer is the redis-server the Redis collector's test reads.
var redisServer *redistest.Server

func TestMain(m *testing.M) { goleak.VerifyTestMain(withRedis{m}) }

// withRedis runs the tests with a redis-server started, and stops it,
// waiting for its process to exit, before goleak looks for leftovers.
type withRedis struct{ m *testing.M }

func (w withRedis) Run() int {
	dir, err := os.MkdirTemp("", "prom-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	redisServer, err = redistest.Start(dir, false)
	if err != nil {
		fmt.Fprintf(os.Stderr, "metrics/prom: %v\n", err)
		return 1
	}
	defer redisServer.Stop()
	return w.m.Run()
}
