package natstest

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines, then removes the nats-server
// binary the tests built.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		Cleanup()
		os.Exit(code)
	}))
}

// A server starts, accepts connections, and stops.
func TestStart(t *testing.T) {
	s, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if s.cmd == nil || s.URL == "" {
		t.Fatalf("not running: %+v", s)
	}
}

// A cluster's three servers are ready for JetStream when StartCluster
// returns; a stopped server is not.
func TestStartCluster(t *testing.T) {
	servers, err := StartCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	for _, s := range servers {
		if err := s.Ready(0); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
	servers[0].Stop()
	if err := servers[0].Ready(100 * time.Millisecond); err == nil {
		t.Errorf("%s stopped, yet ready", servers[0].Name)
	}
}
