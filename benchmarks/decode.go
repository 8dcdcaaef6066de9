package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sseclient"
	r3sse "github.com/r3labs/sse/v2"
	gosse "github.com/tmaxmax/go-sse"
)

// The client decode scenario (D1) runs in the driver with testing.Benchmark:
// one stream of b.N ~100-byte JSON events, the same pre-encoded bytes for
// every row, read by each client from an in-memory HTTP response (an
// http.RoundTripper whose body is a ring over the bytes), so that no
// network or HTTP parsing is measured. The bare bufio.Reader line splitter
// is the practical limit.

// decodeRing is how many distinct events the ring holds.
const decodeRing = 1024

// decodeWire returns the wire bytes of decodeRing events, each of the same
// length, and that length.
func decodeWire() ([]byte, int, error) {
	var wire []byte
	size := 0
	for i := range decodeRing {
		n := len(wire)
		var err error
		wire, err = event.Event{Data: json.RawMessage(makePayload(i, 1763856000000000000))}.AppendTo(wire)
		if err != nil {
			return nil, 0, err
		}
		if size == 0 {
			size = len(wire) - n
		} else if len(wire)-n != size {
			return nil, 0, fmt.Errorf("event %d is %d bytes, not %d", i, len(wire)-n, size)
		}
	}
	return wire, size, nil
}

// ringReader serves left bytes of wire, round and round.
type ringReader struct {
	wire []byte
	off  int
	left int64
}

func (r *ringReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := copy(p, r.wire[r.off:])
	r.off = (r.off + n) % len(r.wire)
	r.left -= int64(n)
	return n, nil
}

// memTransport answers every request with a 200 text/event-stream
// response whose body is events events of the ring.
type memTransport struct {
	wire   []byte
	size   int
	events int
}

func (t *memTransport) body() *ringReader {
	return &ringReader{wire: t.wire, left: int64(t.events) * int64(t.size)}
}

func (t *memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/event-stream"}},
		Body:          io.NopCloser(t.body()),
		ContentLength: -1,
		Request:       req,
	}, nil
}

// stopBackOff stops r3labs' client reconnecting (backoff.Stop is -1).
type stopBackOff struct{}

func (stopBackOff) NextBackOff() time.Duration { return -1 }
func (stopBackOff) Reset()                     {}

// decoders maps a D1 row to the function that reads one stream of t.events
// events and returns how many it counted, each checked to be payloadSize
// bytes.
var decoders = map[string]func(t *memTransport) (int, error){
	"bufio.Reader lines": func(t *memTransport) (int, error) {
		br := bufio.NewReader(t.body())
		n := 0
		for {
			line, err := br.ReadSlice('\n')
			if err == io.EOF {
				return n, nil
			}
			if err != nil {
				return n, err
			}
			if bytes.HasPrefix(line, []byte("data:")) {
				n++
			}
		}
	},
	"echosse Decoder": func(t *memTransport) (int, error) {
		d := event.NewDecoder(t.body())
		n := 0
		for {
			ev, err := d.Decode()
			if err == io.EOF {
				return n, nil
			}
			if err != nil {
				return n, err
			}
			if s, _ := ev.Data.(string); len(s) != payloadSize {
				return n, fmt.Errorf("event %d: %d bytes of data", n, len(s))
			}
			n++
		}
	},
	"echosse sseclient Views": func(t *memTransport) (int, error) {
		c := &sseclient.Client{HTTPClient: &http.Client{Transport: t}}
		req, _ := http.NewRequest(http.MethodGet, "http://mem/stream", nil)
		n := 0
		for v, err := range c.Views(context.Background(), req) {
			if err != nil {
				return n, err
			}
			if len(v.Data) != payloadSize {
				return n, fmt.Errorf("event %d: %d bytes of data", n, len(v.Data))
			}
			if n++; n == t.events {
				break
			}
		}
		return n, nil
	},
	"echosse Decoder.Scan": func(t *memTransport) (int, error) {
		d := event.NewDecoder(t.body())
		n := 0
		for d.Scan() {
			if len(d.View().Data) != payloadSize {
				return n, fmt.Errorf("event %d: %d bytes of data", n, len(d.View().Data))
			}
			n++
		}
		return n, d.Err()
	},
	"echosse sseclient Events": func(t *memTransport) (int, error) {
		c := &sseclient.Client{HTTPClient: &http.Client{Transport: t}}
		req, _ := http.NewRequest(http.MethodGet, "http://mem/stream", nil)
		n := 0
		for ev, err := range c.Events(context.Background(), req) {
			if err != nil {
				return n, err
			}
			if s, _ := ev.Data.(string); len(s) != payloadSize {
				return n, fmt.Errorf("event %d: %d bytes of data", n, len(s))
			}
			if n++; n == t.events {
				break
			}
		}
		return n, nil
	},
	"r3labs Client": func(t *memTransport) (int, error) {
		c := r3sse.NewClient("http://mem/stream")
		c.Connection = &http.Client{Transport: t}
		c.ReconnectStrategy = stopBackOff{}
		n := 0
		var bad error
		err := c.SubscribeRaw(func(ev *r3sse.Event) {
			if len(ev.Data) != payloadSize && bad == nil {
				bad = fmt.Errorf("event %d: %d bytes of data", n, len(ev.Data))
			}
			n++
		})
		if err == nil {
			err = bad
		}
		return n, err
	},
	"gosse Connection": func(t *memTransport) (int, error) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := &gosse.Client{HTTPClient: &http.Client{Transport: t}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://mem/stream", nil)
		conn := c.NewConnection(req)
		n := 0
		var bad error
		conn.SubscribeMessages(func(ev gosse.Event) {
			if len(ev.Data) != payloadSize && bad == nil {
				bad = fmt.Errorf("event %d: %d bytes of data", n, len(ev.Data))
			}
			if n++; n == t.events {
				cancel()
			}
		})
		err := conn.Connect()
		if err == context.Canceled {
			err = nil
		}
		if err == nil {
			err = bad
		}
		return n, err
	},
	"gosse Read (parser)": func(t *memTransport) (int, error) {
		n := 0
		for ev, err := range gosse.Read(t.body(), nil) {
			if err != nil {
				return n, err
			}
			if len(ev.Data) != payloadSize {
				return n, fmt.Errorf("event %d: %d bytes of data", n, len(ev.Data))
			}
			n++
		}
		return n, nil
	},
}

// decodeRows are the rows of D1, in order: the bufio splitter is the
// reference, sseclient's Views (the client's allocation-free way) the row
// the ratios are computed for, and the clients of r3labs and go-sse the
// peers. sseclient's Events, the Decoder's two ways and go-sse's parser
// are informational, and have ratios of their own (decodePairs).
var decodeRows = []variant{
	{Server: "raw", Label: "bufio.Reader lines"},
	{Server: "echosse", Label: ""},
	{Server: "echosse", Label: "echosse sseclient Events"},
	{Server: "echosse", Label: "echosse Decoder.Scan"},
	{Server: "echosse", Label: "echosse Decoder"},
	{Server: "r3labs", Label: "r3labs Client"},
	{Server: "gosse", Label: "gosse Connection"},
	// Not a peer's client: it is left out of the best peer.
	{Server: "gosse-parser", Label: "gosse Read (parser)"},
}

var decodePairs = [][2]string{
	{"echosse sseclient Events", "bufio.Reader lines"},
	{"echosse sseclient Events", "gosse Connection"},
	{"echosse Decoder.Scan", "bufio.Reader lines"},
	{"echosse Decoder", "bufio.Reader lines"},
	{"echosse Decoder", "gosse Read (parser)"},
}

const (
	mNsPerEvent    = "ns_per_event"
	mCPUNsPerEvent = "cpu_ns_per_event"
	mAllocsPerEv   = "allocs_per_event"
	mBytesPerEv    = "bytes_per_event"
)

func decodeScenario(o options) *scenario {
	return &scenario{
		ID:    "D1",
		Title: "Client decode, one stream",
		Notes: []string{
			fmt.Sprintf("The same pre-encoded bytes (%d distinct %d-byte JSON events, \"data: \" lines, round and round) read by each row with testing.Benchmark in the driver process, b.N events per stream. The clients read them from an in-memory HTTP response (an http.RoundTripper returning a body that reads from memory): no network, no HTTP parsing; the parsers (bufio, Decoder, go-sse's Read) read the same bytes directly.", decodeRing, payloadSize),
			"The echosse row is sseclient.Client.Views (each event a borrowed event.View, as bufio.Scanner lends its bytes); \"echosse sseclient Events\" is Client.Events (each event an event.Event of strings); \"echosse Decoder.Scan\" and \"echosse Decoder\" are event.Decoder's Scan (borrowed) and Decode (strings) on the bytes directly. r3labs is Client.SubscribeRaw (a goroutine and a channel per stream), go-sse is Client.NewConnection + SubscribeMessages + Connect. CPU ns/event is the process's user + system time (getrusage) over the last b.N round, GC included; allocs and B/event from testing.Benchmark.",
		},
		Variants: decodeRows,
		Reps:     o.Reps,
		Metrics: []metric{
			{mEventsPerSec, "events/s", +1, true},
			{mNsPerEvent, "ns/event", -1, true},
			{mCPUNsPerEvent, "CPU ns/event", -1, true},
			{mAllocsPerEv, "allocs/event", -1, false},
			{mBytesPerEv, "B/event", -1, false},
		},
		Ref:   "raw",
		Pairs: decodePairs,
		Run:   func(_ context.Context, v variant) (map[string]float64, error) { return runDecode(v) },
	}
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func runDecode(v variant) (map[string]float64, error) {
	label := v.Label
	if label == "" {
		label = "echosse sseclient Views"
	}
	f := decoders[label]
	if f == nil {
		return nil, fmt.Errorf("no decoder %q", label)
	}
	wire, size, err := decodeWire()
	if err != nil {
		return nil, err
	}
	var failed error
	var cpu int64
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(size))
		t := &memTransport{wire: wire, size: size, events: b.N}
		c0 := cpuNanos()
		b.ResetTimer()
		n, err := f(t)
		b.StopTimer()
		cpu = cpuNanos() - c0 // the last round is the one reported
		if err == nil && n != b.N {
			err = fmt.Errorf("%d events of %d", n, b.N)
		}
		if err != nil && failed == nil {
			failed = fmt.Errorf("%s: %w", label, err)
		}
	})
	if failed != nil {
		return nil, failed
	}
	if r.N == 0 {
		return nil, fmt.Errorf("%s: the benchmark did not run", label)
	}
	ns := float64(r.T.Nanoseconds()) / float64(r.N)
	return map[string]float64{
		mEventsPerSec:  1e9 / ns,
		mNsPerEvent:    ns,
		mCPUNsPerEvent: float64(cpu) / float64(r.N),
		mAllocsPerEv:   float64(r.MemAllocs) / float64(r.N),
		mBytesPerEv:    float64(r.MemBytes) / float64(r.N),
	}, nil
}
