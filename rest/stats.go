package rest

import "sync/atomic"

// ClientStats counts what a Client sent to its node since it was made. The
// counts are cumulative; subtract two readings for a rate. Probes of an
// offline node are not counted.
type ClientStats struct {
	// Requests is how many HTTP requests carried operations (batches or
	// single operations); Batches is how many of them were batches.
	Requests, Batches int64
	// Ops is how many operations those requests carried: Ops/Requests is the
	// mean batch size.
	Ops int64
	// Locks and Refreshes are how many of the operations were Lock or RLock,
	// and Refresh.
	Locks, Refreshes int64
	// Refused is how many Lock and RLock operations the node answered with
	// OK false.
	Refused int64
	// Failed is how many operations sent ended with an error: the
	// transport's, a malformed answer, or the node's own.
	Failed int64
	// NotSent is how many calls failed before any request carried them: the
	// node offline, the client closed, the queue full, or the call's time
	// spent waiting in the queue.
	NotSent int64
	// WentOffline counts the times the client found the node offline (see
	// IsOnline).
	WentOffline int64
	// Polls is how many long polls of the session's events (PathEvents) the
	// node answered. Events is how many events of the session came (each
	// counted once, however often it was given), and EventsInBatches how
	// many of them came first in a batch's answer (BatchReply.Events)
	// rather than a poll's: a hand-off between two callers of one client
	// needs no poll.
	Polls, Events, EventsInBatches int64
}

// clientStats is where a Client counts ClientStats. A batch is counted with
// one atomic addition per field, not one per operation.
type clientStats struct {
	requests, batches, ops, locks, refreshes, refused, failed, notSent, offline atomic.Int64
	polls, events, batchEvents                                                  atomic.Int64
}

// Stats returns what c has sent so far. The fields are read one at a time,
// so a reading taken while requests complete may be off by those requests.
func (c *Client) Stats() ClientStats {
	s := &c.stats
	return ClientStats{
		Requests:    s.requests.Load(),
		Batches:     s.batches.Load(),
		Ops:         s.ops.Load(),
		Locks:       s.locks.Load(),
		Refreshes:   s.refreshes.Load(),
		Refused:     s.refused.Load(),
		Failed:      s.failed.Load(),
		NotSent:     s.notSent.Load(),
		WentOffline: s.offline.Load(),

		Polls:           s.polls.Load(),
		Events:          s.events.Load(),
		EventsInBatches: s.batchEvents.Load(),
	}
}

// tallyResults counts a batch request whose calls, group, got results.
func (s *clientStats) tallyResults(group []queuedCall, results []BatchResult) {
	var c opCounts
	for i := range group {
		r := &results[i]
		c.add(group[i].verb, r.Code != CodeOK, r.Reply.OK)
	}
	s.count(len(group), true, c)
}

// tallyFailed counts a batch request that carried group and failed as a
// whole: every operation failed.
func (s *clientStats) tallyFailed(group []queuedCall) {
	var c opCounts
	for i := range group {
		c.add(group[i].verb, true, false)
	}
	s.count(len(group), true, c)
}

// tallyOne counts a single-operation request that carried cl, whose answer
// (or error) is in.
func (s *clientStats) tallyOne(cl *call) {
	var c opCounts
	c.add(cl.verb, cl.err != nil, cl.reply.OK)
	s.count(1, false, c)
}

// opCounts counts the operations of one request by kind and outcome.
type opCounts struct{ locks, refreshes, refused, failed int64 }

// add counts one operation of verb v that failed, or was answered with
// granted as its reply's OK.
func (c *opCounts) add(v Verb, failed, granted bool) {
	switch v {
	case VerbLock, VerbRLock:
		c.locks++
		if !failed && !granted {
			c.refused++
		}
	case VerbRefresh:
		c.refreshes++
	}
	if failed {
		c.failed++
	}
}

// count adds one request of ops operations, a batch or not, to s.
func (s *clientStats) count(ops int, batch bool, c opCounts) {
	add := func(n *atomic.Int64, v int64) {
		if v != 0 {
			n.Add(v)
		}
	}
	add(&s.requests, 1)
	if batch {
		add(&s.batches, 1)
	}
	add(&s.ops, int64(ops))
	add(&s.locks, c.locks)
	add(&s.refreshes, c.refreshes)
	add(&s.refused, c.refused)
	add(&s.failed, c.failed)
}
