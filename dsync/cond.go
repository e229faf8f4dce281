package dsync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Cond is a distributed condition variable: waiters in any processes wait,
// with a Mutex released, until another process signals that the condition
// they wait for may have changed.
//
// # Design
//
// Everything is a lock of the Dsync.
//
//   - A waiter registers by taking a read lock on name+"/waiters" (read
//     locks share, so any number wait), and only then unlocks the Mutex.
//     The registration's UID names the waiter. It is public
//     (locker.LockArgs.PublicUID): the nodes tell it to queries, which
//     otherwise name a grant only by its UID's tag, since whoever knows a
//     UID can release its grant, and a signaller must be able to.
//   - Signal asks every node, with a read-only query (locker.Querier), for
//     the holders of name+"/waiters", picks the one that has waited longest
//     and force-releases its registration on every node (its UID, nothing
//     else). Broadcast force-releases every registration it finds.
//     Signals are serialised by a write lock on name+"/signal", so that two
//     Signals do not pick the same waiter.
//   - A waiter asks the nodes whether they still hold its registration
//     (a refresh of its own UID) after a back-off like a contended
//     GetLock's (Config.RetryMin to RetryMax), and wakes when more than
//     n−R nodes say they do not: it was signalled. It then re-locks the
//     Mutex. A waiter therefore wakes at most about RetryMax after its
//     signal.
//
// # Fault model
//
// No lost wakeup: a waiter's registration is held by a read quorum R before
// it unlocks the Mutex, so a Signal made after the signaller changed the
// condition under the Mutex finds it, provided its query is answered by at
// least n−R+1 nodes (any such set meets every read quorum); otherwise Signal
// and Broadcast fail with ErrNoQuorum rather than miss a waiter.
//
// Spurious wakeups happen, as with sync.Cond's callers' loops and POSIX
// condition variables: a registration lost to a fault (nodes that expire or
// forget it) wakes its waiter. Always wait in a loop that re-checks the
// condition under the Mutex. Under call failures whose outcome is unknown, a
// Signal can be spent on a registration left behind by a waiter's failed
// attempt (it is released within Config.UnlockRetryFor): waiters should bound
// their Wait with a context and re-check. Broadcast is not affected.
//
// Signal and Broadcast may be called with or without the Mutex held. A Cond
// is safe for concurrent use.
type Cond struct {
	ds      *Dsync
	waiters string // resource whose read holders are the waiters
	signal  string // resource that serialises Signals
	err     error  // why the Cond cannot be used, reported by every call
}

// NewCond returns the condition variable called name through ds. An empty
// name, or a locker of ds that is not a locker.Querier
// (ErrQueryUnsupported), is an error that every call returns.
func NewCond(ds *Dsync, name string) *Cond {
	ds = ds.setFor(name) // with lock sets, waiters and signal on the set of name
	c := &Cond{ds: ds, waiters: name + "/waiters", signal: name + "/signal"}
	if name == "" {
		c.err = fmt.Errorf("%w: dsync: condition variable with an empty name", locker.ErrInvalidArgs)
	} else {
		c.err = ds.checkQueriers()
	}
	return c
}

// Wait registers as a waiter, unlocks l, waits to be signalled, and locks l
// again, returning l's new lock context (see Mutex.Lock: it derives from ctx,
// so it also ends when ctx does; a ctx that bounds the wait alone must not
// be cancelled while l is held). It returns an
// error if ctx ends or the Cond cannot be used; then l is not held, whatever
// happened before. It is a run-time error (a panic) to Wait without holding
// l.
//
// As with sync.Cond, a woken waiter cannot assume that the condition holds:
//
//	lockCtx, err := m.Lock(ctx)
//	for err == nil && !condition(lockCtx) {
//		lockCtx, err = c.Wait(ctx, m)
//	}
func (c *Cond) Wait(ctx context.Context, l *Mutex) (context.Context, error) {
	return c.wait(ctx, l, Options{Source: caller(2)})
}

// WaitWith is Wait with opts for its two acquisitions: the registration of
// the waiter and the taking of l again once woken. opts.Timeout or
// opts.Adaptive bound each of them (opts.Adaptive learns from them), not
// the wait for a signal, which ctx bounds.
func (c *Cond) WaitWith(ctx context.Context, l *Mutex, opts Options) (context.Context, error) {
	if opts.Source == "" {
		opts.Source = caller(2)
	}
	return c.wait(ctx, l, opts)
}

func (c *Cond) wait(ctx context.Context, l *Mutex, opts Options) (context.Context, error) {
	l.rw.mu.Lock()
	held := l.rw.write != nil
	l.rw.mu.Unlock()
	if !held {
		panic("dsync: Cond.Wait without holding the Mutex")
	}
	fail := func(err error) (context.Context, error) {
		return nil, fmt.Errorf("dsync: cond %q: %w", c.waiters, err)
	}
	if c.err != nil {
		_ = l.Unlock(context.WithoutCancel(ctx))
		return fail(c.err)
	}
	reg := NewDRWMutex(c.ds, c.waiters)
	reg.publicUID = true // for signallers to find and release: see Design
	// Its release waits for every node: once a quorum has released, the
	// others could still list the registration when the next Signal came,
	// and Signal wakes the longest waiting first: it would spend itself on
	// the registration of a Wait that had returned, and a live waiter
	// would not be woken (TestCondNoLostWakeup hung so).
	reg.releaseAll = true
	regCtx, err := reg.GetRLock(ctx, opts)
	if err != nil {
		_ = l.Unlock(context.WithoutCancel(ctx))
		return fail(err)
	}
	uid := reg.reads[0].uid // reg is this Wait's own: one read lock
	_ = l.Unlock(ctx)       // a release not yet confirmed goes on in the background
	for round := 0; ; round++ {
		if regCtx.Err() != nil && !errors.Is(context.Cause(regCtx), ErrLockLost) {
			break // ctx ended
		}
		if held, notHeld := c.ds.confirm(ctx, uid); notHeld > len(c.ds.lockers)-c.ds.ReadQuorum() {
			break // signalled
		} else if held == 0 && notHeld == 0 && regCtx.Err() != nil {
			break // lost, and no node to ask: a spurious wakeup
		}
		if !clock.Sleep(ctx, c.ds.clk(), c.ds.backoff(round)) {
			break
		}
	}
	_ = reg.RUnlock(context.WithoutCancel(ctx)) // every node's answer; a signalled registration is gone already
	if ctx.Err() != nil {
		return fail(context.Cause(ctx))
	}
	lockCtx, err := l.rw.GetLock(ctx, opts)
	if err != nil {
		return fail(err)
	}
	return lockCtx, nil
}

// waiter is one registration found by a query.
type waiter struct {
	uid     string
	heldFor int64 // the longest any node reports
}

// findWaiters asks the nodes for the registered waiters, longest waiting
// first. It fails with ErrNoQuorum if too few nodes answered to be sure to
// see every registration.
func (c *Cond) findWaiters(ctx context.Context) ([]waiter, error) {
	answers, _, errs := c.ds.queryAll(ctx, []string{c.waiters})
	if short, ok := c.ds.seesEveryRead(answers); !ok {
		return nil, fmt.Errorf("%w: cond %q: %s to see every waiter: %w", ErrNoQuorum, c.waiters, short, nodeErrors(errs))
	}
	byUID := make(map[string]int64)
	for _, a := range answers {
		if a == nil {
			continue
		}
		for _, h := range a.Resources[0].Holders {
			// A registration's UID is public; a grant on the resource
			// whose UID is not is no registration, and cannot be woken.
			if !h.Write && h.UID != "" {
				byUID[h.UID] = max(byUID[h.UID], h.HeldFor)
			}
		}
	}
	ws := make([]waiter, 0, len(byUID))
	for uid, d := range byUID {
		ws = append(ws, waiter{uid, d})
	}
	slices.SortFunc(ws, func(a, b waiter) int {
		return cmp.Or(cmp.Compare(b.heldFor, a.heldFor), cmp.Compare(a.uid, b.uid))
	})
	return ws, nil
}

// wake force-releases w's registration on every node and reports whether
// any node still had it.
func (c *Cond) wake(ctx context.Context, w waiter) bool {
	woken := false
	for _, r := range c.ds.callEach(ctx, locker.OpForceUnlock, releaseArgs(w.uid), c.ds.allNodes) {
		woken = woken || (r.err == nil && r.reply.OK)
	}
	return woken
}

// Signal wakes the waiter that has waited longest, if there is one. It
// returns ErrNoQuorum if too few nodes answered to be sure to see every
// waiter, ctx's error, or the error of taking the lock that serialises
// Signals.
func (c *Cond) Signal(ctx context.Context) error {
	if c.err != nil {
		return c.err
	}
	serial := NewDRWMutex(c.ds, c.signal)
	if _, err := serial.GetLock(ctx, Options{Source: caller(2)}); err != nil {
		return fmt.Errorf("dsync: cond signal: %w", err)
	}
	defer serial.Unlock(context.WithoutCancel(ctx))
	ws, err := c.findWaiters(ctx)
	if err != nil {
		return err
	}
	for _, w := range ws {
		if c.wake(ctx, w) {
			return nil
		}
		// Gone meanwhile (its Wait ended): the next one.
	}
	return nil
}

// Broadcast wakes every registered waiter. It returns ErrNoQuorum if too few
// nodes answered to be sure to see every waiter, or ctx's error.
func (c *Cond) Broadcast(ctx context.Context) error {
	if c.err != nil {
		return c.err
	}
	ws, err := c.findWaiters(ctx)
	if err != nil {
		return err
	}
	for _, w := range ws {
		c.wake(ctx, w)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("dsync: cond broadcast: %w", context.Cause(ctx))
	}
	return nil
}
