// Package soak_test holds the soak test: thousands of clients on loopback
// connecting and disconnecting at random through echosse and the broker,
// some slow, some stalled, while publishers send at a steady rate.
package soak_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
