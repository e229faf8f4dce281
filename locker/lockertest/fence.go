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
		require.NoError(t, err, "RaiseFence(%d)", floor)
		return r.Fence
	}
	lock := func(uid string) uint64 {
		t.Helper()
		r, err := l.Lock(ctx, locker.LockArgs{UID: uid, Resources: []string{"fenced-" + uid}, Quorum: 1})
		require.NoError(t, err, "Lock(%s)", uid)
		require.True(t, r.OK, "Lock(%s): %+v", uid, r)
		return r.Fence
	}

	read := raise(0)
	require.NotZero(t, read, "the counter reads 0: a fresh table must start it above the values of a previous run")
	require.Equal(t, read, raise(0), "reading the counter changed it")
	require.Greater(t, lock("a"), read, "a grant's fence is not above the counter read before it")
	floor := read + 1_000_000
	require.Equal(t, floor, raise(floor), "RaiseFence(%d), want the floor", floor)
	require.Equal(t, floor, raise(floor-10), "a lower floor lowered the counter")
	require.Greater(t, lock("b"), floor, "a grant after raising to %d has a fence not above it", floor)

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
