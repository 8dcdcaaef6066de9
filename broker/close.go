package broker

// Close ends every subscription and stops the broker: each subscribed
// stream is aborted with [ErrClosed], without the close event, so that
// browsers reconnect after their retry delay and resume from their
// Last-Event-ID once a broker serves them again (after a restart, say);
// the close event would tell a page listening for it to stop for good.
// After Close, Publish and Subscribe return ErrClosed and the broker sends
// on no stream's channel; it never closes one. Close waits for the
// broker's goroutine, then closes the backend and returns its error. Calls
// after the first return nil.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return nil
	}
	b.closed.Store(true)
	subs := b.subs
	b.subs = nil
	b.topics = nil
	for _, s := range subs {
		s.removed = true
		s.stop()
		s.pmu.Lock()
		s.pending.reset()
		s.behind.Store(false)
		s.pmu.Unlock()
	}
	b.mu.Unlock()

	for _, s := range subs {
		s.st.Abort(ErrClosed)
	}
	close(b.quit)
	<-b.janitorDone
	return b.backend.Close()
}

// Stats are a broker's counters, as [Broker.Stats] reads them. The
// counters only grow, from the broker's creation on.
type Stats struct {
	// Topics is the number of streams subscribed to each topic that has
	// at least one. [Broker.Stats] builds the map afresh on every call, an
	// entry per topic: with a topic per user, one per user online. Use
	// [Broker.Counters], which leaves it nil, for scrapes.
	Topics map[string]int

	// TopicCount is the number of topics with at least one subscriber.
	TopicCount int

	// Subscribers is the number of streams subscribed (a stream
	// subscribed to several topics counts once).
	Subscribers int

	// Published is the number of events published through this broker.
	Published uint64

	// Replayed is the number of events sent from the history to streams
	// that reconnected.
	Replayed uint64

	// Gaps is the number of subscriptions whose Last-Event-ID the history
	// did not cover ([ErrGap]).
	Gaps uint64

	// Lost is the number of subscriptions ended because the backend
	// lost events they may have missed ([ErrLost]).
	Lost uint64

	// SlowClients is the number of streams aborted because their buffer
	// was full ([SlowClientAbort]).
	SlowClients uint64

	// Dropped is the number of times an event could not be given to a
	// subscriber because its buffer was full: the event that made a
	// stream count as slow, or each event skipped under [SlowClientDrop].
	Dropped uint64
}

// Stats returns the broker's counters and the subscribers of every topic.
// Its cost grows with the number of topics (see Stats.Topics); to export
// the counters on every scrape, use [Broker.Counters].
func (b *Broker) Stats() Stats {
	st := b.counters()
	st.Topics = make(map[string]int, len(b.topics))
	for name, t := range b.topics {
		st.Topics[name] = len(t.subs)
	}
	b.mu.Unlock()
	return st
}

// Counters returns the broker's counters, as [Broker.Stats] does but with
// Stats.Topics nil: it allocates nothing and takes the same time however
// many topics there are, so it is the one to export on every scrape, for
// example with expvar.Publish("broker", expvar.Func(func() any { return
// b.Counters() })).
func (b *Broker) Counters() Stats {
	st := b.counters()
	b.mu.Unlock()
	return st
}

// counters returns the counters with b.mu held; the caller unlocks it.
func (b *Broker) counters() Stats {
	st := Stats{
		Published:   b.published.Load(),
		Replayed:    b.replayed.Load(),
		Gaps:        b.gaps.Load(),
		Lost:        b.lost.Load(),
		SlowClients: b.slowClients.Load(),
		Dropped:     b.dropped.Load(),
	}
	b.mu.Lock()
	st.Subscribers = len(b.subs)
	st.TopicCount = len(b.topics)
	return st
}
