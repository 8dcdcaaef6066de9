package main

import (
	"testing"
	"time"

	echo4 "github.com/labstack/echo/v4"
	echo5 "github.com/labstack/echo/v5"
)

// TestOnEcho5 runs the scripted tests, and the browser's two-pages test,
// again with the room on Echo v5 (-echo=5): startServerWith gives the
// tests it runs a server on Echo v5.
func TestOnEcho5(t *testing.T) {
	for _, tt := range []struct {
		name string
		test func(t *testing.T)
	}{
		{"RunsOnEcho5", func(t *testing.T) {
			if _, ok := startServer(t, time.Second).hs.Handler.(*echo5.Echo); !ok {
				t.Fatal("the server does not run on Echo v5")
			}
		}},
		{"PostMessages", TestPostMessages},
		{"EventsResumeFromLastEventID", TestEventsResumeFromLastEventID},
		{"EventsTellAPageItsHistoryIsGone", TestEventsTellAPageItsHistoryIsGone},
		{"ShutdownSendsTheCloseEvent", TestShutdownSendsTheCloseEvent},
		{"ShutdownClosesUnusedConnections", TestShutdownClosesUnusedConnections},
		{"Metrics", TestMetrics},
		{"TwoPagesSeeAMessageAtOnce", TestTwoPagesSeeAMessageAtOnce},
	} {
		t.Run(tt.name, tt.test)
	}
}

// TestEchoVersion: the room runs on Echo v4 unless told, on v5 when told,
// and on nothing else.
func TestEchoVersion(t *testing.T) {
	for _, v := range []int{0, 4} {
		if _, ok := startServerWith(t, "127.0.0.1:0", config{Echo: v}).hs.Handler.(*echo4.Echo); !ok {
			t.Errorf("Echo %d: the server does not run on Echo v4", v)
		}
	}
	if _, ok := startServerWith(t, "127.0.0.1:0", config{Echo: 5}).hs.Handler.(*echo5.Echo); !ok {
		t.Error("Echo 5: the server does not run on Echo v5")
	}
	if _, err := newServer(config{Echo: 3}); err == nil {
		t.Error("Echo 3: no error")
	}
}
