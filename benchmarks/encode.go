package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/echosse/echo-sse/event"
)

// The encoding scenario (E) runs in the driver with testing.Benchmark:
// encoding one ~100-byte JSON event into a reused buffer, beside a plain
// append of the same bytes (the wire frame: "data: ", payload, "\n\n").

// encoders maps an E row to the function that encodes one event b.N times.
var encoders = map[string]func(b *testing.B, data []byte){
	"append": func(b *testing.B, data []byte) {
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = append(buf[:0], "data: "...)
			buf = append(buf, data...)
			buf = append(buf, "\n\n"...)
		}
	},
	"echosse RawMessage": func(b *testing.B, data []byte) {
		encodeEvent(b, event.Event{Data: json.RawMessage(data)})
	},
	"echosse string": func(b *testing.B, data []byte) {
		encodeEvent(b, event.Event{Data: string(data)})
	},
	"echosse []byte": func(b *testing.B, data []byte) {
		encodeEvent(b, event.Event{Data: data})
	},
	"echosse struct (encoding/json)": func(b *testing.B, data []byte) {
		var v struct {
			Seq int     `json:"seq"`
			TS  int64   `json:"ts"`
			Sym string  `json:"sym"`
			Px  float64 `json:"px"`
			Qty int     `json:"qty"`
			Pad string  `json:"pad"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			b.Fatal(err)
		}
		encodeEvent(b, event.Event{Data: v})
	},
	"echo-cookbook MarshalTo": func(b *testing.B, data []byte) {
		var w bytes.Buffer
		ev := &cookbookEvent{Data: data}
		for b.Loop() {
			w.Reset()
			if err := ev.MarshalTo(&w); err != nil {
				b.Fatal(err)
			}
		}
	},
	"gosse Message.WriteTo": func(b *testing.B, data []byte) {
		var w bytes.Buffer
		m := goSSEMessage(data)
		for b.Loop() {
			w.Reset()
			if _, err := m.WriteTo(&w); err != nil {
				b.Fatal(err)
			}
		}
	},
}

func encodeEvent(b *testing.B, ev event.Event) {
	buf := make([]byte, 0, 512)
	var err error
	for b.Loop() {
		if buf, err = ev.AppendTo(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// encodeRows are the rows of E, in order; "append" is the reference and
// "echosse RawMessage" the row the ratios are computed for.
var encodeRows = []variant{
	{Server: "raw", Label: "append"},
	{Server: "echosse"},
	{Server: "echosse", Label: "echosse string"},
	{Server: "echosse", Label: "echosse []byte"},
	{Server: "echosse", Label: "echosse struct (encoding/json)"},
	{Server: "echo-cookbook", Label: "echo-cookbook MarshalTo"},
	{Server: "gosse", Label: "gosse Message.WriteTo"},
}

func encodeScenario(o options) *scenario {
	return &scenario{
		ID:    "E",
		Title: "Encoding one event",
		Notes: []string{
			fmt.Sprintf("A %d-byte JSON payload into a reused buffer, with testing.Benchmark in the driver process; MB/s of wire bytes written. The echosse row is Data as json.RawMessage.", payloadSize),
		},
		Variants: encodeRows,
		Reps:     o.Reps,
		Metrics: []metric{
			{"mb_per_s", "MB/s", +1, true},
			{"ns_per_op", "ns/event", -1, true},
			{"allocs_per_op", "allocs/event", -1, false},
		},
		Ref: "raw",
		Run: func(_ context.Context, v variant) (map[string]float64, error) { return runEncode(v) },
	}
}

func runEncode(v variant) (map[string]float64, error) {
	label := v.Label
	if label == "" {
		label = "echosse RawMessage"
	}
	f := encoders[label]
	data := makePayload(12345, 1763856000000000000)
	wire, err := event.Event{Data: json.RawMessage(data)}.AppendTo(nil)
	if err != nil {
		return nil, err
	}
	var failed error
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(wire)))
		defer func() {
			if b.Failed() {
				failed = fmt.Errorf("%s failed", label)
			}
		}()
		f(b, data)
	})
	if failed != nil {
		return nil, failed
	}
	if r.N == 0 {
		return nil, fmt.Errorf("%s: the benchmark did not run", label)
	}
	ns := float64(r.T.Nanoseconds()) / float64(r.N)
	return map[string]float64{
		"mb_per_s":      float64(len(wire)) / ns * 1e3,
		"ns_per_op":     ns,
		"allocs_per_op": float64(r.AllocsPerOp()), // whole allocations per event, as go test prints

	}, nil
}
