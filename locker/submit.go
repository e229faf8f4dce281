package locker

import (
	"context"
	"fmt"
	"time"
)

// Op names a lock-table call that Submit can make.
type Op uint8

// Ops of Submit. The zero value is not an operation.
const (
	OpLock        Op = iota + 1 // NetLocker.Lock
	OpRLock                     // NetLocker.RLock
	OpUnlock                    // NetLocker.Unlock
	OpRUnlock                   // NetLocker.RUnlock
	OpForceUnlock               // NetLocker.ForceUnlock
)

// String names the operation.
func (o Op) String() string {
	switch o {
	case OpLock:
		return "lock"
	case OpRLock:
		return "rlock"
	case OpUnlock:
		return "unlock"
	case OpRUnlock:
		return "runlock"
	case OpForceUnlock:
		return "force-unlock"
	}
	return "op?"
}

// Call makes op through the synchronous methods of l.
func (o Op) Call(ctx context.Context, l NetLocker, args LockArgs) (Reply, error) {
	switch o {
	case OpLock:
		return l.Lock(ctx, args)
	case OpRLock:
		return l.RLock(ctx, args)
	case OpUnlock:
		return l.Unlock(ctx, args)
	case OpRUnlock:
		return l.RUnlock(ctx, args)
	case OpForceUnlock:
		return l.ForceUnlock(ctx, args)
	}
	return Reply{}, fmt.Errorf("%w: unknown op %d", ErrInvalidArgs, uint8(o))
}

// Sink receives the answers of submitted calls.
type Sink interface {
	// Done is called exactly once for every call submitted with this sink,
	// with the tag given to Submit and the call's outcome, which has the
	// same three kinds as the outcome of the NetLocker method. It may be
	// called on any goroutine, including the submitter's before Submit
	// returns, and it must not block: it runs on the goroutine that serves
	// the node's answers.
	Done(tag int, r Reply, err error)
}

// QueueSink is a Sink that also hears when a submitted lock with
// LockArgs.Wait is queued on the node (see Reply.Ahead), before its answer:
// package dsync uses it so that two acquisitions that split the nodes
// between them do not wait for each other. Queued is called at most once
// per call, before Done, and must not block nor call the locker.
type QueueSink interface {
	Sink
	Queued(tag int, ahead uint64)
}

// WoundSink is a Sink that also hears when the grant of a submitted lock
// with LockArgs.Wait and a Ticket is wounded: a request with an older
// ticket was queued behind it on the node (see WaitHooks.Wounded). Wounded
// is called at most once per call, maybe after Done (the grant came
// first), and never after the UID was released through the same locker; it
// must not block nor call the locker.
type WoundSink interface {
	Sink
	Wounded(tag int, ahead uint64)
}

// Submitter is implemented by lockers that can start a call without a
// goroutine of the caller's waiting for it. It is an optional capability,
// found by type assertion: package dsync uses it, when a locker has it, to
// ask n nodes at once from one goroutine. The in-memory table answers at once;
// the HTTP client of package rest queues the call for its node's next request
// and answers from the goroutine that reads the response.
//
// The outcome is the same as that of the matching NetLocker method, with
// one difference in how the call ends:
//   - ctx is looked at only when Submit is called: a call whose ctx has
//     already ended is not sent, and its answer is an error wrapping both
//     ctx's error and ErrNotSent (an implementation may also drop a call
//     whose ctx ends while it waits to be sent, with the same answer);
//   - once sent, the call is bounded by timeout, not by ctx. Its answer
//     comes at the latest shortly after timeout has passed.
//
// A caller that stops waiting for an answer must still deal with it when it
// comes: a granted lock must be released.
//
// A wrapper that embeds a Submitter and overrides its NetLocker methods (to
// count calls, or to inject faults) must override Submit too, or embed the
// locker as a NetLocker to hide it: otherwise the promoted Submit bypasses
// the wrapper.
type Submitter interface {
	// Submit starts op with *args and returns. The answer goes to
	// sink.Done(tag, ...), exactly once. The submitter may read *args
	// (and the Resources it names) until it calls sink.Done, and not
	// after: the caller must leave them unchanged until then. This lets
	// the caller ask n nodes with one copy of the arguments, where a copy
	// per call would be n copies to move between cores.
	Submit(ctx context.Context, op Op, args *LockArgs, timeout time.Duration, sink Sink, tag int)
}
