package freeport

import (
	"net"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLoopback: the ports Loopback returns are free, and below the
// kernel's ephemeral range when there is room below it.
func TestLoopback(t *testing.T) {
	lo := ephemeralLow()
	for range 20 {
		p, err := Loopback()
		if err != nil {
			t.Fatal(err)
		}
		if lo > base+1000 && (p < base || p >= lo) {
			t.Errorf("port %d, want one in [%d, %d), below the ephemeral range", p, base, lo)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		ln.Close()
	}
}
