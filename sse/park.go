package sse

// This file owns parking: a taken-over stream whose handler has returned
// and which has been idle for parkAfter gives up its pump's goroutine (a
// 2 KiB stack, and the goroutine's own 0.7 KiB of heap) and waits in a
// group: one goroutine that waits on the channels of up to parkSlots
// parked streams at once. When an event arrives on one, or the stream is
// poked (the client left, a heartbeat is due, the stream is cancelled),
// the group starts a pump goroutine for it again. A stream parks only
// when its pump says so, and leaves only by its group, the one goroutine
// that may then be receiving from its channel.

import (
	"errors"
	"sync"

	"github.com/echosse/echo-sse/event"
)

// The bits of Stream.state.
const (
	parkedBit = 1 << iota // the stream is in a group, without a pump
	wokenBit              // poked since the pump last looked
)

// parkSlots is how many streams a group waits for. Its select has a case
// per slot, written out: a select of constant cases needs no allocation,
// where reflect.Select's would.
const parkSlots = 16

// errParked is what the pump returns when the stream has parked.
var errParked = errors.New("echosse: the stream parked")

// parkGroups is the process's groups with a free slot.
type parkGroups struct {
	mu      sync.Mutex
	free    []*parkGroup // groups with a free slot; some may have filled or stopped since (see take)
	groups  int          // groups running
	streams int          // slots taken or promised, in all
	parks   int64        // slots ever promised, for tests
}

var parkers parkGroups

// A parkGroup is a goroutine waiting on the channels of its parked
// streams, and what it is told.
type parkGroup struct {
	n      int  // slots taken or promised; under parkers.mu
	listed bool // in parkers.free; under parkers.mu
	done   bool // the goroutine has stopped; under parkers.mu

	mu       sync.Mutex
	adds     []*Stream     // streams to wait for
	releases []*Stream     // streams poked: their pump starts again
	wake     chan struct{} // capacity 1: adds or releases are waiting

	// The goroutine's own.
	streams [parkSlots]*Stream
	chans   [parkSlots]<-chan event.Event
	count   int // streams waited for
}

// park gives the stream, detached (it took its connection over and its
// handler has returned), to a group, if it may park: it holds no
// compressor and nothing is queued. It reports whether it did; the pump's goroutine must
// then return at once.
func (s *Stream) park() bool {
	if len(s.ch) > 0 || s.gz != nil && (s.gz.c != nil || s.release) {
		return false
	}
	g := parkers.take()
	s.group = g
	// Not if the stream was poked since the pump last looked: the pump
	// goes on and sees why.
	if old := s.state.Load(); old&wokenBit != 0 || !s.state.CompareAndSwap(old, old|parkedBit) {
		parkers.give(g)
		return false
	}
	s.srv.counters.parked.Add(1)
	g.mu.Lock()
	g.adds = append(g.adds, s)
	g.mu.Unlock()
	g.poke()
	return true
}

// take returns a group with a slot promised to the caller, starting one
// if none has a free slot.
func (p *parkGroups) take() *parkGroup {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parks++
	for len(p.free) > 0 {
		g := p.free[len(p.free)-1]
		if g.n < parkSlots && !g.done {
			g.n++
			p.streams++
			return g
		}
		p.free[len(p.free)-1] = nil
		p.free = p.free[:len(p.free)-1]
		g.listed = false
	}
	g := &parkGroup{n: 1, listed: true, wake: make(chan struct{}, 1)}
	p.free = append(p.free, g)
	p.groups++
	p.streams++
	go g.run()
	return g
}

// give gives a slot of g back.
func (p *parkGroups) give(g *parkGroup) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g.n--
	p.streams--
	if !g.listed {
		g.listed = true
		p.free = append(p.free, g)
	}
	if g.n == 0 {
		g.poke() // to stop
	}
}

// stop reports whether g stops: it has no slot taken or promised.
func (p *parkGroups) stop(g *parkGroup) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if g.n > 0 {
		return false
	}
	g.done = true
	p.groups--
	return true
}

// poke wakes g's goroutine, unless a wake-up is pending already.
func (g *parkGroup) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// release asks g to start the pump of s again, if s is still parked
// there: s was poked.
func (g *parkGroup) release(s *Stream) {
	g.mu.Lock()
	g.releases = append(g.releases, s)
	g.mu.Unlock()
	g.poke()
}

// run waits on the parked streams' channels until no stream is left.
func (g *parkGroup) run() {
	var adds, releases []*Stream
	for {
		g.mu.Lock()
		adds, g.adds = g.adds, adds[:0]
		releases, g.releases = g.releases, releases[:0]
		g.mu.Unlock()
		for _, s := range adds {
			if s.state.Load()&wokenBit != 0 {
				g.resume(s, pending{}) // poked before it was waited for
				continue
			}
			i := 0
			for g.streams[i] != nil {
				i++
			}
			g.streams[i], g.chans[i] = s, s.ch
			g.count++
		}
		for _, s := range releases {
			for i, t := range g.streams {
				if t == s {
					g.leave(i, pending{})
				}
			}
		}
		clear(adds)
		clear(releases)
		if g.count == 0 && parkers.stop(g) {
			return
		}
		g.wait()
	}
}

// leave starts the pump of the stream in slot i again, with first.
func (g *parkGroup) leave(i int, first pending) {
	s := g.streams[i]
	g.streams[i], g.chans[i] = nil, nil
	g.count--
	g.resume(s, first)
}

// resume starts a pump goroutine for s, which has left g.
func (g *parkGroup) resume(s *Stream, first pending) {
	s.state.And(^uint32(parkedBit | wokenBit)) // a poke's wake-up is in s.wake
	s.srv.counters.parked.Add(-1)
	parkers.give(g)
	go s.pumpDetached(first)
}

// wait waits for an event on a slot's channel, or for g to be told of
// adds or releases.
func (g *parkGroup) wait() {
	c := &g.chans
	var ev event.Event
	var ok bool
	var i int
	select {
	case <-g.wake:
		return
	case ev, ok = <-c[0]:
		i = 0
	case ev, ok = <-c[1]:
		i = 1
	case ev, ok = <-c[2]:
		i = 2
	case ev, ok = <-c[3]:
		i = 3
	case ev, ok = <-c[4]:
		i = 4
	case ev, ok = <-c[5]:
		i = 5
	case ev, ok = <-c[6]:
		i = 6
	case ev, ok = <-c[7]:
		i = 7
	case ev, ok = <-c[8]:
		i = 8
	case ev, ok = <-c[9]:
		i = 9
	case ev, ok = <-c[10]:
		i = 10
	case ev, ok = <-c[11]:
		i = 11
	case ev, ok = <-c[12]:
		i = 12
	case ev, ok = <-c[13]:
		i = 13
	case ev, ok = <-c[14]:
		i = 14
	case ev, ok = <-c[15]:
		i = 15
	}
	g.leave(i, pending{ev: ev, ok: ok, has: true})
}
