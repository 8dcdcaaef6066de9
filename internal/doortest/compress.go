package doortest

// This file tests compression: the door's usual compression middleware in
// front (Config.Gzip), the core's own (Config.Compress), and both at once.
// Each event must reach the client before the next is sent, through the
// compressor, and the response must decode after one gunzip, its trailer
// included.

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// compressEvents is how many events the compression cases send.
const compressEvents = 4

// testGzipInFront: behind the door's compression middleware, a client that
// accepts gzip gets a gzip'd stream whose every event arrives at once (the
// first included) and decodes after gunzip; one that does not gets it
// plain.
func testGzipInFront(t *testing.T, d Door) {
	testCompressed(t, d, Config{Gzip: true})
}

// testCompress: with Config.Compress, the same, compressed by the core,
// which also says Vary: Accept-Encoding.
func testCompress(t *testing.T, d Door) {
	testCompressed(t, d, Config{Config: sse.Config{Compress: true}})
}

// testCompressed runs the compression subtests for cfg.
func testCompressed(t *testing.T, d Door, cfg Config) {
	acks := make(chan struct{})
	r := serve(t, d, cfg, ackEach(compressEvents, acks))
	t.Run("gzip", func(t *testing.T) {
		res := r.get(t, "/events", "Accept-Encoding", "gzip")
		expectStream(t, res)
		expectGzip(t, res)
		if cfg.Compress && !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
			t.Fatalf("got Vary %q, want Accept-Encoding", res.Header.Get("Vary"))
		}
		readAcked(t, event.NewDecoder(bodyOf(res)), compressEvents, acks)
	})
	t.Run("identity", func(t *testing.T) {
		res := r.get(t, "/events")
		expectStream(t, res)
		if got := res.Header.Values("Content-Encoding"); len(got) != 0 {
			t.Fatalf("got Content-Encoding %q for a client that asked for none", got)
		}
		readAcked(t, event.NewDecoder(res.Body), compressEvents, acks)
	})
}

// testCompressBehindGzip: Config.Compress behind the door's compression
// middleware either refuses the stream, with 500 and before the handler
// gets it (a middleware that would compress it again), or compresses it
// once (one that leaves a response with a Content-Encoding alone): never
// twice.
func testCompressBehindGzip(t *testing.T, d Door) {
	acks := make(chan struct{})
	var handled atomic.Int64
	r := serve(t, d, Config{Config: sse.Config{Compress: true}, Gzip: true}, func(s *sse.Stream, req *http.Request) error {
		handled.Add(1)
		return ackEach(compressEvents, acks)(s, req)
	})
	res := r.get(t, "/events", "Accept-Encoding", "gzip")
	if res.StatusCode == http.StatusInternalServerError {
		t.Logf("%s refuses Compress behind its compression middleware", d.Name)
		expectNoStream(t, res, http.StatusInternalServerError)
		if handled.Load() != 0 {
			t.Fatal("refused with 500 after the handler got the stream")
		}
		return
	}
	t.Logf("%s compresses once with Compress behind its compression middleware", d.Name)
	expectStream(t, res)
	expectGzip(t, res)
	readAcked(t, event.NewDecoder(bodyOf(res)), compressEvents, acks)
}
