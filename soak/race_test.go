//go:build race

package soak_test

import "time"

// The race detector allows at most 8128 live goroutines and slows
// everything down: a smaller, shorter soak.
const (
	defaultClients  = 300
	defaultDuration = 8 * time.Second
)
