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

// LeaseUse is one write a lease holder made to the register under its
// lease.
type LeaseUse struct {
	Client   int
	Resource string
	At       time.Time // virtual time of the write
	Deadline time.Time // the lease's maximum hold (Lease.Deadline); zero if none
	Verified bool      // the holder asked Verify before the write (CheckVerify, CheckVerifyAlone)
	Seq      int64     // logical time of the write, in the history's order
}

// LeaseLog records the lease workload's writes and what became of its
// leases, for CheckLeases. Safe for concurrent use.
type LeaseLog struct {
	h *History

	mu                     sync.Mutex // guards the fields below
	uses                   []LeaseUse
	granted, expired, lost int
}

// NewLeaseLog returns an empty log ordered with h.
func NewLeaseLog(h *History) *LeaseLog { return &LeaseLog{h: h} }

func (l *LeaseLog) use(u LeaseUse) {
	u.Seq = l.h.Seq()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.uses = append(l.uses, u)
}

func (l *LeaseLog) count(p *int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*p++
}

// Uses returns a copy of the writes recorded so far.
func (l *LeaseLog) Uses() []LeaseUse {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.uses)
}

// LeaseReport is what CheckLeases found, with the log's counts.
type LeaseReport struct {
	Leases  int // leases granted; 0 when the run had no lease workload
	Expired int // leases that reached their maximum hold while held
	Lost    int // leases whose holder was told the lock was lost
	Uses    int // writes made under a lease
	// PastDeadline counts writes made at or after their lease's maximum
	// hold deadline: a holder that checked Valid or Verify just before was
	// told the lease still held when it no longer did.
	PastDeadline int
	Examples     []string
}

// Violations counts what CheckLeases found wrong.
func (r LeaseReport) Violations() int { return r.PastDeadline }

// CheckLeases checks the writes made under leases: none may be made at or
// after its lease's deadline (on the clock the leases use). Overlapping
// writers and lost updates are the register checker's (CheckRegister), and
// the lock each lease is, the lock checker's (CheckLocks).
func CheckLeases(uses []LeaseUse) LeaseReport {
	rep := LeaseReport{Uses: len(uses)}
	for _, u := range uses {
		if u.Deadline.IsZero() || u.At.Before(u.Deadline) {
			continue
		}
		rep.PastDeadline++
		if len(rep.Examples) < 3 {
			how := "Valid"
			if u.Verified {
				how = "Verify"
			}
			rep.Examples = append(rep.Examples, fmt.Sprintf("c%d wrote %s at %d, %v past its lease's deadline, after %s said it held",
				u.Client, u.Resource, u.Seq, u.At.Sub(u.Deadline), how))
		}
	}
	return rep
}

// report returns CheckLeases of the log, with the log's counts.
func (l *LeaseLog) report() LeaseReport {
	rep := CheckLeases(l.Uses())
	l.mu.Lock()
	defer l.mu.Unlock()
	rep.Leases, rep.Expired, rep.Lost = l.granted, l.expired, l.lost
	return rep
}

// LeaseHold is a lease held by a simulated client.
type LeaseHold struct {
	cl       *Client
	L        *dsync.Lease
	Resource string
	Write    bool
}

// AcquireLease takes a lease on resource and records it in the lock history
// as the lock it is. The holder's belief ends when its lease's context is
// cancelled: a loss (ErrLockLost) is recorded as OpLost, the end of its
// maximum hold (ErrLeaseExpired) as a release, at that instant, since the
// lease then releases the lock itself. The acquisition is bounded as every
// acquisition of the client is (Config.LockTimeout, or the client's adaptive
// timeout): opts.Options is set here.
func (cl *Client) AcquireLease(resource string, opts dsync.LeaseOptions) (*LeaseHold, error) {
	c := cl.c
	write := !opts.Read
	id := c.History.Invoke(cl.ID, resource, OpAcquire, write)
	a := cl.begin()
	opts.Options = a.opts
	l, err := dsync.AcquireLease(cl.ctx, cl.DS, resource, opts)
	a.end(err)
	if err != nil {
		if cl.Crashed() {
			return nil, err // unknown outcome, as for a lock
		}
		c.History.Finish(id, Failed, err)
		return nil, err
	}
	c.History.Finish(id, OK, nil)
	c.Leases.count(&c.Leases.granted)
	ctx := l.Context()
	context.AfterFunc(ctx, func() {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, dsync.ErrLockLost):
			c.Leases.count(&c.Leases.lost)
			c.History.Point(cl.ID, resource, OpLost, write)
		case errors.Is(cause, dsync.ErrLeaseExpired):
			c.Leases.count(&c.Leases.expired)
			c.History.Point(cl.ID, resource, OpRelease, write)
		}
	})
	return &LeaseHold{cl: cl, L: l, Resource: resource, Write: write}, nil
}

// LeaseCheck is what a lease holder asks just before it writes.
type LeaseCheck uint8

// Lease checks.
const (
	// CheckValid asks Lease.Valid.
	CheckValid LeaseCheck = iota
	// CheckVerify asks Lease.Verify and, if it succeeded, Lease.Valid: the
	// workaround holders needed before Verify asked Valid itself once the
	// nodes had answered (see lease-verify-past-deadline in README.md).
	CheckVerify
	// CheckVerifyAlone asks Lease.Verify only, as its documentation says is
	// enough.
	CheckVerifyAlone
)

// Section is one read-modify-write of the register under the lease: read,
// work for d, then, if the lease still holds by check, write. A pause
// freezes the holder before the check. It reports whether it wrote (or, for
// a read lease, would have).
//
// A careless holder (Cluster.careless, set by tests) writes without
// asking: the checkers must catch it.
func (lh *LeaseHold) Section(d time.Duration, check LeaseCheck) bool {
	cl := lh.cl
	c := cl.c
	sec := c.Register.Enter(cl.ID, lh.Resource, lh.Write)
	clock.Sleep(cl.ctx, cl.clk, d)
	c.Net.WaitResumed(cl.ID)
	ok := lh.check(check)
	if ok && lh.Write {
		deadline, _ := lh.L.Deadline()
		c.Leases.use(LeaseUse{Client: cl.ID, Resource: lh.Resource, At: cl.clk.Now(), Deadline: deadline, Verified: check != CheckValid})
	}
	c.Register.Exit(sec, ok)
	return ok
}

// check asks whether the lease still holds, as check says.
func (lh *LeaseHold) check(check LeaseCheck) bool {
	cl := lh.cl
	switch {
	case cl.Crashed():
		return false
	case cl.c.careless:
		return true
	case check == CheckValid:
		return lh.L.Valid()
	case lh.L.Verify(cl.ctx) != nil:
		return false
	}
	return check == CheckVerifyAlone || lh.L.Valid()
}

// Release gives the lease back and records the release, as Hold.Release
// does for a lock.
func (lh *LeaseHold) Release() error {
	cl := lh.cl
	c := cl.c
	if cl.Crashed() {
		c.History.Point(cl.ID, lh.Resource, OpRelease, lh.Write)
		return nil
	}
	id := c.History.Invoke(cl.ID, lh.Resource, OpRelease, lh.Write)
	err := lh.L.Release(cl.ctx)
	c.History.Finish(id, OK, err)
	return err
}

// leaseOp is one operation of the lease workload: a lease on a random
// resource, read or write, bounded by a MaxHold in [Hold/4, Hold] (half of
// them), by 1 or 2 renewals (a quarter; the lease setup makes Hold two
// refresh intervals) or by a MaxHold of 2×Validity (a quarter, so that faults
// can take a lease before its bound), used for 1 to 4 sections of Hold/8 to
// Hold/4 each, then released. Sections stop at the first whose check fails.
func (cl *Client) leaseOp() {
	c := cl.c
	cfg := c.Cfg
	res := resourceName(cl.rng.IntN(cfg.Resources))
	write := cfg.ReadFraction < 0 || cl.rng.Float64() >= cfg.ReadFraction
	opts := dsync.LeaseOptions{Read: !write} // AcquireLease sets Options
	switch cl.rng.IntN(4) {
	case 0, 1:
		opts.MaxHold = cfg.Hold/4 + time.Duration(cl.rng.Int64N(int64(cfg.Hold*3/4)+1))
	case 2:
		opts.MaxRenewals = 1 + cl.rng.IntN(2)
	case 3:
		// Past the validity: a holder paused or cut off meanwhile loses
		// the lock before its lease ends.
		opts.MaxHold = 2 * cfg.Validity
	}
	steps, check := 1+cl.rng.IntN(4), LeaseCheck(cl.rng.IntN(3)) // CheckValid, CheckVerify or CheckVerifyAlone
	lh, err := cl.AcquireLease(res, opts)
	if err != nil {
		return
	}
	for range steps {
		if !lh.Section(cfg.Hold/8+time.Duration(cl.rng.Int64N(int64(cfg.Hold/8)+1)), check) {
			break
		}
	}
	lh.Release()
}

// leaseProbe is the liveness probe's operation in the lease workload: a
// write lease on resource without a bound, one section of Hold. It returns
// the acquisition's error.
func (cl *Client) leaseProbe(resource string) error {
	lh, err := cl.AcquireLease(resource, dsync.LeaseOptions{})
	if err != nil {
		return err
	}
	lh.Section(cl.c.Cfg.Hold, CheckValid)
	lh.Release()
	return nil
}

// leaseSetup makes cfg a lease workload: Validity 2s and a refresh every
// Validity/20 unless set, Hold two refresh intervals, so that a lease bounded
// by one or two renewals ends within a hold, and Think as long as Hold. A
// short think between long holds would starve waiting writers (the nodes
// keep no queue): the no-fault run of seed 1 had a writer time out while
// the others took the lock a dozen times.
func leaseSetup(cfg *Config) {
	cfg.Primitive = PrimitiveLease
	if cfg.Validity == 0 {
		cfg.Validity = 2 * time.Second
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = cfg.Validity / 20
	}
	if cfg.Hold == 0 {
		cfg.Hold = 2 * cfg.RefreshInterval
	}
	if cfg.Think == 0 {
		cfg.Think = cfg.Hold
	}
}
