package locker

import (
	"context"
	"fmt"
)

// Fencer is implemented by lockers whose fence counter can be read and
// raised. It is an optional capability, found by type assertion; package
// dsync's DRWMutex.FencingToken needs it to make a fencing token that is
// safe across nodes.
//
// A node's fence counter is the source of Reply.Fence: every grant takes
// the next value, so it is strictly greater than every value the counter had
// before, including every floor it was raised to. A fresh table starts the
// counter at the wall-clock time in nanoseconds, so that a node that
// restarts normally resumes above the values of its previous run.
//
// No fence is ever above MaxFence, so that the counter never wraps around: a
// floor above it is refused with ErrInvalidArgs, and a node whose counter
// has reached it refuses every lock with ErrFenceExhausted. (A read may
// find the counter a little above MaxFence while such locks are being
// refused; it settles at MaxFence.)
//
// RaiseFence is safe for concurrent use, and changes no lock.
type Fencer interface {
	// RaiseFence raises the counter to at least args.Floor and returns its
	// value afterwards. A zero Floor only reads it.
	RaiseFence(ctx context.Context, args FenceArgs) (FenceReply, error)
}

// MaxFence is the largest fence a node issues, and the largest floor it
// accepts: far below the wrap-around of the 64-bit counter, and far above
// where a counter starts (the wall-clock time in nanoseconds, about 1.7e18
// in 2024, reaches it in 2116).
const MaxFence = 1 << 62

var _ Fencer = (*Local)(nil)

// RaiseFence raises the table's fence counter to at least args.Floor and
// returns its value. See Fencer.
func (l *Local) RaiseFence(ctx context.Context, args FenceArgs) (FenceReply, error) {
	if l.closed.Load() {
		return FenceReply{}, ErrClosed
	}
	if args.Floor > MaxFence {
		return FenceReply{}, fmt.Errorf("%w: fence: floor %d above the limit of %d (MaxFence)", ErrInvalidArgs, args.Floor, uint64(MaxFence))
	}
	for {
		cur := l.fence.Load()
		if cur >= args.Floor {
			return FenceReply{Fence: cur}, nil
		}
		if l.fence.CompareAndSwap(cur, args.Floor) {
			return FenceReply{Fence: args.Floor}, nil
		}
	}
}
