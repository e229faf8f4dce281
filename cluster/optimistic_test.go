package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/cluster"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// Optimistic reads over HTTP nodes: a version validates when nobody wrote,
// not when a writer came or holds the lock, or a node restarted.
func TestOptimisticOverHTTP(t *testing.T) {
	c := start(t, cluster.Config{Nodes: 3})
	// The reader's own HTTP clients, to see node 0 as the reader does.
	ls, err := c.Lockers()
	require.NoError(t, err)
	rds, err := dsync.New(ls, dsync.Config{RetryMin: time.Millisecond, RetryMax: 8 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() {
		rds.Close()
		for _, l := range ls {
			l.Close()
		}
	})
	reader := dsync.NewDRWMutex(rds, "bucket/object")
	writer := dsync.NewDRWMutex(process(t, c, dsync.Config{}), "bucket/object")
	ctx := context.Background()
	validate := func(between func()) bool {
		t.Helper()
		v, err := reader.ReadVersion(ctx)
		require.NoError(t, err, "ReadVersion")
		between()
		ok, err := reader.Validate(ctx, v)
		require.NoError(t, err, "Validate")
		return ok
	}

	assert.True(t, validate(func() {}), "nobody came")
	assert.False(t, validate(func() {
		_, err := writer.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		require.NoError(t, writer.Unlock(ctx))
	}), "a writer came and went")
	_, err = writer.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	assert.False(t, validate(func() {}), "a writer holds the lock")
	require.NoError(t, writer.Unlock(ctx))

	// A node that restarts (here after a clean stop: no grace period)
	// forgets what it saw. Clean: the writer's Unlock returned at a
	// quorum, and its release may still be on its way to node 0, which
	// stopped holding a grant would come back in its grace period.
	require.Eventually(t, func() bool { return c.Nodes()[0].Table().Stats().Grants == 0 },
		time.Minute, time.Millisecond, "the writer's release reached node 0")
	assert.False(t, validate(func() {
		require.NoError(t, c.Stop(0))
		require.NoError(t, c.Restart(0))
	}), "a node restarted in between")
	assert.True(t, validate(func() {}), "after the restart")
	// Node 0 must count again before another is stopped: the reader's
	// client finds it online at its next probe, and it vouches once out of
	// any grace period.
	require.Eventually(t, func() bool {
		r, err := ls[0].(locker.Versioner).Version(ctx, locker.VersionArgs{Resources: []string{"bucket/object"}})
		return err == nil && r.Grace == 0
	}, time.Minute, 10*time.Millisecond, "node 0 back for the reader")

	// With a node stopped, the two others decide; with two, nobody can.
	require.NoError(t, c.Stop(1))
	assert.True(t, validate(func() {}), "one node of three stopped")
	v, err := reader.ReadVersion(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Stop(2))
	_, err = reader.Validate(ctx, v)
	assert.ErrorIs(t, err, dsync.ErrNoQuorum, "two nodes of three stopped")
}

// Writers update two halves of a value under the write lock, one after the
// other; readers read it optimistically, and fail a read that sees the
// halves differ. ReadOptimistic returns such a failure only from a read it
// validated (or made under the read lock): never, if validation is right.
func TestOptimisticReadsAreConsistentOverHTTP(t *testing.T) {
	c := start(t, cluster.Config{Nodes: 3})
	var lo, hi atomic.Int64 // the two halves: equal outside the write lock
	errTorn := errors.New("a torn read")
	const writers, readers, rounds = 2, 3, 15
	var wg sync.WaitGroup
	for range writers {
		m := dsync.NewDRWMutex(process(t, c, dsync.Config{}), "pair")
		wg.Go(func() {
			for range rounds {
				if _, err := m.GetLock(context.Background(), dsync.Options{}); !assert.NoError(t, err) {
					return
				}
				lo.Add(1)
				runtime.Gosched() // give a reader the chance of a torn read
				hi.Add(1)
				if err := m.Unlock(context.Background()); !assert.NoError(t, err) {
					return
				}
			}
		})
	}
	for range readers {
		m := dsync.NewDRWMutex(process(t, c, dsync.Config{}), "pair")
		wg.Go(func() {
			for range rounds {
				err := m.ReadOptimistic(context.Background(), 3, dsync.Options{}, func(context.Context) error {
					a := lo.Load()
					runtime.Gosched()
					if b := hi.Load(); a != b {
						return fmt.Errorf("%w: %d and %d", errTorn, a, b)
					}
					return nil
				})
				assert.NoError(t, err, "a validated read")
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(writers*rounds), lo.Load())
}
