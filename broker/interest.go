package broker

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// An Interested [Backend] delivers only the messages of the topics its
// broker watches: those with at least one subscriber in this process, and
// for a while after the last one left. A distributed backend implements it
// so that a process receives, decodes and fans out the events its own
// streams need, not every event of every topic: with a topic per user and
// N processes behind a load balancer, about 1/N of them.
//
// Delivery then has gaps in Seq (the messages of topics nobody here
// watches), which the broker accepts: Seq only has to grow. Each Watch
// returns a Seq from which on delivery of its topics is certain, and the
// broker replays a newly subscribed stream up to it, so that the handover
// from replay to live stays exact for a topic that had no subscriber: no
// event published between the replay and the first delivery of the topic
// is missed or sent twice. [Syncer.Sync], for such a backend, waits for
// the messages of the watched topics only.
//
// The broker calls Watch from [Broker.Subscribe], one call at a time, and
// Unwatch from its own goroutine, never at the same time as Watch. The
// Subscribes that need new topics while a Watch runs wait for it, and the
// next call watches all of theirs: a burst of new streams on new topics
// costs a few Watch calls, not one each.
type Interested interface {
	// Watch adds topics (none of them watched yet) to those whose
	// messages the backend delivers. It returns from once it holds that
	// every message of topics with a Seq greater than from will be
	// delivered, and that every message with a Seq up to from of the
	// topics watched before has been: the broker then takes from as the
	// last Seq delivered, if it is greater. On an error (the backend is
	// unreachable, ctx is done) Subscribe returns it wrapped and subscribes
	// nothing, and the topics count as unwatched.
	Watch(ctx context.Context, topics []string) (from uint64, err error)

	// Unwatch takes topics out of those delivered: no stream here is
	// subscribed to them. The backend may go on delivering their messages
	// for a while; the broker drops them.
	Unwatch(topics []string)
}

// defaultInterestLinger is how long a topic stays watched after its last
// subscriber left: a browser that reloads its page, or reconnects after
// a network hiccup, finds it still watched and costs no Watch.
const defaultInterestLinger = 5 * time.Second

// A watchRequest is a Subscribe's topics that are not watched yet,
// queued for the next Watch: while one Watch runs (a round trip or more,
// a new consumer on some backends), the Subscribes that arrive queue
// theirs, and whichever of them takes b.imu next watches them all with
// one call.
type watchRequest struct {
	topics []string
	done   bool  // a Watch covering topics returned (b.mu)
	err    error // its error
	gone   bool  // the error came from the context of the Subscribe that made the call
}

// queueWatch queues the topics of topics not watched yet for the next
// Watch, and returns the request, or nil if every topic is watched.
func (b *Broker) queueWatch(topics []string) *watchRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	var need []string
	for _, t := range topics {
		if _, ok := b.watched[t]; !ok {
			need = append(need, t)
		}
	}
	if len(need) == 0 {
		return nil
	}
	r := &watchRequest{topics: need}
	b.watchQueue = append(b.watchQueue, r)
	return r
}

// watch makes the backend watch those of topics it does not watch yet,
// with the topics other Subscribes queued (see [watchRequest]), and
// records them as watched. req is the caller's queued request, or nil.
// b.imu is held; b.watched changes under b.mu only.
func (b *Broker) watch(ctx context.Context, in Interested, topics []string, req *watchRequest) error {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return ErrClosed
	}
	if req != nil && req.done && req.err != nil && !req.gone {
		b.mu.Unlock()
		return req.err
	}
	// The caller's topics not watched (a Watch that covered them may have
	// failed, or been cut short by its caller leaving; a sweep may have
	// unwatched them since), then every queued topic not watched.
	var need []string
	seen := make(map[string]bool)
	add := func(ts []string) {
		for _, t := range ts {
			if _, ok := b.watched[t]; !ok && !seen[t] {
				seen[t] = true
				need = append(need, t)
			}
		}
	}
	add(topics)
	if len(need) == 0 {
		if req != nil && !req.done {
			// Watched by a call that did not take req: take it out.
			if i := slices.Index(b.watchQueue, req); i >= 0 {
				b.watchQueue = slices.Delete(b.watchQueue, i, i+1)
			}
		}
		b.mu.Unlock()
		return nil
	}
	batch := b.watchQueue
	b.watchQueue = nil
	for _, r := range batch {
		add(r.topics)
	}
	b.mu.Unlock()
	from, err := in.Watch(ctx, need)
	if err != nil {
		err = fmt.Errorf("broker: watching %d topics: %w", len(need), err)
	}
	now := b.cfg.timeNow()
	b.mu.Lock()
	gone := err != nil && ctx.Err() != nil
	for _, r := range batch {
		r.done, r.err, r.gone = true, err, gone
	}
	if err == nil {
		for _, t := range need {
			b.watched[t] = now
		}
		if from > b.last {
			b.last = from
		}
		b.watchCalls++
	}
	b.mu.Unlock()
	return err
}

// sweepInterest unwatches the topics that have had no subscriber for
// Config.interestLinger.
func (b *Broker) sweepInterest(in Interested) {
	b.imu.Lock()
	defer b.imu.Unlock()
	cutoff := b.cfg.timeNow().Add(-b.cfg.interestLinger)
	var idle []string
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return
	}
	for t, since := range b.watched {
		if b.topics[t] == nil && !since.After(cutoff) {
			idle = append(idle, t)
			delete(b.watched, t)
		}
	}
	b.mu.Unlock()
	if len(idle) > 0 {
		in.Unwatch(idle)
	}
}

// Watched returns how many topics the broker has its backend watch (see
// [Interested]): those with a subscriber, and those whose last subscriber
// left moments ago. It is 0 for a backend that is not Interested.
func (b *Broker) Watched() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.watched)
}
