package broker

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/echosse/echo-sse/event"
)

// maxIDLen is the longest event ID the broker accepts, and the longest
// Last-Event-ID it looks up; a longer Last-Event-ID is unknown.
const maxIDLen = 256

// memory is the default [Backend]: every topic's history in a ring buffer
// in this process.
//
// IDs it assigns are decimal sequence numbers, one order for all topics.
// The sequence starts at the time the backend is created, in microseconds
// since 1970, so that an ID a client kept from an earlier run of the process
// (whose history is gone) is older than every ID of this run: it is
// reported as a gap instead of being mistaken for a new event.
type memory struct {
	size int           // events kept per topic
	age  time.Duration // how long they are kept; <= 0: no limit
	now  func() time.Time

	// Bytes kept (see cost), per topic and in all; <= 0: no limit.
	topicBytes, totalBytes int64

	mu      sync.Mutex
	base    uint64 // the sequence starts after it
	seq     uint64 // the last Seq assigned
	topics  map[string]*history
	ids     map[string]uint64 // caller-set IDs in the history -> Seq
	forgot  uint64            // the newest Seq of a history dropped whole
	deliver func(Message)
	closed  bool
	bytes   int64    // the cost of every message kept
	oldest  byOldest // the topics that keep messages, the oldest first
}

func newMemory(size int, age time.Duration, now func() time.Time) *memory {
	base := uint64(max(now().UnixMicro(), 0))
	return &memory{
		size:   size,
		age:    age,
		now:    now,
		base:   base,
		seq:    base,
		topics: make(map[string]*history),
	}
}

func (m *memory) Start(deliver func(Message)) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deliver != nil {
		return 0, errors.New("broker: backend already started")
	}
	m.deliver = deliver
	return m.seq, nil
}

func (m *memory) Publish(ctx context.Context, topic string, ev event.Event) (Message, error) {
	ev, err := MarshalData(ev) // the costly part of encoding, before the lock
	if err != nil {
		return Message{}, err
	}
	custom := ev.ID != ""
	if len(ev.ID) > maxIDLen {
		return Message{}, fmt.Errorf("broker: event ID longer than %d bytes", maxIDLen)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Message{}, ErrClosed
	}
	seq := m.seq + 1
	if !custom {
		ev.ID = strconv.FormatUint(seq, 10)
	}
	// The history keeps the event's fields, whose data it owns; encoded
	// once more, here, with its ID, the live event carries its wire form
	// too, so that every stream only copies the bytes. Keeping the wire
	// form in the history would double what each event holds.
	kept := ev
	switch d := ev.Data.(type) {
	case []byte:
		kept.Data = string(d) // the caller may reuse its buffer
	case json.RawMessage:
		kept.Data = string(d)
	}
	if ev, err = kept.Prepare(); err != nil {
		return Message{}, err
	}
	m.seq = seq
	msg := Message{Topic: topic, Seq: seq, Time: m.now(), Event: ev}
	h := m.topics[topic]
	if h == nil {
		h = &history{name: topic, heapAt: -1}
		m.topics[topic] = h
	}
	m.trimAge(h, msg.Time)
	stored := msg
	stored.Event = kept
	if h.n >= m.size {
		m.pop(h)
	}
	m.push(h, stored)
	m.trimBytes(h)
	if custom {
		if m.ids == nil {
			m.ids = make(map[string]uint64)
		}
		m.ids[ev.ID] = seq
	}
	if m.deliver != nil {
		m.deliver(msg)
	}
	return msg, nil
}

func (m *memory) Replay(ctx context.Context, topics []string, lastEventID string, upTo uint64) ([]Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	after, err := m.resolve(lastEventID, upTo)
	if err != nil {
		return nil, err
	}
	now := m.now()
	n := 0
	for _, t := range topics {
		h := m.topics[t]
		if h == nil {
			if m.forgot > after {
				return nil, gapError(lastEventID, t)
			}
			continue
		}
		m.trimAge(h, now)
		if h.trimmed > after {
			return nil, gapError(lastEventID, t)
		}
		n += h.search(upTo) - h.search(after)
	}
	out := make([]Message, 0, n)
	for _, t := range topics {
		if h := m.topics[t]; h != nil {
			for i, end := h.search(after), h.search(upTo); i < end; i++ {
				out = append(out, *h.at(i))
			}
		}
	}
	if len(topics) > 1 {
		slices.SortFunc(out, func(a, b Message) int {
			if a.Seq < b.Seq {
				return -1
			}
			return 1 // Seqs are unique
		})
	}
	return out, nil
}

// resolve returns the Seq of the message whose ID is id, if the client can
// have seen it.
func (m *memory) resolve(id string, upTo uint64) (uint64, error) {
	if len(id) > maxIDLen {
		return 0, fmt.Errorf("%w: Last-Event-ID longer than %d bytes", ErrGap, maxIDLen)
	}
	seq, ok := m.ids[id]
	if !ok {
		var err error
		if seq, err = strconv.ParseUint(id, 10, 64); err != nil {
			return 0, fmt.Errorf("%w: unknown Last-Event-ID %q", ErrGap, id)
		}
	}
	if seq <= m.base || seq > upTo {
		return 0, fmt.Errorf("%w: unknown Last-Event-ID %q (not from this broker's run)", ErrGap, id)
	}
	return seq, nil
}

func gapError(id, topic string) error {
	return fmt.Errorf("%w: events of topic %q published after Last-Event-ID %q are no longer in the history", ErrGap, topic, id)
}

func (m *memory) Trim(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for _, h := range m.topics {
		m.trimAge(h, now)
		if h.n == 0 {
			m.drop(h)
		}
	}
	return nil
}

// drop forgets the empty topic h: no record of it is kept, only how far
// back its history was lost, in one watermark for all such topics.
// m.mu is held.
func (m *memory) drop(h *history) {
	m.forgot = max(m.forgot, h.trimmed)
	if m.topics[h.name] == h {
		delete(m.topics, h.name)
	}
}

// trimAge drops from h the messages older than the age limit.
func (m *memory) trimAge(h *history, now time.Time) {
	if m.age <= 0 {
		return
	}
	cutoff := now.Add(-m.age)
	for h.n > 0 && h.at(0).Time.Before(cutoff) {
		m.pop(h)
	}
}

// messageSize is the size of a Message on a 64-bit machine
// (TestMessageSize checks it).
const messageSize = 128

// cost is what the history counts for msg, in bytes: its fields, and the
// Message itself with its slot in the ring.
func cost(msg *Message) int64 {
	n := int64(messageSize) + int64(len(msg.Event.ID)+len(msg.Event.Type)+len(msg.Event.Comment))
	if d, ok := msg.Event.Data.(string); ok { // the history keeps strings only
		n += int64(len(d))
	}
	return n
}

// push appends msg to h, which has room. m.mu is held.
func (m *memory) push(h *history, msg Message) {
	c := cost(&msg)
	h.push(msg, m.size)
	h.bytes += c
	m.bytes += c
	if h.n == 1 {
		heap.Push(&m.oldest, h)
	}
}

// pop drops h's oldest message. m.mu is held.
func (m *memory) pop(h *history) {
	old := h.pop()
	c := cost(&old)
	h.bytes -= c
	m.bytes -= c
	m.forget(old)
	if h.n == 0 {
		heap.Remove(&m.oldest, h.heapAt)
	} else {
		heap.Fix(&m.oldest, h.heapAt)
	}
}

// trimBytes drops the oldest messages of h while it holds more than
// topicBytes, then the oldest messages of all topics while they hold more
// than totalBytes; a topic left empty is forgotten at once, as Trim does.
// A message bigger than the limit is delivered, but not kept. Replay stays
// exact: a topic knows the last message it dropped (history.trimmed), and
// m.forgot the last of the topics dropped whole. m.mu is held.
func (m *memory) trimBytes(h *history) {
	for m.topicBytes > 0 && h.bytes > m.topicBytes && h.n > 0 {
		m.pop(h)
	}
	for m.totalBytes > 0 && m.bytes > m.totalBytes && len(m.oldest) > 0 {
		g := m.oldest[0]
		if m.pop(g); g.n == 0 && g != h {
			m.drop(g)
		}
	}
	if h.n == 0 {
		m.drop(h)
	}
}

// forget drops the index entry of a message that left the history.
func (m *memory) forget(old Message) {
	if len(m.ids) > 0 {
		if seq, ok := m.ids[old.Event.ID]; ok && seq == old.Seq {
			delete(m.ids, old.Event.ID)
		}
	}
}

func (m *memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.deliver = nil
	m.topics = nil
	m.ids = nil
	m.oldest = nil
	return nil
}

// history is one topic's messages, oldest first, in a ring buffer that
// grows up to the size limit: adding and trimming cost O(1).
type history struct {
	buf     []Message
	head, n int
	trimmed uint64 // the Seq of the newest message dropped, 0 if none
	name    string // the topic's
	bytes   int64  // the cost of its messages
	heapAt  int    // its index in memory.oldest, -1 if it is not there
}

// byOldest is a heap of histories, the one with the oldest message first:
// the total byte bound drops that message.
type byOldest []*history

func (o byOldest) Len() int           { return len(o) }
func (o byOldest) Less(i, j int) bool { return o[i].at(0).Seq < o[j].at(0).Seq }
func (o byOldest) Swap(i, j int) {
	o[i], o[j] = o[j], o[i]
	o[i].heapAt, o[j].heapAt = i, j
}
func (o *byOldest) Push(x any) {
	h := x.(*history)
	h.heapAt = len(*o)
	*o = append(*o, h)
}
func (o *byOldest) Pop() any {
	old := *o
	h := old[len(old)-1]
	old[len(old)-1] = nil
	*o = old[:len(old)-1]
	h.heapAt = -1
	return h
}

// at returns the i-th oldest message.
func (h *history) at(i int) *Message {
	j := h.head + i
	if j >= len(h.buf) {
		j -= len(h.buf)
	}
	return &h.buf[j]
}

// push appends msg, dropping the oldest message if the history holds size
// messages already; it returns the dropped one.
func (h *history) push(msg Message, size int) (old Message, dropped bool) {
	if h.n == len(h.buf) {
		if h.n >= size {
			old, dropped = h.pop(), true
		} else {
			h.grow(size)
		}
	}
	*h.at(h.n) = msg
	h.n++
	return old, dropped
}

// grow doubles the buffer, up to size; it starts with room for one, as
// most topics of a server with many hold few events.
func (h *history) grow(size int) {
	buf := make([]Message, min(max(2*len(h.buf), 1), size))
	for i := range h.n {
		buf[i] = *h.at(i)
	}
	h.buf, h.head = buf, 0
}

// pop removes and returns the oldest message.
func (h *history) pop() Message {
	p := h.at(0)
	old := *p
	*p = Message{} // let the event be collected
	h.head++
	if h.head == len(h.buf) {
		h.head = 0
	}
	h.n--
	h.trimmed = old.Seq
	return old
}

// search returns the index of the oldest message whose Seq is greater than
// seq (h.n if there is none).
func (h *history) search(seq uint64) int {
	lo, hi := 0, h.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if h.at(mid).Seq <= seq {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
