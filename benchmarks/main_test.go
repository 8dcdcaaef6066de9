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
	if spec := os.Getenv(probeEnv); spec != "" {
		os.Exit(probeMain(spec))
	}
	goleak.VerifyTestMain(m)
}
