package brokertest_test

import (
	"testing"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/broker/brokertest"
)

// A backend's test runs the suite with a harness that makes brokers on it.
// This one runs it on the in-memory history, which has no network (the
// fault cases are skipped) and shares nothing between brokers (nor are the
// cases with several brokers run). A Redis backend's harness would give
// each Options.Scope its own key prefix, connect to Options.Addr, set
// Harness.Addr to the address of a redis-server the test started, and
// Harness.Shared.
func ExampleRun() {
	conformance := func(t *testing.T) {
		brokertest.Run(t, brokertest.Harness{
			New: func(t testing.TB, o brokertest.Options) broker.Config {
				return broker.Config{HistorySize: o.HistorySize, HistoryAge: o.HistoryAge}
			},
		})
	}
	_ = conformance // func TestConformance(t *testing.T) { conformance(t) }
}
