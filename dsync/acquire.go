package dsync

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// The path of one acquisition, file by file.
//
// The public entries, GetLock, GetRLock, TryLock and TryRLock (drwmutex.go)
// and GetMode (mode.go), each call acquire or try in this file once and
// return what it returns; so do Mutex, Hierarchy, Lease and the others,
// through them. try makes one attempt. acquire makes an acquisition and
// runs it:
//
//	run: attempt → decide → (back off) → attempt → ... → granted, or give up
//
//   - attempt asks the nodes once (attemptOnce, attempt.go), or, once the
//     lock was found held, asks them to queue it and waits until they hand
//     the lock over (attemptWaiting, waiting.go). Either builds the request
//     (lockArgs, attempt.go), sends it to every node and counts their
//     answers (tryAcquire, quorum.go, with the collector of collect.go; or
//     tryAcquireWaiting, waiting.go), and if a quorum granted, registers the
//     hold with the refresher (register, attempt.go).
//   - decide names what comes next (a step): done, ask again at once, wait
//     on the nodes, back off, give up, or fail.
//   - backOff sleeps before the next attempt: a pause drawn by backoff.go,
//     or longer if the nodes are in their restart grace (RestartingError).
//
// The optional behaviours are called at fixed points, each from the file
// named after it:
//
//   - when the acquisition starts: deadlock detection registers its wait
//     (waitFor, deadlock.go), and the first attempt waits on the nodes at
//     once if the lock was found held lately (waitsAtFirst, waiting.go);
//   - after a refused attempt: the deadlock check (checkDeadlock,
//     deadlock.go and deadlock_nodes.go), then, the first time the lock is
//     found held, the contention note (noteContended, waiting.go);
//   - on giving up: the writer's intent is withdrawn (withdrawIntent,
//     intent.go) and the outcome reported to Options.Adaptive (adaptive.go);
//   - on success: the outcome reported to Options.Adaptive (adaptive.go);
//   - on the way out, whatever the outcome: the wait leaves the deadlock
//     graph (deadlock.go), and the Observer hears of the acquisition
//     (observe, observer.go).
//
// A lock of a Dsync made by NewSets whose names fall into several sets is
// acquired set by set instead (acquireParts, sets.go), each set's part
// along this path.

// acquire retries attempts until one succeeds, ctx ends or the timeout
// passes (opts.Timeout, or opts.Adaptive's, to which it reports the
// outcome); see the top of this file for the path it follows.
func (m *DRWMutex) acquire(ctx context.Context, opts Options, mode Mode) (_ context.Context, err error) {
	if !mode.valid() {
		return nil, fmt.Errorf("%w: dsync: lock %v: unknown mode %d", locker.ErrInvalidArgs, m.names, uint8(mode))
	}
	source := opts.Source
	if source == "" {
		source = caller(3)
	}
	if m.parts != nil {
		opts.Source = source
		_, lockCtx, err := m.acquireParts(ctx, opts, mode, false)
		return lockCtx, err
	}
	a := m.newAcquisition(ctx, opts, mode, source)
	defer func() { a.observe(err) }() // observer.go
	return a.run()
}

// try makes one attempt at a lock of mode, for TryLock and TryRLock: it
// reports false with a nil error if nodes refused because others hold the
// lock. It declares no writer intent (intent.go) and has no timeout, but
// the Observer hears of it.
func (m *DRWMutex) try(ctx context.Context, mode Mode) (bool, context.Context, error) {
	return m.tryTicket(ctx, mode, 0, caller(3))
}

// tryTicket is try with the place ticket in the nodes' queues (none if 0),
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

// acquisition is one call of acquire: a lock of one mode on m's resources,
// attempted until granted or given up. Its methods are called by the
// acquiring goroutine only.
//
// The timeout is kept as a deadline on the Dsync's clock rather than as a
// context: an attempt's calls are bounded by what is left of it, and so is
// the wait before the next attempt, so that an acquisition that succeeds at
// once costs no timer.
type acquisition struct {
	m      *DRWMutex
	ds     *Dsync
	clk    clock.Clock     // ds's
	ctx    context.Context // the caller's
	mode   Mode
	source string // Options.Source, or the caller's file:line

	start    time.Time // when the acquisition started, on clk
	deadline time.Time // when its timeout passes; zero if it has none
	ticket   uint64    // every attempt's: the acquisition's place in the nodes' queues (waiting.go)

	now      time.Time // when the current attempt started; once decided, when it ended
	wait     bool      // the next attempt waits on the nodes (waiting.go)
	last     error     // the error of the last attempt that says why it failed (see decide)
	backoffs int       // back-offs so far

	// The optional behaviours, each in the file named after it.
	waiting  *graphWait       // deadlock detection (deadlock.go): nil unless ctx names a holder
	intent   intentWithdrawal // the last refused write attempt's, withdrawn if this gives up (intent.go)
	adaptive adaptiveRun      // reports the outcome to Options.Adaptive, if set (adaptive.go)
}

// newAcquisition starts an acquisition of a lock of mode on m under the
// caller's ctx and opts, from source, and registers its wait for deadlock
// detection if ctx names a holder: run must follow.
func (m *DRWMutex) newAcquisition(ctx context.Context, opts Options, mode Mode, source string) acquisition {
	ds := m.ds
	clk := ds.clk()
	now := clk.Now()
	a := acquisition{m: m, ds: ds, clk: clk, ctx: ctx, mode: mode, source: source, start: now, now: now}
	timeout, adaptive := opts.bound()
	if timeout > 0 {
		a.deadline = now.Add(timeout)
	}
	a.adaptive = adaptiveRun{a: adaptive, clk: clk, start: now}
	a.waiting = ds.waitFor(ctx, m.names, mode)
	if a.ticket = opts.ticket; a.ticket == 0 {
		a.ticket = ds.ticket(now) // its own, unless a lock across sets gives its parts one (transition.go)
	}
	a.wait = a.waitsAtFirst()
	return a
}

// run is the acquisition: one attempt after the other, each followed by
// the step decide names, until one is granted or the acquisition gives up.
//
// The first attempt asks each node once, unless the lock was found held
// lately. If others hold the lock, the next ones wait on the nodes
// (waiting.go), one after the other with no pause, until the lock is handed
// over; an attempt that yields to an older acquisition is followed at once
// by the next. Only attempts that nodes failed, or could not queue, are
// followed by a back-off.
func (a *acquisition) run() (context.Context, error) {
	defer a.waiting.done() // deadlock.go
	for {
		lockCtx, queued, err := a.attempt()
		next, err := a.decide(err, queued)
		switch next {
		case stepDone:
			a.adaptive.done(a.ctx, nil) // adaptive.go
			return lockCtx, nil
		case stepAskAgain: // at once, with the same ticket
		case stepWaitOnNodes:
			a.noteContended() // waiting.go
			a.wait = true
		case stepBackOff:
			if !a.backOff(err) {
				return nil, a.giveUp(a.gaveUp())
			}
		case stepGiveUp:
			return nil, a.giveUp(err)
		case stepFail:
			return nil, err
		}
		a.now = a.clk.Now() // the next attempt's
	}
}

// errNoTimeLeft is attempt's error when nothing is left of the timeout for
// another attempt's calls; decide turns it into giving up. It never leaves
// the acquisition.
var errNoTimeLeft = errors.New("dsync: no time left for an attempt")

// attempt makes one attempt at a.now: it waits on the nodes if a.wait is
// set (attemptWaiting, waiting.go), and otherwise asks them once
// (attemptOnce, attempt.go). Each call is bounded by what is left of the
// timeout, at most Config.CallTimeout; if nothing is, it makes none and
// returns errNoTimeLeft. queued reports whether a node queued a waiting
// attempt.
func (a *acquisition) attempt() (lockCtx context.Context, queued bool, err error) {
	callTimeout := a.left(a.ds.cfg.CallTimeout)
	if callTimeout <= 0 {
		return nil, false, errNoTimeLeft
	}
	if a.wait {
		return a.m.attemptWaiting(a.ctx, a.mode, a.source, a.now, a.ticket, a.ds.maxWait(a.left(a.ds.cfg.MaxWait)), callTimeout, &a.intent)
	}
	lockCtx, err = a.m.attemptOnce(a.ctx, a.mode, a.source, a.now, callTimeout, &a.intent, a.ticket)
	return lockCtx, false, err
}

// step is what an acquisition does after an attempt, as decide names it.
type step uint8

const (
	stepDone        step = iota // the attempt was granted
	stepAskAgain                // ask again at once: the attempt yielded to an older acquisition (waiting.go)
	stepWaitOnNodes             // ask again at once, and wait on the nodes (waiting.go)
	stepBackOff                 // sleep (backOff), then ask again
	stepGiveUp                  // stop: the timeout passed, ctx ended, or a deadlock; the pieces of giveUp run
	stepFail                    // stop: the request cannot succeed (invalid, or the Dsync closed)
)

// decide names the step that follows an attempt that ended with err (nil
// if granted), and records what the acquisition learnt from it. The error
// it returns goes with the step: for stepGiveUp and stepFail, the one to
// return to the caller; for stepBackOff, the attempt's, whose grace the
// back-off respects. A refused attempt is checked for deadlock here
// (checkDeadlock, deadlock.go).
func (a *acquisition) decide(err error, queued bool) (step, error) {
	switch {
	case err == nil:
		return stepDone, nil
	case err == errNoTimeLeft, a.ctx.Err() != nil:
		return stepGiveUp, a.gaveUp()
	case errors.Is(err, errYielded):
		return stepAskAgain, nil // with the same ticket: the older one goes first
	}
	a.now = a.clk.Now()
	cutShort := a.left(a.ds.cfg.CallTimeout) <= 0
	locked := errors.Is(err, ErrLocked)
	if !locked && !errors.Is(err, ErrNoQuorum) {
		if cutShort {
			return stepGiveUp, a.gaveUp()
		}
		return stepFail, err // invalid request, or closed
	}
	if a.last == nil || !cutShort {
		a.last = err // an attempt cut short by the timeout says less than the one before
	}
	if err := a.checkDeadlock(locked); err != nil {
		return stepGiveUp, err
	}
	if locked && a.ds.cfg.MaxWait > 0 && (!a.wait || queued) {
		// Wait on the nodes, at once: the first time the lock is found
		// held, and again after a wait the nodes kept.
		return stepWaitOnNodes, nil
	}
	// Nodes failed, or cannot queue: back off.
	return stepBackOff, err
}

// backOff sleeps before the next attempt, after one that ended with err.
// It reports false if the acquisition must give up instead: ctx ended, or
// the timeout passes before the pause ends (it then sleeps until the
// timeout, so as not to return early).
func (a *acquisition) backOff(err error) bool {
	pause := a.ds.backoff(a.backoffs)
	a.backoffs++
	if restarting := (*RestartingError)(nil); errors.As(err, &restarting) && restarting.graceOnly {
		// Every node that did not grant is in its grace period, which
		// ends when it said: asking before then is no use. (With nodes
		// that failed, one may come back sooner: back off as usual.)
		pause = max(pause, restarting.RetryAfter+a.ds.backoff(0)/4)
	}
	if w := a.left(pause); w < pause {
		// The timeout passes first: wait for it, then give up.
		if w > 0 {
			clock.Sleep(a.ctx, a.clk, w)
		}
		return false
	}
	return clock.Sleep(a.ctx, a.clk, pause)
}

// giveUp ends an acquisition that gives up with err, and returns err: the
// writer withdraws its intent (intent.go), and the outcome is reported to
// Options.Adaptive (adaptive.go).
func (a *acquisition) giveUp(err error) error {
	a.withdrawIntent()
	a.adaptive.done(a.ctx, err)
	return err
}

// left returns what is left of the timeout at a.now, capped at limit.
func (a *acquisition) left(limit time.Duration) time.Duration {
	if a.deadline.IsZero() {
		return limit
	}
	return min(limit, a.deadline.Sub(a.now))
}

// gaveUp reports why the acquisition stopped, the caller's ctx or
// Options.Timeout, wrapping the last attempt's error if there was one.
func (a *acquisition) gaveUp() error {
	var why error = ErrTimeout
	if a.ctx.Err() != nil {
		why = context.Cause(a.ctx)
	}
	if a.last == nil {
		return fmt.Errorf("dsync: lock %v: %w", a.m.names, why)
	}
	return fmt.Errorf("dsync: lock %v: %w (last attempt: %w)", a.m.names, why, a.last)
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
