package simulation

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
)

// barrierName is the one dsync.Barrier of the barrier workload.
const barrierName = "barrier"

// BarrierEventKind is what a party did at the barrier.
type BarrierEventKind uint8

// Barrier events.
const (
	// BarrierArrive: the party called Wait for the generation.
	BarrierArrive BarrierEventKind = iota
	// BarrierPass: its Wait returned nil.
	BarrierPass
	// BarrierFail: its Wait returned an error.
	BarrierFail
)

// BarrierEvent is one event of one party, placed in the history's logical
// order.
type BarrierEvent struct {
	Client int
	Gen    uint64 // the generation the Wait was for
	Kind   BarrierEventKind
	Seq    int64
	At     time.Time
	// Next is the party's Generation after a pass.
	Next uint64
	// Call is the virtual time of the Wait's call, for a pass or a failure.
	Call time.Time
	Err  string // a failure's error
	Out  bool   // a failure that ends the party: its membership was lost
}

// BarrierLog records the barrier workload's events for CheckBarrier. Safe
// for concurrent use.
type BarrierLog struct {
	h   *History
	clk clock.Clock

	mu     sync.Mutex // guards events
	events []BarrierEvent
}

// NewBarrierLog returns an empty log ordered with h, timed by clk.
func NewBarrierLog(h *History, clk clock.Clock) *BarrierLog { return &BarrierLog{h: h, clk: clk} }

func (l *BarrierLog) add(e BarrierEvent) {
	e.At = l.clk.Now()
	e.Seq = l.h.Seq()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// Events returns a copy of the events recorded so far, in order.
func (l *BarrierLog) Events() []BarrierEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// BarrierReport is what CheckBarrier found.
type BarrierReport struct {
	Parties     int // 0 when the run had no barrier
	Target      int // generations each party was meant to pass
	Passes      int // Waits that returned nil
	Generations int // generations every party passed
	Failures    int // Waits that returned an error
	Out         int // parties that stopped: crashed, or their membership was lost
	// EarlyPasses counts passes of generation g made before every party
	// had called Wait for g.
	EarlyPasses int
	// OutOfOrder counts passes that were not of the party's next
	// generation, or after which its Generation was not one more.
	OutOfOrder int
	// Stuck counts liveness failures: with no party out, a party that did
	// not pass every generation, or a Wait after the heal that took longer
	// than the bound.
	Stuck    int
	Examples []string
	Events   []BarrierEvent // the events checked, for replays
}

// Violations counts what CheckBarrier found wrong.
func (r BarrierReport) Violations() int { return r.EarlyPasses + r.OutOfOrder + r.Stuck }

func (r *BarrierReport) example(format string, args ...any) {
	if len(r.Examples) < 3 {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// CheckBarrier checks the events of a barrier of parties parties (clients 0
// to parties−1), each meant to pass gens generations:
//
//   - safety: no party passes generation g before every party has called
//     Wait for g, and each party passes its generations in order, one at a
//     time;
//   - liveness, unless a party is out (crashed: crashed[c], or told its
//     membership was lost): every party passes every generation, and every
//     Wait that returns after heal returns within bound of the later of its
//     call and heal. A party that is out cannot arrive, so the others are
//     then expected to fail, never to pass without it.
func CheckBarrier(events []BarrierEvent, parties int, gens uint64, crashed []bool, heal time.Time, bound time.Duration) BarrierReport {
	rep := BarrierReport{Parties: parties, Target: int(gens), Events: events}
	arrived := map[[2]uint64]int64{} // (client, gen) -> first arrival
	next := make([]uint64, parties)  // per party: the generation it passes next
	out := make([]bool, parties)
	for i := range out {
		out[i] = i < len(crashed) && crashed[i]
	}
	for _, e := range events {
		switch e.Kind {
		case BarrierArrive:
			k := [2]uint64{uint64(e.Client), e.Gen}
			if _, ok := arrived[k]; !ok {
				arrived[k] = e.Seq
			}
		case BarrierFail:
			rep.Failures++
			out[e.Client] = out[e.Client] || e.Out
		case BarrierPass:
			rep.Passes++
			for p := range parties {
				if _, ok := arrived[[2]uint64{uint64(p), e.Gen}]; !ok {
					rep.EarlyPasses++
					rep.example("c%d passed generation %d at %d before c%d called Wait for it", e.Client, e.Gen, e.Seq, p)
					break
				}
			}
			if e.Gen != next[e.Client] || e.Next != e.Gen+1 {
				rep.OutOfOrder++
				rep.example("c%d passed generation %d at %d, expected %d, and moved to %d", e.Client, e.Gen, e.Seq, next[e.Client], e.Next)
			}
			next[e.Client] = e.Next
		}
	}
	rep.Generations = int(slices.Min(next))
	for _, o := range out {
		if o {
			rep.Out++
		}
	}
	if rep.Out > 0 {
		return rep
	}
	for p, n := range next {
		if n < gens {
			rep.Stuck++
			rep.example("c%d passed %d of %d generations, no party out", p, n, gens)
		}
	}
	for _, e := range events {
		if e.Kind == BarrierArrive || e.At.Before(heal) {
			continue
		}
		from := e.Call
		if from.Before(heal) {
			from = heal
		}
		if w := e.At.Sub(from); w > bound {
			rep.Stuck++
			rep.example("c%d's Wait for generation %d returned after %v since the heal or its call (bound %v)", e.Client, e.Gen, w, bound)
		}
	}
	return rep
}

// barrierParty runs client cl as one party of the workload's barrier: gens
// Waits, each after a think time, each bounded by Config.LockTimeout. A
// failed Wait is tried again (the party stays arrived), unless its
// membership was lost (the party stops: it cannot take part again), or it
// started after healed was closed (once faults stop, a Wait that fails is
// stuck for good: the party gives up). It closes the barrier when done.
func (cl *Client) barrierParty(parties int, gens uint64, healed <-chan struct{}) {
	c := cl.c
	b := dsync.NewBarrier(cl.DS, barrierName, parties)
	defer func() {
		if !cl.Crashed() {
			ctx, cancel := clock.WithTimeout(cl.ctx, cl.clk, c.Cfg.CallTimeout)
			defer cancel()
			b.Close(ctx)
		}
	}()
	for b.Generation() < gens && !cl.Crashed() {
		if c.Cfg.Think > 0 {
			clock.Sleep(cl.ctx, cl.clk, time.Duration(cl.rng.Int64N(int64(c.Cfg.Think))))
		}
		c.Net.WaitResumed(cl.ID)
		afterHeal := isClosed(healed)
		err := cl.barrierWait(b)
		if cl.Crashed() {
			return // the outcome is the dead process's
		}
		if err != nil && (errors.Is(err, dsync.ErrLockLost) || afterHeal) {
			return
		}
	}
}

// barrierWait makes one Wait of b, bounded by Config.LockTimeout, and
// records it in the cluster's BarrierLog: the arrival before the call, the
// pass or the failure after it (unless the client crashed meanwhile).
func (cl *Client) barrierWait(b *dsync.Barrier) error {
	c := cl.c
	g := b.Generation()
	call := c.Clock.Now()
	c.Barriers.add(BarrierEvent{Client: cl.ID, Gen: g, Kind: BarrierArrive})
	ctx, cancel := clock.WithTimeout(cl.ctx, cl.clk, c.Cfg.LockTimeout)
	err := b.Wait(ctx)
	cancel()
	switch {
	case cl.Crashed():
	case err == nil:
		c.Barriers.add(BarrierEvent{Client: cl.ID, Gen: g, Kind: BarrierPass, Next: b.Generation(), Call: call})
	default:
		c.Barriers.add(BarrierEvent{Client: cl.ID, Gen: g, Kind: BarrierFail, Call: call, Err: err.Error(),
			Out: errors.Is(err, dsync.ErrLockLost)})
	}
	return err
}

// isClosed reports whether ch is closed; a nil ch never is.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// barrierGens is how many generations the barrier workload's parties pass:
// Config.Ops.
func barrierGens(cfg Config) uint64 { return uint64(cfg.Ops) }

// RunBarrier runs the barrier workload under a fault schedule (sorted by
// At; the last heals): every client is a party of one barrier of
// Config.Clients parties (c.barrierParties, if set by a test) and passes
// barrierGens generations. It reports whether every party was done within
// Config.MaxVirtual.
func (c *Cluster) RunBarrier(faults []Fault) bool {
	parties := c.Cfg.Clients
	if c.barrierParties > 0 {
		parties = c.barrierParties
	}
	return c.runParties(faults, func(cl *Client, healed <-chan struct{}) {
		cl.barrierParty(parties, barrierGens(c.Cfg), healed)
	})
}

// runParties runs party on every client while the driver applies faults;
// healed is closed once the last fault (the heal) is applied, or at once if
// there are none. It reports whether every party returned within
// Config.MaxVirtual.
func (c *Cluster) runParties(faults []Fault, party func(cl *Client, healed <-chan struct{})) bool {
	healed := make(chan struct{})
	if len(faults) == 0 {
		close(healed)
	}
	for len(faults) > 0 && faults[0].At <= 0 {
		faults[0].Do(c)
		faults = faults[1:]
	}
	finished := make(chan struct{}, len(c.clients))
	for _, cl := range c.clients {
		c.Go(func() {
			party(cl, healed)
			finished <- struct{}{}
		})
	}
	all := c.spawn(func() {
		for range c.clients {
			<-finished
		}
	})
	for i, f := range faults {
		c.RunUntil(all, max(f.At-c.Now(), 0))
		f.Do(c)
		if i == len(faults)-1 {
			close(healed)
		}
	}
	return c.RunUntil(all, c.Cfg.MaxVirtual-c.Now())
}

// barrierReport checks the run's barrier events.
func (c *Cluster) barrierReport(heal time.Duration, crashed []bool) BarrierReport {
	parties := c.Cfg.Clients
	return CheckBarrier(c.Barriers.Events(), parties, barrierGens(c.Cfg), crashed, c.Start.Add(heal), LivenessBound(c.Cfg))
}
