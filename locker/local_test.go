package locker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

func TestLocalConformance(t *testing.T) {
	// The default shard count, and the extremes: one shard, where every
	// UID and resource meet on the same mutex, and the most there may be.
	for _, shards := range []int{0, 1, locker.MaxShards} {
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			lockertest.Run(t, func(t *testing.T, cfg locker.Config) locker.NetLocker {
				if cfg.Shards == 0 { // unless the case needs a count of its own (the caps' cases)
					cfg.Shards = shards
				}
				l := locker.New(cfg)
				t.Cleanup(func() { l.Close() })
				return l
			})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []locker.Config{
		{Validity: -1}, {MaxResources: -1}, {MaxWaiters: -1},
		{Shards: -1}, {Shards: 3}, {Shards: 2 * locker.MaxShards},
	} {
		assert.Error(t, c.Validate(), "Validate(%+v)", c)
	}
	assert.NoError(t, (locker.Config{}).Validate(), "zero Config")
	defer func() {
		assert.NotNil(t, recover(), "New with a negative Validity did not panic")
	}()
	locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: -time.Second})
}

func TestExpireReclaimsOnlyExpired(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: 10 * time.Second, Clock: clk, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	for i := range 100 {
		r, err := l.Lock(ctx, locker.LockArgs{UID: fmt.Sprint("old", i), Resources: []string{fmt.Sprint("r", i)}})
		require.NoError(t, err, "lock %d", i)
		require.True(t, r.OK, "lock %d: %v", i, r)
	}
	clk.Advance(5 * time.Second)
	for i := range 50 {
		r, err := l.RLock(ctx, locker.LockArgs{UID: fmt.Sprint("new", i), Resources: []string{fmt.Sprint("s", i), fmt.Sprint("t", i)}})
		require.NoError(t, err, "rlock %d", i)
		require.True(t, r.OK, "rlock %d: %v", i, r)
	}
	// Keep half of the old ones alive.
	var keep []string
	for i := range 50 {
		keep = append(keep, fmt.Sprint("old", i))
	}
	_, err := l.Refresh(ctx, locker.RefreshArgs{UIDs: keep})
	require.NoError(t, err)
	clk.Advance(5 * time.Second)
	require.Equal(t, 50, l.Expire(), "grants Expire removed")
	st := l.Stats()
	require.Equal(t, 100, st.Grants, "after expiry: %+v, want 100 grants on 150 resources", st)
	require.Equal(t, 150, st.Resources, "after expiry: %+v, want 100 grants on 150 resources", st)
	clk.Advance(5 * time.Second)
	require.Equal(t, 100, l.Expire(), "grants the second Expire removed")
	require.Equal(t, locker.Stats{}, l.Stats(), "table not empty")
}

func TestIntentEntriesAreSwept(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Clock: clk, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	for i := range 50 {
		name := fmt.Sprint("r", i)
		l.RLock(ctx, locker.LockArgs{UID: "reader" + name, Resources: []string{name}})
		r, _ := l.Lock(ctx, locker.LockArgs{UID: "writer" + name, Resources: []string{name}})
		require.False(t, r.OK, "writer granted over a reader")
		l.RUnlock(ctx, locker.LockArgs{UID: "reader" + name})
	}
	// The writers never come back: their intents keep 50 empty entries.
	st := l.Stats()
	require.Equal(t, 50, st.Resources, "before the intents lapse: %+v", st)
	require.Equal(t, 0, st.Grants, "before the intents lapse: %+v", st)
	l.Expire()
	st = l.Stats()
	require.Equal(t, 50, st.Resources, "fresh intents swept: %+v", st)
	clk.Advance(locker.DefaultWriterIntent)
	l.Expire()
	st = l.Stats()
	require.Equal(t, 0, st.Resources, "lapsed intents kept: %+v", st)
	// The recycled entries work.
	for i := range 50 {
		name := fmt.Sprint("r", i)
		r, err := l.RLock(ctx, locker.LockArgs{UID: "again" + name, Resources: []string{name}})
		require.NoError(t, err, "rlock %s after sweep", name)
		require.True(t, r.OK, "rlock %s after sweep: %v", name, r)
	}
}
