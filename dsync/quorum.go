package dsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// verb is one of the locker calls the client makes on every node.
type verb uint8

const (
	verbLock verb = iota
	verbRLock
	verbUnlock
	verbRUnlock
	verbForceUnlock
)

func (v verb) call(ctx context.Context, l locker.NetLocker, args locker.LockArgs) (locker.Reply, error) {
	switch v {
	case verbLock:
		return l.Lock(ctx, args)
	case verbRLock:
		return l.RLock(ctx, args)
	case verbUnlock:
		return l.Unlock(ctx, args)
	case verbRUnlock:
		return l.RUnlock(ctx, args)
	default:
		return l.ForceUnlock(ctx, args)
	}
}

func acquireVerb(write bool) verb {
	if write {
		return verbLock
	}
	return verbRLock
}

func releaseVerb(write bool) verb {
	if write {
		return verbUnlock
	}
	return verbRUnlock
}

// nodeResult is one node's answer to one call.
type nodeResult struct {
	node  int
	reply locker.Reply
	err   error
}

// nodeState is what an attempt knows of one node.
type nodeState uint8

const (
	statePending nodeState = iota // no answer yet (only on success)
	stateGranted
	stateRefused
	stateFailed  // an error: the node may or may not have granted
	stateNotSent // an error before the call left: the node granted nothing
)

// state classifies an answer.
func (r nodeResult) state() nodeState {
	switch {
	case errors.Is(r.err, locker.ErrNotSent):
		return stateNotSent
	case r.err != nil:
		return stateFailed
	case r.reply.OK:
		return stateGranted
	}
	return stateRefused
}

// attempt is the outcome of asking every node once for a lock.
type attempt struct {
	granted, refused, failed int
	conflicts                int         // refusals because another client holds the lock or waits to write
	fence                    uint64      // max fence among grants
	sent                     time.Time   // when the requests went out
	reasons                  []string    // why nodes refused, for errors
	errs                     []error     // why nodes failed
	invalid                  error       // a node said the request itself is invalid
	state                    []nodeState // per node
}

// tryAcquire asks every node at once to grant args to args.UID, and decides
// as soon as the outcome is known: a quorum granted, or more than n−quorum
// nodes refused or failed. It never waits longer than CallTimeout.
//
// On success, calls still in flight run to their end (bounded by
// CallTimeout): a node that grants late holds the lock too, and is refreshed
// and released with it, which makes the lock survive more node failures. On
// failure, the grants already answered are released before tryAcquire
// returns, so that the caller's next attempt does not meet its own leftovers;
// nodes that failed or had not answered are released in the background once
// their answer is in (a release that overtakes its lock request leaves a
// tombstone on the node that refuses the request, so nothing is left behind).
func (ds *Dsync) tryAcquire(ctx context.Context, write bool, args locker.LockArgs) (a attempt, ok bool) {
	n, q := len(ds.lockers), args.Quorum
	v := acquireVerb(write)
	callCtx, cancel := clock.WithTimeout(ctx, ds.clk(), ds.cfg.CallTimeout)
	a.sent = ds.clk().Now()
	results := make(chan nodeResult, n) // buffered: late answers never block
	var running atomic.Int32
	running.Store(int32(n))
	for i, l := range ds.lockers {
		ds.workers.run(func() {
			r, err := v.call(callCtx, l, args)
			results <- nodeResult{i, r, err}
			if running.Add(-1) == 0 {
				cancel() // the last call to end releases the timer
			}
		})
	}
	a.state = make([]nodeState, n)
	for got := 0; got < n; got++ {
		res := <-results
		st := res.state()
		a.state[res.node] = st
		switch st {
		case stateFailed, stateNotSent:
			a.failed++
			if errors.Is(res.err, locker.ErrInvalidArgs) {
				a.invalid = res.err
			}
			a.errs = append(a.errs, fmt.Errorf("%s: %w", ds.lockers[res.node], res.err))
		case stateGranted:
			a.granted++
			a.fence = max(a.fence, res.reply.Fence)
		case stateRefused:
			a.refused++
			if r := res.reply.Reason; r == locker.ReasonConflict || r == locker.ReasonWriterWaiting {
				a.conflicts++
			}
			a.reasons = append(a.reasons, fmt.Sprintf("%s: %v", ds.lockers[res.node], res.reply.Reason))
		}
		if a.granted >= q {
			return a, true
		}
		if a.refused+a.failed > n-q {
			// Failed. Wait for the answers still out (bounded by
			// CallTimeout) so that no grant is left behind to get in the
			// way of the next attempt.
			for got++; got < n; got++ {
				res := <-results
				a.state[res.node] = res.state()
			}
			break
		}
	}
	ds.releaseFailed(ctx, write, args, a.state)
	return a, false
}

// callEach calls v on every node marked in nodes, in parallel, each bounded
// by CallTimeout, and returns their results. It does not modify nodes.
func (ds *Dsync) callEach(ctx context.Context, v verb, args locker.LockArgs, nodes []bool) []nodeResult {
	callCtx, cancel := clock.WithTimeout(ctx, ds.clk(), ds.cfg.CallTimeout)
	defer cancel()
	ch := make(chan nodeResult, len(nodes))
	sent := 0
	for i, l := range ds.lockers {
		if !nodes[i] {
			continue
		}
		sent++
		ds.workers.run(func() {
			r, err := v.call(callCtx, l, args)
			ch <- nodeResult{i, r, err}
		})
	}
	out := make([]nodeResult, 0, sent)
	for range sent {
		out = append(out, <-ch)
	}
	return out
}

// err describes a failed attempt: ErrLocked if any node refused because
// another client holds the lock (or waits to write it), else ErrNoQuorum
// (nodes failed, or refused for other reasons such as a restart quiet
// period). It also wraps the nodes' errors, so that errors.Is finds, say,
// locker.ErrUnauthorized.
func (a *attempt) err(names []string, q, n int) error {
	kind := ErrNoQuorum
	if a.conflicts > 0 {
		kind = ErrLocked
	}
	msg := fmt.Sprintf("%v: %d of %d nodes granted, %d needed; %d refused, %d failed", names, a.granted, n, q, a.refused, a.failed)
	if len(a.reasons) > 0 {
		msg += " (refused: " + strings.Join(a.reasons, "; ") + ")"
	}
	if len(a.errs) == 0 {
		return fmt.Errorf("%w: %s", kind, msg)
	}
	return fmt.Errorf("%w: %s: %w", kind, msg, nodeErrors(a.errs))
}

// nodeErrors is the errors of several nodes, on one line.
type nodeErrors []error

func (e nodeErrors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (e nodeErrors) Unwrap() []error { return e }
