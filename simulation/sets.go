package simulation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// Lock sets in the simulation (Config.SetSize, Config.CrossSet): the
// clients are dsync.NewSets clients, the register workload locks two
// resources of different sets at once in a share of its operations, and
// the checkers, unchanged, see such an operation as a lock of each
// resource: a cross-set lock is correct if each of its parts is.

// ClientLayout is the layout of a client during a change of layout
// (Config.GrowFrom).
type ClientLayout uint8

// The layouts of a client during a change of layout.
const (
	LayoutOld    ClientLayout = iota + 1 // dsync.NewSets of the old layout
	LayoutChange                         // dsync.NewTransition from the old to the new
	LayoutNew                            // dsync.NewSets of the new layout
)

// String names the layout as Config's docs do.
func (l ClientLayout) String() string {
	switch l {
	case LayoutOld:
		return "old"
	case LayoutChange:
		return "change"
	case LayoutNew:
		return "new"
	}
	return fmt.Sprintf("ClientLayout(%d)", uint8(l))
}

// newClientDsync returns client i's quorum client over its links to the
// nodes: dsync.NewSets with cfg.SetSize (of the layout cfg.ClientLayouts
// gives it during a change, or NewTransition), else dsync.New.
func newClientDsync(cfg Config, i int, lockers []locker.NetLocker, dc dsync.Config) (*dsync.Dsync, error) {
	if cfg.SetSize <= 0 {
		return dsync.New(lockers, dc)
	}
	cut := func(lockers []locker.NetLocker) [][]locker.NetLocker {
		var sets [][]locker.NetLocker
		for k := 0; k < len(lockers); k += cfg.SetSize {
			sets = append(sets, lockers[k:k+cfg.SetSize:k+cfg.SetSize])
		}
		return sets
	}
	if cfg.GrowFrom == 0 {
		return dsync.NewSets(cut(lockers), dc)
	}
	from, to := cut(lockers[:cfg.GrowFrom]), cut(lockers)
	switch cfg.ClientLayouts[i%len(cfg.ClientLayouts)] {
	case LayoutOld:
		return dsync.NewSets(from, dc)
	case LayoutChange:
		return dsync.NewTransition(from, to, dc)
	}
	return dsync.NewSets(to, dc)
}

// setOf returns the set of resource among the cluster's sets.
func (c *Cluster) setOf(resource string) int {
	if c.Cfg.SetSize <= 0 {
		return 0
	}
	return dsync.SetIndex(resource, c.Cfg.Nodes/c.Cfg.SetSize)
}

// crossSetOp is one operation of the register workload on two resources
// of different sets, drawn from the client's source: one lock on both, a
// critical section on each, one release. If no two resources of the
// workload fall into different sets, it locks one.
func (cl *Client) crossSetOp() {
	c := cl.c
	cfg := c.Cfg
	a := resourceName(cl.rng.IntN(cfg.Resources))
	names := []string{a}
	first := cl.rng.IntN(cfg.Resources)
	for i := range cfg.Resources {
		if b := resourceName((first + i) % cfg.Resources); c.setOf(b) != c.setOf(a) {
			names = append(names, b)
			break
		}
	}
	write := cfg.ReadFraction < 0 || cl.rng.Float64() >= cfg.ReadFraction
	hold := cfg.Hold/2 + time.Duration(cl.rng.Int64N(int64(cfg.Hold/2)+1))
	m := cl.multiMutex(names)
	ids := make([]int, len(names))
	for i, r := range names {
		ids[i] = c.History.Invoke(cl.ID, r, OpAcquire, write)
	}
	ac := cl.begin()
	var lockCtx context.Context
	var err error
	if write {
		lockCtx, err = m.GetLock(cl.ctx, ac.opts)
	} else {
		lockCtx, err = m.GetRLock(cl.ctx, ac.opts)
	}
	ac.end(err)
	if err != nil {
		if !cl.Crashed() { // crashed: the outcome is unknown
			for _, id := range ids {
				c.History.Finish(id, Failed, err)
			}
		}
		return
	}
	for _, id := range ids {
		c.History.Finish(id, OK, nil)
	}
	stop := context.AfterFunc(lockCtx, func() {
		if errors.Is(context.Cause(lockCtx), dsync.ErrLockLost) {
			for _, r := range names {
				c.History.Point(cl.ID, r, OpLost, write)
			}
		}
	})
	defer stop()
	secs := make([]int, len(names))
	for i, r := range names {
		secs[i] = c.Register.Enter(cl.ID, r, write)
	}
	clock.Sleep(cl.ctx, cl.clk, hold)
	c.Net.WaitResumed(cl.ID)
	live := lockCtx.Err() == nil && !cl.Crashed()
	for _, sec := range secs {
		c.Register.Exit(sec, live)
	}
	if cl.Crashed() {
		for _, r := range names {
			c.History.Point(cl.ID, r, OpRelease, write)
		}
		return
	}
	for i, r := range names {
		ids[i] = c.History.Invoke(cl.ID, r, OpRelease, write)
	}
	if write {
		err = m.Unlock(cl.ctx)
	} else {
		err = m.RUnlock(cl.ctx)
	}
	for _, id := range ids {
		c.History.Finish(id, OK, err)
	}
}

// multiMutex returns the client's DRWMutex on names.
func (cl *Client) multiMutex(names []string) *dsync.DRWMutex {
	key := fmt.Sprint(names)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	m := cl.mutexes[key]
	if m == nil {
		m = dsync.NewDRWMutex(cl.DS, names...)
		cl.mutexes[key] = m
	}
	return m
}

// growScenario runs the register workload during a change of layout from
// 2 sets of 3 nodes to 3 sets of 3 (a pool of 3 nodes added), with the
// clients of layouts, cross-set locks and faults in every set: the clients
// that a change lets run together exclude each other.
func growScenario(name string, layouts ...ClientLayout) Scenario {
	s := setsScenario()
	s.Name = name
	s.Faults = fmt.Sprintf("a change of layout from 2 lock sets of 3 nodes to 3 sets of 3, clients of the layouts %v; "+
		"in each set one node crashes while locks are held and restarts empty, then another is isolated and healed; "+
		"40%% of operations lock two resources of different sets", layouts)
	s.Explain = "a client of the change locks a resource on the union of its old and new set, with a quorum that holds " +
		"a quorum of each: it meets old clients in the old set and new clients in the new one; its cross-set locks " +
		"never wait while holding, so they deadlock with no one's; the checkers see every client alike"
	setup := s.Setup
	s.Setup = func(cfg *Config) {
		setup(cfg)
		cfg.Nodes, cfg.GrowFrom, cfg.ClientLayouts = 9, 6, layouts
		atLeast(&cfg.Clients, len(layouts))
	}
	return s
}

// setsScenario runs the register workload over 3 sets of 3 nodes, with
// cross-set locks, and faults in every set.
func setsScenario() Scenario {
	return Scenario{
		Name: "sets",
		Faults: "9 nodes as 3 lock sets of 3; in each set one node crashes while locks are held and restarts empty, " +
			"then another is isolated and healed; 40% of operations lock two resources of different sets",
		Expect: Safe,
		Explain: "quorums are per set: one node of 3 down in every set at once is within what each set tolerates; " +
			"a cross-set lock is all or nothing, its sets taken in ascending order, so it deadlocks with no other; " +
			"the checkers see it as a lock of each resource",
		Setup: func(cfg *Config) {
			atLeast(&cfg.Nodes, 9)
			cfg.Nodes -= cfg.Nodes % 3
			cfg.SetSize = 3
			atLeast(&cfg.Resources, 6)
			if cfg.CrossSet == 0 {
				cfg.CrossSet = 0.4
			}
			cfg.Hold = max(cfg.Hold, 200*time.Millisecond)
			if cfg.Validity == 0 {
				cfg.Validity = 2 * time.Second
			}
		},
		Drive: func(c *Cluster) (time.Duration, error) {
			sets := c.Cfg.Nodes / c.Cfg.SetSize
			each := func(member int, do func(k int)) func(*Cluster) {
				return func(*Cluster) {
					for s := range sets {
						do(s*c.Cfg.SetSize + member)
					}
				}
			}
			heal := 4 * time.Second
			faults := []Fault{
				{At: 300 * time.Millisecond, Name: "crash one node of each set", Do: each(0, c.Net.CrashNode)},
				{At: 1300 * time.Millisecond, Name: "restart them", Do: each(0, c.Net.RestartNode)},
				{At: 2500 * time.Millisecond, Name: "isolate another node of each set", Do: each(1, c.Net.Isolate)},
				{At: heal, Name: "heal", Do: func(c *Cluster) { c.Net.Heal() }},
			}
			if !c.RunWorkload(faults) {
				return heal, fmt.Errorf("workload did not finish")
			}
			return heal, nil
		},
	}
}
