package broker_test

import (
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
)

// Brokers on an Interested backend that delivers only the topics watched,
// shared by the brokers of a scope, pass the conformance suite: replay and
// live delivery stay exact when a topic is watched anew.
func TestInterestedConformance(t *testing.T) {
	var mu sync.Mutex
	hubs := map[string]interface {
		Config(time.Duration) broker.Config
	}{}
	brokertest.Run(t, brokertest.Harness{
		New: func(t testing.TB, o brokertest.Options) broker.Config {
			mu.Lock()
			defer mu.Unlock()
			h := hubs[o.Scope]
			if h == nil {
				h = broker.NewTestHub(o.HistorySize, o.HistoryAge)
				hubs[o.Scope] = h
			}
			return h.Config(50 * time.Millisecond)
		},
		Shared: true,
	})
}
