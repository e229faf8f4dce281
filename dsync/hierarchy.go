package dsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
)

// Hierarchy is a fixed order of lock levels, from the outermost to the
// innermost, such as "global", "bucket", "object". Locks taken through one
// Held follow it strictly: a Held takes its locks level by level, from outer
// to inner, and refuses (ErrHierarchy) a lock at a level that is not below
// every level it already holds.
//
// This prevents deadlock by construction, across processes as well as within
// one: a holder waits only for a level below all those it holds, so no cycle
// of holders each waiting for the next can form. That holds among holders
// that take every lock of the hierarchy's resources through a Held of the
// same Hierarchy; a resource also locked another way (a plain DRWMutex, or a
// Held of a different order) escapes the argument. Each lock itself is an
// ordinary DRWMutex lock, with exactly its guarantees.
//
// A Hierarchy is immutable and safe for concurrent use.
type Hierarchy struct {
	levels []string
	index  map[string]int // level -> position in levels
}

// NewHierarchy returns the hierarchy of levels, outermost first. It returns
// an error if there are no levels, or one is empty or repeated.
func NewHierarchy(levels ...string) (*Hierarchy, error) {
	if len(levels) == 0 {
		return nil, errors.New("dsync: hierarchy without levels")
	}
	h := &Hierarchy{levels: slices.Clone(levels), index: make(map[string]int, len(levels))}
	for i, l := range levels {
		if l == "" {
			return nil, fmt.Errorf("dsync: hierarchy level %d is empty", i)
		}
		if j, dup := h.index[l]; dup {
			return nil, fmt.Errorf("dsync: hierarchy levels %d and %d are both %q", j, i, l)
		}
		h.index[l] = i
	}
	return h, nil
}

// Levels returns the levels, outermost first.
func (h *Hierarchy) Levels() []string { return slices.Clone(h.levels) }

// LevelLock is one lock to take at one level of a Hierarchy.
type LevelLock struct {
	// Level is one of the hierarchy's levels.
	Level string
	// Name is the resource locked, as a DRWMutex names it (the same name
	// locked through a DRWMutex is the same lock). If empty, the level's own
	// name, for a level with one resource such as "global".
	Name string
	// Read asks for a read lock instead of a write lock.
	Read bool
}

// Held is the locks taken through a Hierarchy by one holder. Lock adds locks
// at deeper levels; Release gives them all back, innermost first. A Held is
// meant for one holder at a time: its methods are safe for concurrent use but
// run one after another.
type Held struct {
	h      *Hierarchy
	ds     *Dsync
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu       sync.Mutex // guards the fields below, and serialises Lock and Release
	steps    []heldStep // in the order taken
	deepest  int        // index of the innermost level held; -1 before any
	released bool
}

// heldStep is the lock of one level: one DRWMutex over the level's names.
type heldStep struct {
	level string
	m     *DRWMutex
	write bool
	watch func() bool // stops the watch of the lock's context for a loss
}

// Lock takes locks, level by level from the outermost, through ds, and
// returns them as a Held; see Held.Lock. The Held's context derives from ctx,
// as GetLock's does.
func (h *Hierarchy) Lock(ctx context.Context, ds *Dsync, opts Options, locks ...LevelLock) (*Held, error) {
	hd := &Held{h: h, ds: ds, deepest: -1}
	hd.ctx, hd.cancel = context.WithCancelCause(ctx)
	if opts.Source == "" {
		opts.Source = caller(2)
	}
	if err := hd.Lock(ctx, opts, locks...); err != nil {
		hd.cancel(context.Canceled)
		return nil, err
	}
	return hd, nil
}

// Context returns the Held's context. It is cancelled when any of its locks
// is lost (context.Cause then wraps ErrLockLost and names the level), when
// the Held is released, or when the ctx given to Hierarchy.Lock ends. Do the
// protected work under it.
func (hd *Held) Context() context.Context { return hd.ctx }

// Lock takes locks, in addition to those held, in the hierarchy's order:
// every level of locks must be below every level already held, or Lock
// fails with ErrHierarchy before it takes anything. The locks of one level
// are taken together as one DRWMutex on all their names (all-or-nothing on
// every node), so they must be all read or all write locks.
//
// Each level is acquired like GetLock (write) or GetRLock (read), retrying
// until it is granted; opts.Timeout (or opts.Adaptive's timeout) bounds the
// whole call (ErrTimeout), as does ctx (ctx's error). opts.Adaptive is told
// one outcome per call: the time the call took, or that it timed out. Lock
// is all-or-nothing: if a level fails, the locks this call took are
// released, innermost first, and those held before stay held. It is a
// run-time error (a panic) to Lock a released Held.
func (hd *Held) Lock(ctx context.Context, opts Options, locks ...LevelLock) error {
	if opts.Source == "" {
		opts.Source = caller(2)
	}
	hd.mu.Lock()
	defer hd.mu.Unlock()
	if hd.released {
		panic("dsync: Lock of a released Held")
	}
	plan, err := hd.plan(locks)
	if err != nil {
		return err
	}
	wait := ctx
	var run adaptiveRun // reports the outcome to opts.Adaptive, if set
	var deadline time.Time
	clk := hd.ds.clk()
	if timeout, adaptive := opts.bound(); timeout > 0 {
		if adaptive != nil && len(plan) > 0 {
			run = adaptiveRun{a: adaptive, clk: clk, start: clk.Now()}
		}
		deadline = clk.Now().Add(timeout)
		var cancel context.CancelFunc
		wait, cancel = clock.WithTimeout(ctx, clk, timeout)
		defer cancel()
	}
	taken := len(hd.steps)
	for _, st := range plan {
		// Each level's acquisition is bounded by what is left of the
		// timeout on its own, not only through wait's context, whose
		// timer fires on another goroutine: it gives up on time even when
		// it retries without a pause.
		var left time.Duration
		if !deadline.IsZero() {
			if left = deadline.Sub(clk.Now()); left <= 0 {
				left = time.Nanosecond
			}
		}
		if err := hd.take(ctx, wait, Options{Source: opts.Source, Timeout: left}, st); err != nil {
			hd.unwind(context.WithoutCancel(ctx), taken)
			run.done(ctx, err)
			return err
		}
	}
	if len(hd.steps) > 0 {
		hd.deepest = hd.h.index[hd.steps[len(hd.steps)-1].level]
	}
	run.done(ctx, nil)
	return nil
}

// plan checks locks against the hierarchy and what is held, and groups them
// into one step per level, outermost first.
func (hd *Held) plan(locks []LevelLock) ([]heldStep, error) {
	byLevel := make(map[int]*struct {
		names []string
		read  bool
	})
	for _, l := range locks {
		i, ok := hd.h.index[l.Level]
		if !ok {
			return nil, fmt.Errorf("%w: no level %q in %q", ErrHierarchy, l.Level, hd.h.levels)
		}
		if i <= hd.deepest {
			return nil, fmt.Errorf("%w: level %q is not below %q, already held", ErrHierarchy, l.Level, hd.h.levels[hd.deepest])
		}
		name := l.Name
		if name == "" {
			name = l.Level
		}
		g := byLevel[i]
		if g == nil {
			g = &struct {
				names []string
				read  bool
			}{read: l.Read}
			byLevel[i] = g
		} else if g.read != l.Read {
			return nil, fmt.Errorf("%w: read and write locks at level %q in one call", ErrHierarchy, l.Level)
		}
		g.names = append(g.names, name)
	}
	plan := make([]heldStep, 0, len(byLevel))
	for _, i := range slices.Sorted(func(yield func(int) bool) {
		for i := range byLevel {
			if !yield(i) {
				return
			}
		}
	}) {
		g := byLevel[i]
		plan = append(plan, heldStep{level: hd.h.levels[i], m: NewDRWMutex(hd.ds, g.names...), write: !g.read})
	}
	return plan, nil
}

// take acquires one level's lock and watches it for a loss. The lock's
// context derives from the Held's, so that it outlives this call; the call's
// ctx and timeout (wait) only bound the waiting.
func (hd *Held) take(ctx, wait context.Context, opts Options, st heldStep) error {
	lockParent, stopWaiting, cancel := waitWithin(hd.ctx, ctx, wait)
	var err error
	var lockCtx context.Context
	if st.write {
		lockCtx, err = st.m.GetLock(lockParent, opts)
	} else {
		lockCtx, err = st.m.GetRLock(lockParent, opts)
	}
	if !stopWaiting() && err == nil {
		// The call's ctx ended as the lock was granted: the lock's context
		// is cancelled already and could not report a loss. Give it back.
		hd.unlock(context.WithoutCancel(ctx), st)
		err = fmt.Errorf("dsync: lock %v: %w", st.m.names, context.Cause(lockParent))
	}
	if err != nil {
		cancel(context.Canceled)
		return err
	}
	st.watch = context.AfterFunc(lockCtx, func() {
		if cause := context.Cause(lockCtx); errors.Is(cause, ErrLockLost) {
			hd.cancel(fmt.Errorf("dsync: hierarchy level %q lock %v: %w", st.level, st.m.names, cause))
		}
	})
	hd.steps = append(hd.steps, st)
	return nil
}

// waitWithin returns a context derived from life, carrying ctx's holder (see
// WithHolder), that is also cancelled if ctx or wait ends before stop is
// called: with ctx's cause, or ErrTimeout if only wait ended. stop reports
// whether that had not happened yet.
func waitWithin(life, ctx, wait context.Context) (c context.Context, stop func() bool, cancel context.CancelCauseFunc) {
	c, cancel = context.WithCancelCause(withHolderOf(life, ctx))
	stop = context.AfterFunc(wait, func() {
		if ctx.Err() != nil {
			cancel(context.Cause(ctx))
		} else {
			cancel(ErrTimeout)
		}
	})
	return c, stop, cancel
}

// unwind releases the locks taken after the first keep, innermost first.
func (hd *Held) unwind(ctx context.Context, keep int) error {
	var errs []error
	for i := len(hd.steps) - 1; i >= keep; i-- {
		errs = append(errs, hd.unlock(ctx, hd.steps[i]))
	}
	hd.steps = hd.steps[:keep]
	return errors.Join(errs...)
}

func (hd *Held) unlock(ctx context.Context, st heldStep) error {
	if st.watch != nil {
		st.watch()
	}
	if st.write {
		return st.m.Unlock(ctx)
	}
	return st.m.RUnlock(ctx)
}

// Release gives back every lock of the Held, innermost level first, and
// cancels its context. It returns what the Unlocks returned (see
// DRWMutex.Unlock: ErrUnlockPending, ErrLockLost), joined. It is a run-time
// error (a panic) to Release a Held twice.
func (hd *Held) Release(ctx context.Context) error {
	hd.mu.Lock()
	defer hd.mu.Unlock()
	if hd.released {
		panic("dsync: Release of a released Held")
	}
	hd.released = true
	for _, st := range hd.steps {
		st.watch() // a release is not a loss
	}
	hd.cancel(context.Canceled)
	return hd.unwind(ctx, 0)
}
