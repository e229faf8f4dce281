package locker

import (
	"context"
	"sync/atomic"
)

// A Burst is the context of a burst of calls to one table: calls made one
// right after another, such as the operations of one batch request, which
// the rest server runs so. A lock call made with a Burst as its context
// takes its time from a reading of the table's clock that the Burst renews
// every BurstCalls calls, and looks at the context's Err only when it
// renews it, instead of reading the clock for the grant and again (through
// a deadline's Err) for the context: at 16 tables on two cores the two
// readings were 3% of all the CPU a lock cost.
//
// The time a call sees is thus at most BurstCalls-1 calls old. That is
// safe for the grants as long as the burst starts after its calls were
// asked for (the server starts it once the request has arrived): a grant
// stamped a little early expires on the node a little early, but still no
// earlier than its client expects, since the client counts its validity
// from before it sent the request; and a holder in the way looks a little
// less expired than it is, which only delays taking its place. A lock call may likewise be granted up to
// BurstCalls-1 calls after its context ended; its caller releases such a
// grant, or it expires, as with an answer lost on the way back.
//
// A Burst must not outlive the pause-free run of calls it was started for:
// a caller that waits between calls (for the network, for a user) starts a
// new one. A call that waits within the run, as a table wrapper that delays
// or blocks does, asks for the context's Done channel to wait on: the first
// lock call after that reads the clock and checks the context again. Its
// methods are safe for concurrent use, so a table wrapper may fan a burst's
// calls out. The zero Burst is not usable; Local.StartBurst readies one,
// and may do so again once its calls have returned.
type Burst struct {
	context.Context

	l      *Local
	at     atomic.Int64  // the table's time (see Local.now) at the last reading
	calls  atomic.Uint32 // lock calls since the burst started
	waited atomic.Bool   // Done was asked for since the last reading
}

// Done returns the context's Done channel, and makes the next lock call
// read the clock and check the context: a call that asks for Done may wait
// on it.
func (b *Burst) Done() <-chan struct{} {
	b.waited.Store(true)
	return b.Context.Done()
}

// BurstCalls is how many lock calls of a Burst share one reading of the
// table's clock.
const BurstCalls = 32

// StartBurst readies b for a burst of calls to l under ctx, reading l's
// clock once, and returns b, to be passed as the calls' context. Calls to
// other tables with b as their context read their own clocks as usual.
func (l *Local) StartBurst(ctx context.Context, b *Burst) *Burst {
	b.Context, b.l = ctx, l
	b.at.Store(l.now())
	b.calls.Store(0)
	b.waited.Store(false)
	return b
}

// timeIn returns the time for a lock call made with ctx, and whether the
// call should look at ctx.Err: always, unless ctx is a Burst of l that
// reused its last reading.
func (l *Local) timeIn(ctx context.Context) (now int64, checkCtx bool) {
	b, ok := ctx.(*Burst)
	if !ok || b.l != l {
		return l.now(), true
	}
	// The first call of a burst uses the reading StartBurst took, and
	// checks ctx: the request may have waited long before it ran.
	n := b.calls.Add(1)
	if n == 1 {
		return b.at.Load(), true
	}
	if n%BurstCalls != 1 && !(b.waited.Load() && b.waited.Swap(false)) {
		return b.at.Load(), false
	}
	now = l.now()
	b.at.Store(now)
	return now, true
}

// End drops b's references to its context and table, so that a Burst kept
// for reuse does not keep them alive. Calls with b as their context must
// have returned.
func (b *Burst) End() { b.Context, b.l = nil, nil }
