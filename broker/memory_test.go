package broker

import (
	"context"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/echosse/echo-sse/event"
)

func TestHistoryRing(t *testing.T) {
	var h history
	seqs := func() []uint64 {
		var out []uint64
		for i := range h.n {
			out = append(out, h.at(i).Seq)
		}
		return out
	}
	for seq := uint64(1); seq <= 20; seq++ {
		old, dropped := h.push(Message{Seq: seq}, 10)
		if want := seq > 10; dropped != want || (dropped && old.Seq != seq-10) {
			t.Fatalf("push %d: dropped %v (%d)", seq, dropped, old.Seq)
		}
	}
	if got, want := seqs(), []uint64{11, 12, 13, 14, 15, 16, 17, 18, 19, 20}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if len(h.buf) != 10 || h.trimmed != 10 {
		t.Fatalf("got buffer of %d, trimmed %d", len(h.buf), h.trimmed)
	}
	for _, tt := range []struct {
		seq  uint64
		want int
	}{{0, 0}, {10, 0}, {11, 1}, {15, 5}, {19, 9}, {20, 10}, {99, 10}} {
		if got := h.search(tt.seq); got != tt.want {
			t.Errorf("search(%d): got %d, want %d", tt.seq, got, tt.want)
		}
	}
	for range 3 {
		h.pop()
	}
	if got := seqs(); !slices.Equal(got, []uint64{14, 15, 16, 17, 18, 19, 20}) || h.trimmed != 13 {
		t.Fatalf("got %v, trimmed %d", got, h.trimmed)
	}
}

func TestHistoryGrowsToSize(t *testing.T) {
	var h history
	for seq := uint64(1); seq <= 100; seq++ {
		h.push(Message{Seq: seq}, 37)
	}
	if len(h.buf) != 37 || h.n != 37 || h.at(0).Seq != 64 {
		t.Fatalf("got buffer of %d, %d held, oldest %d", len(h.buf), h.n, h.at(0).Seq)
	}
}

func TestMemoryReplayBounds(t *testing.T) {
	clk := &fakeClock{}
	m := newMemory(100, -1, clk.now)
	ctx := context.Background()
	for _, topic := range []string{"a", "b", "a", "b", "a"} { // 1..5
		if _, err := m.Publish(ctx, topic, event.Event{Data: topic}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := m.Replay(ctx, []string{"a", "b"}, "1", 4)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, msg := range msgs {
		got = append(got, msg.Seq)
	}
	if !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("got %v, want [2 3 4] (after 1, up to 4)", got)
	}
	if _, err := m.Replay(ctx, []string{"a"}, "5", 4); err == nil {
		t.Fatal("an ID after upTo: got nil, want ErrGap")
	}
}

func TestMemoryTrimForgetsCallerIDs(t *testing.T) {
	clk := &fakeClock{}
	m := newMemory(100, time.Minute, clk.now)
	ctx := context.Background()
	m.Publish(ctx, "a", event.Event{ID: "x", Data: ""})
	clk.advance(time.Hour)
	m.Publish(ctx, "b", event.Event{ID: "y", Data: ""})
	if err := m.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.ids["x"]; ok || len(m.topics) != 1 || m.forgot != 1 {
		t.Fatalf("got ids %v, %d topics, forgot %d", m.ids, len(m.topics), m.forgot)
	}
}

func TestMemoryClosed(t *testing.T) {
	m := newMemory(100, -1, time.Now)
	m.Close()
	if _, err := m.Publish(context.Background(), "a", event.Event{Data: ""}); err != ErrClosed {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

func TestMessageSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) == 8 && unsafe.Sizeof(Message{}) != messageSize {
		t.Fatalf("a Message is %d bytes, messageSize says %d", unsafe.Sizeof(Message{}), messageSize)
	}
}
