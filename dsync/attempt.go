package dsync

import (
	"context"
	"fmt"
	"time"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/refresher"
)

// One attempt, asked of every node once: the request (lockArgs), its
// calls and their count (tryAcquire, quorum.go), and the registration of
// the hold won (register). An attempt that waits on the nodes
// (attemptWaiting, waiting.go) builds its request and registers its hold
// with the same two. See the top of acquire.go for where attempts fit.

// attemptOnce asks the nodes once, at now, each call bounded by timeout, and on
// success records and registers the hold, whose context derives from ctx. A
// failed attempt returns an error wrapping ErrLocked or ErrNoQuorum, the
// nodes' ErrInvalidArgs, or ctx's cause if ctx ended first. A nil intent
// says the caller will not retry (TryLock): nodes then declare no writer
// intent. Otherwise a failed write attempt is noted in intent, for the
// caller to withdraw if it gives up (intent.go).
func (m *DRWMutex) attemptOnce(ctx context.Context, mode Mode, source string, now time.Time, timeout time.Duration, intent *intentWithdrawal, ticket uint64) (context.Context, error) {
	write := mode == X
	once := intent == nil
	args, holder, named, err := m.lockArgs(ctx, mode, source, once)
	if err != nil {
		return nil, err
	}
	args.Ticket = ticket
	ds := m.ds
	a, ok := ds.tryAcquire(ctx, write, args, now, timeout)
	if !ok && mode.exclusive() && !once && a.state != nil {
		intent.note(args.UID, a.state)
	}
	if !ok {
		if a.gaveUp != nil {
			return nil, fmt.Errorf("dsync: lock %v: %w", m.names, a.gaveUp)
		}
		if a.invalid != nil {
			return nil, a.invalid
		}
		return nil, a.err(m.names, args.Quorum, len(ds.lockers))
	}
	return m.register(ctx, mode, args, a, holder, named), nil
}

// lockArgs returns the arguments of a new attempt, with a new UID, and the
// holder that ctx names for deadlock detection (see WithHolder), if it
// names one; once says the caller will not retry (TryLock). It fails if the
// mutex is invalid, the Dsync is closed, or ctx has ended.
func (m *DRWMutex) lockArgs(ctx context.Context, mode Mode, source string, once bool) (args locker.LockArgs, holder string, named bool, err error) {
	if m.err != nil {
		return args, "", false, m.err
	}
	ds := m.ds
	if ds.closed.Load() {
		return args, "", false, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return args, "", false, fmt.Errorf("dsync: lock %v: %w", m.names, context.Cause(ctx))
	}
	args = locker.LockArgs{
		UID: ds.newUID(), Resources: m.names, Owner: ds.cfg.Owner, Source: source, Quorum: ds.modeQuorum(mode), Mode: mode.wire(),
		NoIntent:  once, // a writer that will not retry must not hold readers back (nor be recorded as waiting)
		PublicUID: m.publicUID,
	}
	holder, named = holderFrom(ctx) // deadlock detection: see WithHolder
	if named {
		args.Holder = ds.holderName(holder)
	}
	return args, holder, named, nil
}

// register records the hold that attempt a won with args, registers it
// with the refresher, and returns its context, derived from ctx.
func (m *DRWMutex) register(ctx context.Context, mode Mode, args locker.LockArgs, a attempt, holder string, named bool) context.Context {
	ds := m.ds
	write := mode == X
	h := &hold{uid: args.UID, write: write, mode: mode, fence: a.fence}
	h.ctx, h.cancel = context.WithCancelCause(ctx)
	m.mu.Lock()
	if write {
		m.write = h
	} else {
		m.reads = append(m.reads, h)
	}
	m.mu.Unlock()
	if named {
		ds.trackHold(holder, m.names, mode, h.ctx) // deadlock detection
	}
	v := a.validity(args.Quorum)
	ds.refresher.Add(refresher.Lock{
		UID: args.UID, Quorum: args.Quorum, Acquired: a.sent, Validity: v,
		Write: write, Args: args, Held: ds.refHeld(a.held(v)), // for reclaims on nodes that restart
		OnLost: func(err error) { m.lost(h, err) },
		Nodes:  ds.refNodes, // nil (every node) but on a set of NewSets
	})
	a.doneHeld(ds) // the nodes that grant from now on are marked too
	// Close sets closed before it reports the registered locks lost: a lock
	// registered after that report is caught here, so none is left
	// unrefreshed with a live context.
	if ds.closed.Load() && ds.refresher.Remove(args.UID) {
		m.lost(h, fmt.Errorf("%w (lock %s)", refresher.ErrStopped, args.UID))
	}
	return h.ctx
}
