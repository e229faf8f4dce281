package dsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
// Intention locks (multi-granularity locking, see Mode). A name with a
// slash at a level below the first names its container at the level above:
// the name up to its last slash ("photos" for "photos/cat.jpg"). When a
// call locks such names, and the Held neither holds nor is given in the
// same call a lock at the level above, it takes there, first, the intention
// lock of what it locks below (IX for X, IX or SIX; IS for S or IS) on
// their containers, and so on up while the containers' names have slashes.
// So writers of different objects of one bucket hold the bucket's lock in
// IX together, while a lock of the whole bucket, S to list it or X to
// delete it, waits for them, and they for it. A call that gives the outer
// level's lock itself (LevelLock.Mode, Read) takes that instead.
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
	// Read asks for a read lock (S) instead of a write lock (X).
	Read bool
	// Mode, if set, is the mode of the lock (see Mode), and wins over
	// Read: an intention lock (IS, IX) on a container whose members the
	// holder locks at a deeper level, or SIX. Zero means X, or S if Read.
	Mode Mode
}

// mode returns the mode l asks for.
func (l LevelLock) mode() Mode {
	switch {
	case l.Mode != 0:
		return l.Mode
	case l.Read:
		return S
	}
	return X
}

// intention returns the intention lock that a lock of mode on a member
// takes on its container: IS below an IS or S, IX below the others.
func intention(mode Mode) Mode {
	if mode == IS || mode == S {
		return IS
	}
	return IX
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
	mode  Mode
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
// every node), so they must all be of one mode. Intention locks on the
// containers of what is locked are taken first: see Hierarchy.
//
// Each level is acquired like GetMode of its mode, retrying
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
	type group struct {
		names []string
		mode  Mode
	}
	byLevel := make(map[int]*group)
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
		if l.Mode != 0 && !l.Mode.valid() {
			return nil, fmt.Errorf("%w: lock %q at level %q: unknown mode %d", ErrHierarchy, name, l.Level, uint8(l.Mode))
		}
		g := byLevel[i]
		if g == nil {
			g = &group{mode: l.mode()}
			byLevel[i] = g
		} else if g.mode != l.mode() {
			return nil, fmt.Errorf("%w: locks of modes %v and %v at level %q in one call", ErrHierarchy, g.mode, l.mode(), l.Level)
		}
		g.names = append(g.names, name)
	}
	// The intention locks, from the innermost level up: a level given no
	// lock of its own, and still free to take, gets the intentions of the
	// level below on the containers of its names.
	for i := len(hd.h.levels) - 1; i > hd.deepest+1; i-- {
		g := byLevel[i]
		if g == nil || byLevel[i-1] != nil {
			continue
		}
		var up *group
		for _, name := range g.names {
			j := strings.LastIndexByte(name, '/')
			if j <= 0 {
				continue
			}
			if up == nil {
				up = &group{mode: intention(g.mode)}
			}
			up.names = append(up.names, name[:j])
		}
		if up != nil {
			byLevel[i-1] = up
		}
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
		plan = append(plan, heldStep{level: hd.h.levels[i], m: NewDRWMutex(hd.ds, g.names...), mode: g.mode})
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
	lockCtx, err = st.m.GetMode(lockParent, st.mode, opts)
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
	return st.m.ReleaseMode(ctx, st.mode)
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
