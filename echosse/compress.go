package echosse

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
// So a stream keeps a compressor only while it is busy; once it has been
// idle for Config.CompressIdle it keeps just that tail of plaintext (and the
// running CRC-32 and length for the gzip trailer) and gives the compressor
// back to a shared free list. Heartbeats on an idle stream go out as stored
// (uncompressed) blocks and never take a compressor.

const (
	// compressLevel is the flate level. Levels 1 to 6 of this flate
	// package write small flushed blocks uncompressed; 7 compresses them
	// about as well as compress/gzip's default level, and faster.
	compressLevel = 7

	// dictSize is how much plaintext (at least) an idle stream keeps as
	// the next compressor's dictionary.
	dictSize = 4 << 10

	// maxIdleCompressors bounds the free list of compressors kept for
	// streams that become busy again.
	maxIdleCompressors = 16
)

// gzipHeader starts every compressed stream: no name, no time, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// compressors is the free list of flate writers shared by all streams. Not
// a sync.Pool: the garbage collector empties those, and a compressor costs
// about 1 MB to allocate.
var compressors struct {
	sync.Mutex
	free []*flate.Writer
}

// compressorsInUse counts the compressors streams hold, for tests.
var compressorsInUse atomic.Int64

func getCompressor(w io.Writer, dict []byte) *flate.Writer {
	compressorsInUse.Add(1)
	compressors.Lock()
	var fw *flate.Writer
	if n := len(compressors.free); n > 0 {
		fw = compressors.free[n-1]
		compressors.free = compressors.free[:n-1]
	}
	compressors.Unlock()
	if fw == nil {
		fw, _ = flate.NewWriter(w, compressLevel) // the level is valid
	}
	fw.ResetDict(w, dict)
	return fw
}

func putCompressor(fw *flate.Writer) {
	compressorsInUse.Add(-1)
	fw.ResetDict(nil, nil) // drop references to the stream
	compressors.Lock()
	if len(compressors.free) < maxIdleCompressors {
		compressors.free = append(compressors.free, fw)
	}
	compressors.Unlock()
}

// gzipStream writes one stream's gzip member, borrowing a compressor while
// it is busy. It is used by the stream's pump alone.
type gzipStream struct {
	w    io.Writer     // the response
	fw   *flate.Writer // nil while idle
	crc  uint32
	size uint32 // length of the plaintext, modulo 2^32, as gzip wants
	// tail holds the latest plaintext: at least the last dictSize bytes
	// once that much was written, at most twice that, in a buffer that
	// never grows.
	tail   []byte
	header bool // the gzip header was written
}

// write compresses p and flushes the compressor, so that the client can
// decode all of p from what was written.
func (g *gzipStream) write(p []byte) error {
	if err := g.start(); err != nil {
		return err
	}
	if g.fw == nil {
		dict := g.tail
		if len(dict) > dictSize {
			dict = dict[len(dict)-dictSize:]
		}
		g.fw = getCompressor(g.w, dict)
	}
	if _, err := g.fw.Write(p); err != nil {
		return err
	}
	if err := g.fw.Flush(); err != nil {
		return err
	}
	g.account(p)
	return nil
}

// writeStored writes p as a stored block, without a compressor. It is for
// small writes on an idle stream, such as heartbeats, and must only be used
// while the output is byte-aligned (no compressor, or one just flushed).
func (g *gzipStream) writeStored(p []byte) error {
	if g.fw != nil {
		return g.write(p)
	}
	if err := g.start(); err != nil {
		return err
	}
	var hdr [5]byte // BFINAL=0, BTYPE=00, then LEN and NLEN
	binary.LittleEndian.PutUint16(hdr[1:], uint16(len(p)))
	binary.LittleEndian.PutUint16(hdr[3:], ^uint16(len(p)))
	if _, err := g.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := g.w.Write(p); err != nil {
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
	_, err := g.w.Write(gzipHeader)
	return err
}

// account adds p to the checksum, the length and the tail.
func (g *gzipStream) account(p []byte) {
	g.crc = crc32.Update(g.crc, crc32.IEEETable, p)
	g.size += uint32(len(p))
	if g.tail == nil {
		g.tail = make([]byte, 0, 2*dictSize) // never grows
	}
	if len(p) >= dictSize {
		g.tail = append(g.tail[:0], p[len(p)-dictSize:]...)
		return
	}
	if len(g.tail)+len(p) > 2*dictSize {
		n := copy(g.tail, g.tail[len(g.tail)-(dictSize-len(p)):])
		g.tail = g.tail[:n]
	}
	g.tail = append(g.tail, p...)
}

// idle gives the compressor back, so that an idle stream holds only its
// tail (8 KB at most).
func (g *gzipStream) idle() {
	if g.fw == nil {
		return
	}
	putCompressor(g.fw)
	g.fw = nil
}

// close ends the deflate stream and writes the gzip trailer.
func (g *gzipStream) close() error {
	if err := g.start(); err != nil {
		return err
	}
	var err error
	if g.fw != nil {
		err = g.fw.Close()
		putCompressor(g.fw)
		g.fw = nil
	} else {
		// The final block: an empty stored block with BFINAL set.
		_, err = g.w.Write([]byte{1, 0, 0, 0xff, 0xff})
	}
	if err != nil {
		return err
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], g.crc)
	binary.LittleEndian.PutUint32(trailer[4:], g.size)
	_, err = g.w.Write(trailer[:])
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
