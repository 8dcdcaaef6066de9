package sse

// This file owns Config.Compress: the stream's own gzip, which borrows a
// compressor from a bounded pool for each write instead of pinning one.

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
)

// Compression, when Config.Compress is on, is done by the stream itself
// rather than by a wrapping middleware, so that an idle stream does not pin
// a deflate compressor (about 1 MB) for its whole life.
//
// A deflate stream does not need one compressor for its whole life: after
// a sync flush the output is byte-aligned, and a fresh compressor primed
// with the last few KB of plaintext as its dictionary goes on writing blocks
// that refer to that history, which the client still holds in its window.
// So a stream keeps only that tail of plaintext (and the running CRC-32 and
// length for the gzip trailer), and borrows a compressor from its
// middleware's pool for each write. The pool holds at most
// Config.MaxCompressors of them, however many streams compress; a busy
// stream usually finds the one it used last still untouched and skips the
// priming. Compressors write into memory and are given back before the
// network write, so a slow client never holds one. Heartbeats and other
// control frames go out as stored (uncompressed) blocks and need none.

const (
	// compressLevel is the flate level. Levels 1 to 6 of this flate
	// package write small flushed blocks uncompressed; 7 compresses them
	// about as well as compress/gzip's default level, and faster.
	compressLevel = 7

	// dictSize is how much plaintext (at least) a stream keeps as the next
	// compressor's dictionary.
	dictSize = 4 << 10

	// tailCap is the capacity of a stream's tail: the slack past dictSize
	// saves a move on every write, at a few bytes a stream.
	tailCap = dictSize + dictSize/4
)

// gzipHeader starts every compressed stream: no name, no time, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// compressorsInUse counts the compressors streams own, across pools, for
// tests.
var compressorsInUse atomic.Int64

// compressorPool lends flate writers to the compressed streams of one
// middleware. It makes at most max of them (about 1 MB each) and keeps
// them. A stream that needs one takes, in this order: the one it used last
// if no other stream took it since, a free one, a new one under the bound,
// or the one least recently used among those not compressing at that
// moment; if all are compressing it waits, for microseconds, as they
// write into memory only. A stream whose compressor was taken notices at
// its next write and primes another with its own tail.
type compressorPool struct {
	mu      sync.Mutex
	cond    sync.Cond // signalled when a compressor stops compressing, if waiting > 0
	all     []*compressor
	max     int
	tick    uint64 // counts uses, for least recently used
	waiting int
	counts  *Counters // where the pool counts what it makes, its waits and steals
}

func newCompressorPool(max int, counts *Counters) *compressorPool {
	p := &compressorPool{max: max, counts: counts}
	p.cond.L = &p.mu
	return p
}

// compressor is a flate writer and who may use it. Its fields other than
// fw and out are guarded by the pool's mutex; fw and out belong to the
// owner while busy.
type compressor struct {
	fw    *flate.Writer // writes to the compressor itself, that is to out
	out   *[]byte       // where the current write's output goes
	owner *gzipStream   // nil when free
	busy  bool          // the owner is compressing
	used  uint64        // the pool's tick at its last use
}

// Write appends p to the current output buffer.
func (c *compressor) Write(p []byte) (int, error) {
	*c.out = append(*c.out, p...)
	return len(p), nil
}

// acquire returns a compressor for g, busy, and whether it must be primed
// with g's dictionary (it is new to g, or another stream used it since).
func (p *compressorPool) acquire(g *gzipStream) (c *compressor, prime bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tick++
	if c := g.c; c != nil && c.owner == g {
		c.busy, c.used = true, p.tick
		return c, false
	}
	for {
		var free, lru *compressor
		for _, c := range p.all {
			if c.owner == nil {
				free = c
				break
			}
			if !c.busy && (lru == nil || c.used < lru.used) {
				lru = c
			}
		}
		switch {
		case free != nil:
			c = free
			compressorsInUse.Add(1)
		case len(p.all) < p.max:
			c = &compressor{} // its flate writer is made by the caller, outside the lock
			p.all = append(p.all, c)
			compressorsInUse.Add(1)
			p.counts.made.Add(1)
		case lru != nil:
			c = lru // its owner finds out at its next acquire
			p.counts.steals.Add(1)
		default:
			p.counts.waits.Add(1)
			p.waiting++
			p.cond.Wait()
			p.waiting--
			continue
		}
		c.owner, c.busy, c.used = g, true, p.tick
		g.c = c
		return c, true
	}
}

// release ends a use of c: other streams may take it from now on.
func (p *compressorPool) release(c *compressor) {
	p.mu.Lock()
	c.busy = false
	if p.waiting > 0 {
		p.cond.Signal()
	}
	p.mu.Unlock()
}

// disown frees the compressor g owns, if another stream has not taken it.
func (p *compressorPool) disown(g *gzipStream) {
	if g.c == nil {
		return
	}
	p.mu.Lock()
	if g.c.owner == g {
		g.c.owner = nil
		compressorsInUse.Add(-1)
	}
	p.mu.Unlock()
	g.c = nil
}

// gzipStream writes one stream's gzip member. It is used by the stream's
// pump alone.
type gzipStream struct {
	w    io.Writer // the response
	pool *compressorPool
	c    *compressor // the compressor used last; another stream may have taken it since
	crc  uint32
	size uint32 // length of the plaintext, modulo 2^32, as gzip wants
	// tail holds the latest plaintext: at least the last dictSize bytes
	// once that much was written, at most tailCap, in a buffer that never
	// grows.
	tail   []byte
	header bool // the gzip header was written
	// pending is what was written to w since the last flush, and
	// written what was flushed: the bytes Stats.WrittenBytes counts.
	pending uint64
	written atomic.Uint64
}

// write compresses p, flushes the compressor and writes the result, so
// that the client can decode all of p from what was written.
func (g *gzipStream) write(p []byte) error {
	if err := g.start(); err != nil {
		return err
	}
	out := g.compress(p)
	n, err := g.w.Write(*out)
	g.pending += uint64(n)
	putBuf(out)
	return err
}

// compress returns p compressed and flushed, in a buffer to give back with
// putBuf.
func (g *gzipStream) compress(p []byte) *[]byte {
	bp := getBuf()
	c, prime := g.pool.acquire(g)
	c.out = bp
	if c.fw == nil {
		c.fw, _ = flate.NewWriter(c, compressLevel) // the level is valid
	}
	if prime {
		dict := g.tail
		if len(dict) > dictSize {
			dict = dict[len(dict)-dictSize:]
		}
		c.fw.ResetDict(c, dict)
	}
	// Neither fails: c writes to memory.
	_, _ = c.fw.Write(p)
	_ = c.fw.Flush()
	c.out = nil
	g.pool.release(c)
	g.account(p)
	return bp
}

// writeStored writes p as a stored block, without a compressor. It is for
// the library's short frames, such as heartbeats.
func (g *gzipStream) writeStored(p []byte) error {
	// The compressor used last does not see p: let the next write prime
	// one with a tail that holds it.
	g.idle()
	if err := g.start(); err != nil {
		return err
	}
	var hdr [5]byte // BFINAL=0, BTYPE=00, then LEN and NLEN
	binary.LittleEndian.PutUint16(hdr[1:], uint16(len(p)))
	binary.LittleEndian.PutUint16(hdr[3:], ^uint16(len(p)))
	if _, err := g.w.Write(hdr[:]); err != nil {
		return err
	}
	n, err := g.w.Write(p)
	g.pending += uint64(len(hdr) + n)
	if err != nil {
		return err
	}
	g.account(p)
	return nil
}

func (g *gzipStream) start() error {
	if g.header {
		return nil
	}
	g.header = true
	n, err := g.w.Write(gzipHeader)
	g.pending += uint64(n)
	return err
}

// account adds p to the checksum, the length and the tail.
func (g *gzipStream) account(p []byte) {
	g.crc = crc32.Update(g.crc, crc32.IEEETable, p)
	g.size += uint32(len(p))
	if g.tail == nil {
		g.tail = make([]byte, 0, tailCap) // never grows
	}
	if len(p) >= dictSize {
		g.tail = append(g.tail[:0], p[len(p)-dictSize:]...)
		return
	}
	if len(g.tail)+len(p) > tailCap {
		n := copy(g.tail, g.tail[len(g.tail)-(dictSize-len(p)):])
		g.tail = g.tail[:n]
	}
	g.tail = append(g.tail, p...)
}

// idle gives the compressor back to the pool's free ones: the stream has
// been idle for a while, or is about to write without it.
func (g *gzipStream) idle() { g.pool.disown(g) }

// close ends the deflate stream and writes the gzip trailer.
func (g *gzipStream) close() error {
	g.idle()
	if err := g.start(); err != nil {
		return err
	}
	// The final block: an empty stored block with BFINAL set. Every write
	// ended with a sync flush, so the output is byte-aligned.
	if _, err := g.w.Write([]byte{1, 0, 0, 0xff, 0xff}); err != nil {
		return err
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], g.crc)
	binary.LittleEndian.PutUint32(trailer[4:], g.size)
	n, err := g.w.Write(trailer[:])
	g.pending += uint64(5 + n)
	return err
}

// acceptsGzip reports whether an Accept-Encoding header value accepts gzip
// (not with q=0).
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if c := strings.TrimSpace(coding); !strings.EqualFold(c, "gzip") && !strings.EqualFold(c, "x-gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
