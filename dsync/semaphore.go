package dsync

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Semaphore is a distributed counting semaphore: at most n holders at a time
// across every process that uses the same name through the same node set.
//
// Permit i of the semaphore is the write lock on the resource
// name+"/permit/"+i (i from 0 to n−1), taken through the Dsync like any
// DRWMutex. All its safety comes from those quorum locks: at most n permits
// are held at once under exactly the faults a DRWMutex write lock survives
// (see the package documentation), and not beyond them. A permit whose lock
// is lost is free for another acquirer at once, so its holder must stop when
// Permit.Context is cancelled.
//
// Every process must use the same n for a name: a process that believes
// there are more permits takes the extra ones without anybody else counting
// them.
//
// An acquisition tries the permits in turn, starting at a random one, until
// one is granted; after a round in which every permit was held it waits
// (with the Dsync's growing, jittered back-off, see Config.RetryMin) and
// tries again. Waiting acquirers are not queued: under steady contention one
// of them may wait without bound, as with DRWMutex. A round costs up to n
// lock attempts, each to every node, so a Semaphore suits tens of permits,
// not thousands.
//
// A Semaphore is safe for concurrent use.
type Semaphore struct {
	ds    *Dsync
	name  string
	slots []string // resource name of each permit
	err   error    // why the semaphore cannot be used, reported by every acquisition
}

// Permit is one held permit of a Semaphore.
type Permit struct {
	slot     int
	m        *DRWMutex
	ctx      context.Context
	released atomic.Bool
}

// NewSemaphore returns a semaphore of n permits called name, through ds. An
// empty name or n < 1 is an error that every acquisition returns (wrapping
// locker.ErrInvalidArgs).
func NewSemaphore(ds *Dsync, name string, n int) *Semaphore {
	ds = ds.setFor(name) // with lock sets, every permit on the set of name
	s := &Semaphore{ds: ds, name: name}
	switch {
	case name == "":
		s.err = fmt.Errorf("%w: dsync: semaphore with an empty name", locker.ErrInvalidArgs)
	case n < 1:
		s.err = fmt.Errorf("%w: dsync: semaphore %q with %d permits", locker.ErrInvalidArgs, name, n)
	default:
		s.slots = make([]string, n)
		for i := range s.slots {
			s.slots[i] = name + "/permit/" + strconv.Itoa(i)
		}
	}
	return s
}

// Size returns the number of permits.
func (s *Semaphore) Size() int { return len(s.slots) }

// Acquire takes a permit, retrying with back-off until one is granted,
// opts.Timeout (or opts.Adaptive's timeout) passes (ErrTimeout) or ctx is
// done (ctx's error). When every permit is held the error also wraps
// ErrLocked; when the nodes could not be reached, ErrNoQuorum. A cancelled
// or timed-out Acquire leaves no permit behind.
func (s *Semaphore) Acquire(ctx context.Context, opts Options) (*Permit, error) {
	if s.err != nil {
		return nil, s.err
	}
	source := opts.Source
	if source == "" {
		source = caller(2)
	}
	clk := s.ds.clk()
	timeout, adaptive := opts.bound()
	var start, deadline time.Time
	if timeout > 0 { // always with Adaptive: its timeout is at least its Min, which is positive
		start = clk.Now()
		deadline = start.Add(timeout)
	}
	run := adaptiveRun{a: adaptive, clk: clk, start: start} // reports the outcome to opts.Adaptive, if set
	t0 := start
	if s.ds.cfg.Observer != nil && t0.IsZero() {
		t0 = clk.Now()
	}
	p, err := s.acquire(ctx, source, deadline)
	run.done(ctx, err)
	if s.ds.cfg.Observer != nil {
		s.ds.observeAcquired(KindPermit, outcomeOf(ctx, err), t0)
	}
	return p, err
}

// acquire is Acquire until deadline (none if zero).
func (s *Semaphore) acquire(ctx context.Context, source string, deadline time.Time) (*Permit, error) {
	clk := s.ds.clk()
	// left returns what is left of the timeout, capped at limit.
	left := func(limit time.Duration) time.Duration {
		if deadline.IsZero() {
			return limit
		}
		return min(limit, deadline.Sub(clk.Now()))
	}
	var last error
	for round := 0; ; round++ {
		p, err := s.round(ctx, source, left)
		if p != nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return nil, s.gaveUp(ctx, last)
		}
		retryable := errors.Is(err, ErrLocked) || errors.Is(err, ErrNoQuorum)
		cutShort := left(s.ds.cfg.CallTimeout) <= 0
		if retryable && (last == nil || !cutShort) {
			last = err // a round cut short by the timeout says less than the one before
		}
		if !retryable {
			if cutShort {
				return nil, s.gaveUp(ctx, last)
			}
			return nil, err // invalid request, or closed
		}
		wait := s.ds.backoff(round)
		if w := left(wait); w < wait {
			// The timeout passes first: wait for it, then give up.
			if w > 0 {
				clock.Sleep(ctx, clk, w)
			}
			return nil, s.gaveUp(ctx, last)
		}
		if !clock.Sleep(ctx, clk, wait) {
			return nil, s.gaveUp(ctx, last)
		}
	}
}

// TryAcquire makes one round over the permits. It reports false with a nil
// error when every permit is held, and false with an error wrapping
// ErrNoQuorum when too many nodes failed to answer.
func (s *Semaphore) TryAcquire(ctx context.Context) (*Permit, bool, error) {
	if s.err != nil {
		return nil, false, s.err
	}
	p, err := s.round(ctx, caller(2), func(limit time.Duration) time.Duration { return limit })
	switch {
	case p != nil:
		return p, true, nil
	case ctx.Err() != nil:
		return nil, false, fmt.Errorf("dsync: semaphore %q: %w", s.name, context.Cause(ctx))
	case errors.Is(err, ErrLocked):
		return nil, false, nil
	}
	return nil, false, err
}

// round tries every permit once, from a random one; a granted permit's
// context derives from ctx. left bounds each attempt's calls by what is left
// of the caller's timeout; once nothing is, round returns ErrTimeout. It
// stops early on an error that another permit would meet as well: the nodes
// are the same for all of them.
func (s *Semaphore) round(ctx context.Context, source string, left func(time.Duration) time.Duration) (*Permit, error) {
	n := len(s.slots)
	start := int(s.ds.jitter(0, int64(n)))
	for k := range n {
		timeout := left(s.ds.cfg.CallTimeout)
		if timeout <= 0 {
			return nil, ErrTimeout
		}
		slot := (start + k) % n
		m := NewDRWMutex(s.ds, s.slots[slot])
		lockCtx, err := m.attemptOnce(ctx, X, source, s.ds.clk().Now(), timeout, nil, 0)
		if err == nil {
			return &Permit{slot: slot, m: m, ctx: lockCtx}, nil
		}
		if !errors.Is(err, ErrLocked) {
			return nil, err // no quorum, closed, invalid, or ctx done
		}
	}
	return nil, fmt.Errorf("%w: semaphore %q: all %d permits held", ErrLocked, s.name, n)
}

// gaveUp reports why Acquire stopped, ctx or Options.Timeout, wrapping the
// last round's error if there was one.
func (s *Semaphore) gaveUp(ctx context.Context, last error) error {
	var why error = ErrTimeout
	if ctx.Err() != nil {
		why = context.Cause(ctx)
	}
	if last == nil {
		return fmt.Errorf("dsync: semaphore %q: %w", s.name, why)
	}
	return fmt.Errorf("dsync: semaphore %q: %w (last round: %w)", s.name, why, last)
}

// Context returns the permit's context: derived from the ctx given to
// Acquire, and cancelled when the permit is released or lost (context.Cause
// is then ErrLockLost). Do the work the permit allows under it.
func (p *Permit) Context() context.Context { return p.ctx }

// Slot returns which permit this is, from 0 to Size()−1.
func (p *Permit) Slot() int { return p.slot }

// Release gives the permit back; see DRWMutex.Unlock for what it waits for
// and returns. It is a run-time error (a panic) to Release a permit twice.
func (p *Permit) Release(ctx context.Context) error {
	if p.released.Swap(true) {
		panic("dsync: Release of a released Permit")
	}
	return p.m.Unlock(ctx)
}
