package simulation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
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

	mu   sync.Mutex // guards held
	held []dsync.LevelLock
}

// lockLevels takes locks through the cluster's hierarchy, on hd (nil: a new
// Held), and records each level in the lock history as the lock it is, on
// its own resource: called when the call starts, granted when it returns
// (one call takes its levels together). A failed call is recorded as failed
// for each of its levels: Held.Lock gives back what it took.
func (cl *Client) lockLevels(hl *HeldLevels, locks []dsync.LevelLock) (*HeldLevels, error) {
	c := cl.c
	ids := make([]int, len(locks))
	for i, l := range locks {
		ids[i] = c.History.Invoke(cl.ID, l.Name, OpAcquire, !l.Read)
	}
	a := cl.begin()
	opts := a.opts
	var err error
	if hl == nil {
		var hd *dsync.Held
		hd, err = c.hierarchy.Lock(cl.ctx, cl.DS, opts, locks...)
		if err == nil {
			hl = &HeldLevels{cl: cl, hd: hd}
			ctx := hd.Context()
			context.AfterFunc(ctx, func() {
				if !errors.Is(context.Cause(ctx), dsync.ErrLockLost) {
					return
				}
				// A loss of any level cancels the Held: its holder stops
				// using every level.
				hl.mu.Lock()
				defer hl.mu.Unlock()
				for _, l := range hl.held {
					c.History.Point(cl.ID, l.Name, OpLost, !l.Read)
				}
			})
		}
	} else {
		err = hl.hd.Lock(cl.ctx, opts, locks...)
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
	for _, id := range ids {
		c.History.Finish(id, OK, nil)
	}
	hl.mu.Unlock()
	return hl, nil
}

// section reads every level's register, works for d, and, if the Held's
// context is still live, writes the register of every level held for
// writing (every level, if the holder is careless: Cluster.careless). A
// pause freezes the client before that check.
func (hl *HeldLevels) section(d time.Duration) {
	cl := hl.cl
	c := cl.c
	hl.mu.Lock()
	held := append([]dsync.LevelLock(nil), hl.held...)
	hl.mu.Unlock()
	secs := make([]int, len(held))
	for i, l := range held {
		// A careless holder (tests) writes under read locks too.
		secs[i] = c.Register.Enter(cl.ID, l.Name, !l.Read || c.careless)
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
	held := append([]dsync.LevelLock(nil), hl.held...)
	hl.mu.Unlock()
	if cl.Crashed() {
		for i := len(held) - 1; i >= 0; i-- {
			c.History.Point(cl.ID, held[i].Name, OpRelease, !held[i].Read)
		}
		return
	}
	ids := make([]int, len(held))
	for i := len(held) - 1; i >= 0; i-- {
		ids[i] = c.History.Invoke(cl.ID, held[i].Name, OpRelease, !held[i].Read)
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
