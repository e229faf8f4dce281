package locker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// newLimited returns a table without grace or sweep, on a fake clock,
// configured further by cfg.
func newLimited(t *testing.T, cfg locker.Config) (*locker.Local, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	cfg.QuietPeriod, cfg.SweepInterval, cfg.Clock = locker.NoQuietPeriod, -1, clk
	if cfg.Validity == 0 {
		cfg.Validity = 10 * time.Second
	}
	l := locker.New(cfg)
	t.Cleanup(func() { l.Close() })
	return l, clk
}

func TestConfigValidateLimits(t *testing.T) {
	for _, c := range []locker.Config{
		{MaxNameLen: -1}, {MaxUIDLen: -1}, {MaxLabelLen: -1}, {MaxLabelLen: locker.MaxHolderLen + 1},
		{MaxGrants: -1}, {MaxTombstones: -1},
	} {
		assert.Error(t, c.Validate(), "%+v", c)
	}
	l, _ := newLimited(t, locker.Config{})
	assert.Equal(t, locker.Limits{
		MaxResources: locker.DefaultMaxResources, MaxNameLen: locker.DefaultMaxNameLen,
		MaxUIDLen: locker.DefaultMaxUIDLen, MaxLabelLen: locker.DefaultMaxLabelLen,
	}, l.Limits())
}

// The default limits admit real object names: an S3 key of 1024 bytes in a
// bucket of 63, and the suffix package dsync's Cond adds.
func TestDefaultNameLenFitsObjectNames(t *testing.T) {
	l, _ := newLimited(t, locker.Config{})
	ctx := context.Background()
	name := strings.Repeat("b", 63) + "/" + strings.Repeat("k", 1024) + "/waiters"
	r, err := l.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{name}})
	require.NoError(t, err)
	assert.True(t, r.OK)
	_, err = l.Lock(ctx, locker.LockArgs{UID: "v", Resources: []string{strings.Repeat("n", locker.DefaultMaxNameLen+1)}})
	assert.ErrorIs(t, err, locker.ErrInvalidArgs)
}

// The grant cap is per shard, MaxGrants/Shards rounded up: the table never
// holds more than that many per shard, refuses with ErrFull (an ErrBusy),
// and counts what it refused.
func TestGrantCapPerShard(t *testing.T) {
	const maxGrants, shards = 30, 4 // 8 a shard
	l, _ := newLimited(t, locker.Config{MaxGrants: maxGrants, Shards: shards})
	ctx := context.Background()
	granted, refused := 0, 0
	for i := range 200 {
		r, err := l.Lock(ctx, locker.LockArgs{UID: fmt.Sprint("u", i), Resources: []string{fmt.Sprint("r", i)}})
		if err != nil {
			require.ErrorIs(t, err, locker.ErrFull)
			require.ErrorIs(t, err, locker.ErrBusy)
			assert.Contains(t, err.Error(), "MaxGrants")
			refused++
			continue
		}
		require.True(t, r.OK)
		granted++
	}
	assert.Equal(t, 4*8, granted, "every shard full")
	st := l.Stats()
	assert.Equal(t, granted, st.Grants)
	assert.Equal(t, granted, st.Held)
	assert.Equal(t, uint64(refused), st.Refused)
}

// A lock on k resources counts k against the cap, and its release gives
// them all back.
func TestGrantCapCountsResources(t *testing.T) {
	l, _ := newLimited(t, locker.Config{MaxGrants: 5, Shards: 1})
	ctx := context.Background()
	r, err := l.Lock(ctx, locker.LockArgs{UID: "many", Resources: []string{"a", "b", "c", "d"}})
	require.NoError(t, err)
	require.True(t, r.OK)
	_, err = l.Lock(ctx, locker.LockArgs{UID: "two", Resources: []string{"e", "f"}})
	require.ErrorIs(t, err, locker.ErrFull)
	assert.Equal(t, locker.Stats{Grants: 1, Resources: 4, Held: 4, Refused: 1}, l.Stats())
	r, err = l.Unlock(ctx, locker.LockArgs{UID: "many"})
	require.NoError(t, err)
	require.True(t, r.OK)
	r, err = l.Lock(ctx, locker.LockArgs{UID: "two", Resources: []string{"e", "f"}})
	require.NoError(t, err)
	require.True(t, r.OK)
	assert.Equal(t, locker.Stats{Grants: 1, Resources: 2, Held: 2, Refused: 1}, l.Stats())
}

// Expired grants that no sweep has reclaimed yet make room for new ones.
func TestGrantCapReclaimsExpired(t *testing.T) {
	l, clk := newLimited(t, locker.Config{MaxGrants: 3, Shards: 1})
	ctx := context.Background()
	for i := range 3 {
		r, err := l.Lock(ctx, locker.LockArgs{UID: fmt.Sprint("old", i), Resources: []string{fmt.Sprint("r", i)}})
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	clk.Advance(10 * time.Second)
	r, err := l.Lock(ctx, locker.LockArgs{UID: "new", Resources: []string{"x", "y"}})
	require.NoError(t, err)
	require.True(t, r.OK)
	st := l.Stats()
	assert.Equal(t, 2, st.Grants, "the expired grants made room for two resources, and one stayed")
	assert.Equal(t, 3, st.Held)
	assert.Zero(t, st.Refused)
}

// Past MaxTombstones the oldest tombstones are evicted, and counted; the
// sweep removes the rest once they expire.
func TestTombstoneCap(t *testing.T) {
	l, clk := newLimited(t, locker.Config{MaxTombstones: 3, Shards: 1})
	ctx := context.Background()
	for i := range 5 {
		r, err := l.Unlock(ctx, locker.LockArgs{UID: fmt.Sprint("gone", i)})
		require.NoError(t, err)
		require.False(t, r.OK)
	}
	assert.Equal(t, locker.Stats{Tombstones: 3, Evicted: 2}, l.Stats())
	for i, want := range []bool{true, true, false, false, false} { // evicted: granted
		r, err := l.Lock(ctx, locker.LockArgs{UID: fmt.Sprint("gone", i), Resources: []string{fmt.Sprint("r", i)}})
		require.NoError(t, err)
		assert.Equal(t, want, r.OK, "lock of gone%d: %+v", i, r)
	}
	clk.Advance(10 * time.Second)
	l.Expire()
	st := l.Stats()
	assert.Zero(t, st.Tombstones)
	assert.Equal(t, uint64(2), st.Evicted)
}

// A node hammered with unlocks of unknown UIDs keeps at most MaxTombstones
// of them, whatever the number of shards.
func TestTombstoneCapBoundsMemory(t *testing.T) {
	const maxTombs, shards = 100, 8 // 13 a shard
	l, _ := newLimited(t, locker.Config{MaxTombstones: maxTombs, Shards: shards})
	ctx := context.Background()
	for i := range 10_000 {
		_, err := l.Unlock(ctx, locker.LockArgs{UID: fmt.Sprint("x", i)})
		require.NoError(t, err)
	}
	st := l.Stats()
	assert.LessOrEqual(t, st.Tombstones, shards*13)
	assert.Equal(t, uint64(10_000-st.Tombstones), st.Evicted)
}

// The fence counter stops at MaxFence: a floor above it is refused, the
// last grant takes MaxFence, and the next is refused with ErrFenceExhausted
// rather than wrap around to 0.
func TestFenceStopsAtMaxFence(t *testing.T) {
	l, _ := newLimited(t, locker.Config{})
	ctx := context.Background()
	_, err := l.RaiseFence(ctx, locker.FenceArgs{Floor: ^uint64(0)})
	require.ErrorIs(t, err, locker.ErrInvalidArgs)
	_, err = l.RaiseFence(ctx, locker.FenceArgs{Floor: locker.MaxFence - 1})
	require.NoError(t, err)
	r, err := l.Lock(ctx, locker.LockArgs{UID: "last", Resources: []string{"a"}})
	require.NoError(t, err)
	assert.Equal(t, uint64(locker.MaxFence), r.Fence)
	for range 3 {
		r, err = l.Lock(ctx, locker.LockArgs{UID: "past", Resources: []string{"b"}})
		require.ErrorIs(t, err, locker.ErrFenceExhausted)
		assert.Contains(t, err.Error(), "MaxFence")
		assert.False(t, r.OK)
	}
	f, err := l.RaiseFence(ctx, locker.FenceArgs{})
	require.NoError(t, err)
	assert.Equal(t, uint64(locker.MaxFence), f.Fence, "the counter settles at MaxFence")
	assert.Equal(t, 1, l.Stats().Grants, "nothing of the refused locks was kept")
}
