package dsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Waiting on the nodes.
//
// An acquisition's first attempt asks every node once, as TryLock does. If
// others hold the lock, it does not sleep and ask again: its next attempt
// asks the nodes to queue it (locker.LockArgs.Wait) and waits for them, so
// that each node hands the resource over within the release that frees
// it, to its oldest waiter (see locker's queue.go). The attempt succeeds
// once a quorum has granted, each node in its own time.
//
// One order on every node. Every attempt of an acquisition carries its
// ticket (LockArgs.Ticket): when its first attempt started, on this
// process's clock, in nanoseconds. Nodes order their waiters by ticket,
// ties broken by UID, and let nobody take a resource before an older
// waiter, so a freed resource goes to the same waiter on every node.
//
// Split votes. Nodes grant a free resource to whoever asks first, so two
// acquisitions can still split the nodes, each holding too few for its
// quorum and queued on the others' nodes. The older one wins: a node that
// queues a request behind a younger holder's grant wounds that holder
// (locker.WoundSink); a wounded attempt short of its quorum yields: it
// releases what it holds and withdraws its requests, then asks again at
// once, with the same ticket. The freed nodes go to the older waiter.
//
// Back-off remains only for what queues cannot fix: nodes that fail, and
// nodes that cannot queue (a locker that is not a locker.Waiter, a table
// whose queues are full), which refuse at once as before.
//
// How long one attempt waits is the least of what is left of the
// acquisition's timeout, Config.MaxWait, and a third of the shortest
// validity the nodes have reported: a lock handed over after waiting is
// valid from when its attempt was sent (the only time the client knows the
// node granted it after), and the refresher must have time to refresh it.

// ticketNonceBits is how many low bits of every ticket of a Dsync are its
// own random nonce (Dsync.ticketNonce): tickets count time in units of
// 2^16 ns, about 66 µs.
const ticketNonceBits = 16

// ticket returns the ticket of an acquisition that starts at now: its time
// since 1970 on the Dsync's clock, in units of 2^ticketNonceBits ns, with
// the Dsync's nonce in the low bits, and later than any ticket given before
// by this Dsync, so that two acquisitions of one process are never tied and
// keep the order they started in.
//
// The nonce keeps acquisitions of different clients that start in the same
// unit apart, and in the same order on every node and in every attempt:
// nodes break ties of tickets by UID, and every attempt has a UID of its
// own, so two acquisitions tied on their tickets could swap places from one
// attempt to the next and keep wounding each other (found with 8 clients
// starting at the same instant of a synctest bubble: once in a few hundred
// runs they waited out a MaxWait).
func (ds *Dsync) ticket(now time.Time) uint64 {
	ds = ds.top() // the sets of a Dsync made by NewSets share its tickets
	t := uint64(max(now.UnixNano(), 1))>>ticketNonceBits<<ticketNonceBits | ds.ticketNonce
	for {
		last := ds.lastTicket.Load()
		next := t
		if next <= last {
			next = last + 1<<ticketNonceBits // the same nonce
		}
		if ds.lastTicket.CompareAndSwap(last, next) {
			return next
		}
	}
}

// maxWait returns how long an attempt that starts with left of its
// acquisition's timeout may wait on the nodes (left is CallTimeout-free:
// the time the nodes may hold the request).
func (ds *Dsync) maxWait(left time.Duration) time.Duration {
	w := min(left, ds.cfg.MaxWait)
	if v := ds.validity.shortest(); v > 0 {
		w = min(w, v/3)
	}
	if ds.cfg.Validity > 0 {
		w = min(w, ds.cfg.Validity/3)
	}
	return w
}

// waitOutcome is how an attempt that waits on the nodes ended.
type waitOutcome uint8

const (
	waitGranted waitOutcome = iota // a quorum granted
	waitFailed                     // too many nodes refused or failed
	waitYielded                    // wounded short of its quorum: it released, to ask again
	waitGaveUp                     // ctx ended
)

// waitingAttempt gathers the answers and the news of one attempt that
// waits on the nodes. It is the sink of its calls (locker.QueueSink,
// locker.WoundSink); unlike the collector of other calls it is not
// recycled, since news may come after the attempt has decided.
type waitingAttempt struct {
	n, q int
	args locker.LockArgs // the calls' arguments, read by submitters until they answer

	mu       sync.Mutex // guards the fields below
	held     *Dsync     // set by doneHeld: told of the grants that come after the decision
	results  []nodeResult
	granted  int
	against  int
	queued   int  // nodes that said they queued the request
	wounded  bool // a node wounded a grant of the attempt
	decided  bool
	waiting  bool
	wake     chan struct{} // capacity 1
	answered int
}

// Done implements locker.Sink.
func (w *waitingAttempt) Done(node int, r locker.Reply, err error) {
	res := nodeResult{node, r, err}
	w.mu.Lock()
	w.results = append(w.results, res)
	w.answered++
	if err == nil && r.OK && r.Validity > 0 {
		w.granted++
	} else {
		w.against++ // a grant without a validity is counted failed by tally, and released
	}
	w.wakeLocked()
	held := w.held
	w.mu.Unlock()
	if held != nil {
		held.markHeld(w.args.UID, res)
	}
}

// doneHeld is collector.doneHeld for an attempt that waited and won.
func (w *waitingAttempt) doneHeld(ds *Dsync, tallied int) {
	w.mu.Lock()
	now := append([]nodeResult(nil), w.results[tallied:]...)
	w.held = ds
	w.mu.Unlock()
	for _, r := range now {
		ds.markHeld(w.args.UID, r)
	}
}

// Queued implements locker.QueueSink.
func (w *waitingAttempt) Queued(int, uint64) {
	w.mu.Lock()
	w.queued++
	w.mu.Unlock()
}

// Wounded implements locker.WoundSink.
func (w *waitingAttempt) Wounded(int, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wounded = true
	w.wakeLocked()
}

// wakeLocked wakes the waiter if it can decide; w.mu must be held.
func (w *waitingAttempt) wakeLocked() {
	if w.waiting && !w.decided && w.outcomeLocked() != waitGaveUp {
		w.waiting = false
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// outcomeLocked returns how the attempt ends with what it knows, or
// waitGaveUp if it cannot tell yet; w.mu must be held.
func (w *waitingAttempt) outcomeLocked() waitOutcome {
	switch {
	case w.granted >= w.q:
		return waitGranted
	case w.against > w.n-w.q:
		return waitFailed
	case w.wounded:
		return waitYielded
	case w.answered == w.n:
		return waitFailed // cannot happen: granted+against == n
	}
	return waitGaveUp
}

// wait blocks until the attempt can decide or ctx ends (waitGaveUp), and
// returns the outcome and the answers so far.
func (w *waitingAttempt) wait(ctx context.Context) (waitOutcome, []nodeResult) {
	for {
		w.mu.Lock()
		if o := w.outcomeLocked(); o != waitGaveUp {
			w.decided = true
			res := append([]nodeResult(nil), w.results...)
			w.mu.Unlock()
			return o, res
		}
		w.waiting = true
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-ctx.Done():
			w.mu.Lock()
			w.decided = true
			res := append([]nodeResult(nil), w.results...)
			w.mu.Unlock()
			return waitGaveUp, res
		}
	}
}

// tryAcquireWaiting asks every node at once, at now, to grant args to
// args.UID or queue it for args.Wait, each call bounded by args.Wait plus
// timeout, and waits for the outcome (see the top of waiting.go). On
// success the calls still out run on: a node that grants later holds the
// lock too, and is refreshed and released with it (the caller must call
// a.doneHeld once it has registered the lock). Otherwise everything
// the attempt may hold or have queued is released or withdrawn before it
// returns, also if ctx ended (in the background only for nodes that fail). queued reports whether any node
// queued the request: if none did, the nodes cannot queue, and the caller
// backs off as between attempts that do not wait.
func (ds *Dsync) tryAcquireWaiting(ctx context.Context, write bool, args locker.LockArgs, now time.Time, timeout time.Duration) (a attempt, outcome waitOutcome, queued bool) {
	n := len(ds.lockers)
	w := &waitingAttempt{n: n, q: args.Quorum, args: args, wake: make(chan struct{}, 1)}
	a.sent = now
	op := acquireOp(write)
	callTimeout := args.Wait + timeout
	for i, l := range ds.lockers {
		if s := ds.submitters[i]; s != nil {
			s.Submit(ctx, op, &w.args, callTimeout, w, i)
			continue
		}
		ds.workers.run(func() {
			cctx, cancel := clock.WithTimeout(ctx, ds.clk(), callTimeout)
			defer cancel()
			r, err := op.Call(cctx, l, args)
			w.Done(i, r, err)
		})
	}
	outcome, results := w.wait(ctx)
	a.state = make([]nodeState, n)
	a.tally(ds, results)
	w.mu.Lock()
	queued = w.queued > 0
	w.mu.Unlock()
	if outcome == waitGranted {
		a.w, a.tallied = w, len(results) // register gives it up
		return a, outcome, queued
	}
	// Release what may be held, and withdraw what may be queued: every
	// node but those that refused. (A release that overtakes its request
	// leaves a tombstone that refuses it.)
	nodes := make([]bool, n)
	some := false
	for i := range nodes {
		// Pending (no answer yet: maybe queued), granted or failed.
		nodes[i] = a.state[i] != stateRefused && a.state[i] != stateNotSent
		some = some || nodes[i]
	}
	rel := releaseArgs(args.UID)
	if !some {
		return a, outcome, queued
	}
	if outcome == waitGaveUp {
		a.gaveUp = context.Cause(ctx)
	}
	// Withdrawn before the caller hears of the outcome, even if its ctx has
	// ended, so that a waiter it gave up on is not handed the lock after it
	// returned: each node's answer is waited for, at most CallTimeout, and
	// nodes that failed are retried in the background.
	later := make([]bool, n)
	anyLater := false
	for _, r := range ds.callEach(context.WithoutCancel(ctx), releaseOp(write), rel, nodes) {
		if r.err != nil {
			later[r.node], anyLater = true, true
		}
	}
	if anyLater {
		ds.goBackground(func(bg context.Context) { ds.releaseOn(bg, releaseOp(write), rel, later) })
	}
	return a, outcome, queued
}

// errYielded is the error of an attempt that yielded to an older one (see
// the top of waiting.go): the caller asks again at once.
var errYielded = errors.New("dsync: yielded to an older acquisition")

// attemptWaiting is attemptOnce for an attempt that waits on the nodes,
// for at most wait, with the acquisition's ticket; each call is bounded by
// wait plus timeout. Besides attemptOnce's errors it returns errYielded;
// queued reports whether any node queued the request.
func (m *DRWMutex) attemptWaiting(ctx context.Context, mode Mode, source string, now time.Time, ticket uint64, wait, timeout time.Duration, intent *intentWithdrawal) (context.Context, bool, error) {
	write := mode == X
	args, holder, named, err := m.lockArgs(ctx, mode, source, false)
	if err != nil {
		return nil, false, err
	}
	args.Ticket, args.Wait = ticket, wait
	a, outcome, queued := m.ds.tryAcquireWaiting(ctx, write, args, now, timeout)
	switch outcome {
	case waitGranted:
		return m.register(ctx, mode, args, a, holder, named), queued, nil
	case waitYielded:
		return nil, queued, errYielded
	case waitGaveUp:
		return nil, queued, fmt.Errorf("dsync: lock %v: %w", m.names, a.gaveUp)
	}
	if mode.exclusive() && a.state != nil {
		// Refused, at once or at the end of their wait, the nodes declared
		// the writer's intent (see locker.LockArgs.Wait).
		intent.note(args.UID, a.state)
	}
	if a.invalid != nil {
		return nil, queued, a.invalid
	}
	return nil, queued, a.err(m.names, args.Quorum, len(m.ds.lockers))
}

// contendedFor is how long a resource found held is remembered as
// contended (see contended).
const contendedFor = time.Second

// maxContended bounds the resources remembered as contended; past it the
// memory starts again, empty.
const maxContended = 4096

// contended remembers the resources that acquisitions of this Dsync found
// held in the last contendedFor. The first attempt of an acquisition of
// such a resource waits on the nodes at once: asking first without waiting,
// as an acquisition of a free resource does, would only be refused again,
// and costs a call to every node per acquisition of a hot lock. An
// acquisition that finds nothing contended pays one atomic load.
type contended struct {
	n  atomic.Int32 // len(m), read without mu
	mu sync.Mutex   // guards m
	m  map[string]time.Time
}

// recent reports whether one of names was found held since now −
// contendedFor.
func (c *contended) recent(names []string, now time.Time) bool {
	if c.n.Load() == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range names {
		if at, ok := c.m[name]; ok {
			if now.Sub(at) < contendedFor {
				return true
			}
			delete(c.m, name)
			c.n.Store(int32(len(c.m)))
		}
	}
	return false
}

// note records that names were found held at now.
func (c *contended) note(names []string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m)+len(names) > maxContended {
		c.m = make(map[string]time.Time)
	}
	for _, name := range names {
		c.m[name] = now
	}
	c.n.Store(int32(len(c.m)))
}

// waitsAtFirst reports whether the first attempt of the acquisition a
// waits on the nodes (acquire.go): if one of its resources was found held
// lately (contended), unless a deadlock check must come first (a holder is
// named, deadlock.go): the check follows a refused attempt.
func (a *acquisition) waitsAtFirst() bool {
	return a.ds.cfg.MaxWait > 0 && a.waiting == nil && a.ds.contended.recent(a.m.names, a.now)
}

// noteContended remembers a's resources as contended the first time an
// attempt of the acquisition a finds them held (acquire.go), so that the
// next acquisitions of them wait on the nodes at once.
func (a *acquisition) noteContended() {
	if !a.wait {
		a.ds.contended.note(a.m.names, a.now)
	}
}
