package cluster_test

// Integration tests of the whole stack over real loopback HTTP: lock tables
// behind authenticated rest servers, quorum clients in several "processes"
// (one Dsync each, with its own HTTP clients).

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/cluster"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

func start(t *testing.T, cfg cluster.Config) *cluster.Cluster {
	t.Helper()
	c, err := cluster.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// process returns a quorum client with its own HTTP clients, as a separate
// process of the storage server would have.
func process(t *testing.T, c *cluster.Cluster, cfg dsync.Config) *dsync.Dsync {
	t.Helper()
	ls, err := c.Lockers()
	require.NoError(t, err)
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = time.Millisecond, 8*time.Millisecond
	}
	ds, err := dsync.New(ls, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ds.Close()
		for _, l := range ls {
			l.Close()
		}
	})
	return ds
}

func TestReadWriteExclusionAndNoLostUpdates(t *testing.T) {
	for _, n := range []int{1, 3, 4, 5} {
		t.Run(fmt.Sprint("n=", n), func(t *testing.T) {
			c := start(t, cluster.Config{Nodes: n})
			procs := []*dsync.Dsync{process(t, c, dsync.Config{}), process(t, c, dsync.Config{}), process(t, c, dsync.Config{})}
			const workers, rounds = 12, 8
			var (
				register  int          // read-modify-written under the write lock only
				writers   atomic.Int32 // holders of the write lock right now
				readers   atomic.Int32
				violation atomic.Value
				wg        sync.WaitGroup
			)
			check := func(cond bool, format string, a ...any) {
				if !cond {
					violation.CompareAndSwap(nil, fmt.Sprintf(format, a...))
				}
			}
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ds := procs[w%len(procs)]
					m := dsync.NewDRWMutex(ds, "bucket/object")
					ctx := context.Background()
					for i := range rounds {
						if (w+i)%3 == 0 { // a reader
							if _, err := m.GetRLock(ctx, dsync.Options{Timeout: time.Minute}); err != nil {
								check(false, "rlock: %v", err)
								return
							}
							readers.Add(1)
							check(writers.Load() == 0, "reader inside with a writer")
							readers.Add(-1)
							m.RUnlock(ctx)
							continue
						}
						if _, err := m.GetLock(ctx, dsync.Options{Timeout: time.Minute}); err != nil {
							check(false, "lock: %v", err)
							return
						}
						check(writers.Add(1) == 1, "two writers inside")
						check(readers.Load() == 0, "writer inside with readers")
						v := register
						register = v + 1
						writers.Add(-1)
						m.Unlock(ctx)
					}
				}()
			}
			wg.Wait()
			require.Nil(t, violation.Load())
			want := 0
			for w := range workers {
				for i := range rounds {
					if (w+i)%3 != 0 {
						want++
					}
				}
			}
			require.Equal(t, want, register, "register after %d locked increments: updates lost", want)
		})
	}
}

func TestSurvivesNMinusWStoppedAndFailsCleanlyBeyond(t *testing.T) {
	for _, n := range []int{3, 4, 5} {
		t.Run(fmt.Sprint("n=", n), func(t *testing.T) {
			c := start(t, cluster.Config{Nodes: n})
			ds := process(t, c, dsync.Config{CallTimeout: 200 * time.Millisecond})
			ctx := context.Background()
			down := n - ds.WriteQuorum()
			for i := range down {
				c.Stop(i)
			}
			m := dsync.NewDRWMutex(ds, "obj")
			for range 3 {
				_, err := m.GetLock(ctx, dsync.Options{Timeout: 30 * time.Second})
				require.NoError(t, err, "%d of %d stopped", down, n)
				require.NoError(t, m.Unlock(ctx), "unlock with %d of %d stopped", down, n)
			}
			c.Stop(down)
			_, err := m.GetLock(ctx, dsync.Options{Timeout: 300 * time.Millisecond})
			require.ErrorIs(t, err, dsync.ErrTimeout, "%d of %d stopped, want ErrTimeout wrapping ErrNoQuorum and ErrOffline", down+1, n)
			require.ErrorIs(t, err, dsync.ErrNoQuorum, "%d of %d stopped, want ErrTimeout wrapping ErrNoQuorum and ErrOffline", down+1, n)
			require.ErrorIs(t, err, locker.ErrOffline, "%d of %d stopped, want ErrTimeout wrapping ErrNoQuorum and ErrOffline", down+1, n)
			// The node comes back: locks work again.
			require.NoError(t, c.Restart(down))
			_, err = m.GetLock(ctx, dsync.Options{Timeout: 30 * time.Second})
			require.NoError(t, err, "after restart")
			m.Unlock(ctx)
		})
	}
}

func TestCrashedClientLockIsGrantedAfterExpiry(t *testing.T) {
	nodeClock := clock.NewFake(time.Unix(1_700_000_000, 0))
	const validity = time.Minute
	c := start(t, cluster.Config{Nodes: 3, Table: locker.Config{Validity: validity, Clock: nodeClock, SweepInterval: -1}})
	ctx := context.Background()

	crashed := process(t, c, dsync.Config{Validity: validity})
	_, err := dsync.NewDRWMutex(crashed, "obj").GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	crashed.Close() // the process dies: no unlock, no more refreshes

	other := process(t, c, dsync.Config{Validity: validity})
	m := dsync.NewDRWMutex(other, "obj")
	ok, _, err := m.TryLock(ctx)
	require.NoError(t, err, "stale lock not honoured before expiry")
	require.False(t, ok, "stale lock not honoured before expiry")
	nodeClock.Advance(validity - time.Second)
	ok, _, err = m.TryLock(ctx)
	require.NoError(t, err, "granted a second before expiry")
	require.False(t, ok, "granted a second before expiry")
	nodeClock.Advance(time.Second)
	ok, _, err = m.TryLock(ctx)
	require.NoError(t, err, "not granted after expiry")
	require.True(t, ok, "not granted after expiry")
	m.Unlock(ctx)
}

func TestForceReleaseOnQuorumCancelsHolder(t *testing.T) {
	c := start(t, cluster.Config{Nodes: 5})
	ctx := context.Background()
	// Refresh often, so that the loss is seen at once; the test waits on
	// the lock context, not on time.
	ds := process(t, c, dsync.Config{RefreshInterval: 20 * time.Millisecond})
	m := dsync.NewDRWMutex(ds, "obj")
	lockCtx, err := m.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	// GetLock returned once a quorum granted; let the other two grants land
	// too, so that the force-release below is not undone by a late grant.
	for _, n := range c.Nodes() {
		for n.Table().Stats().Grants == 0 {
			runtime.Gosched()
		}
	}
	ls, err := c.AdminLockers() // force-unlock of a resource's holders is the admin's
	require.NoError(t, err)
	for _, l := range ls[:3] { // a quorum of 5
		_, err := l.ForceUnlock(ctx, locker.LockArgs{Resources: []string{"obj"}})
		require.NoError(t, err)
		l.Close()
	}
	<-lockCtx.Done()
	require.ErrorIs(t, context.Cause(lockCtx), dsync.ErrLockLost, "cause")
	require.ErrorIs(t, m.Unlock(ctx), dsync.ErrLockLost, "unlock of lost lock")
}

func TestWrongSecretIsRefusedAndChangesNothing(t *testing.T) {
	c := start(t, cluster.Config{Nodes: 3})
	var ls []locker.NetLocker
	for _, ep := range c.Endpoints() {
		l, err := rest.NewClient(ep, rest.ClientConfig{Secret: "wrong-wrong-wrong-wrong-wrong-wro"})
		require.NoError(t, err)
		defer l.Close()
		ls = append(ls, l)
	}
	ds, err := dsync.New(ls, dsync.Config{})
	require.NoError(t, err)
	defer ds.Close()
	ok, _, err := dsync.NewDRWMutex(ds, "obj").TryLock(context.Background())
	require.False(t, ok, "wrong secret: ok=%v err=%v, want ErrNoQuorum wrapping ErrUnauthorized", ok, err)
	require.ErrorIs(t, err, locker.ErrUnauthorized, "wrong secret, want ErrNoQuorum wrapping ErrUnauthorized")
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "wrong secret, want ErrNoQuorum wrapping ErrUnauthorized")
	for i, n := range c.Nodes() {
		st := n.Table().Stats()
		require.Zero(t, st.Grants, "node %d changed by unauthenticated requests: %+v", i, st)
	}
}
