package simulation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// hierarchyLevels are the levels of the hierarchy workload, outermost
// first.
var hierarchyLevels = []string{"global", "bucket", "object"}

// hierarchyBuckets and hierarchyObjects size the hierarchy workload's
// resources: "global", "bucket-b" and "bucket-b/object-o".
const hierarchyBuckets, hierarchyObjects = 2, 2

// levelName returns the resource of level i for bucket b and object o.
func levelName(i, b, o int) string {
	switch i {
	case 0:
		return "global"
	case 1:
		return fmt.Sprintf("bucket-%d", b)
	}
	return fmt.Sprintf("bucket-%d/object-%d", b, o)
}

// HeldLevels is a dsync.Held of a simulated client, with the levels it
// holds as the history knows them.
type HeldLevels struct {
	cl *Client
	hd *dsync.Held

	mu   sync.Mutex // guards the fields below
	held []dsync.LevelLock
	// locks is every lock of the Held, outermost first, as the history
	// records it: those of held, and the intention locks the Hierarchy
	// took on their containers (hierarchyIntentions).
	locks []dsync.LevelLock
	// deepest is the index in hierarchyLevels of the innermost level held
	// (intentions included); -1 before any.
	deepest int
	// lostNoted is set once the loss of the Held is in the history
	// (noteLost).
	lostNoted bool
}

// noteLost records, once, that the holder lost every level of locks, if
// the Held's context was cancelled by a loss. It runs on the goroutine of
// an AfterFunc of that context, and on the workload's when a call of the
// Held returns, before the history gets what the call did. A loss cancels
// the Held's context, which cancels its children in the order of a map
// (the context package's): the AfterFunc's goroutine and the workload,
// woken by the cancellation of the acquisition it was waiting for, run at
// that instant in either order. Whichever comes first records the loss,
// so that the history is the same either way.
func (hl *HeldLevels) noteLost() {
	ctx := hl.hd.Context()
	if !errors.Is(context.Cause(ctx), dsync.ErrLockLost) {
		return
	}
	c := hl.cl.c
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if hl.lostNoted {
		return
	}
	hl.lostNoted = true
	for _, l := range hl.locks {
		c.History.PointMode(hl.cl.ID, l.Name, OpLost, levelMode(l))
	}
}

// levelMode returns the mode a LevelLock asks for, as dsync reads it: its
// Mode if set, and otherwise S if Read, X if not.
func levelMode(l dsync.LevelLock) locker.Mode {
	switch {
	case l.Mode != 0:
		return locker.Mode(l.Mode)
	case l.Read:
		return locker.ModeS
	}
	return locker.ModeX
}

// levelIndex returns the index of level in hierarchyLevels, or -1.
func levelIndex(level string) int { return slices.Index(hierarchyLevels, level) }

// hierarchyIntentions returns the intention locks that a Held whose
// innermost level held is deepest (-1: none) takes, as dsync.Hierarchy
// documents it, when it is asked for locks: for each level given locks,
// from the innermost up, if the level above is neither held (it is below
// deepest) nor given a lock in the same call, the intention of their mode
// (IX below X, IX or SIX; IS below S or IS) on the containers of those of
// their names that have a slash (the name up to its last slash), at the
// level above; and so on up. The history records them as the locks they
// are, so that the lock model checks them against the locks of the whole
// containers. They are outermost first.
func hierarchyIntentions(deepest int, locks []dsync.LevelLock) []dsync.LevelLock {
	type group struct {
		names []string
		mode  locker.Mode
	}
	byLevel := map[int]*group{}
	for _, l := range locks {
		i := levelIndex(l.Level)
		if byLevel[i] == nil {
			byLevel[i] = &group{mode: levelMode(l)}
		}
		byLevel[i].names = append(byLevel[i].names, l.Name)
	}
	var out []dsync.LevelLock
	for i := len(hierarchyLevels) - 1; i > deepest+1; i-- {
		g := byLevel[i]
		if g == nil || byLevel[i-1] != nil {
			continue
		}
		mode := locker.ModeIX
		if g.mode == locker.ModeIS || g.mode == locker.ModeS {
			mode = locker.ModeIS
		}
		var up *group
		for _, name := range g.names {
			j := strings.LastIndexByte(name, '/')
			if j <= 0 {
				continue
			}
			if up == nil {
				up = &group{mode: mode}
			}
			if !slices.Contains(up.names, name[:j]) { // one lock of a container, however many members
				up.names = append(up.names, name[:j])
			}
		}
		if up == nil {
			continue
		}
		byLevel[i-1] = up
		var these []dsync.LevelLock
		for _, name := range up.names {
			these = append(these, dsync.LevelLock{Level: hierarchyLevels[i-1], Name: name, Mode: dsync.Mode(mode)})
		}
		out = append(these, out...)
	}
	return out
}

// lockLevels takes locks through the cluster's hierarchy, on hd (nil: a new
// Held), and records each level in the lock history as the lock it is, in
// its mode, on its own resource, with the intention locks the Hierarchy
// takes on their containers (hierarchyIntentions): called when the call
// starts, granted when it returns (one call takes its levels together). A
// failed call is recorded as failed for each of its locks: Held.Lock gives
// back what it took.
//
// With Cluster.weakIntentions (tests) the client gives the Hierarchy the
// intentions itself, IS where it records IX: the protocol broken on
// purpose, for the checkers to catch.
func (cl *Client) lockLevels(hl *HeldLevels, locks []dsync.LevelLock) (*HeldLevels, error) {
	c := cl.c
	deepest := -1
	if hl != nil {
		hl.mu.Lock()
		deepest = hl.deepest
		hl.mu.Unlock()
	}
	intents := hierarchyIntentions(deepest, locks)
	all := append(slices.Clone(intents), locks...)
	ids := make([]int, len(all))
	for i, l := range all {
		ids[i] = c.History.InvokeMode(cl.ID, l.Name, OpAcquire, levelMode(l))
	}
	asked := locks
	if c.weakIntentions {
		asked = nil
		for _, l := range intents {
			l.Mode = dsync.IS
			asked = append(asked, l)
		}
		asked = append(asked, locks...)
	}
	a := cl.begin()
	opts := a.opts
	var err error
	fresh := hl == nil
	if fresh {
		var hd *dsync.Held
		hd, err = c.hierarchy.Lock(cl.ctx, cl.DS, opts, asked...)
		if err == nil {
			hl = &HeldLevels{cl: cl, hd: hd, deepest: -1}
		}
	} else {
		err = hl.hd.Lock(cl.ctx, opts, asked...)
		hl.noteLost() // a loss of the levels held comes before what this call did
	}
	a.end(err)
	if err != nil {
		if cl.Crashed() {
			return hl, err
		}
		for _, id := range ids {
			c.History.Finish(id, Failed, err)
		}
		return hl, err
	}
	hl.mu.Lock()
	hl.held = append(hl.held, locks...)
	hl.locks = append(hl.locks, all...)
	for _, l := range all {
		hl.deepest = max(hl.deepest, levelIndex(l.Level))
	}
	for _, id := range ids {
		c.History.Finish(id, OK, nil)
	}
	hl.mu.Unlock()
	if fresh {
		// A loss of any level cancels the Held: its holder stops using
		// every level. Watched once the levels are in the history, so
		// that a loss at the instant of the grant is recorded after it,
		// for every level, by this goroutine or the AfterFunc's.
		context.AfterFunc(hl.hd.Context(), hl.noteLost)
		hl.noteLost()
	}
	return hl, nil
}

// levelRegisters returns the registers a holder of locks reads, and those
// it writes (the value true), in one section: a level's own register,
// written under X and read under S or SIX (an intention lock, IS or IX, is
// no access to the level's own data); and a bucket's lock of S, SIX or X
// covers its objects, whose registers it reads, or under X writes (a
// listing, a delete of the whole bucket). A careless holder (tests) writes
// every register it touches.
func levelRegisters(locks []dsync.LevelLock, careless bool) map[string]bool {
	regs := map[string]bool{}
	touch := func(name string, write bool) { regs[name] = regs[name] || write || careless }
	for _, l := range locks {
		mode := levelMode(l)
		if mode != locker.ModeS && mode != locker.ModeSIX && mode != locker.ModeX {
			continue
		}
		write := mode == locker.ModeX
		touch(l.Name, write)
		if levelIndex(l.Level) != 1 {
			continue
		}
		for o := range hierarchyObjects {
			touch(l.Name+fmt.Sprintf("/object-%d", o), write)
		}
	}
	return regs
}

// section reads the register of every level it holds (levelRegisters),
// works for d, and, if the Held's context is still live, writes those held
// for writing (every one, if the holder is careless: Cluster.careless). A
// pause freezes the client before that check.
func (hl *HeldLevels) section(d time.Duration) {
	cl := hl.cl
	c := cl.c
	hl.mu.Lock()
	regs := levelRegisters(hl.held, c.careless)
	hl.mu.Unlock()
	var secs []int
	for _, name := range slices.Sorted(maps.Keys(regs)) {
		secs = append(secs, c.Register.Enter(cl.ID, name, regs[name]))
	}
	clock.Sleep(cl.ctx, cl.clk, d)
	c.Net.WaitResumed(cl.ID)
	live := hl.hd.Context().Err() == nil && !cl.Crashed()
	for _, s := range secs {
		c.Register.Exit(s, live)
	}
}

// release gives back every level and records the releases, innermost first.
func (hl *HeldLevels) release() {
	cl := hl.cl
	c := cl.c
	hl.mu.Lock()
	held := append([]dsync.LevelLock(nil), hl.locks...)
	hl.mu.Unlock()
	if cl.Crashed() {
		for i := len(held) - 1; i >= 0; i-- {
			c.History.PointMode(cl.ID, held[i].Name, OpRelease, levelMode(held[i]))
		}
		return
	}
	ids := make([]int, len(held))
	for i := len(held) - 1; i >= 0; i-- {
		ids[i] = c.History.InvokeMode(cl.ID, held[i].Name, OpRelease, levelMode(held[i]))
	}
	err := hl.hd.Release(cl.ctx)
	for _, id := range ids {
		c.History.Finish(id, OK, err)
	}
}

// hierarchyOp is one operation of the hierarchy workload: a random non-empty
// set of levels, each read or write (Config.ReadFraction), in one bucket and
// object, taken either in one Hierarchy.Lock or level by level (Held.Lock),
// then one section of a hold time and a release.
func (cl *Client) hierarchyOp() {
	cfg := cl.c.Cfg
	if cfg.Modes {
		cl.modesOp()
		return
	}
	mask := 1 + cl.rng.IntN(7)
	b, o := cl.rng.IntN(hierarchyBuckets), cl.rng.IntN(hierarchyObjects)
	var locks []dsync.LevelLock
	for i, level := range hierarchyLevels {
		read := cfg.ReadFraction >= 0 && cl.rng.Float64() < cfg.ReadFraction
		if mask&(1<<i) != 0 {
			locks = append(locks, dsync.LevelLock{Level: level, Name: levelName(i, b, o), Read: read})
		}
	}
	stepwise := cl.rng.IntN(2) == 0
	hold := cfg.Hold/2 + time.Duration(cl.rng.Int64N(int64(cfg.Hold/2)+1))
	cl.holdLevels(locks, stepwise, hold)
}

// allModes are the modes of multi-granularity locking.
var allModes = []dsync.Mode{dsync.IS, dsync.IX, dsync.S, dsync.SIX, dsync.X}

// modesOp is one operation of the hierarchy workload with Config.Modes: a
// random non-empty set of the levels of one bucket and object, "global"
// and the bucket in a mode drawn from all five, the object in S or X
// (Config.ReadFraction). Half the time the bucket is left out of a set
// that has the object, for the Hierarchy to take the intention lock
// itself (IX below X, IS below S); when it is in, its mode is one that
// allows the object's lock below it, as the protocol requires (IX, SIX or
// X above an X; any above an S). Then, as hierarchyOp: in one call or
// level by level, one section, a release.
func (cl *Client) modesOp() {
	cfg := cl.c.Cfg
	mask := 1 + cl.rng.IntN(7)
	if mask&6 == 6 && cl.rng.IntN(2) == 0 {
		mask &^= 2 // the bucket's lock left to the Hierarchy
	}
	b, o := cl.rng.IntN(hierarchyBuckets), cl.rng.IntN(hierarchyObjects)
	objectMode := dsync.X
	if cfg.ReadFraction >= 0 && cl.rng.Float64() < cfg.ReadFraction {
		objectMode = dsync.S
	}
	var locks []dsync.LevelLock
	for i, level := range hierarchyLevels {
		if mask&(1<<i) == 0 {
			continue
		}
		mode := allModes[cl.rng.IntN(len(allModes))]
		switch {
		case i == 2:
			mode = objectMode
		case i == 1 && mask&4 != 0 && objectMode == dsync.X:
			mode = []dsync.Mode{dsync.IX, dsync.SIX, dsync.X}[cl.rng.IntN(3)]
		}
		locks = append(locks, dsync.LevelLock{Level: level, Name: levelName(i, b, o), Mode: mode})
	}
	stepwise := cl.rng.IntN(2) == 0
	hold := cfg.Hold/2 + time.Duration(cl.rng.Int64N(int64(cfg.Hold/2)+1))
	cl.holdLevels(locks, stepwise, hold)
}

// holdLevels takes locks, in one call or one call per level, holds them for
// one section of hold, and releases them. It returns the error of the
// acquisition that failed, if one did.
func (cl *Client) holdLevels(locks []dsync.LevelLock, stepwise bool, hold time.Duration) error {
	var hl *HeldLevels
	var err error
	if stepwise {
		for _, l := range locks {
			if hl, err = cl.lockLevels(hl, []dsync.LevelLock{l}); err != nil {
				break
			}
		}
	} else {
		hl, err = cl.lockLevels(nil, locks)
	}
	if hl == nil {
		return err
	}
	if err == nil {
		hl.section(hold)
	}
	hl.release()
	return err
}

// hierarchyProbe is the liveness probe's operation: every level of bucket 0,
// object 0 for writing, in one call, held for Hold. It returns the
// acquisition's error.
func (cl *Client) hierarchyProbe() error {
	var locks []dsync.LevelLock
	for i, level := range hierarchyLevels {
		locks = append(locks, dsync.LevelLock{Level: level, Name: levelName(i, 0, 0)})
	}
	return cl.holdLevels(locks, false, cl.c.Cfg.Hold)
}
