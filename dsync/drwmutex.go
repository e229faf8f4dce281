package dsync

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/refresher"
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

func (m *DRWMutex) try(ctx context.Context, mode Mode) (bool, context.Context, error) {
	return m.tryTicket(ctx, mode, 0, caller(3))
}

// tryTicket is try with the nodes' queues' order of ticket (none if 0),
// recording source on the nodes.
func (m *DRWMutex) tryTicket(ctx context.Context, mode Mode, ticket uint64, source string) (bool, context.Context, error) {
	if m.parts != nil {
		return m.acquireParts(ctx, Options{Source: source}, mode, true)
	}
	write := mode == X
	now := m.ds.clk().Now()
	lockCtx, err := m.attemptOnce(ctx, mode, source, now, m.ds.cfg.CallTimeout, nil, ticket)
	if m.ds.cfg.Observer != nil {
		o := outcomeOf(ctx, err)
		if errors.Is(err, ErrLocked) && ctx.Err() == nil {
			o = OutcomeRefused
		}
		m.ds.observeAcquired(kindOf(write), o, now)
	}
	switch {
	case err == nil:
		return true, lockCtx, nil
	case ctx.Err() != nil:
		return false, nil, fmt.Errorf("dsync: lock %v: %w", m.names, context.Cause(ctx))
	case errors.Is(err, ErrLocked):
		return false, nil, nil
	}
	return false, nil, err
}

// acquire retries attempts until one succeeds, ctx ends or the timeout
// passes (opts.Timeout, or opts.Adaptive's, to which it reports the
// outcome). The timeout is kept as a deadline on the Dsync's clock rather
// than as a context: an attempt's calls are bounded by what is left of it,
// and so is the wait before the next attempt, so that an acquisition that
// succeeds at once costs no timer.
//
// The first attempt asks each node once. If others hold the lock, the
// next ones wait on the nodes (waiting.go), one after the other with no
// pause, until the lock is handed over; an attempt that yields to an older
// acquisition is followed at once by the next. Only attempts that nodes
// failed, or could not queue, are followed by a back-off.
func (m *DRWMutex) acquire(ctx context.Context, opts Options, mode Mode) (_ context.Context, err error) {
	if !mode.valid() {
		return nil, fmt.Errorf("%w: dsync: lock %v: unknown mode %d", locker.ErrInvalidArgs, m.names, uint8(mode))
	}
	write := mode == X
	source := opts.Source
	if source == "" {
		source = caller(3)
	}
	if m.parts != nil {
		opts.Source = source
		_, lockCtx, err := m.acquireParts(ctx, opts, mode, false)
		return lockCtx, err
	}
	ds := m.ds
	clk := ds.clk()
	now := clk.Now()
	if ds.cfg.Observer != nil {
		start := now
		defer func() { ds.observeAcquired(kindOf(write), outcomeOf(ctx, err), start) }()
	}
	timeout, adaptive := opts.bound()
	var deadline time.Time
	if timeout > 0 {
		deadline = now.Add(timeout)
	}
	run := adaptiveRun{a: adaptive, clk: clk, start: now} // reports the outcome to opts.Adaptive, if set
	// left returns what is left of the timeout at now, capped at limit.
	left := func(now time.Time, limit time.Duration) time.Duration {
		if deadline.IsZero() {
			return limit
		}
		return min(limit, deadline.Sub(now))
	}
	var last error
	waiting := ds.waitFor(ctx, m.names, mode) // deadlock detection: nil unless ctx names a holder
	defer waiting.done()
	var intent intentWithdrawal // the last refused write attempt's, withdrawn if this gives up (intent.go)
	giveUp := func(err error) error {
		if mode.exclusive() {
			ds.withdrawIntent(m.names, mode, &intent)
		}
		run.done(ctx, err)
		return err
	}
	ticket := opts.ticket // every attempt's: the acquisition's place in the nodes' queues
	if ticket == 0 {
		ticket = ds.ticket(now)
	}
	// The next attempt waits on the nodes: the first does if the lock was
	// found held lately, unless a deadlock check must come first.
	wait := ds.cfg.MaxWait > 0 && waiting == nil && ds.contended.recent(m.names, now)
	backoffs := 0 // back-offs so far
	for first := true; ; first = false {
		if !first {
			now = clk.Now()
		}
		callTimeout := left(now, ds.cfg.CallTimeout)
		if callTimeout <= 0 {
			return nil, giveUp(m.gaveUp(ctx, last))
		}
		var lockCtx context.Context
		var err error
		queued := false
		if wait {
			lockCtx, queued, err = m.attemptWaiting(ctx, mode, source, now, ticket, ds.maxWait(left(now, ds.cfg.MaxWait)), callTimeout, &intent)
		} else {
			lockCtx, err = m.attemptOnce(ctx, mode, source, now, callTimeout, &intent, ticket)
		}
		if err == nil {
			run.done(ctx, nil)
			return lockCtx, nil
		}
		if ctx.Err() != nil {
			return nil, giveUp(m.gaveUp(ctx, last))
		}
		if errors.Is(err, errYielded) {
			continue // at once, with the same ticket: the older one goes first
		}
		now = clk.Now()
		cutShort := left(now, ds.cfg.CallTimeout) <= 0
		if !errors.Is(err, ErrLocked) && !errors.Is(err, ErrNoQuorum) {
			if cutShort {
				return nil, giveUp(m.gaveUp(ctx, last))
			}
			return nil, err // invalid request, or closed
		}
		if last == nil || !cutShort {
			last = err // an attempt cut short by the timeout says less than the one before
		}
		if err := waiting.check(); err != nil {
			return nil, giveUp(fmt.Errorf("dsync: lock %v: %w", m.names, err))
		}
		if errors.Is(err, ErrLocked) {
			// Held by others: look for a deadlock across processes too.
			if err := waiting.checkNodes(ctx, left(now, ds.cfg.CallTimeout)); err != nil {
				return nil, giveUp(fmt.Errorf("dsync: lock %v: %w", m.names, err))
			}
			if ds.cfg.MaxWait > 0 && !wait {
				ds.contended.note(m.names, now)
			}
			if ds.cfg.MaxWait > 0 && (!wait || queued) {
				// Wait on the nodes, at once: the first time the lock is
				// found held, and again after a wait the nodes kept.
				wait = true
				continue
			}
		}
		// Nodes failed, or cannot queue: back off.
		pause := ds.backoff(backoffs)
		backoffs++
		if restarting := (*RestartingError)(nil); errors.As(err, &restarting) && restarting.graceOnly {
			// Every node that did not grant is in its grace period, which
			// ends when it said: asking before then is no use. (With nodes
			// that failed, one may come back sooner: back off as usual.)
			pause = max(pause, restarting.RetryAfter+ds.backoff(0)/4)
		}
		if w := left(now, pause); w < pause {
			// The timeout passes first: wait for it, then give up.
			if w > 0 {
				clock.Sleep(ctx, clk, w)
			}
			return nil, giveUp(m.gaveUp(ctx, last))
		}
		if !clock.Sleep(ctx, clk, pause) {
			return nil, giveUp(m.gaveUp(ctx, last))
		}
	}
}

// gaveUp reports why acquisition stopped, the caller's ctx or
// Options.Timeout, wrapping the last attempt's error if there was one.
func (m *DRWMutex) gaveUp(ctx context.Context, last error) error {
	var why error = ErrTimeout
	if ctx.Err() != nil {
		why = context.Cause(ctx)
	}
	if last == nil {
		return fmt.Errorf("dsync: lock %v: %w", m.names, why)
	}
	return fmt.Errorf("dsync: lock %v: %w (last attempt: %w)", m.names, why, last)
}

// attemptOnce asks the nodes once, at now, each call bounded by timeout, and on
// success records and registers the hold, whose context derives from ctx. A
// failed attempt returns an error wrapping ErrLocked or ErrNoQuorum, the
// nodes' ErrInvalidArgs, or ctx's cause if ctx ended first. A nil intent
// says the caller will not retry (TryLock): nodes then declare no writer
// intent. Otherwise a failed write attempt is noted in intent, for the
// caller to withdraw if it gives up (intent.go).
func (m *DRWMutex) attemptOnce(ctx context.Context, mode Mode, source string, now time.Time, timeout time.Duration, intent *intentWithdrawal, ticket uint64) (context.Context, error) {
	write := mode == X
	once := intent == nil
	args, holder, named, err := m.lockArgs(ctx, mode, source, once)
	if err != nil {
		return nil, err
	}
	args.Ticket = ticket
	ds := m.ds
	a, ok := ds.tryAcquire(ctx, write, args, now, timeout)
	if !ok && mode.exclusive() && !once && a.state != nil {
		intent.note(args.UID, a.state)
	}
	if !ok {
		if a.gaveUp != nil {
			return nil, fmt.Errorf("dsync: lock %v: %w", m.names, a.gaveUp)
		}
		if a.invalid != nil {
			return nil, a.invalid
		}
		return nil, a.err(m.names, args.Quorum, len(ds.lockers))
	}
	return m.register(ctx, mode, args, a, holder, named), nil
}

// lockArgs returns the arguments of a new attempt, with a new UID, and the
// holder that ctx names for deadlock detection (see WithHolder), if it
// names one; once says the caller will not retry (TryLock). It fails if the
// mutex is invalid, the Dsync is closed, or ctx has ended.
func (m *DRWMutex) lockArgs(ctx context.Context, mode Mode, source string, once bool) (args locker.LockArgs, holder string, named bool, err error) {
	if m.err != nil {
		return args, "", false, m.err
	}
	ds := m.ds
	if ds.closed.Load() {
		return args, "", false, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return args, "", false, fmt.Errorf("dsync: lock %v: %w", m.names, context.Cause(ctx))
	}
	args = locker.LockArgs{
		UID: ds.newUID(), Resources: m.names, Owner: ds.cfg.Owner, Source: source, Quorum: ds.modeQuorum(mode), Mode: mode.wire(),
		NoIntent:  once, // a writer that will not retry must not hold readers back (nor be recorded as waiting)
		PublicUID: m.publicUID,
	}
	holder, named = holderFrom(ctx) // deadlock detection: see WithHolder
	if named {
		args.Holder = ds.holderName(holder)
	}
	return args, holder, named, nil
}

// register records the hold that attempt a won with args, registers it
// with the refresher, and returns its context, derived from ctx.
func (m *DRWMutex) register(ctx context.Context, mode Mode, args locker.LockArgs, a attempt, holder string, named bool) context.Context {
	ds := m.ds
	write := mode == X
	h := &hold{uid: args.UID, write: write, mode: mode, fence: a.fence}
	h.ctx, h.cancel = context.WithCancelCause(ctx)
	m.mu.Lock()
	if write {
		m.write = h
	} else {
		m.reads = append(m.reads, h)
	}
	m.mu.Unlock()
	if named {
		ds.trackHold(holder, m.names, mode, h.ctx) // deadlock detection
	}
	v := a.validity(args.Quorum)
	ds.refresher.Add(refresher.Lock{
		UID: args.UID, Quorum: args.Quorum, Acquired: a.sent, Validity: v,
		Write: write, Args: args, Held: ds.refHeld(a.held(v)), // for reclaims on nodes that restart
		OnLost: func(err error) { m.lost(h, err) },
		Nodes:  ds.refNodes, // nil (every node) but on a set of NewSets
	})
	a.doneHeld(ds) // the nodes that grant from now on are marked too
	// Close sets closed before it reports the registered locks lost: a lock
	// registered after that report is caught here, so none is left
	// unrefreshed with a live context.
	if ds.closed.Load() && ds.refresher.Remove(args.UID) {
		m.lost(h, fmt.Errorf("%w (lock %s)", refresher.ErrStopped, args.UID))
	}
	return h.ctx
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
	if !ds.refresher.Remove(h.uid) {
		// Reported lost: the refresher's OnLost is force-releasing it.
		if cause := context.Cause(h.ctx); errors.Is(cause, ErrLockLost) {
			return fmt.Errorf("dsync: unlock %v: %w", m.names, cause)
		}
	}
	h.cancel(context.Canceled)
	op := releaseOp(h.write)
	n, q := len(ds.lockers), ds.modeQuorum(h.mode)
	if m.releaseAll {
		q = n
	}
	c := newCollector(n, q)
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

// sources caches the file:line of each call site by program counter:
// resolving a frame costs far more than finding its counter, and a process
// has few call sites.
var sources sync.Map // uintptr -> string

// shortFile returns the last directory and the name of a source file, like
// "loader/object.go": enough to find the call site, short enough to send
// with every lock call.
func shortFile(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		if j := strings.LastIndexByte(path[:i], '/'); j >= 0 {
			return path[j+1:]
		}
	}
	return path
}

// caller returns the file:line skip frames up, for Options.Source.
func caller(skip int) string {
	var pc [1]uintptr
	if runtime.Callers(skip+1, pc[:]) == 0 {
		return "unknown"
	}
	if s, ok := sources.Load(pc[0]); ok {
		return s.(string)
	}
	frame, _ := runtime.CallersFrames(pc[:]).Next()
	s := shortFile(frame.File) + ":" + strconv.Itoa(frame.Line)
	sources.Store(pc[0], s)
	return s
}
