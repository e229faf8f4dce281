package dsyncprom_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/dsyncprom"
	"github.com/dsync-go/dsync/locker"
)

// TestClientEvents: a Dsync whose Observer is a ClientEvents counts its
// acquisitions by kind and outcome, its lost locks by cause, and its
// refresh rounds; every series of the fixed label sets exists from the
// start.
func TestClientEvents(t *testing.T) {
	events := dsyncprom.NewClientEvents(nil)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(events))
	fams := scrape(t, reg)
	assert.Equal(t, 0.0, value(fams, "dsync_client_acquire_duration_seconds", "kind", "read", "outcome", "deadlock"), "made up front")
	assert.Equal(t, 0.0, value(fams, "dsync_client_locks_lost_total", "cause", "at_release"), "made up front")

	var tables []*locker.Local
	var ls []locker.NetLocker
	for range 3 {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
		defer tbl.Close()
		tables = append(tables, tbl)
		ls = append(ls, tbl)
	}
	ds, err := dsync.New(ls, dsync.Config{Observer: events, RefreshInterval: 20 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	require.NoError(t, err)
	defer ds.Close()
	ctx := context.Background()

	m := dsync.NewDRWMutex(ds, "bucket/object")
	lockCtx, err := m.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	ok, _, err := dsync.NewDRWMutex(ds, "bucket/object").TryRLock(ctx)
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = dsync.NewDRWMutex(ds, "bucket/object").GetLock(ctx, dsync.Options{Timeout: 30 * time.Millisecond})
	require.ErrorIs(t, err, dsync.ErrTimeout)
	// An operator force-releases the lock on every node: its next refresh
	// finds it lost.
	for _, tbl := range tables {
		_, err := tbl.ForceUnlock(ctx, locker.LockArgs{Resources: []string{"bucket/object"}})
		require.NoError(t, err)
	}
	<-lockCtx.Done()
	require.ErrorIs(t, context.Cause(lockCtx), dsync.ErrLockLost)
	require.ErrorIs(t, m.Unlock(ctx), dsync.ErrLockLost) // already counted: not again at release
	p, err := dsync.NewSemaphore(ds, "pool", 2).Acquire(ctx, dsync.Options{})
	require.NoError(t, err)
	require.NoError(t, p.Release(ctx))

	fams = scrape(t, reg)
	for _, c := range []struct {
		kind, outcome string
		want          float64
	}{{"write", "acquired", 1}, {"read", "refused", 1}, {"write", "timeout", 1}, {"permit", "acquired", 1}, {"read", "acquired", 0}} {
		assert.Equal(t, c.want, value(fams, "dsync_client_acquire_duration_seconds", "kind", c.kind, "outcome", c.outcome), "%s %s", c.kind, c.outcome)
	}
	assert.Equal(t, 1.0, value(fams, "dsync_client_locks_lost_total", "cause", "not_held"))
	assert.Equal(t, 0.0, value(fams, "dsync_client_locks_lost_total", "cause", "at_release"))
	assert.Positive(t, value(fams, "dsync_client_refresh_round_duration_seconds"), "rounds timed")
}
