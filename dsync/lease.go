package dsync

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// LeaseOptions tune a Lease.
type LeaseOptions struct {
	// Options bound the acquisition (Timeout or Adaptive) and name its
	// Source.
	Options

	// Read takes a read lock instead of a write lock.
	Read bool

	// MaxHold bounds how long the lease is held. When it has passed since
	// the grant, on the Dsync's clock, the lease's context is cancelled with
	// cause ErrLeaseExpired and the lock is released on the nodes. If zero,
	// the lease is held until Release or a loss, like a DRWMutex lock.
	MaxHold time.Duration

	// MaxRenewals bounds the lease by renewals instead of time: the lock is
	// renewed with every other lock of the process once every
	// Config.RefreshInterval, so MaxRenewals renewals take MaxRenewals ×
	// RefreshInterval, and that is the bound applied (give or take one
	// renewal: the refresher's rounds are not aligned with the grant). The
	// renew interval itself is the Dsync's Config.RefreshInterval. If both
	// MaxHold and MaxRenewals are set, the smaller bound wins. If zero, no
	// bound by renewals.
	MaxRenewals int
}

// Lease is a lock held with a bound and a validity check: the seed's "lock
// handle with auto-renewal". The lock is a DRWMutex lock on one resource,
// renewed in the background by the Dsync's refresher like every held lock;
// the lease adds a maximum hold (LeaseOptions.MaxHold or MaxRenewals) after
// which it releases the lock itself, and Valid and Verify to ask whether it
// still holds.
//
// The lease's guarantees are those of the DRWMutex lock it holds. Its
// context is cancelled before the lock is released on the nodes, whether
// by Release, by reaching MaxHold, or by a loss; a holder that stalls past
// that (see the package documentation) cannot notice it.
//
// A Lease is safe for concurrent use.
type Lease struct {
	m        *DRWMutex
	write    bool
	ds       *Dsync
	ctx      context.Context
	cancel   context.CancelCauseFunc
	deadline time.Time // zero if there is no maximum hold

	mu    sync.Mutex // guards state
	state leaseState
}

type leaseState uint8

const (
	leaseHeld leaseState = iota
	leaseExpired
	leaseReleased
)

// AcquireLease acquires a lock on name through ds, as GetLock (or GetRLock
// with opts.Read) does, and returns it as a Lease. An empty name, or a
// negative MaxHold or MaxRenewals, is an error wrapping locker.ErrInvalidArgs.
func AcquireLease(ctx context.Context, ds *Dsync, name string, opts LeaseOptions) (*Lease, error) {
	if opts.MaxHold < 0 || opts.MaxRenewals < 0 {
		return nil, fmt.Errorf("%w: dsync: lease on %q: negative MaxHold %v or MaxRenewals %d", locker.ErrInvalidArgs, name, opts.MaxHold, opts.MaxRenewals)
	}
	if opts.Source == "" {
		opts.Source = caller(2)
	}
	ds = ds.setFor(name) // with lock sets, the set of name
	l := &Lease{m: NewDRWMutex(ds, name), write: !opts.Read, ds: ds}
	var lockCtx context.Context
	var err error
	if l.write {
		lockCtx, err = l.m.GetLock(ctx, opts.Options)
	} else {
		lockCtx, err = l.m.GetRLock(ctx, opts.Options)
	}
	if err != nil {
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancelCause(lockCtx)
	bound := opts.MaxHold
	if opts.MaxRenewals > 0 {
		byRenewals := time.Duration(opts.MaxRenewals) * ds.cfg.RefreshInterval
		if bound == 0 || byRenewals < bound {
			bound = byRenewals
		}
	}
	if bound > 0 {
		l.deadline = ds.clk().Now().Add(bound)
		t := ds.clk().NewTimer(bound) // armed before AcquireLease returns
		ds.goBackground(func(bg context.Context) { l.expireAt(bg, t) })
	}
	return l, nil
}

// expireAt ends the lease when t fires, unless it ends first or the Dsync is
// closed (bg done: Close has cancelled every lock context).
func (l *Lease) expireAt(bg context.Context, t clock.Timer) {
	defer t.Stop()
	select {
	case <-t.C():
	case <-l.ctx.Done():
		return
	case <-bg.Done():
		return
	}
	if !l.end(leaseExpired, ErrLeaseExpired) {
		return
	}
	ctx, cancel := clock.WithTimeout(bg, l.ds.clk(), l.ds.cfg.CallTimeout)
	defer cancel()
	_ = l.unlock(ctx) // what is not confirmed is retried in the background, or expires
}

// end moves a held lease to state, cancelling its context with cause; it
// reports false if the lease was no longer held.
func (l *Lease) end(state leaseState, cause error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != leaseHeld {
		return false
	}
	l.state = state
	l.cancel(cause)
	return true
}

func (l *Lease) unlock(ctx context.Context) error {
	if l.write {
		return l.m.Unlock(ctx)
	}
	return l.m.RUnlock(ctx)
}

// Context returns the lease's context: derived from the ctx given to
// AcquireLease, and cancelled when the lease is released, reaches its
// maximum hold (context.Cause is then ErrLeaseExpired) or is lost
// (ErrLockLost). Do the protected work under it.
func (l *Lease) Context() context.Context { return l.ctx }

// Deadline returns when the lease reaches its maximum hold, on the Dsync's
// clock, and false if it has none.
func (l *Lease) Deadline() (time.Time, bool) { return l.deadline, !l.deadline.IsZero() }

// Valid reports whether the lease is still held as far as this process
// knows: not released, not past its maximum hold, and not found lost by the
// refresher. It asks no node; see Verify.
func (l *Lease) Valid() bool {
	if l.ctx.Err() != nil {
		return false
	}
	return l.deadline.IsZero() || l.ds.clk().Now().Before(l.deadline)
}

// Verify asks every node, now, whether it holds the lease, and returns nil if
// a quorum does. Like a refresh, the question extends the lock's validity on
// the nodes that hold it. It returns an error wrapping ErrLockLost if more
// than n−quorum nodes answered that they do not hold it (the refresher will
// report the loss at its next round), ErrNoQuorum if too few answered, the
// cause of the lease's context if it is already done, or ctx's error. It
// waits at most Config.CallTimeout.
//
// Verify checks Valid before it asks the nodes and again once their answers
// are in: a quorum's confirmation that arrives after the lease's deadline,
// or after its context ended, is no confirmation, and Verify then returns
// the error Valid's failure stands for (ErrLeaseExpired, or the context's
// cause). Like every check, a nil says nothing of the time after Verify
// returns: do the protected work under Context, and before the deadline.
func (l *Lease) Verify(ctx context.Context) error {
	if err := l.validErr(); err != nil {
		return err
	}
	uid := l.uid()
	if uid == "" {
		return fmt.Errorf("dsync: lease %v: %w", l.m.names, context.Cause(l.ctx))
	}
	ds := l.ds
	held, notHeld := ds.confirm(ctx, uid)
	n, q := len(ds.lockers), ds.quorum(l.write)
	// The deadline may have passed, or the lock been lost, while the nodes
	// answered (found by the simulation's lease-verify-past-deadline
	// scenario); then their answers do not matter.
	if err := l.validErr(); err != nil {
		return err
	}
	switch {
	case held >= q:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("dsync: lease %v: %w", l.m.names, context.Cause(ctx))
	case notHeld > n-q:
		return fmt.Errorf("dsync: lease %v: %w: %d of %d nodes no longer hold it", l.m.names, ErrLockLost, notHeld, n)
	}
	return fmt.Errorf("%w: lease %v: %d of %d nodes confirmed, %d needed", ErrNoQuorum, l.m.names, held, n, q)
}

// validErr returns nil if the lease is Valid, and otherwise why not: the
// cause of its context, or ErrLeaseExpired.
func (l *Lease) validErr() error {
	if l.Valid() {
		return nil
	}
	if cause := context.Cause(l.ctx); cause != nil {
		return fmt.Errorf("dsync: lease %v: %w", l.m.names, cause)
	}
	return fmt.Errorf("dsync: lease %v: %w", l.m.names, ErrLeaseExpired)
}

// uid returns the UID of the lease's lock, or "" if it is not held.
func (l *Lease) uid() string {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if l.write && l.m.write != nil {
		return l.m.write.uid
	}
	if !l.write && len(l.m.reads) == 1 {
		return l.m.reads[0].uid
	}
	return ""
}

// Release gives the lease back: it cancels the lease's context, then
// releases the lock as DRWMutex.Unlock does. If the lease had already reached
// its maximum hold, the lock was released then, and Release returns an error
// wrapping ErrLeaseExpired, so that the caller learns its work may have been
// cut short; if it was lost, an error wrapping ErrLockLost. It is a run-time
// error (a panic) to Release a lease twice.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	state := l.state
	if state != leaseReleased {
		l.state = leaseReleased
		l.cancel(context.Canceled)
	}
	l.mu.Unlock()
	switch state {
	case leaseReleased:
		panic("dsync: Release of a released Lease")
	case leaseExpired:
		return fmt.Errorf("dsync: release lease %v: %w", l.m.names, ErrLeaseExpired)
	}
	return l.unlock(ctx)
}
