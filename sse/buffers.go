package sse

// This file owns the buffers events are encoded into: pooled small ones,
// and a few large ones for bursts, so that an idle stream holds none.

import (
	"runtime"
	"sync"
)

// Buffers events are encoded into, so that an idle stream holds none.
// Most batches are small, and small buffers come from a sync.Pool. A burst
// takes one of a few large buffers, kept for that; when all are in use its
// batches stay small. So a busy moment on many streams at once neither
// leaves a large buffer per stream in a pool nor a trail of garbage.
var (
	bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
	bigBufs struct {
		sync.Mutex
		free []*[]byte
		out  int // large buffers in use
	}
)

const (
	smallBatch = 8 << 10          // a batch in a small buffer ends past this
	maxPooled  = 16 << 10         // small buffers up to this capacity go back to bufPool
	bigCap     = maxBatch + 8<<10 // capacity of a large buffer
	maxBigBufs = 4                // large buffers, per GOMAXPROCS
)

func getBuf() *[]byte {
	bp := bufPool.Get().(*[]byte)
	*bp = (*bp)[:0]
	return bp
}

func putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooled {
		bufPool.Put(bp)
	}
}

// takeBig returns a large buffer holding what bp holds, in place of bp, or
// nil when the large buffers are all in use.
func takeBig(bp *[]byte) *[]byte {
	bigBufs.Lock()
	if bigBufs.out >= maxBigBufs*runtime.GOMAXPROCS(0) {
		bigBufs.Unlock()
		return nil
	}
	bigBufs.out++
	var big *[]byte
	if n := len(bigBufs.free); n > 0 {
		big = bigBufs.free[n-1]
		bigBufs.free = bigBufs.free[:n-1]
	}
	bigBufs.Unlock()
	if big == nil {
		b := make([]byte, 0, bigCap)
		big = &b
	}
	*big = append((*big)[:0], *bp...)
	putBuf(bp)
	return big
}

// putBuffer gives back bp, a large buffer if big.
func putBuffer(bp *[]byte, big bool) {
	if big {
		putBig(bp)
	} else {
		putBuf(bp)
	}
}

// putBig gives back a buffer from takeBig.
func putBig(bp *[]byte) {
	bigBufs.Lock()
	bigBufs.out--
	if cap(*bp) <= bigCap { // not grown by a huge event
		bigBufs.free = append(bigBufs.free, bp)
	}
	bigBufs.Unlock()
}
