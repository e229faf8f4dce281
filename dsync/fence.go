package dsync

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// FencingToken returns a fencing token for the write lock m holds: a number
// larger than the token of every earlier holder of a write lock on any
// resource through these nodes. Storage written under the lock keeps the
// largest token it has seen and refuses writes that carry a smaller one;
// then a holder that stalled (a GC pause, a stopped VM) past its validity,
// while another client took the lock, cannot overwrite the newer holder's
// work, even though it could not notice the loss in time.
//
// It costs two rounds of calls to the nodes, and needs every locker to be a
// locker.Fencer (ErrFenceUnsupported otherwise; the in-memory table and the
// HTTP client of package rest are). First it reads the fence counters of a
// write quorum and takes T, one more than the largest; then it raises the
// counters of a write quorum to T; last it checks, on this process's
// clock, that the lock is still within its validity (ErrLockLost if not).
//
// Why it is safe: a later holder B was granted its lock on at least one node
// that vouched for this lock when that last check passed, so B's grant, and
// the token B asks for after it, come after this raise finished. B's read
// quorum shares a node with this raise's quorum, and reads at least T there:
// B's token is larger. A holder that stalls between the raise and the check
// fails the check; one that stalls after the check already raised the
// counters. This holds while the nodes that share the two quorums keep their
// counters: a node that restarts resumes from its wall-clock time in
// nanoseconds, which is above the tokens of its previous run unless its
// wall clock was set back, or lags the clocks of the other nodes by more
// than the time since their counters started.
//
// A token is at most locker.MaxFence: once the nodes' counters have
// reached it, FencingToken fails with an error wrapping
// locker.ErrFenceExhausted (and the nodes grant no more locks).
//
// Tokens order write locks only; a read lock has none. It is a run-time
// error (a panic) to ask for a token when m does not hold the write lock.
func (m *DRWMutex) FencingToken(ctx context.Context) (uint64, error) {
	m.mu.Lock()
	h := m.write
	m.mu.Unlock()
	if h == nil {
		panic("dsync: FencingToken of a DRWMutex that does not hold the write lock")
	}
	if m.parts != nil {
		return m.fencingTokenParts(ctx, h)
	}
	return m.fencingToken(ctx, h)
}

// fencingToken returns a fencing token for h, m's write hold; see
// FencingToken.
func (m *DRWMutex) fencingToken(ctx context.Context, h *hold) (uint64, error) {
	ds := m.ds
	fencers, err := m.fencers()
	if err != nil {
		return 0, err
	}
	fail := func(err error) (uint64, error) { return 0, fmt.Errorf("dsync: fencing token %v: %w", m.names, err) }
	if cause := context.Cause(h.ctx); h.ctx.Err() != nil {
		if errors.Is(cause, ErrLockLost) {
			return fail(cause)
		}
		return fail(fmt.Errorf("%w: the lock was released", ErrLockLost))
	}
	w := ds.WriteQuorum()
	top, err := ds.raiseFences(ctx, fencers, 0, w)
	if err != nil {
		return fail(err)
	}
	if top >= locker.MaxFence {
		// top+1 would pass the largest fence the nodes accept, and, past
		// the 64-bit counter, wrap around to a token smaller than every
		// other.
		return fail(fmt.Errorf("%w: the nodes' fence counters read %d, at or above locker.MaxFence", locker.ErrFenceExhausted, top))
	}
	token := top + 1
	if _, err := ds.raiseFences(ctx, fencers, token, w); err != nil {
		return fail(err)
	}
	if err := m.stillHeld(h); err != nil {
		return fail(err)
	}
	return token, nil
}

// fencers returns m's lockers as locker.Fencers, or an error wrapping
// ErrFenceUnsupported.
func (m *DRWMutex) fencers() ([]locker.Fencer, error) {
	ds := m.ds
	fencers := make([]locker.Fencer, len(ds.lockers))
	for i, l := range ds.lockers {
		f, ok := l.(locker.Fencer)
		if !ok {
			return nil, fmt.Errorf("dsync: fencing token %v: %w: %s", m.names, ErrFenceUnsupported, l)
		}
		fencers[i] = f
	}
	return fencers, nil
}

// stillHeld returns an error wrapping ErrLockLost unless h, a hold of m,
// is still within its validity on this process's clock.
func (m *DRWMutex) stillHeld(h *hold) error {
	deadline, held := m.ds.refresher.Deadline(h.uid)
	if !held || h.ctx.Err() != nil || !m.ds.clk().Now().Before(deadline) {
		return fmt.Errorf("%w: its validity ran out before the token was made", ErrLockLost)
	}
	return nil
}

// raiseFences raises the fence counter of every node to at least floor, in
// parallel, each call bounded by CallTimeout, and returns the largest value
// they answered. It fails with ErrNoQuorum unless at least need nodes
// answered.
func (ds *Dsync) raiseFences(ctx context.Context, fencers []locker.Fencer, floor uint64, need int) (uint64, error) {
	callCtx, cancel := clock.WithTimeout(ctx, ds.clk(), ds.cfg.CallTimeout)
	defer cancel()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		top  uint64
		ok   int
		errs nodeErrors
	)
	for i, f := range fencers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.RaiseFence(callCtx, locker.FenceArgs{Floor: floor})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ds.lockers[i], err))
				return
			}
			ok++
			top = max(top, r.Fence)
		}()
	}
	wg.Wait()
	if ok < need {
		if ctx.Err() != nil {
			return 0, context.Cause(ctx)
		}
		return 0, fmt.Errorf("%w: %d of %d nodes answered, %d needed: %w", ErrNoQuorum, ok, len(fencers), need, errs)
	}
	return top, nil
}
