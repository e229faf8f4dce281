package locker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Waiting on the node.
//
// A lock request with LockArgs.Wait that cannot be granted at once, because
// another holder, or an older waiter, is in its way, is queued on each of its
// resources instead of refused: the table answers it ReasonQueued (with the
// lowest ticket in its way, Reply.Ahead) and, when it is its turn, grants it
// and calls the function the request came with (WaitHooks.Done) with the grant. So a
// contended lock passes from its holder to the next waiter within the
// release, with no polling and no sleep, in the order of the waiters'
// tickets.
//
// One order on every node. Waiters are ordered by their ticket
// (LockArgs.Ticket: the time the acquisition's first attempt started, on its
// client's clock), ties broken by UID: the same order on every node, so that
// every node hands a freed resource to the same waiter. A request that is
// not queued (a TryLock, or a waiter's own retry) is checked against the
// queue too: it may not take a resource before an older waiter that
// conflicts with it, even if the resource is free; it may before a younger
// one. Waiters at the head of a queue whose modes are compatible (readers,
// intention locks) are granted together, up to the first that is not./
// writer.
//
// What ends a wait, besides its grant: its Wait passing on the node's clock
// (the request is refused, ReasonConflict), a release of its UID (Unlock or
// RUnlock: a client that gives up withdraws its waiters; ReasonReleased),
// and Close (ErrClosed). A waiter is never granted after any of these, and
// Done is called exactly once.
//
// A waiter that its client abandoned (the client crashed, or was cut off)
// leaves the queues when its Wait passes, or when the server that queued it
// withdraws it (package rest withdraws the waiters of a client that stops
// asking for its news). If it was granted first, the grant is held by
// nobody and expires after its validity, like any grant whose holder died.

// waiter is a queued lock request. Its fields but timer are set when it is
// queued and then read only; done and its place in the queues are written
// with every shard of its UID and resources locked, and read with at least
// one of them locked.
type waiter struct {
	args     LockArgs // the table's own copy of the request's arguments
	write    bool     // asked for by Lock (ModeX), not RLock
	mode     Mode
	uh       uint64   // hash of args.UID
	rh       []uint64 // hashes of args.Resources
	deadline int64    // table time when its wait ends
	hooks    WaitHooks
	done     bool // granted, refused or withdrawn: in no queue

	timerMu sync.Mutex // guards timer and stopped
	timer   func() bool
	stopped bool // stopTimer was called: a timer armed later is stopped at once
}

// waitQueue is the queue of one resource: its waiters, oldest first.
type waitQueue struct {
	ws []*waiter
}

// older reports whether a request with ticket t and uid u comes before one
// with ticket t2 and uid u2. A ticket of 0 comes after every other.
func older(t uint64, u string, t2 uint64, u2 string) bool {
	switch {
	case t == t2:
		return u < u2
	case t == 0:
		return false
	case t2 == 0:
		return true
	}
	return t < t2
}

// insert queues w in q, in ticket order.
func (q *waitQueue) insert(w *waiter) {
	i, _ := slices.BinarySearchFunc(q.ws, w, func(x, w *waiter) int {
		switch {
		case x == w:
			return 0
		case older(x.args.Ticket, x.args.UID, w.args.Ticket, w.args.UID):
			return -1
		}
		return 1
	})
	q.ws = slices.Insert(q.ws, i, w)
}

// remove takes w out of q and reports whether q is now empty.
func (q *waitQueue) remove(w *waiter) bool {
	if i := slices.Index(q.ws, w); i >= 0 {
		q.ws = slices.Delete(q.ws, i, i+1)
	}
	return len(q.ws) == 0
}

// inTheWay reports whether a waiter of q other than self, older than a
// request with ticket t and uid u and of mode, conflicts with it (see
// Compatible), and returns the lowest ticket among those.
func (q *waitQueue) inTheWay(self *waiter, t uint64, u string, mode Mode) (bool, uint64) {
	in, ahead := false, uint64(0)
	for _, x := range q.ws {
		if !older(x.args.Ticket, x.args.UID, t, u) {
			break
		}
		if x == self || Compatible(mode, x.mode) {
			continue
		}
		in = true
		ahead = lowestTicket(ahead, x.args.Ticket)
	}
	return in, ahead
}

// lowestTicket returns the lower of two tickets, 0 meaning none.
func lowestTicket(a, b uint64) uint64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// waitMode says what acquire does with a request that must wait.
type waitMode struct {
	// self, for a hand-off, is the queued waiter that tries again; acquire
	// then leaves it queued if it still must wait, and dequeues it if it is
	// granted.
	self *waiter
	// hooks, if hooks.Done is set and LockArgs.Wait is positive, make
	// acquire queue a request that must wait (see WaitHooks).
	hooks WaitHooks
}

// WaitHooks are what a lock request that may wait on the table
// (Local.LockWait) is told besides its reply. They must not block nor call
// the table.
type WaitHooks struct {
	// Done is called once, on another goroutine, with the outcome of a
	// request that was queued: its grant, a refusal (its wait passed, or its
	// UID was released: ReasonConflict, ReasonReleased), or ErrClosed.
	Done func(Reply, error)
	// Queued, if set, is called with the ReasonQueued reply of a request
	// that is queued, under the table's locks, before Done can be.
	Queued func(Reply)
	// Wounded, if set, is called at most once, after the request was
	// granted (at once or from the queue), if a request with an older ticket
	// (a lower LockArgs.Ticket) is then queued behind its grant, with that
	// request's ticket (see wound.go); never after the grant is released.
	// It is called on the goroutine of the request that wounds, with no lock
	// of the table held. A request without a ticket is never wounded. An acquisition that holds too few nodes for its quorum
	// yields to the older one (package dsync); one that holds its quorum
	// lets it wait.
	Wounded func(ahead uint64)
}

// LockWait is Lock (write) or RLock that waits on the table: if the lock
// cannot be granted at once and args.Wait is positive, the request is queued
// (see the top of queue.go) and LockWait returns a reply with ReasonQueued;
// its outcome comes later, through hooks.Done, which must be set. In every
// other case LockWait returns what Lock would, and calls no hook, except
// Wounded after a grant (see WaitHooks).
func (l *Local) LockWait(ctx context.Context, write bool, args LockArgs, hooks WaitHooks) (Reply, error) {
	return l.acquire(ctx, &args, write, &waitMode{hooks: hooks})
}

// Waiter is implemented by lockers that can queue a lock request on the
// node (LockArgs.Wait); see Local.LockWait. Package rest serves it to its
// clients.
type Waiter interface {
	LockWait(ctx context.Context, write bool, args LockArgs, hooks WaitHooks) (Reply, error)
}

var _ Waiter = (*Local)(nil)

// enqueue queues the request of args (write or read, uid hash uh, resource
// hashes rh, entries held: nil where none) with hooks; the shards of idx,
// its UID's and its resources', are locked. It returns the waiter.
func (l *Local) enqueue(args *LockArgs, write bool, mode Mode, uh uint64, rh []uint64, held []*resource, now int64, hooks WaitHooks) *waiter {
	w := &waiter{args: ownArgs(args), write: write, mode: mode, uh: uh, rh: slices.Clone(rh), hooks: hooks}
	// At most one validity: a waiter whose client died leaves the queues
	// within it, whatever Wait it asked for.
	w.deadline = now + int64(min(args.Wait, l.cfg.Validity))
	for i, r := range held {
		if r == nil {
			r = l.shards[l.shardOf(rh[i])].newResource(rh[i], w.args.Resources[i])
			held[i] = r
		}
		if r.queue == nil {
			r.queue = new(waitQueue)
		}
		r.queue.insert(w)
	}
	us := &l.shards[l.shardOf(uh)]
	if us.waiting == nil {
		us.waiting = make(map[uint64][]*waiter)
	}
	us.waiting[uh] = append(us.waiting[uh], w)
	l.queued.Add(1)
	return w
}

// ownArgs returns a copy of a with strings of its own: the caller's may
// alias a request's buffer.
func ownArgs(a *LockArgs) LockArgs {
	c := *a
	c.UID, c.Owner, c.Source, c.Holder = strings.Clone(a.UID), strings.Clone(a.Owner), strings.Clone(a.Source), strings.Clone(a.Holder)
	c.Resources = make([]string, len(a.Resources))
	for i, r := range a.Resources {
		c.Resources[i] = strings.Clone(r)
	}
	return c
}

// dequeueLocked takes w out of every queue and of its UID's index, and marks
// it done; every shard of w is locked. It returns the resources it was
// queued on whose queues still hold waiters, for the caller to serve once
// the shards are unlocked (a head that left may let the next one in).
func (l *Local) dequeueLocked(w *waiter) (serve []resourceKey) {
	w.done = true
	l.queued.Add(-1)
	for i, name := range w.args.Resources {
		s := &l.shards[l.shardOf(w.rh[i])]
		r := s.resource(w.rh[i], name)
		if r == nil || r.queue == nil {
			continue
		}
		if r.queue.remove(w) {
			r.queue = nil
			if r.empty() {
				s.drop(r.hash, r)
			}
			continue
		}
		serve = append(serve, resourceKey{r.hash, r.name})
	}
	us := &l.shards[l.shardOf(w.uh)]
	ws := us.waiting[w.uh]
	if i := slices.Index(ws, w); i >= 0 {
		ws = slices.Delete(ws, i, i+1)
	}
	if len(ws) == 0 {
		delete(us.waiting, w.uh)
	} else {
		us.waiting[w.uh] = ws
	}
	return serve
}

// resourceKey names a resource entry to look up again later, without the
// entry: once its shard is unlocked it may be dropped and reused.
type resourceKey struct {
	hash uint64
	name string // the table's own string, or a copy
}

// lockWaiter locks the shards of w, in order, into buf.
func (l *Local) lockWaiter(w *waiter, buf []uint16) []uint16 {
	idx := l.shardSet(buf[:0], w.uh, w.rh)
	l.lockShards(idx, 0)
	return idx
}

// finish ends the wait of w, if it is still queued, with reply (or err):
// it takes w out of the queues, stops its timer, calls its hooks.Done, and
// serves the queues it leaves. It reports whether w was still queued.
func (l *Local) finish(w *waiter, reply Reply, err error) bool {
	return l.finishWait(w, reply, err, false)
}

// expire ends the wait of w, if it is still queued, at its deadline: it is
// refused as a request that never waited would have been, and a writer
// still kept out by readers declares its intent (Config.WriterIntent) as
// such a request does, so that every refused write attempt of a client
// holds readers back alike, and its withdrawal (an Unlock of its UID)
// undoes it alike.
func (l *Local) expire(w *waiter) bool {
	return l.finishWait(w, Reply{Reason: ReasonConflict}, nil, true)
}

// finishWait is finish, which declares w's writer intent first if expired.
func (l *Local) finishWait(w *waiter, reply Reply, err error, expired bool) bool {
	var ibuf [8]uint16
	idx := l.lockWaiter(w, ibuf[:0])
	if w.done {
		l.unlockShards(idx)
		return false
	}
	if expired && w.mode.exclusive() && l.intentTTL > 0 && !w.args.NoIntent {
		l.declareIntent(w.args.Resources, w.rh, w.uh, w.mode, w.args.Ticket, l.now())
	}
	serve := l.dequeueLocked(w)
	l.unlockShards(idx)
	w.stopTimer()
	w.hooks.Done(reply, err)
	l.serve(serve)
	return true
}

// stopTimer stops w's deadline timer, if it has one.
func (w *waiter) stopTimer() {
	w.timerMu.Lock()
	stop := w.timer
	w.timer, w.stopped = nil, true
	w.timerMu.Unlock()
	if stop != nil {
		stop()
	}
}

// armTimer ends w's wait at its deadline, on the table's clock if it can
// run a function after a duration (AfterFunc), else on the real clock.
func (l *Local) armTimer(w *waiter, now int64) {
	d := time.Duration(w.deadline - now)
	expire := func() { l.expire(w) }
	var stop func() bool
	if af, ok := l.clock.(interface {
		AfterFunc(time.Duration, func()) func() bool
	}); ok {
		stop = af.AfterFunc(d, expire)
	} else {
		stop = time.AfterFunc(d, expire).Stop
	}
	w.timerMu.Lock()
	if w.stopped { // its wait ended before the timer was kept
		w.timerMu.Unlock()
		stop()
		return
	}
	w.timer = stop
	w.timerMu.Unlock()
}

// serve hands the freed resources of keys to their queues' heads: each
// head waiter tries again, as itself (a hand-off), and is granted if nothing
// is in its way any more; readers behind a granted reader head are tried
// too, up to the first writer. A waiter still in the way of a resource
// stays queued.
func (l *Local) serve(keys []resourceKey) {
	for _, k := range keys {
		l.serveOne(k)
	}
}

func (l *Local) serveOne(k resourceKey) {
	for {
		s := &l.shards[l.shardOf(k.hash)]
		s.mu.Lock()
		r := s.resource(k.hash, k.name)
		if r == nil || r.queue == nil {
			s.mu.Unlock()
			return
		}
		// The head, and the waiters right behind it whose modes are
		// compatible with it and each other (readers behind a reader).
		var cands []*waiter
	next:
		for _, w := range r.queue.ws {
			for _, c := range cands {
				if !Compatible(w.mode, c.mode) {
					break next
				}
			}
			cands = append(cands, w)
		}
		s.mu.Unlock()
		granted := 0
		for _, w := range cands {
			if l.handOff(w) {
				granted++
			} else {
				break
			}
		}
		if granted == 0 || granted < len(cands) {
			return
		}
		// Every candidate was granted: the next in the queue may be too
		// (readers after readers, up to a writer, which the loop stops at).
		if cands[0].mode == ModeX {
			return
		}
	}
}

// handOff tries the queued waiter w again, as itself, and reports whether
// it was granted (and told).
func (l *Local) handOff(w *waiter) bool {
	reply, err := l.acquire(context.Background(), &w.args, w.write, &waitMode{self: w})
	if err != nil || !reply.OK {
		return false
	}
	w.stopTimer()
	w.hooks.Done(reply, nil)
	return true
}

// withdraw ends the wait of the queued waiter of uid (hash uh), if there is
// one, with ReasonReleased: its client gave up. It reports whether there
// was one.
func (l *Local) withdraw(uh uint64, uid string) bool {
	us := &l.shards[l.shardOf(uh)]
	us.mu.Lock()
	var w *waiter
	for _, x := range us.waiting[uh] {
		if x.args.UID == uid {
			w = x
			break
		}
	}
	us.mu.Unlock()
	if w == nil {
		return false
	}
	return l.finish(w, Reply{Reason: ReasonReleased}, nil)
}

// queuedOf returns the queued waiter of uid (hash uh) in its shard s, whose
// mu is held, or nil.
func (s *shard) queuedOf(uh uint64, uid string) *waiter {
	for _, w := range s.waiting[uh] {
		if w.args.UID == uid {
			return w
		}
	}
	return nil
}

// closeWaiters ends every wait with ErrClosed; the table is closed.
func (l *Local) closeWaiters() {
	var all []*waiter
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for _, ws := range s.waiting {
			all = append(all, ws...)
		}
		s.mu.Unlock()
	}
	for _, w := range all {
		l.finish(w, Reply{}, fmt.Errorf("locker: lock %q: %w", w.args.Resources[0], ErrClosed))
	}
}
