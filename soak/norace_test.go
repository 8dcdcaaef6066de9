//go:build !race

package soak_test

import "time"

// Full size without the race detector: scripts/test.sh runs it so.
const (
	defaultClients  = 2000
	defaultDuration = 60 * time.Second
)
