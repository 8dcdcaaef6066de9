package main

import (
	"flag"
	"testing"
)

// TestClientScenarios runs every row of D1 for a moment and D2 with a few
// streams: each reads every event, and the figures are plausible.
func TestClientScenarios(t *testing.T) {
	bt := flag.Lookup("test.benchtime")
	old := bt.Value.String()
	if err := flag.Set("test.benchtime", "2000x"); err != nil {
		t.Fatal(err)
	}
	defer flag.Set("test.benchtime", old)
	for _, v := range decodeRows {
		t.Run("D1/"+v.String(), func(t *testing.T) {
			m, err := runDecode(v)
			if err != nil {
				t.Fatal(err)
			}
			if m[mEventsPerSec] <= 0 || m[mNsPerEvent] <= 0 {
				t.Errorf("implausible figures %v", m)
			}
		})
	}
	o := options{ClientStreams: 20}
	for _, v := range clientMemRows {
		t.Run("D2/"+v.String(), func(t *testing.T) {
			m, err := runClientMem(t.Context(), o, v)
			if err != nil {
				t.Fatal(err)
			}
			if m[mGoroutines] < 1 {
				t.Errorf("implausible figures %v", m)
			}
		})
	}
}
