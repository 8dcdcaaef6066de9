package sse

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

// checkGzip checks that out is a whole gzip stream of want, and that every
// prefix of it that ends at a flush point decodes to the plaintext written
// up to there.
func checkGzip(t *testing.T, out []byte, want []byte, flushes []int, plains []int) {
	t.Helper()
	for i, end := range flushes {
		if end == 0 {
			continue // nothing written yet, not even the header
		}
		zr, err := gzip.NewReader(bytes.NewReader(out[:end]))
		if err != nil {
			t.Fatalf("flush %d: %v", i, err)
		}
		got := make([]byte, plains[i])
		if _, err := io.ReadFull(zr, got); err != nil {
			t.Fatalf("flush %d: decoding the first %d bytes: %v", i, plains[i], err)
		}
		if !bytes.Equal(got, want[:plains[i]]) {
			t.Fatalf("flush %d: got %q, want %q", i, got, want[:plains[i]])
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("decoding the whole stream: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d:\n%q\n%q", len(got), len(want), got, want)
	}
}

// runOps drives gzipStreams from ops, all sharing a pool of maxCompressors:
// each op picks a stream and writes an event to it, writes a stored frame,
// or lets it go idle. Streams outnumbering the compressors take each
// other's.
func runOps(t *testing.T, streams, maxCompressors int, ops []byte, payload func(i int) []byte) {
	t.Helper()
	pool := newCompressorPool(maxCompressors, new(Counters))
	type stream struct {
		g               *gzipStream
		out, plain      bytes.Buffer
		flushes, plains []int
	}
	ss := make([]*stream, streams)
	for i := range ss {
		ss[i] = &stream{}
		ss[i].g = &gzipStream{w: &ss[i].out, pool: pool}
	}
	for i, op := range ops {
		s := ss[int(op/4)%streams]
		var err error
		switch op % 4 {
		case 0, 1:
			p := payload(i)
			s.plain.Write(p)
			err = s.g.write(p)
		case 2:
			p := []byte(": ping\n\n")
			s.plain.Write(p)
			err = s.g.writeStored(p)
		case 3:
			s.g.idle()
		}
		if err != nil {
			t.Fatal(err)
		}
		s.flushes = append(s.flushes, s.out.Len())
		s.plains = append(s.plains, s.plain.Len())
	}
	for _, s := range ss {
		if err := s.g.close(); err != nil {
			t.Fatal(err)
		}
		if s.g.c != nil {
			t.Fatal("compressor kept after close")
		}
		checkGzip(t, s.out.Bytes(), s.plain.Bytes(), s.flushes, s.plains)
	}
	if len(pool.all) > maxCompressors {
		t.Fatalf("the pool made %d compressors, more than its bound %d", len(pool.all), maxCompressors)
	}
}

func jsonEvent(r *rand.Rand, i int) []byte {
	syms := []string{"ECHO", "GOPH", "SSE", "HTTP", "KOA"}
	return fmt.Appendf(nil, "id: %d\nevent: tick\ndata: {\"symbol\":%q,\"price\":%.2f,\"volume\":%d}\n\n",
		i, syms[r.IntN(len(syms))], 10+r.Float64()*90, r.IntN(100000))
}

func TestGzipStreamStitchesCompressors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 40 {
		ops := make([]byte, 1+r.IntN(400))
		for i := range ops {
			ops[i] = byte(r.IntN(256))
		}
		// One stream alone, then several taking turns with fewer
		// compressors than streams.
		streams, compressors := 1, 1
		if n%2 == 1 {
			streams, compressors = 2+r.IntN(6), 1+r.IntN(3)
		}
		t.Run(fmt.Sprintf("%d-streams-%d-compressors-%d", n, streams, compressors), func(t *testing.T) {
			runOps(t, streams, compressors, ops, func(i int) []byte {
				if r.IntN(20) == 0 { // now and then a large event
					return bytes.Repeat(jsonEvent(r, i), 100+r.IntN(500))
				}
				return jsonEvent(r, i)
			})
		})
	}
	if n := compressorsInUse.Load(); n != 0 {
		t.Fatalf("%d compressors still in use", n)
	}
}

func TestGzipStreamEmptyAndIdleOnly(t *testing.T) {
	runOps(t, 1, 1, nil, nil)
	runOps(t, 1, 1, []byte{3, 2, 3, 2}, nil)
}

// TestGzipStreamsTakeTurnsConcurrently runs many streams on their own
// goroutines over a pool of two compressors: each output decodes to what
// its stream wrote, and the pool never grows past its bound.
func TestGzipStreamsTakeTurnsConcurrently(t *testing.T) {
	const streams, events = 16, 300
	pool := newCompressorPool(2, new(Counters))
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, streams)
	plains := make([]bytes.Buffer, streams)
	for s := range streams {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(s), 9))
			g := &gzipStream{w: &outs[s], pool: pool}
			for i := range events {
				p := jsonEvent(r, i)
				plains[s].Write(p)
				if err := g.write(p); err != nil {
					t.Error(err)
					return
				}
				if r.IntN(50) == 0 {
					g.idle()
				}
			}
			if err := g.close(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for s := range streams {
		checkGzip(t, outs[s].Bytes(), plains[s].Bytes(), nil, nil)
	}
	if len(pool.all) > 2 {
		t.Fatalf("the pool made %d compressors, more than its bound 2", len(pool.all))
	}
	if n := compressorsInUse.Load(); n != 0 {
		t.Fatalf("%d compressors still owned after every stream closed", n)
	}
}

func FuzzGzipStream(f *testing.F) {
	f.Add([]byte{0, 0, 3, 0, 2, 3, 1}, []byte("data: {\"a\":1}\n\n"))
	f.Add([]byte{2, 2, 2}, []byte{})
	f.Add([]byte{0, 3, 0, 3, 0}, bytes.Repeat([]byte("x"), 70000))
	f.Fuzz(func(t *testing.T, ops []byte, data []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		runOps(t, 3, 2, ops, func(i int) []byte {
			// Vary the payload with i so the dictionary matters.
			return append(fmt.Appendf(nil, "id: %d\n", i), data...)
		})
	})
}

func TestAcceptsGzip(t *testing.T) {
	for _, tt := range []struct {
		give string
		want bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"br;q=1.0, gzip;q=0.8", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000, br", false},
		{"deflate, br", false},
		{"identity", false},
		{"gzipx", false},
	} {
		if got := acceptsGzip(tt.give); got != tt.want {
			t.Errorf("acceptsGzip(%q): got %v, want %v", tt.give, got, tt.want)
		}
	}
}

// countWriter counts what is written to it.
type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// BenchmarkCompress compares, per ~110-byte JSON event flushed on its own:
// compress/gzip at its default level (what Echo's Gzip middleware uses), a
// compressed stream that stays busy, and one whose every event comes after
// an idle spell (the compressor reset with the saved dictionary).
func BenchmarkCompress(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	evs := make([][]byte, 4096)
	raw := 0
	for i := range evs {
		evs[i] = jsonEvent(r, i)
		raw += len(evs[i])
	}
	avg := float64(raw) / float64(len(evs))
	report := func(b *testing.B, out *countWriter, n int) {
		b.ReportMetric(float64(out.n)/(avg*float64(n)), "wire/raw")
	}
	b.Run("echo-gzip", func(b *testing.B) {
		out := &countWriter{}
		zw, _ := gzip.NewWriterLevel(out, gzip.DefaultCompression)
		n := 0
		for b.Loop() {
			zw.Write(evs[n%len(evs)])
			zw.Flush()
			n++
		}
		report(b, out, n)
	})
	b.Run("stream-busy", func(b *testing.B) {
		out := &countWriter{}
		g := &gzipStream{w: out, pool: newCompressorPool(1, new(Counters))}
		n := 0
		for b.Loop() {
			g.write(evs[n%len(evs)])
			n++
		}
		b.StopTimer()
		g.close()
		report(b, out, n)
	})
	b.Run("stream-after-idle", func(b *testing.B) {
		out := &countWriter{}
		g := &gzipStream{w: out, pool: newCompressorPool(1, new(Counters))}
		n := 0
		for b.Loop() {
			g.idle()
			g.write(evs[n%len(evs)])
			n++
		}
		b.StopTimer()
		g.close()
		report(b, out, n)
	})
}
