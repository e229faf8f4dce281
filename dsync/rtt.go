package dsync

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Per-node call timeouts.
//
// A lock call to a node is bounded by that node's retransmission timeout,
// as TCP computes it (RFC 6298): a smoothed round-trip time SRTT and its
// mean deviation RTTVAR, updated from measured calls (SRTT += (R−SRTT)/8,
// RTTVAR += (|R−SRTT|−RTTVAR)/4), give RTO = SRTT + 4·RTTVAR, clamped to
// [Config.MinCallTimeout, Config.CallTimeout]. A call that times out doubles
// the node's RTO for the next ones (up to CallTimeout), and the next answer
// measured resets it. So a node that turns slow is given, after a timeout
// or two, what it needs, and a node that stopped answering costs an attempt
// its RTO, not CallTimeout, until it has timed out often enough to be given
// CallTimeout again (a node the HTTP client finds offline fails at once
// anyway, see rest.Client). Before its first measure a node gets
// CallTimeout, and so do nodes past the 64th of a Dsync. Only lock
// attempts that do not wait on the nodes are bounded so: releases, waiting
// attempts (whose calls last their wait) and refreshes keep their own
// bounds.
//
// Measures: the lock calls of one attempt in every rttSampleEvery of the
// Dsync's clock (at most a hundred a second), each from its sending to its
// answer; an answer is a measure whatever it says (a refusal, an error of
// the node), but a call that timed out, failed to be sent, was cancelled
// by its caller (context.Canceled), or waited in a node's queue
// (LockArgs.Wait) is not. Sampling keeps the measures off the
// path of most calls: one clock reading per answer of a sampled attempt.

// rttSampleEvery is how often an attempt measures its calls' round trips.
const rttSampleEvery = 10 * time.Millisecond

// maxRTOBackoff bounds the doublings of a node's RTO after timeouts.
const maxRTOBackoff = 6

// rtts are the round-trip estimates of a Dsync's nodes.
type rtts struct {
	min, max   time.Duration // Config.MinCallTimeout and CallTimeout; min < 0: off
	lastSample atomic.Int64  // clock time of the last sampled attempt, ns
	nodes      []rttNode
}

// rttNode is one node's estimate.
type rttNode struct {
	rto atomic.Int64 // the current timeout, ns, backoff included; 0 before the first measure

	mu      sync.Mutex // guards the fields below
	srtt    time.Duration
	rttvar  time.Duration
	base    time.Duration // SRTT + 4·RTTVAR, clamped
	backoff int           // timeouts in a row
	_       [24]byte      // nodes answer on goroutines of their own: no false sharing
}

func newRTTs(n int, minTimeout, callTimeout time.Duration) *rtts {
	return &rtts{min: minTimeout, max: callTimeout, nodes: make([]rttNode, n)}
}

// on reports whether timeouts adapt.
func (r *rtts) on() bool { return r.min >= 0 && r.min < r.max }

// timeout returns the bound of a call to node i that may take at most
// limit: the node's RTO, or limit if shorter. cut reports whether the RTO
// is what bounds it (a timeout then says the node was slow).
func (r *rtts) timeout(i int, limit time.Duration) (d time.Duration, cut bool) {
	if !r.on() {
		return limit, false
	}
	rto := time.Duration(r.nodes[i].rto.Load())
	if rto <= 0 || rto >= limit {
		return limit, false
	}
	return rto, true
}

// sample reports whether an attempt that starts at now measures its calls.
func (r *rtts) sample(now time.Time) bool {
	if !r.on() {
		return false
	}
	t := now.UnixNano()
	last := r.lastSample.Load()
	return t-last >= int64(rttSampleEvery) && r.lastSample.CompareAndSwap(last, t)
}

// observe records that a call to node i took d.
func (r *rtts) observe(i int, d time.Duration) {
	n := &r.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.base == 0 && n.srtt == 0 && n.rttvar == 0 {
		n.srtt, n.rttvar = d, d/2
	} else {
		dev := n.srtt - d
		if dev < 0 {
			dev = -dev
		}
		n.rttvar += (dev - n.rttvar) / 4
		n.srtt += (d - n.srtt) / 8
	}
	n.base = min(max(n.srtt+4*n.rttvar, r.min), r.max)
	n.backoff = 0
	n.rto.Store(int64(n.base))
}

// timedOut records that a call to node i was cut by its RTO: the next
// calls get twice as long, up to CallTimeout.
func (r *rtts) timedOut(i int) {
	n := &r.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.base == 0 {
		return // no measure yet: calls get CallTimeout
	}
	n.backoff = min(n.backoff+1, maxRTOBackoff)
	n.rto.Store(int64(min(n.base<<n.backoff, r.max)))
}

// RTO returns node i's current call timeout: what its next lock call is
// bounded by (CallTimeout before its first measure, or with adaptive
// timeouts off). On a Dsync made by NewSets, i indexes its distinct nodes
// (see Lockers), and the node's timeout is that of the first set it serves.
func (ds *Dsync) RTO(i int) time.Duration {
	if ds.sets != nil {
		sn := ds.nodeSets[i][0]
		return ds.sets[sn.set].RTO(sn.index)
	}
	d, _ := ds.rtt.timeout(i, ds.cfg.CallTimeout)
	return d
}

// isTimeout reports whether err says a call ran out of time.
func isTimeout(err error) bool { return errors.Is(err, context.DeadlineExceeded) }
