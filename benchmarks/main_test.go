package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain also serves as the server child when a smoke test re-executes
// this test binary.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(childMain(spec))
	}
	goleak.VerifyTestMain(m)
}
