package dsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

func acquireOp(write bool) locker.Op {
	if write {
		return locker.OpLock
	}
	return locker.OpRLock
}

func releaseOp(write bool) locker.Op {
	if write {
		return locker.OpUnlock
	}
	return locker.OpRUnlock
}

// nodeResult is one node's answer to one call.
type nodeResult struct {
	node  int
	reply locker.Reply
	err   error
}

// nodeState is what an attempt knows of one node.
type nodeState uint8

const (
	statePending nodeState = iota // no answer yet (only on success)
	stateGranted
	stateRefused
	stateFailed  // an error: the node may or may not have granted
	stateNotSent // an error before the call left: the node granted nothing
)

// state classifies an answer.
func (r nodeResult) state() nodeState {
	switch {
	case errors.Is(r.err, locker.ErrNotSent):
		return stateNotSent
	case r.err != nil:
		return stateFailed
	case r.reply.OK:
		return stateGranted
	}
	return stateRefused
}

// start makes op with args on every node marked in nodes, each call bounded
// by timeout, and returns how many it started. The answers go to out. A
// locker that is a locker.Submitter gets the call submitted; any other gets
// it on a worker goroutine, under a context bounded by timeout on the
// Dsync's clock.
func (ds *Dsync) start(ctx context.Context, op locker.Op, args locker.LockArgs, timeout time.Duration, nodes []bool, out *collector) int {
	var sc *syncCalls
	if ds.syncLockers > 0 {
		calls := 0
		for i := range ds.lockers {
			if nodes[i] && ds.submitters[i] == nil {
				calls++
			}
		}
		if calls > 0 {
			sc = &syncCalls{}
			sc.ctx, sc.cancel = clock.WithTimeout(ctx, ds.clk(), timeout)
			sc.running.Store(int32(calls))
		}
	}
	// Submitters share one copy of args, which out keeps until the last
	// answer is in: a submitter reads it until it answers (locker.Submitter).
	out.args = args
	shared := &out.args
	if out.rtt != nil {
		// Which calls their node's RTO bounds, before any can answer
		// (the answers read out.cut).
		for i := range min(len(ds.lockers), 64) {
			if _, cut := out.rtt.timeout(i, timeout); cut && nodes[i] {
				out.cut |= 1 << i
			}
		}
	}
	sent := 0
	for i, l := range ds.lockers {
		if !nodes[i] {
			continue
		}
		sent++
		t := timeout
		if out.cut&(1<<i) != 0 {
			t, _ = out.rtt.timeout(i, timeout)
		}
		if s := ds.submitters[i]; s != nil {
			s.Submit(ctx, op, shared, t, out, i)
			continue
		}
		sc := sc // captured by value: capturing the variable, assigned above, would put it on the heap on every call
		ds.workers.run(func() {
			cctx := sc.ctx
			if t < timeout { // bounded by the node's RTO (rtt.go)
				var cancel context.CancelFunc
				cctx, cancel = clock.WithTimeout(sc.ctx, ds.clk(), t)
				defer cancel()
			}
			r, err := op.Call(cctx, l, args)
			out.Done(i, r, err)
			sc.done()
		})
	}
	return sent
}

// syncCalls is the context shared by the calls of one start that go to
// synchronous lockers. The last of them to end releases its timer.
type syncCalls struct {
	ctx     context.Context
	cancel  context.CancelFunc
	running atomic.Int32
}

func (sc *syncCalls) done() {
	if sc.running.Add(-1) == 0 {
		sc.cancel()
	}
}

// attempt is the outcome of asking every node once for a lock.
type attempt struct {
	granted, refused, failed int
	conflicts                int             // refusals because another client holds the lock or waits to write
	graces                   []time.Duration // per refusal because the node is in its restart grace: what is left of it
	validities               []time.Duration // per grant: the node's validity
	byNode                   []time.Duration // per node: the validity of its grant, zero if none (made at the first grant)
	fence                    uint64          // max fence among grants
	sent                     time.Time       // when the requests went out
	reasons                  []string        // why nodes refused, for errors
	errs                     []error         // why nodes failed
	invalid                  error           // a node said the request itself is invalid
	gaveUp                   error           // ctx ended before the outcome was known
	state                    []nodeState     // per node

	// A won attempt's collector (or waiting attempt), and how many of its
	// answers were tallied: the waiter's hold on the answers, which
	// register gives up (doneHeld).
	c       *collector
	w       *waitingAttempt
	tallied int
}

// errNoValidity is the error of a grant that does not say how long it is
// valid (locker.Reply.Validity): the node does not keep the contract of
// locker.NetLocker. The grant is not counted, and is released.
var errNoValidity = errors.New("granted without a validity (locker.Reply.Validity is zero): the locker does not implement protocol 2")

// validity returns how long a lock won by this attempt is valid, counted
// from when its requests went out: the smallest validity among the q nodes
// with the longest, so that q nodes hold it that long. It is called once q
// nodes have granted.
func (a *attempt) validity(q int) time.Duration {
	slices.Sort(a.validities)
	return a.validities[len(a.validities)-q]
}

// held returns, per node, whether it granted with a validity of at least
// v, the validity of the lock won (refresher.Lock.Held): each of those
// holds the lock until its first deadline at least, and only they may be
// sent a reclaim before a refresh round counts the nodes again.
func (a *attempt) held(v time.Duration) []bool {
	held := make([]bool, len(a.state))
	for i, gv := range a.byNode {
		held[i] = a.state[i] == stateGranted && gv >= v
	}
	return held
}

// doneHeld gives up the hold of a won attempt on its answers, once its
// lock is registered with ds's refresher: the grants that come after the
// decision mark their nodes as holding the lock (refresher.MarkHeld). It
// must be called once for each won attempt.
func (a *attempt) doneHeld(ds *Dsync) {
	switch {
	case a.c != nil:
		a.c.doneHeld(ds, a.tallied)
	case a.w != nil:
		a.w.doneHeld(ds, a.tallied)
	}
	a.c, a.w = nil, nil
}

// markHeld tells the refresher that r, an answer to the acquisition of
// uid that came after its decision, is a grant, if it is one that says its
// validity.
func (ds *Dsync) markHeld(uid string, r nodeResult) {
	if r.state() == stateGranted && r.reply.Validity > 0 {
		ds.refresher.MarkHeld(uid, ds.refNode(r.node), r.reply.Validity)
	}
}

// tryAcquire asks every node at once, at now on the Dsync's clock, to grant
// args to args.UID, each call bounded by timeout, and decides as soon as the outcome is known: a quorum
// granted, or more than n−quorum nodes refused or failed. If ctx ends first,
// it gives up at once (a.gaveUp).
//
// On success, calls still in flight run to their end (bounded by timeout):
// a node that grants late holds the lock too, and is refreshed and released
// with it, which makes the lock survive more node failures; the caller must
// call a.doneHeld once it has registered the lock, which tells the
// refresher of the late grants. On failure, the
// grants already answered are released before tryAcquire returns, so that
// the caller's next attempt does not meet its own leftovers; nodes that
// failed or had not answered are released in the background once their
// answer is in (a release that overtakes its lock request leaves a
// tombstone on the node that refuses the request, so nothing is left
// behind). An attempt given up because ctx ended is released in the
// background, once every answer is in.
func (ds *Dsync) tryAcquire(ctx context.Context, write bool, args locker.LockArgs, now time.Time, timeout time.Duration) (a attempt, ok bool) {
	n, q := len(ds.lockers), args.Quorum
	a.sent = now
	c := newCollector(n, q)
	if ds.rtt.on() {
		c.rtt = ds.rtt // each call bounded by its node's RTO (rtt.go)
		if ds.rtt.sample(now) {
			c.clk, c.sent = ds.clk(), now
		}
	}
	ds.start(ctx, acquireOp(write), args, timeout, ds.allNodes, c)
	var buf [stackNodes]nodeResult
	results, in := c.wait(ctx, buf[:0])
	a.state = make([]nodeState, n)
	a.tally(ds, results)
	switch {
	case !in:
		a.gaveUp = context.Cause(ctx)
		a.state = nil
		ds.releaseAbandoned(c, write, &args)
		return a, false
	case a.granted >= q:
		a.c, a.tallied = c, len(results) // register gives it up
		return a, true
	}
	// Failed. Wait for the answers still out (bounded by the timeout) so
	// that no grant is left behind to get in the way of the next attempt.
	// (Leaving slow nodes to the background here lets late grants of one
	// attempt refuse the next ones of every contender: the simulation's
	// random seed 39 then starves a client for seconds after a partition
	// heals.)
	for _, r := range c.waitAll() { // again for those already tallied: the same state
		a.state[r.node] = r.state()
	}
	c.done()
	ds.releaseFailed(ctx, write, args.UID, a.state)
	return a, false
}

// releaseAbandoned releases, in the background, whatever the nodes grant to
// an acquisition its caller gave up on, once all their answers are in, and
// gives up the caller's hold on c. A write lock that declares intent also
// withdraws the intent on the nodes that refused it (intent.go): the same
// Unlock, naming the resources, does both.
func (ds *Dsync) releaseAbandoned(c *collector, write bool, args *locker.LockArgs) {
	rel := releaseArgs(args.UID)
	withdraw := (write || args.Mode == locker.ModeIX || args.Mode == locker.ModeSIX) && !args.NoIntent
	if withdraw {
		rel = withdrawalArgs(args.UID, args.Resources, args.Mode)
	}
	started := ds.goBackground(func(bg context.Context) {
		defer c.done()
		// Release every node that granted, or failed and may have: its
		// first round even if Close has begun (Close waits for it), its
		// retries until Close.
		nodes := make([]bool, c.n)
		some := false
		for _, r := range c.waitAll() {
			st := r.state()
			nodes[r.node] = st == stateGranted || st == stateFailed || (withdraw && st == stateRefused)
			some = some || nodes[r.node]
		}
		if some {
			ds.releaseOn(bg, releaseOp(write), rel, nodes)
		}
	})
	if !started {
		c.done() // closed: what is left expires on the nodes
	}
}

// tally counts answers into a.
func (a *attempt) tally(ds *Dsync, results []nodeResult) {
	for _, res := range results {
		if res.reply.OK && res.err == nil {
			if res.reply.Validity <= 0 {
				res.err = errNoValidity // it may hold a grant: failed, and released
			} else {
				ds.validity.observe(res.node, res.reply.Validity)
			}
		}
		st := res.state()
		a.state[res.node] = st
		switch st {
		case stateFailed, stateNotSent:
			a.failed++
			if errors.Is(res.err, locker.ErrInvalidArgs) {
				a.invalid = res.err
			}
			a.errs = append(a.errs, fmt.Errorf("%s: %w", ds.lockers[res.node], res.err))
		case stateGranted:
			a.granted++
			a.fence = max(a.fence, res.reply.Fence)
			a.validities = append(a.validities, res.reply.Validity)
			if a.byNode == nil {
				a.byNode = make([]time.Duration, len(a.state))
			}
			a.byNode[res.node] = res.reply.Validity
		case stateRefused:
			a.refused++
			switch r := res.reply.Reason; r {
			case locker.ReasonConflict, locker.ReasonWriterWaiting:
				a.conflicts++
			case locker.ReasonQuiet:
				a.graces = append(a.graces, res.reply.Grace)
			}
			a.reasons = append(a.reasons, fmt.Sprintf("%s: %v", ds.lockers[res.node], res.reply.Reason))
		}
	}
}

// callEach makes op on every node marked in nodes, in parallel, each call
// bounded by CallTimeout, and returns their answers. Calls not sent before
// ctx ends fail at once, but calls sent are waited for even if ctx ends
// meanwhile (at most CallTimeout): a release that reached a node is not
// reported failed, and Close, which cancels background releases, returns
// only when no call of the Dsync is left in flight. It does not modify
// nodes.
func (ds *Dsync) callEach(ctx context.Context, op locker.Op, args locker.LockArgs, nodes []bool) []nodeResult {
	c := newCollector(count(nodes), 0)
	ds.start(ctx, op, args, ds.cfg.CallTimeout, nodes, c)
	results := c.waitAll()
	c.done()
	return results
}

// count returns how many of nodes are marked.
func count(nodes []bool) int {
	k := 0
	for _, in := range nodes {
		if in {
			k++
		}
	}
	return k
}

// err describes a failed attempt: ErrLocked if any node refused because
// another client holds the lock (or waits to write it); else a
// *RestartingError if nodes refused because they are in their restart grace
// period; else ErrNoQuorum (nodes failed). It also wraps the nodes' errors,
// so that errors.Is finds, say, locker.ErrUnauthorized.
func (a *attempt) err(names []string, q, n int) error {
	msg := fmt.Sprintf("%v: %d of %d nodes granted, %d needed; %d refused, %d failed", names, a.granted, n, q, a.refused, a.failed)
	if len(a.reasons) > 0 {
		msg += " (refused: " + strings.Join(a.reasons, "; ") + ")"
	}
	var errs error
	if len(a.errs) > 0 {
		errs = nodeErrors(a.errs)
	}
	switch {
	case a.conflicts > 0:
	case len(a.graces) > 0:
		return &RestartingError{RetryAfter: a.retryAfter(q, n), graceOnly: a.failed == 0 && a.refused == len(a.graces), msg: msg, errs: errs}
	default:
		if errs == nil {
			return fmt.Errorf("%w: %s", ErrNoQuorum, msg)
		}
		return fmt.Errorf("%w: %s: %w", ErrNoQuorum, msg, errs)
	}
	if errs == nil {
		return fmt.Errorf("%w: %s", ErrLocked, msg)
	}
	return fmt.Errorf("%w: %s: %w", ErrLocked, msg, errs)
}

// retryAfter returns how long until enough of the nodes that refused
// because of their restart grace are out of it for a quorum: with k of the
// n nodes in grace, the (q−(n−k))-th shortest grace left; the shortest if
// the others alone could make a quorum (they failed, for other reasons).
func (a *attempt) retryAfter(q, n int) time.Duration {
	g := slices.Sorted(slices.Values(a.graces))
	need := q - (n - len(g))
	if need < 1 {
		need = 1
	}
	return g[need-1]
}

// RestartingError is the error of an attempt that failed because nodes are
// in their restart grace period (see locker.Config.QuietPeriod): they have
// just started, and grant nothing new until it ends, so that no lock they
// held before is granted twice. It wraps ErrRestarting and ErrNoQuorum.
type RestartingError struct {
	// RetryAfter is how long until enough nodes are out of their grace
	// period for a quorum, by what they said.
	RetryAfter time.Duration

	graceOnly bool   // every node that did not grant refused for its grace
	msg       string // the attempt, in words
	errs      error  // the nodes' errors, if any
}

// Error describes the attempt, when to retry, and the nodes' errors.
func (e *RestartingError) Error() string {
	s := fmt.Sprintf("dsync: nodes restarting, retry after %v: %s", e.RetryAfter.Round(time.Millisecond), e.msg)
	if e.errs != nil {
		s += ": " + e.errs.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrRestarting) and errors.Is(err, ErrNoQuorum)
// true.
func (e *RestartingError) Is(target error) bool {
	return target == ErrRestarting || target == ErrNoQuorum
}

// Unwrap returns the nodes' errors.
func (e *RestartingError) Unwrap() error { return e.errs }

// nodeErrors is the errors of several nodes, on one line.
type nodeErrors []error

// Error joins the nodes' errors with semicolons.
func (e nodeErrors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the nodes' errors, for errors.Is and errors.As.
func (e nodeErrors) Unwrap() []error { return e }
