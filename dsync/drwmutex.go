package dsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dsync-go/dsync/locker"
)

// Options tune one acquisition.
type Options struct {
	// Timeout is how long to keep trying for a quorum. If zero, keep trying
	// until ctx is done (or for Adaptive's timeout, if set). A positive
	// Timeout wins over Adaptive, which is then neither read nor told.
	Timeout time.Duration
	// Adaptive, if set and Timeout is not positive, gives the timeout: the
	// acquisition keeps trying for Adaptive.Timeout() as read when it
	// starts, and reports its outcome to Adaptive.Observe: a success with
	// the time it took on the Dsync's clock (Config.Clock), or a timeout if
	// that timeout passed while the lock was held by others (the error
	// wraps ErrTimeout and ErrLocked). Failures that say nothing about how
	// long the lock takes to get are not reported: invalid names, the
	// caller's ctx ending, ErrNoQuorum (nodes down or not answering, also
	// when the timeout passed after such an attempt), ErrDeadlock, ErrClosed.
	// GetLock, GetRLock, Semaphore.Acquire, Hierarchy.Lock and Held.Lock
	// (one outcome per call, for all its levels) and AcquireLease take it;
	// TryLock and TryAcquire have no timeout and report nothing. If nil,
	// the acquisition costs nothing more than without it.
	Adaptive *AdaptiveTimeout
	// Source is recorded on the nodes to find who holds a lock. If empty,
	// the caller's directory/file:line, like "gateway/put.go:42".
	Source string

	// ticket, if not zero, is the acquisition's place in the nodes'
	// queues, drawn by a lock across sets for all its parts (see
	// takeWithoutHoldAndWait); if zero, the acquisition draws its own.
	ticket uint64
}

// DRWMutex is a distributed read-write lock on one or more resources, held by
// a quorum of the nodes of a Dsync. A write lock is held when floor(n/2)+1
// nodes grant it, a read lock when ceil(n/2) do; locks on several resources
// are all-or-nothing.
//
// A DRWMutex may hold one write lock, or any number of read locks, at a time.
// Its methods are safe for concurrent use, but as with sync.RWMutex, pairing
// each lock with its unlock is the caller's job. A DRWMutex is not reentrant:
// GetLock while this DRWMutex holds the write lock waits, like any other
// client, until the lock is released or lost.
type DRWMutex struct {
	ds    *Dsync
	names []string // sorted, distinct
	err   error    // why names cannot be locked, reported by every acquisition

	// publicUID makes the UIDs of the acquisitions public on the nodes
	// (locker.LockArgs.PublicUID): Cond sets it on a waiter's registration,
	// which another process must find, and release, to signal the waiter.
	publicUID bool
	// releaseAll makes a release return once every node has answered (or
	// failed, each within CallTimeout), not a quorum: Cond's registrations,
	// which a Signal must not find on a node after their Wait returned.
	releaseAll bool

	// parts, on a DRWMutex of a Dsync made by NewSets whose names fall
	// into several sets, are the DRWMutexes of each set, in ascending
	// order of sets; ds is then the Dsync of the sets (sets.go).
	parts []*DRWMutex

	mu    sync.Mutex // guards write and reads
	write *hold
	reads []*hold // the holds of every mode but X, in the order acquired
}

// hold is one acquisition: a write lock (X) or one lock of another mode.
type hold struct {
	uid    string
	write  bool // mode == X
	mode   Mode
	fence  uint64
	ctx    context.Context
	cancel context.CancelCauseFunc
	parts  []*hold // of a DRWMutex with parts: the hold of each part, which owns it; uid is empty
}

// NewDRWMutex returns a lock on names through ds. Names are sorted and
// duplicates dropped. Empty names, or none at all, are an error that every
// acquisition returns (wrapping locker.ErrInvalidArgs). On a Dsync made by
// NewSets, each name is locked on its set; a lock on names of several sets
// takes them set by set, all or nothing (see NewSets).
func NewDRWMutex(ds *Dsync, names ...string) *DRWMutex {
	sorted := slices.Compact(slices.Sorted(slices.Values(names)))
	if ds.sets != nil && len(sorted) > 0 && sorted[0] != "" {
		return newSetsMutex(ds, sorted)
	}
	m := &DRWMutex{ds: ds, names: sorted}
	switch {
	case len(sorted) == 0:
		m.err = fmt.Errorf("%w: dsync: no resource names", locker.ErrInvalidArgs)
	case sorted[0] == "":
		m.err = fmt.Errorf("%w: dsync: empty resource name", locker.ErrInvalidArgs)
	}
	return m
}

// Names returns the resources the lock covers, sorted.
func (m *DRWMutex) Names() []string { return slices.Clone(m.names) }

// GetLock acquires the write lock, retrying with back-off until a write
// quorum grants it, opts.Timeout (or opts.Adaptive's timeout) passes
// (ErrTimeout) or ctx is done (ctx's error). It returns a context derived
// from ctx that is cancelled when the lock is lost (context.Cause is then
// ErrLockLost) or released: do the protected work under it. Being derived
// from ctx, it also ends when ctx does, though the lock stays held until
// Unlock; so bound the wait with opts.Timeout (or opts.Adaptive), not with
// a deadline on ctx, unless the work must stop then too.
func (m *DRWMutex) GetLock(ctx context.Context, opts Options) (context.Context, error) {
	return m.acquire(ctx, opts, X)
}

// GetRLock acquires a read lock; see GetLock.
func (m *DRWMutex) GetRLock(ctx context.Context, opts Options) (context.Context, error) {
	return m.acquire(ctx, opts, S)
}

// TryLock makes one attempt at the write lock. It reports false with a nil
// error when nodes refused because another client holds the lock, and false
// with an error wrapping ErrNoQuorum when too many nodes failed to answer.
// A refused TryLock does not hold new readers back (no writer intent, see
// locker.Config.WriterIntent): it will not come back for the lock.
func (m *DRWMutex) TryLock(ctx context.Context) (bool, context.Context, error) {
	return m.try(ctx, X)
}

// TryRLock makes one attempt at a read lock; see TryLock.
func (m *DRWMutex) TryRLock(ctx context.Context) (bool, context.Context, error) {
	return m.try(ctx, S)
}

// lost is called by the refresher when h is lost: it cancels the holder's
// context and force-releases what is left of the lock on the nodes.
func (m *DRWMutex) lost(h *hold, err error) {
	ds := m.ds
	ds.observeLost(lossCauseOf(err))
	// The release is started before the holder hears of the loss, so that
	// a Close the holder calls next finds it started and waits for it.
	if !ds.closed.Load() { // if closed: the grants expire on the nodes
		ds.goBackground(func(ctx context.Context) {
			ds.releaseOn(ctx, locker.OpForceUnlock, releaseArgs(h.uid), ds.allNodes)
		})
	}
	h.cancel(err)
}

// Unlock releases the write lock. It asks every node at once and returns as
// soon as a quorum has confirmed the release, or can no longer, waiting at
// most Config.CallTimeout (less if ctx ends first): a slow node does not
// hold up the caller. The other nodes' answers are awaited without the
// caller, and nodes that failed, or did not answer in time, are released by
// background retries (Close waits for those answers, and cancels the
// retries).
//
// Unlock tells the truth about the lock it releases. It returns nil if a
// quorum of nodes still held it (a node in its restart grace period that no
// longer held it counts as holding it: it has granted it to nobody else). It
// returns an error wrapping ErrLockLost if more than n−quorum nodes no
// longer held it, or if the lock was found lost before: the critical section
// may have overlapped another holder's. Otherwise (nodes did not answer in
// time) it returns ErrUnlockPending. Every node is asked to release it
// whatever the outcome. It is a run-time error (a panic) to Unlock a
// DRWMutex that does not hold the write lock.
//
// A node that has not yet released refuses other clients' locks on the
// resources for a moment longer; a quorum of the others has released, so
// the next acquisition does not depend on it.
func (m *DRWMutex) Unlock(ctx context.Context) error {
	m.mu.Lock()
	h := m.write
	if h == nil {
		m.mu.Unlock()
		panic("dsync: Unlock of unlocked DRWMutex")
	}
	m.write = nil
	m.mu.Unlock()
	return m.release(ctx, h)
}

// RUnlock releases the most recently acquired read lock (S); see Unlock.
// It is a run-time error (a panic) to RUnlock a DRWMutex that holds no read
// lock.
func (m *DRWMutex) RUnlock(ctx context.Context) error {
	return m.releaseRead(ctx, S, "RUnlock")
}

// releaseRead releases the most recently acquired hold of mode, which is
// not X; it panics, naming the method, if m holds none.
func (m *DRWMutex) releaseRead(ctx context.Context, mode Mode, method string) error {
	m.mu.Lock()
	i := len(m.reads) - 1
	for i >= 0 && m.reads[i].mode != mode {
		i--
	}
	if i < 0 {
		m.mu.Unlock()
		if mode == S {
			panic("dsync: " + method + " of unlocked DRWMutex")
		}
		panic(fmt.Sprintf("dsync: %s of %v on a DRWMutex that does not hold it", method, mode))
	}
	h := m.reads[i]
	m.reads = slices.Delete(m.reads, i, i+1)
	m.mu.Unlock()
	return m.release(ctx, h)
}

func (m *DRWMutex) release(ctx context.Context, h *hold) error {
	if h.parts != nil {
		return m.releaseParts(ctx, h)
	}
	ds := m.ds
	var lost error
	if !ds.refresher.Remove(h.uid) {
		// Reported lost: the refresher's OnLost is force-releasing it.
		if cause := context.Cause(h.ctx); errors.Is(cause, ErrLockLost) {
			lost = fmt.Errorf("dsync: unlock %v: %w", m.names, cause)
			if !m.releaseAll {
				return lost
			}
			// Released on every node all the same, and waited for: the
			// force-release of OnLost runs in the background, and leaves
			// no tombstone, so a grant still on its way to a node (a late
			// answer to the acquisition) could outlive it there, for a
			// Signal to spend itself on. The release below removes it, or
			// leaves a tombstone that refuses it.
		}
	}
	h.cancel(context.Canceled)
	op := releaseOp(h.write)
	n, q := len(ds.lockers), ds.modeQuorum(h.mode)
	decide := q // the answers the collector waits for: a quorum's, or enough to tell it cannot be
	if m.releaseAll {
		// Every node's answer, whatever it says. (A collector of quorum n
		// would decide at the first node that no longer held the lock, as
		// every node of a signalled registration answers, and return while
		// the releases of the others were still on their way: a Signal
		// then found the registration still on a node, spent itself on it,
		// and TestCondNoLostWakeup hung.)
		q, decide = n, 0
	}
	c := newCollector(n, decide)
	c.confirm = true
	ds.start(ctx, op, releaseArgs(h.uid), ds.cfg.CallTimeout, ds.allNodes, c)
	var buf [stackNodes]nodeResult
	results, _ := c.wait(ctx, buf[:0])
	held, notHeld := 0, 0
	for _, r := range results {
		switch {
		case r.err != nil:
		case heldAtRelease(r.reply):
			held++
		default:
			notHeld++
		}
	}
	ds.leaveRelease(c, op)
	switch {
	case lost != nil:
		return lost
	case held >= q:
		return nil
	case notHeld > n-q:
		ds.observeLost(LossAtRelease)
		return fmt.Errorf("dsync: unlock %v: %w: %d of %d nodes no longer held it at release (at most %d may not, for a quorum of %d): another holder may have had it meanwhile",
			m.names, ErrLockLost, notHeld, n, n-q, q)
	}
	return fmt.Errorf("%w: %v: %d of %d nodes confirmed", ErrUnlockPending, m.names, held, n)
}

// heldAtRelease reports whether a node's answer to a release says it held
// the lock until then, as far as safety goes: it released it, or it did not
// hold it but is in its restart grace period, and has granted it to nobody
// since it started.
func heldAtRelease(r locker.Reply) bool { return r.OK || r.Grace > 0 }

// markNode sets nodes[i], making nodes (of length n) if it is nil.
func markNode(nodes []bool, n, i int) []bool {
	if nodes == nil {
		nodes = make([]bool, n)
	}
	nodes[i] = true
	return nodes
}

// Fence returns the fence of the held write lock: the largest of the
// granting nodes' sequence numbers. It grows with every grant on a node, but
// it is not a fencing token safe across nodes: use FencingToken for that. It
// returns 0 if the write lock is not held.
func (m *DRWMutex) Fence() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.write == nil {
		return 0
	}
	return m.write.fence
}
