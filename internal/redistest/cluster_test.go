package redistest

import (
	"strings"
	"testing"
	"time"
)

// A cluster starts with three masters and three replicas, covers every
// slot, and stops.
func TestStartCluster(t *testing.T) {
	c, err := StartCluster(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	info, err := CLI(c.Servers[0].Addr, "CLUSTER", "INFO")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:6", "cluster_size:3"} {
		if !strings.Contains(info, want) {
			t.Errorf("CLUSTER INFO lacks %s:\n%s", want, info)
		}
	}
}
