package simulation

import (
	"fmt"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
)

// Section runs one critical section of the register workload under h: read
// the register, hold for d of virtual time, then write what was read plus one
// (a write lock) or just leave (a read lock).
//
// The client is careful the way real code can be: a pause or a stop freezes
// it before it checks its lock context, and it writes only if the context is
// still live. Between that check and the write no virtual time passes, so no pause
// fits there; PausedSection shows what happens when one does.
func (cl *Client) Section(h *Hold, d time.Duration) {
	c := cl.c
	sec := cl.enter(h)
	clock.Sleep(cl.ctx, cl.clk, d)
	c.Net.WaitResumed(cl.ID)
	c.Register.Exit(sec, h.Ctx.Err() == nil && !cl.Crashed())
}

// PausedSection is a critical section whose process is frozen after it
// checked its lock context and before its write: it checks, calls pause
// (which must pause or stop the client), waits for the resume, and writes
// whatever happened meanwhile, as a process stopped by a long GC pause
// would. It reports whether the lock context was live at the check.
func (cl *Client) PausedSection(h *Hold, pause func()) bool {
	c := cl.c
	sec := cl.enter(h)
	live := h.Ctx.Err() == nil
	pause()
	c.Net.WaitResumed(cl.ID)
	c.Register.Exit(sec, live && !cl.Crashed())
	return live
}

// enter opens a critical section under h on the register: with h's fencing
// token if it has one.
func (cl *Client) enter(h *Hold) int {
	r := cl.c.Register
	if h.Token == 0 {
		return r.Enter(cl.ID, h.Resource, h.Write)
	}
	return r.EnterFenced(cl.ID, h.Resource, h.Token, func() bool { return h.Ctx.Err() == nil && !cl.Crashed() })
}

// resourceName returns the name of resource i of the workload.
func resourceName(i int) string { return fmt.Sprintf("bucket/object-%d", i) }

// Workload runs acquisitions with critical sections on client cl, choosing
// resources, modes, hold and think times from the client's seeded source
// (with Config.Permits, permits of the semaphore held for a hold time),
// until stop is closed or, if stop is nil, until it has made cfg.Ops of them;
// or until the client crashes. An acquisition under way when stop closes is
// finished.
func (cl *Client) Workload(stop <-chan struct{}) {
	c := cl.c
	cfg := c.Cfg
	n := cfg.Ops
	if stop != nil {
		n = 1_000_000 // bounded; virtual time runs out long before
	}
	for range n {
		select {
		case <-stop:
			return
		default:
		}
		if cl.Crashed() {
			return
		}
		if cfg.Think > 0 {
			clock.Sleep(cl.ctx, cl.clk, time.Duration(cl.rng.Int64N(int64(cfg.Think))))
		}
		if cfg.Permits > 0 {
			cl.semaphoreOp(cfg.Hold/2 + time.Duration(cl.rng.Int64N(int64(cfg.Hold/2)+1)))
			continue
		}
		switch cfg.Primitive {
		case PrimitiveLease:
			cl.leaseOp()
			continue
		case PrimitiveHierarchy:
			cl.hierarchyOp()
			continue
		case PrimitiveDeadlock, PrimitiveDeadlockChain:
			cl.deadlockOp(false)
			continue
		}
		if cfg.CrossSet > 0 && cl.rng.Float64() < cfg.CrossSet { // (drawn only then: other seeds replay as before)
			cl.crossSetOp()
			continue
		}
		res := resourceName(cl.rng.IntN(cfg.Resources))
		write := cfg.ReadFraction < 0 || cl.rng.Float64() >= cfg.ReadFraction
		hold := cfg.Hold/2 + time.Duration(cl.rng.Int64N(int64(cfg.Hold/2)+1))
		// (The draw is made only when optimistic reads are on, so that the
		// seeds of other runs replay as they did.)
		if !write && cfg.Optimistic > 0 && cl.rng.Float64() < cfg.Optimistic {
			cl.optimisticRead(res, hold)
			continue
		}
		h, err := cl.Acquire(res, write)
		if err != nil {
			continue
		}
		cl.Section(h, hold)
		h.Release()
	}
}

// Fault is one step of a fault schedule: at At (virtual time since the
// start of the run) the driver calls Do.
type Fault struct {
	At   time.Duration
	Name string
	Do   func(*Cluster)
}

// RunWorkload runs the workload under a fault schedule (sorted by At) and
// then probes liveness:
//
//  1. Every client runs Workload, drawing new operations until the last
//     fault (the heal) is applied, or for cfg.Ops operations if there are no
//     faults; meanwhile the driver applies the faults at their times.
//  2. After the heal no new operation starts: the clients that were waiting
//     finish their acquisition.
//  3. Every client still alive then takes each resource's write lock once,
//     all at the same time (in the semaphore workload: a permit, once).
//
// Steps 2 and 3 are what the liveness bound is checked on: once faults stop,
// with no new arrivals, every waiting client must be served. (Under
// unbounded contention the nodes, which keep no queue, promise no bound: see
// the writer-under-readers scenario.) RunWorkload reports whether all of it
// finished within cfg.MaxVirtual.
func (c *Cluster) RunWorkload(faults []Fault) bool {
	stop := make(chan struct{})
	var stopOnce func()
	if len(faults) > 0 { // the last fault heals: no new operation after it
		stopOnce = sync.OnceFunc(func() { close(stop) })
	} else {
		stop = nil
	}
	// Faults due at the start are in place before any client acts.
	for len(faults) > 0 && faults[0].At <= 0 {
		faults[0].Do(c)
		faults = faults[1:]
	}
	finished := make(chan struct{}, len(c.clients))
	for _, cl := range c.clients {
		c.Go(func() {
			cl.Workload(stop)
			finished <- struct{}{}
		})
	}
	all := c.spawn(func() {
		for range c.clients {
			<-finished
		}
	})
	for _, f := range faults {
		c.RunUntil(all, max(f.At-c.Now(), 0))
		f.Do(c)
	}
	if stopOnce != nil {
		stopOnce()
	}
	if !c.RunUntil(all, c.Cfg.MaxVirtual-c.Now()) {
		return false
	}
	return c.Probe()
}

// Probe is step 3 of RunWorkload: every client still alive takes each
// resource's write lock once (in the semaphore workload a permit, in the
// hierarchy workload every level, in the deadlock workload a round), all at
// the same time; with adaptive timeouts an acquisition that timed out is
// tried again (Client.probe). It reports whether all of it finished within
// cfg.MaxVirtual.
func (c *Cluster) Probe() bool {
	probe := c.spawn(func() {
		var wg sync.WaitGroup
		for _, cl := range c.clients {
			if cl.Crashed() {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c.Cfg.Permits > 0 {
					cl.probe(func() error { return cl.semaphoreOp(c.Cfg.Hold) })
					return
				}
				if c.Cfg.Primitive == PrimitiveHierarchy {
					cl.probe(cl.hierarchyProbe)
					return
				}
				if p := c.Cfg.Primitive; p == PrimitiveDeadlock || p == PrimitiveDeadlockChain {
					cl.deadlockOp(true) // all at once: the probe's rounds close cycles too
					return
				}
				for r := range c.Cfg.Resources {
					if c.Cfg.Primitive == PrimitiveLease {
						cl.probe(func() error { return cl.leaseProbe(resourceName(r)) })
						continue
					}
					cl.probe(func() error {
						h, err := cl.Acquire(resourceName(r), true)
						if err != nil {
							return err
						}
						cl.Section(h, c.Cfg.Hold)
						h.Release()
						return nil
					})
				}
			}()
		}
		wg.Wait()
	})
	return c.RunUntil(probe, c.Cfg.MaxVirtual-c.Now())
}
