package lockertest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// RunFence checks the locker.Fencer contract of lockers made by f: it skips
// if they do not implement it.
func RunFence(t *testing.T, f Factory) {
	t.Helper()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	l := f(t, locker.Config{Validity: Validity, Clock: clk, SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
	fc, ok := l.(locker.Fencer)
	if !ok {
		t.Skip("locker does not implement Fencer")
	}
	ctx := context.Background()
	raise := func(floor uint64) uint64 {
		t.Helper()
		r, err := fc.RaiseFence(ctx, locker.FenceArgs{Floor: floor})
		if err != nil {
			t.Fatalf("RaiseFence(%d): %v", floor, err)
		}
		return r.Fence
	}
	lock := func(uid string) uint64 {
		t.Helper()
		r, err := l.Lock(ctx, locker.LockArgs{UID: uid, Resources: []string{"fenced-" + uid}, Quorum: 1})
		if err != nil || !r.OK {
			t.Fatalf("Lock(%s): %+v, %v", uid, r, err)
		}
		return r.Fence
	}

	read := raise(0)
	if read == 0 {
		t.Fatal("the counter reads 0: a fresh table must start it above the values of a previous run")
	}
	if again := raise(0); again != read {
		t.Fatalf("reading the counter changed it: %d, then %d", read, again)
	}
	if g := lock("a"); g <= read {
		t.Fatalf("a grant's fence %d is not above the counter read before it (%d)", g, read)
	}
	floor := read + 1_000_000
	if got := raise(floor); got != floor {
		t.Fatalf("RaiseFence(%d) = %d, want the floor", floor, got)
	}
	if got := raise(floor - 10); got != floor {
		t.Fatalf("a lower floor lowered the counter: %d, want %d", got, floor)
	}
	if g := lock("b"); g <= floor {
		t.Fatalf("a grant after raising to %d has fence %d, not above it", floor, g)
	}

	// The counter stops at locker.MaxFence rather than wrap around: a floor
	// above it is refused, and once it is reached no lock is granted.
	_, err := fc.RaiseFence(ctx, locker.FenceArgs{Floor: locker.MaxFence + 1})
	require.ErrorIs(t, err, locker.ErrInvalidArgs, "a floor above MaxFence")
	require.Equal(t, uint64(locker.MaxFence-1), raise(locker.MaxFence-1))
	assert.Equal(t, uint64(locker.MaxFence), lock("last"), "the last fence a node issues")
	r, err := l.Lock(ctx, locker.LockArgs{UID: "past", Resources: []string{"fenced-past"}, Quorum: 1})
	require.Error(t, err, "a lock with the counter at MaxFence")
	assert.False(t, r.OK)
	assert.Equal(t, uint64(locker.MaxFence), raise(0), "the counter after a refused lock")
	_, err = fc.RaiseFence(ctx, locker.FenceArgs{Floor: ^uint64(0)})
	assert.ErrorIs(t, err, locker.ErrInvalidArgs, "the floor 2^64-1")
}
