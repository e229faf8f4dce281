package dsync

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/dsync-go/dsync/locker"
)

// collector gathers the answers of the calls one operation made to several
// nodes, and wakes the goroutine waiting for them only when it has enough
// to decide: for an acquisition, when a quorum granted or can no longer
// grant; for a release, when a quorum confirmed it or can no longer (see
// confirm); otherwise, when every answer is in. Answers come on the goroutines
// that read the nodes' responses; waking the waiter once per decision rather
// than once per answer saves a goroutine switch per node and call.
//
// As a locker.Sink it takes the answers of submitted calls, tagged with the
// node's index.
type collector struct {
	n      int // calls made
	quorum int // grants that decide an acquisition; 0 to wait for every answer

	// args are the calls' arguments, which submitters read until they
	// answer (see Dsync.start); set before the calls start, unchanged until
	// the collector is reused.
	args locker.LockArgs

	// confirm makes the answers of a release count toward the quorum: a
	// node that released the lock, or did not hold it because it restarted
	// and is in its grace period (see heldAtRelease). Set before the calls
	// start.
	confirm bool

	mu      sync.Mutex // guards the fields below
	results []nodeResult
	granted int           // grants; with confirm, releases confirmed
	against int           // refused or failed
	waiting bool          // the waiter is parked on wake
	wake    chan struct{} // capacity 1
	refs    int           // answers to come, plus one for the waiter; at 0 the collector is reused

	// late, if set by doneRetrying, takes the answers of a release once
	// every one is in: see Dsync.retryFailed.
	late   *Dsync
	lateOp locker.Op
	// held, if set by doneHeld, is told of the grants of a won
	// acquisition that come after its decision.
	held *Dsync

	// rtt, if set before the calls start, bounds each lock call by its
	// node's RTO and learns from the answers (rtt.go): it measures them if
	// sent is set (the calls' sending time on clk), and notes the timeouts
	// of the nodes in cut (bit i: node i's call was bounded by its RTO).
	rtt  *rtts
	clk  interface{ Now() time.Time }
	sent time.Time
	cut  uint64
}

// stackNodes is how many answers the waiters of a collector gather in a
// buffer on their stack; more nodes than that cost an allocation.
const stackNodes = 32

var collectors = sync.Pool{New: func() any { return new(collector) }}

// newCollector returns a collector for n calls that decides when quorum
// grants are in or can no longer come (quorum > 0), or when all n answers
// are (quorum == 0). The waiter must call done when it no longer needs it.
func newCollector(n, quorum int) *collector {
	c := collectors.Get().(*collector)
	c.n, c.quorum, c.refs = n, quorum, n+1
	// A fresh channel each time: a channel made inside a testing/synctest
	// bubble must not be used outside it, and pooled ones would cross.
	c.wake = make(chan struct{}, 1)
	if cap(c.results) < n {
		c.results = make([]nodeResult, 0, n)
	}
	return c
}

// done gives up the waiter's hold on c. Once every answer is in too, c is
// reused: the waiter must not touch it after done.
func (c *collector) done() {
	c.mu.Lock()
	c.unref()
}

// doneRetrying is done for the collector of a release that ds holds open
// for Close (Dsync.hold): the waiter leaves the answers still to come to c,
// and once every answer is in, ds retries in the background the nodes whose
// release failed and lets Close go on (Dsync.retryFailed). The waiter must
// not touch c afterwards.
func (c *collector) doneRetrying(ds *Dsync, op locker.Op) {
	c.mu.Lock()
	c.late, c.lateOp = ds, op
	c.unref()
}

// doneHeld is done for the collector of an acquisition that won, once it
// is registered with ds's refresher: the answers the waiter did not tally
// (those after the first tallied), now and as they come, mark the nodes
// that granted as holding the lock (refresher.MarkHeld), so that a node
// that granted after the quorum was in may be reclaimed on if it restarts.
// The waiter must not touch c afterwards.
func (c *collector) doneHeld(ds *Dsync, tallied int) {
	c.mu.Lock()
	var now []nodeResult
	if tallied < len(c.results) {
		now = append(now, c.results[tallied:]...)
	}
	uid := c.args.UID
	c.held = ds
	c.unref()
	for _, r := range now {
		ds.markHeld(uid, r)
	}
}

// unref drops a reference and unlocks c.mu, recycling c at the last one.
func (c *collector) unref() {
	c.refs--
	if c.refs > 0 {
		c.mu.Unlock()
		return
	}
	// The last reference: nothing else touches c now.
	c.mu.Unlock()
	if c.late != nil {
		c.late.retryFailed(c.lateOp, c.args.UID, c.results)
	}
	clear(c.results) // drop the errors they hold
	c.results = c.results[:0]
	c.args = locker.LockArgs{}
	c.granted, c.against, c.waiting, c.wake = 0, 0, false, nil
	c.confirm, c.late, c.lateOp, c.held = false, nil, 0, nil
	c.rtt, c.clk, c.sent, c.cut = nil, nil, time.Time{}, 0
	collectors.Put(c)
}

// Done implements locker.Sink.
func (c *collector) Done(node int, r locker.Reply, err error) {
	res := nodeResult{node, r, err}
	if c.rtt != nil {
		c.learn(node, err)
	}
	c.mu.Lock()
	c.results = append(c.results, res)
	if err == nil && (r.OK || c.confirm && heldAtRelease(r)) { // granted (res.state()), or confirmed
		c.granted++
	} else {
		c.against++
	}
	wake := c.waiting && c.ready()
	if wake {
		c.waiting = false
		// Sent under the lock, so that the last reference cannot recycle
		// c in between, and never blocking: a wake already in the channel
		// (left by a wait that ctx ended) wakes the waiter just as well.
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	held, uid := c.held, c.args.UID
	c.unref()
	if held != nil {
		held.markHeld(uid, res)
	}
}

// learn tells c.rtt how node's call went: its round trip, if c measures,
// or that its RTO cut it short. A call cancelled by its caller (a Held's
// Release, a caller that gave up) measures nothing: it ended when the
// caller stopped waiting, not when the node answered. (Such calls end
// together, in the order in which the context package cancels a parent's
// children, a map's order: counted as round trips, they made the estimate
// depend on that order.) The checks after err == nil run on errors only.
func (c *collector) learn(node int, err error) {
	switch {
	case err == nil || !isTimeout(err) && !errors.Is(err, locker.ErrNotSent) && !errors.Is(err, context.Canceled):
		if !c.sent.IsZero() {
			c.rtt.observe(node, c.clk.Now().Sub(c.sent))
		}
	case isTimeout(err) && node < 64 && c.cut&(1<<node) != 0:
		c.rtt.timedOut(node)
	}
}

// ready reports whether the waiter can decide. c.mu must be held.
func (c *collector) ready() bool {
	got := len(c.results)
	if got == c.n {
		return true
	}
	return c.quorum > 0 && (c.granted >= c.quorum || c.against > c.n-c.quorum)
}

// wait blocks until the collector can decide, or ctx ends, and appends the
// answers that are in to dst. It reports false if ctx ended first.
func (c *collector) wait(ctx context.Context, dst []nodeResult) ([]nodeResult, bool) {
	for {
		c.mu.Lock()
		if c.ready() {
			dst = append(dst, c.results...)
			c.mu.Unlock()
			return dst, true
		}
		c.waiting = true
		c.mu.Unlock()
		select {
		case <-c.wake:
			// Re-check: a wake left over from a wait that ctx ended may
			// come early.
		case <-ctx.Done():
			c.mu.Lock()
			c.waiting = false
			dst = append(dst, c.results...)
			c.mu.Unlock()
			return dst, false
		}
	}
}

// waitAll waits, whatever the decision rule, until every answer is in, and
// returns them all. Answers are bounded by the calls' timeouts, so this ends.
func (c *collector) waitAll() []nodeResult {
	c.mu.Lock()
	c.quorum = 0
	c.mu.Unlock()
	all, _ := c.wait(context.Background(), make([]nodeResult, 0, c.n))
	return all
}
