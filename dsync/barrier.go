package dsync

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Barrier is a reusable distributed barrier for a fixed number of parties:
// each generation, every party's Wait returns once all of them have called
// Wait. Each Barrier value is one party; the parties of one barrier share its
// name and node set, and may live in any processes.
//
// # Design
//
// Everything is a lock of the Dsync; the nodes store nothing else.
//
//   - Membership. At its first Wait a party takes one of the barrier's
//     member slots: a permit of the Semaphore name+"/member" of size
//     parties. The slot number i identifies the party until Close.
//   - Arrival. In its Wait for generation g, party i takes a read lock on
//     name+"/gen/"+g+"/"+i. Only the holder of slot i ever asks for that
//     resource, so a grant of it on any node, even one, proves that party i
//     has called Wait for g (a grant left by an attempt that failed proves
//     it too: the attempt was made inside that Wait).
//   - Trip. A waiting party asks every node, with a read-only query
//     (locker.Querier), who holds the arrival resources of g, and passes
//     when each of the parties' resources has a holder on at least one
//     answering node. It asks again after a back-off like a contended
//     GetLock's (Config.RetryMin to RetryMax), so a party passes at most
//     about RetryMax after the last arrival.
//   - Reuse. Every party counts generations itself, from 0, one per
//     successful Wait; they agree because each makes one Wait per
//     generation. A party keeps its arrival for g until it has passed g+1:
//     all n parties have then arrived at g+1, so all have passed g and none
//     still needs to see g's arrivals. A party holds at most two arrival
//     locks.
//
// Why not lock probes: a refused TryLock cannot tell "held" from "another
// prober's attempt collided with mine", and a writer's intent refuses
// readers of a resource nobody holds; counting by probes can trip early or
// never. The query reads the node tables and changes nothing.
//
// # Fault model
//
// Safety (no party passes generation g before every party has called Wait
// for g) does not depend on how many nodes answer a query: a missing answer
// can delay a trip but cannot fake an arrival, since nodes never grant what
// nobody asked for, and a restarted node comes back empty. It does depend on
// each member slot having one holder, which holds under the DRWMutex fault
// model (see the package documentation); a party whose membership is lost
// stops (its Wait fails with ErrLockLost). It also needs the barrier's name
// not to be reused within one Config.Validity of a previous use (arrivals
// left by a previous use lapse after that long).
//
// Liveness needs each arrival to stay visible: its read lock is held by a
// read quorum R, so a query answered by n−R+1 nodes sees it. If the lock is
// lost (node restarts left it on too few nodes), the party takes it again
// while it waits; and so for its arrival at the generation before, which
// parties still passing that generation need: one lost after the party
// passed is taken again in its next Wait, which the others then wait for.
// A party that is
// cancelled keeps its arrival; its next Wait resumes the same generation. A
// party that stops calling Wait, or whose process restarts (it counts from
// generation 0 again, while the others are further on), leaves the others
// waiting until their contexts end: as with any barrier, all parties take
// part in every generation.
//
// A Barrier is safe for concurrent use, but a party is one sequential actor:
// concurrent calls of one Barrier run one after another.
type Barrier struct {
	ds      *Dsync
	name    string
	parties int
	members *Semaphore
	err     error // why the barrier cannot be used, reported by every call

	mu      sync.Mutex    // serialises Wait and Close; guards the fields below
	member  *Permit       // slot held from the first Wait until Close
	gen     atomic.Uint64 // generation of the current or next Wait; written under mu
	arrival arrivalLock   // the arrival at gen, once taken
	prev    arrivalLock   // the arrival at gen−1, until gen passes
	closed  bool
}

// arrivalLock is a party's read lock on one of its arrival resources.
type arrivalLock struct {
	m    *DRWMutex       // nil if not held: not taken yet, or lost
	ctx  context.Context // the lock's context: it ends only when the lock is lost or released
	name string          // the arrival resource; "" until the first Wait of its generation
}

// take read-locks a.name. The lock's context outlives ctx, which bounds only
// the waiting, so that it ends only when the lock is lost or released.
func (a *arrivalLock) take(ctx context.Context, ds *Dsync, opts Options) error {
	life, stop, cancel := waitWithin(context.Background(), ctx, ctx)
	m := NewDRWMutex(ds, a.name)
	lockCtx, err := m.GetRLock(life, opts)
	if !stop() && err == nil {
		_ = m.RUnlock(context.WithoutCancel(ctx)) // ctx ended as the lock was granted
		err = context.Cause(life)
	}
	if err != nil {
		cancel(context.Canceled)
		return err
	}
	a.m, a.ctx = m, lockCtx
	return nil
}

// keep takes the arrival again if its lock was lost: node restarts, say,
// left it on too few nodes for the refresher. Parties look for it until they
// have passed its generation, and a grant of it still proves only that this
// party called Wait for that generation, so taking it again is safe; not
// taking it would leave them waiting for ever (found by the simulation's
// barrier-arrival-lost scenario). It does nothing for an arrival not taken.
func (a *arrivalLock) keep(ctx context.Context, ds *Dsync, opts Options) error {
	if a.m != nil && a.ctx.Err() != nil {
		_ = a.m.RUnlock(context.WithoutCancel(ctx)) // says it was lost; the refresher force-released it
		a.m = nil
	}
	if a.m == nil && a.name != "" {
		return a.take(ctx, ds, opts)
	}
	return nil
}

// NewBarrier returns one party of the barrier called name for parties
// parties through ds. An empty name, parties < 1, or a locker of ds that is
// not a locker.Querier (ErrQueryUnsupported) is an error that every Wait
// returns. A party beyond parties waits, in its first Wait, for a member slot
// to be given back.
func NewBarrier(ds *Dsync, name string, parties int) *Barrier {
	ds = ds.setFor(name) // with lock sets, every resource of the barrier on the set of name
	b := &Barrier{ds: ds, name: name, parties: parties}
	switch {
	case name == "":
		b.err = fmt.Errorf("%w: dsync: barrier with an empty name", locker.ErrInvalidArgs)
	case parties < 1:
		b.err = fmt.Errorf("%w: dsync: barrier %q with %d parties", locker.ErrInvalidArgs, name, parties)
	default:
		b.err = ds.checkQueriers()
		b.members = NewSemaphore(ds, name+"/member", parties)
	}
	return b
}

// Generation returns the generation the party's next Wait is for: the number
// of its Waits that have returned nil.
func (b *Barrier) Generation() uint64 { return b.gen.Load() }

// arrivalNames returns the arrival resources of generation g, by slot.
func (b *Barrier) arrivalNames(g uint64) []string {
	prefix := b.name + "/gen/" + strconv.FormatUint(g, 10) + "/"
	names := make([]string, b.parties)
	for i := range names {
		names[i] = prefix + strconv.Itoa(i)
	}
	return names
}

// Wait arrives at the barrier's current generation and blocks until every
// party has arrived, then returns nil and moves the party to the next
// generation. It returns an error if ctx ends first (the party stays
// arrived; its next Wait resumes this generation), if the party's
// membership is lost (ErrLockLost), after Close (ErrBarrierClosed), or if
// the barrier is unusable (see NewBarrier). When ctx ends, the error also
// wraps the last query's trouble, if any (ErrNoQuorum when too few nodes
// answered to see every arrival).
func (b *Barrier) Wait(ctx context.Context) error {
	return b.wait(ctx, Options{Source: caller(2)})
}

// WaitWith is Wait with opts for the locks the party takes: its member
// slot and its arrival. opts.Timeout or opts.Adaptive bound each of those
// acquisitions (opts.Adaptive learns from them), not the wait for the other
// parties, which ctx bounds.
func (b *Barrier) WaitWith(ctx context.Context, opts Options) error {
	if opts.Source == "" {
		opts.Source = caller(2)
	}
	return b.wait(ctx, opts)
}

func (b *Barrier) wait(ctx context.Context, opts Options) error {
	if b.err != nil {
		return b.err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBarrierClosed
	}
	if b.member == nil {
		if err := b.join(ctx, opts); err != nil {
			return fmt.Errorf("dsync: barrier %q: joining: %w", b.name, err)
		}
	}
	if err := b.member.Context().Err(); err != nil {
		return fmt.Errorf("dsync: barrier %q: membership: %w", b.name, context.Cause(b.member.Context()))
	}
	gen := b.gen.Load()
	names := b.arrivalNames(gen)
	if b.arrival.name == "" {
		b.arrival.name = names[b.member.Slot()]
	}
	if err := b.arrival.keep(ctx, b.ds, opts); err != nil {
		return fmt.Errorf("dsync: barrier %q: arriving: %w", b.name, err)
	}
	var last error
	for round := 0; ; round++ {
		if err := b.arrival.keep(ctx, b.ds, opts); err != nil {
			return fmt.Errorf("dsync: barrier %q generation %d: arriving again after a loss: %w", b.name, gen, err)
		}
		if err := b.prev.keep(ctx, b.ds, opts); err != nil {
			return fmt.Errorf("dsync: barrier %q generation %d: arriving again at %d after a loss: %w", b.name, gen, gen-1, err)
		}
		all, err := b.allArrived(ctx, names)
		if all {
			break
		}
		if err != nil {
			last = err
		}
		if !clock.Sleep(ctx, b.ds.clk(), b.ds.backoff(round)) {
			if last != nil {
				return fmt.Errorf("dsync: barrier %q generation %d: %w (last look: %w)", b.name, gen, context.Cause(ctx), last)
			}
			return fmt.Errorf("dsync: barrier %q generation %d: %w", b.name, gen, context.Cause(ctx))
		}
		if err := b.member.Context().Err(); err != nil {
			return fmt.Errorf("dsync: barrier %q: membership: %w", b.name, context.Cause(b.member.Context()))
		}
	}
	// Every party has arrived at gen, so every party has passed gen−1: its
	// arrival is needed no more.
	if b.prev.m != nil {
		_ = b.prev.m.RUnlock(context.WithoutCancel(ctx)) // what is not confirmed is retried in the background
	}
	b.prev, b.arrival = b.arrival, arrivalLock{}
	b.gen.Add(1)
	return nil
}

// join takes a member slot. The permit's context must outlive this Wait's
// ctx, which only bounds the waiting, so that it reports nothing but a loss.
func (b *Barrier) join(ctx context.Context, opts Options) error {
	parent, stop, cancel := waitWithin(context.Background(), ctx, ctx)
	p, err := b.members.Acquire(parent, opts)
	if !stop() && err == nil {
		_ = p.Release(context.WithoutCancel(ctx)) // ctx ended as the slot was granted
		err = context.Cause(parent)
	}
	if err != nil {
		cancel(context.Canceled)
		return err
	}
	b.member = p
	return nil
}

// allArrived asks the nodes who holds names and reports whether each has a
// holder on some node. The error says why the answer may be incomplete.
func (b *Barrier) allArrived(ctx context.Context, names []string) (bool, error) {
	answers, _, errs := b.ds.queryAll(ctx, names)
	for i := range names {
		seen := false
		for _, a := range answers {
			if a != nil && len(a.Resources[i].Holders) > 0 {
				seen = true
				break
			}
		}
		if !seen {
			if short, ok := b.ds.seesEveryRead(answers); !ok {
				return false, fmt.Errorf("%w: %s to see every arrival: %w", ErrNoQuorum, short, nodeErrors(errs))
			}
			return false, nil
		}
	}
	return true, nil
}

// Close ends the party: it gives back its member slot and its arrival at the
// current generation, if the last Wait was cancelled. The arrival at the
// last generation passed is not released but left to lapse on the nodes
// after their validity, so that parties still looking for it see it. Wait
// after Close returns ErrBarrierClosed; Close again does nothing.
func (b *Barrier) Close(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	if b.prev.m != nil {
		b.prev.m.abandonRead()
		b.prev = arrivalLock{}
	}
	if b.arrival.m != nil {
		errs = append(errs, b.arrival.m.RUnlock(ctx))
		b.arrival = arrivalLock{}
	}
	if b.member != nil {
		errs = append(errs, b.member.Release(ctx))
		b.member = nil
	}
	return errors.Join(errs...)
}

// abandonRead stops refreshing m's most recent read lock without releasing
// it: the nodes expire it after their validity. Its context is cancelled.
func (m *DRWMutex) abandonRead() {
	m.mu.Lock()
	n := len(m.reads)
	if n == 0 {
		m.mu.Unlock()
		return
	}
	h := m.reads[n-1]
	m.reads = m.reads[:n-1]
	m.mu.Unlock()
	m.ds.refresher.Remove(h.uid)
	h.cancel(context.Canceled)
}
