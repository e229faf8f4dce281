package simulation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
)

// The cond workload's mutex (a write lock in the history) and condition
// variable.
const (
	condMutex = "queue"
	condName  = "queue/nonempty"
)

// CountChange is one accepted write of the cond workload's counter: the
// number of items produced and not yet consumed.
type CountChange struct {
	Client int
	Delta  int // +1 produced, −1 consumed
	Value  int // the counter after the write
	At     time.Time
}

// WaitSpan is one Cond.Wait of a consumer, from its call to its return.
type WaitSpan struct {
	Client     int
	Start, End time.Time // End is the end of the run for a Wait that never returned
}

// CondLog records the cond workload: the counter, protected by the mutex,
// and the consumers' Waits. Safe for concurrent use.
type CondLog struct {
	clk clock.Clock

	mu      sync.Mutex // guards the fields below
	value   int
	changes []CountChange
	waits   []WaitSpan
	open    map[int]time.Time // consumers in Wait: since when
}

// NewCondLog returns an empty log timed by clk.
func NewCondLog(clk clock.Clock) *CondLog { return &CondLog{clk: clk, open: map[int]time.Time{}} }

// read returns the counter.
func (l *CondLog) read() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.value
}

// write sets the counter to v, by client, which read it as v−delta.
func (l *CondLog) write(client, delta, v int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.value = v
	l.changes = append(l.changes, CountChange{Client: client, Delta: delta, Value: v, At: l.clk.Now()})
}

func (l *CondLog) waitStart(client int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open[client] = l.clk.Now()
}

func (l *CondLog) waitEnd(client int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waits = append(l.waits, WaitSpan{Client: client, Start: l.open[client], End: l.clk.Now()})
	delete(l.open, client)
}

// record returns the counter's changes, its final value and every Wait,
// those still open ending at end, except those of crashed clients.
func (l *CondLog) record(end time.Time, crashed []bool) ([]CountChange, int, []WaitSpan) {
	l.mu.Lock()
	defer l.mu.Unlock()
	waits := slices.Clone(l.waits)
	for c, s := range l.open {
		if !crashed[c] {
			waits = append(waits, WaitSpan{Client: c, Start: s, End: end})
		}
	}
	return slices.Clone(l.changes), l.value, waits
}

// CondReport is what CheckCond found.
type CondReport struct {
	Consumers int // 0 when the run had no cond workload
	Produced  int // accepted increments
	Consumed  int // accepted decrements
	Waits     int
	// FromEmpty counts decrements that took the counter below zero: a
	// consumer that did not re-check the condition under the mutex.
	FromEmpty int
	// LostUpdates counts accepted writes the final value does not
	// reflect: two holders of the mutex at once.
	LostUpdates int
	// LostWakeups counts Waits that, after the heal, went on for longer
	// than the bound while the counter stayed above zero throughout.
	LostWakeups int
	// WakeupsUnchecked reports that lost wakeups were not checked: the
	// producer crashed (see CheckCond).
	WakeupsUnchecked bool
	Examples         []string
	Changes          []CountChange // the changes checked, for replays
	WaitSpans        []WaitSpan    // the Waits checked, for replays
}

// Violations counts what CheckCond found wrong.
func (r CondReport) Violations() int { return r.FromEmpty + r.LostUpdates + r.LostWakeups }

// CheckCond checks the cond workload: the counter never went below zero
// (every consumer re-checked the condition under the mutex), the final
// value is produced − consumed (no write was lost to two holders at once),
// and, unless the producer crashed, no consumer kept waiting, after heal,
// for longer than bound while the counter stayed above zero the whole time
// (no lost wakeup once faults stopped). A producer that crashed between an
// increment and its Signal leaves waiters waiting with items ready, as a
// goroutine that dies there would with sync.Cond: nobody signalled, so
// nothing was lost, and the check is skipped (WakeupsUnchecked). changes
// are in the order they were made.
func CheckCond(changes []CountChange, final int, waits []WaitSpan, producerCrashed bool, heal time.Time, bound time.Duration) CondReport {
	rep := CondReport{Waits: len(waits), Changes: changes, WaitSpans: waits, WakeupsUnchecked: producerCrashed}
	for _, ch := range changes {
		if ch.Delta > 0 {
			rep.Produced++
		} else {
			rep.Consumed++
		}
		if ch.Value < 0 {
			rep.FromEmpty++
			if len(rep.Examples) < 3 {
				rep.Examples = append(rep.Examples, fmt.Sprintf("c%d took the counter to %d", ch.Client, ch.Value))
			}
		}
	}
	if d := rep.Produced - rep.Consumed - final; d != 0 {
		rep.LostUpdates = max(d, -d)
		if len(rep.Examples) < 3 {
			rep.Examples = append(rep.Examples, fmt.Sprintf("%d produced, %d consumed, the counter ends at %d", rep.Produced, rep.Consumed, final))
		}
	}
	// valueAt returns the counter at t and the time of the next change
	// after t (zero if none).
	valueAt := func(t time.Time) (int, time.Time) {
		v := 0
		for _, ch := range changes {
			if ch.At.After(t) {
				return v, ch.At
			}
			v = ch.Value
		}
		return v, time.Time{}
	}
	if producerCrashed {
		return rep
	}
	for _, w := range waits {
		from := w.Start
		if from.Before(heal) {
			from = heal
		}
		// The longest stretch within [from, w.End] with the counter above
		// zero throughout.
		var longest time.Duration
		var since time.Time // zero when the counter is not above zero
		for t := from; t.Before(w.End); {
			v, next := valueAt(t)
			if v > 0 && since.IsZero() {
				since = t
			} else if v <= 0 {
				since = time.Time{}
			}
			if next.IsZero() || next.After(w.End) {
				next = w.End
			}
			if !since.IsZero() {
				longest = max(longest, next.Sub(since))
			}
			t = next
		}
		if longest > bound {
			rep.LostWakeups++
			if len(rep.Examples) < 3 {
				rep.Examples = append(rep.Examples, fmt.Sprintf("c%d waited %v with items ready (bound %v)", w.Client, longest, bound))
			}
		}
	}
	return rep
}

// condLocked is the mutex held by a simulated client of the cond workload.
type condLocked struct {
	cl  *Client
	m   *dsync.Mutex
	ctx context.Context // the lock context
}

// condLock locks the workload's mutex and records it in the lock history
// as the write lock it is.
func (cl *Client) condLock(m *dsync.Mutex) (*condLocked, error) {
	c := cl.c
	id := c.History.Invoke(cl.ID, condMutex, OpAcquire, true)
	ctx, stop := cl.waitBound(c.Cfg.LockTimeout)
	lockCtx, err := m.Lock(ctx)
	stop()
	if err != nil {
		if !cl.Crashed() {
			c.History.Finish(id, Failed, err)
		}
		return nil, err
	}
	c.History.Finish(id, OK, nil)
	return cl.condHeld(m, lockCtx), nil
}

// waitBound returns a context for a call that waits for the mutex (Lock,
// Cond.Wait): cancelled if d passes before stop is called, and otherwise
// only when the client crashes. Mutex.Lock and Cond.Wait derive the lock
// context they return from it, so a context.WithTimeout cancelled on return
// would cancel the lock context too, with the mutex still held.
func (cl *Client) waitBound(d time.Duration) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(cl.ctx)
	t := cl.clk.NewTimer(d)
	done := make(chan struct{})
	cl.c.Go(func() {
		defer t.Stop()
		select {
		case <-t.C():
			cancel()
		case <-done:
		case <-ctx.Done():
		}
	})
	return ctx, func() { close(done) }
}

// condHeld watches a newly granted lock context for a loss.
func (cl *Client) condHeld(m *dsync.Mutex, lockCtx context.Context) *condLocked {
	c := cl.c
	context.AfterFunc(lockCtx, func() {
		if errors.Is(context.Cause(lockCtx), dsync.ErrLockLost) {
			c.History.Point(cl.ID, condMutex, OpLost, true)
		}
	})
	return &condLocked{cl: cl, m: m, ctx: lockCtx}
}

// add writes the counter plus delta, having read it as v, if the lock
// still holds; a pause freezes the client before that check. It reports
// whether it wrote.
func (h *condLocked) add(v, delta int) bool {
	cl := h.cl
	c := cl.c
	c.Net.WaitResumed(cl.ID)
	if h.ctx.Err() != nil || cl.Crashed() {
		return false
	}
	c.Conds.write(cl.ID, delta, v+delta)
	return true
}

// unlock releases the mutex and records it.
func (h *condLocked) unlock() {
	cl := h.cl
	c := cl.c
	if cl.Crashed() {
		c.History.Point(cl.ID, condMutex, OpRelease, true)
		return
	}
	id := c.History.Invoke(cl.ID, condMutex, OpRelease, true)
	err := h.m.Unlock(cl.ctx)
	c.History.Finish(id, OK, err)
}

// wait calls Cond.Wait, bounded by Config.LockTimeout, and records it: in
// the history as a release of the mutex and an acquisition, both spanning
// the call (Wait unlocks and locks again inside it), and as a WaitSpan. It
// returns the mutex held again, or the error with the mutex not held.
func (h *condLocked) wait(cond *dsync.Cond) (*condLocked, error) {
	cl := h.cl
	c := cl.c
	rel := c.History.Invoke(cl.ID, condMutex, OpRelease, true)
	acq := c.History.Invoke(cl.ID, condMutex, OpAcquire, true)
	c.History.markCondWait(acq)
	c.Conds.waitStart(cl.ID)
	ctx, stop := cl.waitBound(c.Cfg.LockTimeout)
	lockCtx, err := cond.Wait(ctx, h.m)
	stop()
	if cl.Crashed() {
		// The outcome is the dead process's: the history keeps both
		// operations unknown, the log its Wait open (CheckCond is not
		// given the Waits of crashed clients).
		return nil, errors.Join(err, cl.ctx.Err())
	}
	c.Conds.waitEnd(cl.ID)
	c.History.Finish(rel, OK, nil)
	if err != nil {
		c.History.Finish(acq, Failed, err)
		return nil, err
	}
	c.History.Finish(acq, OK, nil)
	return cl.condHeld(h.m, lockCtx), nil
}

// condProducer produces items: for each, it locks the mutex, increments
// the counter, unlocks, and signals one waiter (or, one time in four,
// broadcasts), retrying a Signal that failed (ErrNoQuorum: it could not be
// sure to see every waiter) until it succeeds or its ctx ends. A failed
// increment (lock not granted, or lost before the write) is tried again;
// once faults have stopped (healed closed), a failure ends the producer.
func (cl *Client) condProducer(items int, healed <-chan struct{}) {
	c := cl.c
	m := dsync.NewMutex(cl.DS, condMutex)
	cond := dsync.NewCond(cl.DS, condName)
	for made := 0; made < items && !cl.Crashed(); {
		if c.Cfg.Think > 0 {
			clock.Sleep(cl.ctx, cl.clk, time.Duration(cl.rng.Int64N(int64(c.Cfg.Think))))
		}
		broadcast := cl.rng.IntN(4) == 0
		afterHeal := isClosed(healed)
		h, err := cl.condLock(m)
		if err != nil {
			if afterHeal {
				return
			}
			continue
		}
		ok := h.add(c.Conds.read(), +1)
		h.unlock()
		if !ok {
			if afterHeal {
				return
			}
			continue
		}
		made++
		if !c.silentProducer {
			cl.condSignal(cond, broadcast)
		}
	}
}

// condSignal signals or broadcasts, trying again after a back-off while it
// fails, for at most Config.LockTimeout.
func (cl *Client) condSignal(cond *dsync.Cond, broadcast bool) {
	c := cl.c
	ctx, cancel := clock.WithTimeout(cl.ctx, cl.clk, c.Cfg.LockTimeout)
	defer cancel()
	for {
		var err error
		if broadcast {
			err = cond.Broadcast(ctx)
		} else {
			err = cond.Signal(ctx)
		}
		if err == nil || !clock.Sleep(ctx, cl.clk, c.Cfg.RetryMin) {
			return
		}
	}
}

// condConsumer consumes items: for each, it locks the mutex, waits on the
// Cond while the counter is zero, decrements it, and unlocks. A careless
// consumer (Cluster.careless) waits at most once and does not re-check. A
// failure (the lock not granted, a Wait that failed, a lock lost before the
// write) starts the item again; once faults have stopped (healed closed), it
// ends the consumer.
func (cl *Client) condConsumer(items int, healed <-chan struct{}) {
	c := cl.c
	m := dsync.NewMutex(cl.DS, condMutex)
	cond := dsync.NewCond(cl.DS, condName)
	for took := 0; took < items && !cl.Crashed(); {
		if c.Cfg.Think > 0 {
			clock.Sleep(cl.ctx, cl.clk, time.Duration(cl.rng.Int64N(int64(c.Cfg.Think))))
		}
		afterHeal := isClosed(healed)
		h, err := cl.condLock(m)
		for err == nil && c.Conds.read() == 0 {
			h, err = h.wait(cond)
			if c.careless {
				break
			}
		}
		if err != nil {
			if afterHeal {
				return
			}
			continue
		}
		ok := h.add(c.Conds.read(), -1)
		h.unlock()
		if ok {
			took++
		} else if afterHeal {
			return
		}
	}
}

// RunCond runs the cond workload under a fault schedule (sorted by At; the
// last heals): client 0 produces Config.Ops items for each of the other
// clients, which consume Config.Ops items each. It reports whether every
// client was done within Config.MaxVirtual.
func (c *Cluster) RunCond(faults []Fault) bool {
	consumers := c.Cfg.Clients - 1
	return c.runParties(faults, func(cl *Client, healed <-chan struct{}) {
		if cl.ID == 0 {
			cl.condProducer(consumers*c.Cfg.Ops, healed)
		} else {
			cl.condConsumer(c.Cfg.Ops, healed)
		}
	})
}

// condReport checks the run's cond workload, before Close ends the Waits
// still under way; crashed says which clients crashed during the run (their
// Waits are not waits for the condition).
func (c *Cluster) condReport(heal, end time.Duration, crashed []bool) CondReport {
	changes, final, waits := c.Conds.record(c.Start.Add(end), crashed)
	rep := CheckCond(changes, final, waits, crashed[0], c.Start.Add(heal), LivenessBound(c.Cfg))
	rep.Consumers = c.Cfg.Clients - 1
	return rep
}
