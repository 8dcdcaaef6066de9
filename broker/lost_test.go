package broker

import (
	"context"
	"errors"
	"testing"
	"time"
)

// losingBackend is the in-memory history with a way to report a loss.
type losingBackend struct {
	*memory
	lost func(Loss)
}

func (l *losingBackend) NotifyLoss(lost func(Loss)) { l.lost = lost }

// A backend that reports a loss ends the subscriptions of the topics
// concerned, with ErrLost (a gap), and only those; a loss of every topic
// ends them all. The broker keeps publishing to new subscriptions.
func TestLossEndsTheSubscriptionsOfItsTopics(t *testing.T) {
	lb := &losingBackend{memory: newMemory(100, time.Hour, time.Now)}
	b, err := New(Config{Backend: lb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if lb.lost == nil {
		t.Fatal("New did not call NotifyLoss")
	}
	onA, onAB, onB := newFake(t, 10, ""), newFake(t, 10, ""), newFake(t, 10, "")
	for _, s := range []struct {
		f      *fakeStream
		topics []string
	}{{onA, []string{"a"}}, {onAB, []string{"a", "b"}}, {onB, []string{"b"}}} {
		if err := s.f.subscribe(b, s.topics...); err != nil {
			t.Fatal(err)
		}
	}
	why := errors.New("the server flushed")
	lb.lost(Loss{Topics: []string{"a"}, Err: why})
	for name, f := range map[string]*fakeStream{"on a": onA, "on a and b": onAB} {
		cause := context.Cause(f.ctx)
		if !errors.Is(cause, ErrLost) || !errors.Is(cause, ErrGap) || !errors.Is(cause, why) {
			t.Errorf("the stream %s ended with %v, want ErrLost (a gap) and the backend's error", name, cause)
		}
	}
	if onB.ctx.Err() != nil {
		t.Errorf("the stream on b ended: %v", context.Cause(onB.ctx))
	}
	if st := b.Stats(); st.Lost != 2 || st.Subscribers != 1 {
		t.Errorf("stats %+v: want 2 lost, 1 subscriber left", st)
	}
	lb.lost(Loss{})
	if !errors.Is(context.Cause(onB.ctx), ErrLost) {
		t.Errorf("a loss of every topic: the stream on b ended with %v", context.Cause(onB.ctx))
	}
	again := newFake(t, 10, "")
	if err := again.subscribe(b, "a"); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "a", "after")
	if got := datas(again.drain()); len(got) != 1 || got[0] != "after" {
		t.Errorf("a new subscription after the loss got %q", got)
	}
}
