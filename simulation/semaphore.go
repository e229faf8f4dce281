package simulation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
)

// semaphoreName is the one dsync.Semaphore of the semaphore workload.
const semaphoreName = "bucket/semaphore"

// permitName returns the resource of permit slot i of the workload's
// semaphore: the write lock dsync.Semaphore takes for it.
func permitName(i int) string { return semaphoreName + "/permit/" + strconv.Itoa(i) }

// Holding is one client's use of one permit of the semaphore, placed in the
// history's logical order: from Acquire's return to the moment the holder
// stopped using it, when it called Release or its permit context was
// cancelled, whichever came first.
type Holding struct {
	Client int
	Slot   int
	Start  int64 // logical time Acquire returned the permit
	End    int64 // logical time the holder stopped using it; Infinity if never seen
}

// PermitLog records the holdings of the semaphore workload for
// CheckSemaphore. Safe for concurrent use.
type PermitLog struct {
	h *History // source of logical times shared with the lock history

	mu       sync.Mutex // guards holdings
	holdings []Holding
}

// NewPermitLog returns an empty log ordered with h.
func NewPermitLog(h *History) *PermitLog { return &PermitLog{h: h} }

// start records that client got permit slot now and returns the holding's id.
func (l *PermitLog) start(client, slot int) int {
	seq := l.h.Seq()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holdings = append(l.holdings, Holding{Client: client, Slot: slot, Start: seq, End: Infinity})
	return len(l.holdings) - 1
}

// end records that holding id is no longer used, unless it already ended.
func (l *PermitLog) end(id int) {
	seq := l.h.Seq()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holdings[id].End = min(l.holdings[id].End, seq)
}

// Holdings returns a copy of the holdings recorded so far.
func (l *PermitLog) Holdings() []Holding {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.holdings)
}

// PermitHold is a permit held by a simulated client.
type PermitHold struct {
	cl     *Client
	P      *dsync.Permit
	id     int // in the cluster's PermitLog
	endRec sync.Once
}

// AcquirePermit takes a permit of the workload's semaphore (Config.Permits
// permits). In the lock history the call is recorded as a write acquisition
// of the semaphore's name and, once granted, of the permit's resource, so
// that porcupine checks each permit as the write lock it is; a failed or
// unknown acquisition stays on the semaphore's name, where it constrains
// nothing. The holding is recorded in the cluster's PermitLog.
func (cl *Client) AcquirePermit() (*PermitHold, error) {
	c := cl.c
	id := c.History.Invoke(cl.ID, semaphoreName, OpAcquire, true)
	a := cl.begin()
	p, err := cl.sem.Acquire(cl.ctx, a.opts)
	a.end(err)
	if err != nil {
		if cl.Crashed() {
			return nil, err // unknown outcome, as for a lock
		}
		c.History.Finish(id, Failed, err)
		return nil, err
	}
	res := permitName(p.Slot())
	c.History.finishAs(id, res, OK)
	ph := &PermitHold{cl: cl, P: p, id: c.Permits.start(cl.ID, p.Slot())}
	ctx := p.Context()
	context.AfterFunc(ctx, func() {
		ph.stopped()
		if errors.Is(context.Cause(ctx), dsync.ErrLockLost) {
			c.History.Point(cl.ID, res, OpLost, true)
		}
	})
	return ph, nil
}

// stopped records that the holder no longer uses its permit.
func (ph *PermitHold) stopped() { ph.cl.c.Permits.end(ph.id) }

// Use holds the permit for d of virtual time, or until its context is
// cancelled (lost, or the client crashed): a careful holder stops then. A
// pause freezes it before it moves on.
func (ph *PermitHold) Use(d time.Duration) {
	c := ph.cl.c
	clock.Sleep(ph.P.Context(), ph.cl.clk, d)
	c.Net.WaitResumed(ph.cl.ID)
}

// Release gives the permit back and records the release; the holder stops
// using it when it calls Release. A crashed client records that it holds
// nothing and sends nothing.
func (ph *PermitHold) Release() error {
	cl := ph.cl
	c := cl.c
	res := permitName(ph.P.Slot())
	ph.stopped()
	if cl.Crashed() {
		c.History.Point(cl.ID, res, OpRelease, true)
		return nil
	}
	id := c.History.Invoke(cl.ID, res, OpRelease, true)
	err := ph.P.Release(cl.ctx)
	c.History.Finish(id, OK, err)
	return err
}

// semaphoreOp is one operation of the semaphore workload: take a permit,
// use it for hold, release it. It returns the acquisition's error.
func (cl *Client) semaphoreOp(hold time.Duration) error {
	ph, err := cl.AcquirePermit()
	if err != nil {
		return err
	}
	ph.Use(hold)
	ph.Release()
	return nil
}

// SemaphoreReport is what CheckSemaphore found.
type SemaphoreReport struct {
	Permits        int // the semaphore's size; 0 when the run had no semaphore
	Holdings       int
	MaxHolders     int      // most holdings in use at one instant
	Oversubscribed int      // holdings that started while Permits others were in use
	SlotOverlaps   int      // pairs of holdings of the same permit slot in use at once
	Examples       []string // a few violations, for reports
}

// Violations counts what CheckSemaphore found wrong.
func (r SemaphoreReport) Violations() int { return r.Oversubscribed + r.SlotOverlaps }

// CheckSemaphore checks the holdings of a semaphore of n permits: at no
// instant may more than n holdings be in use, and no two holdings of one
// permit slot may be in use at once. Times are the history's logical times,
// all distinct; a holding that never ended is in use to the end.
func CheckSemaphore(hs []Holding, n int) SemaphoreReport {
	rep := SemaphoreReport{Permits: n, Holdings: len(hs)}
	type event struct {
		at    int64
		delta int
		h     Holding
	}
	evs := make([]event, 0, 2*len(hs))
	for _, h := range hs {
		evs = append(evs, event{h.Start, +1, h}, event{h.End, -1, h})
	}
	slices.SortStableFunc(evs, func(a, b event) int {
		if c := cmpInt64(a.at, b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // an end before a start at the same time
	})
	inUse := 0
	for _, e := range evs {
		inUse += e.delta
		if e.delta > 0 {
			rep.MaxHolders = max(rep.MaxHolders, inUse)
			if inUse > n {
				rep.Oversubscribed++
				if len(rep.Examples) < 3 {
					rep.Examples = append(rep.Examples, fmt.Sprintf("c%d took permit %d at %d while %d others were in use",
						e.h.Client, e.h.Slot, e.h.Start, inUse-1))
				}
			}
		}
	}
	bySlot := slices.Clone(hs)
	slices.SortFunc(bySlot, func(a, b Holding) int {
		if a.Slot != b.Slot {
			return a.Slot - b.Slot
		}
		return cmpInt64(a.Start, b.Start)
	})
	for i, a := range bySlot {
		for _, b := range bySlot[i+1:] {
			if b.Slot != a.Slot || b.Start >= a.End {
				break // sorted by slot and start: no later holding overlaps a
			}
			rep.SlotOverlaps++
			if len(rep.Examples) < 3 {
				rep.Examples = append(rep.Examples, fmt.Sprintf("permit %d: c%d in [%d,%s] and c%d from %d",
					a.Slot, a.Client, a.Start, seqString(a.End), b.Client, b.Start))
			}
		}
	}
	return rep
}
