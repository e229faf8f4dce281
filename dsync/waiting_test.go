package dsync_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// waitingCluster is n in-memory tables and the lockers that reach them, in
// a synctest bubble (real clocks, virtual time). Its clients back off for
// an hour: an acquisition that finishes in less waited on the nodes.
type waitingCluster struct {
	tables  []*locker.Local
	lockers []locker.NetLocker
}

const noBackoff = time.Hour

func newWaitingCluster(t *testing.T, n int, wrap func(i int, l *locker.Local) locker.NetLocker) *waitingCluster {
	c := &waitingCluster{}
	for i := range n {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: time.Minute, SweepInterval: -1})
		t.Cleanup(func() { tbl.Close() })
		c.tables = append(c.tables, tbl)
		var l locker.NetLocker = tbl
		if wrap != nil {
			l = wrap(i, tbl)
		}
		c.lockers = append(c.lockers, l)
	}
	return c
}

// client returns a Dsync over the cluster named owner.
func (c *waitingCluster) client(t *testing.T, owner string, cfg dsync.Config) *dsync.Dsync {
	cfg.Owner = owner
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = noBackoff, noBackoff
	}
	ds, err := dsync.New(c.lockers, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { ds.Close() })
	return ds
}

// queued returns the waiters queued on each table.
func (c *waitingCluster) queued() []int {
	var q []int
	for _, tbl := range c.tables {
		q = append(q, tbl.Stats().Queued)
	}
	return q
}

// TestWaitingHandsOverInOrder: acquisitions that find the lock held wait
// on the nodes, in the order they started, and each gets the lock within
// the release of the one before, with no back-off.
func TestWaitingHandsOverInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newWaitingCluster(t, 4, nil)
		ctx := context.Background()
		holder := dsync.NewDRWMutex(c.client(t, "holder", dsync.Config{}), "obj")
		_, err := holder.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)

		var mu sync.Mutex
		var order []string
		var wg sync.WaitGroup
		names := []string{"w0", "w1", "w2", "w3", "w4"}
		for _, name := range names {
			ds := c.client(t, name, dsync.Config{})
			wg.Go(func() {
				m := dsync.NewDRWMutex(ds, "obj")
				_, err := m.GetLock(ctx, dsync.Options{Timeout: time.Minute})
				if !assert.NoError(t, err, name) {
					return
				}
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				assert.NoError(t, m.Unlock(ctx))
			})
			synctest.Wait() // queued everywhere before the next starts
			time.Sleep(time.Millisecond)
		}
		assert.Equal(t, []int{5, 5, 5, 5}, c.queued())
		start := time.Now()
		require.NoError(t, holder.Unlock(ctx))
		wg.Wait()
		assert.Equal(t, names, order, "in the order they started")
		assert.Zero(t, time.Since(start), "handed over within the releases: no sleep, no back-off")
		assert.Equal(t, []int{0, 0, 0, 0}, c.queued())
	})
}

// TestWaitingReadersTogether: readers that wait behind a writer are
// granted together when it releases; a writer behind them waits for them.
func TestWaitingReadersTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newWaitingCluster(t, 3, nil)
		ctx := context.Background()
		holder := dsync.NewDRWMutex(c.client(t, "holder", dsync.Config{}), "obj")
		_, err := holder.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)

		readers := make(chan *dsync.DRWMutex, 3)
		for i := range 3 {
			ds := c.client(t, "r"+string(rune('0'+i)), dsync.Config{})
			go func() {
				m := dsync.NewDRWMutex(ds, "obj")
				_, err := m.GetRLock(ctx, dsync.Options{Timeout: time.Minute})
				assert.NoError(t, err)
				readers <- m
			}()
			synctest.Wait()
			time.Sleep(time.Millisecond)
		}
		writerDone := make(chan struct{}) // the writer was granted
		writerOut := make(chan struct{})  // and released: the test may end
		wds := c.client(t, "writer", dsync.Config{})
		go func() {
			defer close(writerOut)
			m := dsync.NewDRWMutex(wds, "obj")
			_, err := m.GetLock(ctx, dsync.Options{Timeout: time.Minute})
			assert.NoError(t, err)
			close(writerDone)
			assert.NoError(t, m.Unlock(ctx))
		}()
		synctest.Wait()
		require.NoError(t, holder.Unlock(ctx))
		synctest.Wait()
		require.Len(t, readers, 3, "the readers together")
		select {
		case <-writerDone:
			require.Fail(t, "the writer was granted while readers held the lock")
		default:
		}
		for range 3 {
			assert.NoError(t, (<-readers).RUnlock(ctx))
		}
		<-writerDone
		<-writerOut
	})
}

// gatedLocker holds the lock requests that wait (LockArgs.Wait) of one
// owner until its gate opens, to split the nodes between two acquisitions.
type gatedLocker struct {
	*locker.Local
	owner string
	gate  chan struct{}
}

func (g *gatedLocker) Submit(ctx context.Context, op locker.Op, a *locker.LockArgs, timeout time.Duration, sink locker.Sink, tag int) {
	if a.Owner == g.owner && a.Wait > 0 {
		go func() {
			<-g.gate
			g.Local.Submit(ctx, op, a, timeout, sink, tag)
		}()
		return
	}
	g.Local.Submit(ctx, op, a, timeout, sink, tag)
}

// TestWaitingSplitVoteGoesToTheOlder: two acquisitions that split the nodes
// between them (each holds two of four, short of the quorum of three) do
// not wait for each other: the older one's request, queued behind the
// younger one's grant, wounds it; the younger yields, and the older gets
// the lock, then the younger, with no back-off.
func TestWaitingSplitVoteGoesToTheOlder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gates := map[string]chan struct{}{"old": make(chan struct{}), "young": make(chan struct{})}
		c := newWaitingCluster(t, 4, func(i int, l *locker.Local) locker.NetLocker {
			// old's waiting requests to nodes 2 and 3, and young's to nodes
			// 0 and 1, arrive late.
			owner := "young"
			if i >= 2 {
				owner = "old"
			}
			return &gatedLocker{Local: l, owner: owner, gate: gates[owner]}
		})
		ctx := context.Background()
		holder := dsync.NewDRWMutex(c.client(t, "holder", dsync.Config{}), "obj")
		_, err := holder.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)

		var mu sync.Mutex
		var order []string
		var wg sync.WaitGroup
		for _, name := range []string{"old", "young"} {
			ds := c.client(t, name, dsync.Config{})
			wg.Go(func() {
				m := dsync.NewDRWMutex(ds, "obj")
				_, err := m.GetLock(ctx, dsync.Options{Timeout: time.Minute})
				if !assert.NoError(t, err, name) {
					return
				}
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				assert.NoError(t, m.Unlock(ctx))
			})
			synctest.Wait()
			time.Sleep(time.Millisecond) // old's ticket is older
		}
		// old is queued on nodes 0 and 1, young on 2 and 3.
		assert.Equal(t, []int{1, 1, 1, 1}, c.queued())
		start := time.Now()
		require.NoError(t, holder.Unlock(ctx))
		synctest.Wait()
		// Split: old holds 0 and 1, young 2 and 3; neither has 3.
		assert.Equal(t, []int{0, 0, 0, 0}, c.queued())
		mu.Lock()
		assert.Empty(t, order)
		mu.Unlock()
		close(gates["old"]) // old queues behind young's grants: young is wounded
		close(gates["young"])
		wg.Wait()
		assert.Equal(t, []string{"old", "young"}, order)
		assert.Zero(t, time.Since(start), "no back-off")
	})
}

// TestWaitingGivesUpAtItsTimeout: an acquisition that waits on the nodes
// gives up at its timeout, as one that backs off does, and leaves no
// waiter behind.
func TestWaitingGivesUpAtItsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newWaitingCluster(t, 3, nil)
		ctx := context.Background()
		holder := dsync.NewDRWMutex(c.client(t, "holder", dsync.Config{}), "obj")
		_, err := holder.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)

		ds := c.client(t, "waiter", dsync.Config{MaxWait: 2 * time.Second})
		start := time.Now()
		_, err = dsync.NewDRWMutex(ds, "obj").GetLock(ctx, dsync.Options{Timeout: 5 * time.Second})
		assert.ErrorIs(t, err, dsync.ErrTimeout)
		assert.ErrorIs(t, err, dsync.ErrLocked)
		assert.Equal(t, 5*time.Second, time.Since(start), "waited on the nodes, MaxWait at a time, to its timeout")
		synctest.Wait()
		assert.Equal(t, []int{0, 0, 0}, c.queued())
	})
}

// TestWaitingCancelledLeavesNothing: an acquisition whose ctx ends while it
// waits on the nodes withdraws its requests: no waiter is left, and the
// lock is not handed to it at the release.
func TestWaitingCancelledLeavesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newWaitingCluster(t, 3, nil)
		ctx := context.Background()
		holder := dsync.NewDRWMutex(c.client(t, "holder", dsync.Config{}), "obj")
		_, err := holder.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)

		ds := c.client(t, "waiter", dsync.Config{})
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := dsync.NewDRWMutex(ds, "obj").GetLock(cctx, dsync.Options{})
			done <- err
		}()
		synctest.Wait()
		require.Equal(t, []int{1, 1, 1}, c.queued())
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		synctest.Wait()
		assert.Equal(t, []int{0, 0, 0}, c.queued())
		require.NoError(t, holder.Unlock(ctx))
		ok, _, err := dsync.NewDRWMutex(ds, "obj").TryLock(ctx)
		require.NoError(t, err)
		assert.True(t, ok, "free: nothing was handed to the waiter that left")
	})
}

// TestWaitingDisabled: with MaxWait negative, acquisitions back off between
// attempts and never queue on the nodes.
func TestWaitingDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newWaitingCluster(t, 3, nil)
		ctx := context.Background()
		holder := dsync.NewDRWMutex(c.client(t, "holder", dsync.Config{}), "obj")
		_, err := holder.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		ds := c.client(t, "waiter", dsync.Config{MaxWait: -1, RetryMin: time.Second, RetryMax: time.Second})
		done := make(chan error, 1)
		go func() {
			_, err := dsync.NewDRWMutex(ds, "obj").GetLock(ctx, dsync.Options{Timeout: time.Minute})
			done <- err
		}()
		synctest.Wait()
		assert.Equal(t, []int{0, 0, 0}, c.queued())
		start := time.Now()
		require.NoError(t, holder.Unlock(ctx))
		require.NoError(t, <-done)
		assert.Positive(t, time.Since(start), "it found the lock free only after a back-off")
	})
}

// TestWaitingIsFair: lockers that each take one lock again and again, all
// the time, are served in turn: once every one has asked, between two grants
// of one locker every other locker is granted exactly once (it asked before
// the first released, so its ticket is older than the next request of the
// first), and the lock passes from holder to holder without a pause.
func TestWaitingIsFair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lockers, rounds, hold = 8, 25, time.Millisecond
		c := newWaitingCluster(t, 4, nil)
		ctx := context.Background()
		var mu sync.Mutex
		var grants []int // lockers in the order they were granted
		var wg sync.WaitGroup
		start := time.Now()
		for i := range lockers {
			ds := c.client(t, fmt.Sprintf("l%d", i), dsync.Config{})
			wg.Go(func() {
				m := dsync.NewDRWMutex(ds, "obj")
				for range rounds {
					_, err := m.GetLock(ctx, dsync.Options{Timeout: time.Minute})
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					grants = append(grants, i)
					mu.Unlock()
					time.Sleep(hold) // the critical section, in virtual time
					if !assert.NoError(t, m.Unlock(ctx)) {
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		require.Len(t, grants, lockers*rounds)
		counts := make([]int, lockers)
		last := make([]int, lockers)
		for k, i := range grants {
			if counts[i] > 0 && k >= lockers {
				assert.Equal(t, lockers-1, k-last[i]-1, "grants of others between two grants of l%d (grant %d)", i, k)
			}
			counts[i]++
			last[i] = k
		}
		assert.Equal(t, lockers*rounds*hold, elapsed, "the lock passed from holder to holder with no pause")
	})
}

// countingSubmitter counts the lock requests of owner that did not ask to
// wait.
type countingSubmitter struct {
	*locker.Local
	owner string
	plain *atomic.Int32
}

func (c *countingSubmitter) Submit(ctx context.Context, op locker.Op, a *locker.LockArgs, timeout time.Duration, sink locker.Sink, tag int) {
	if a.Owner == c.owner && a.Wait == 0 && (op == locker.OpLock || op == locker.OpRLock) {
		c.plain.Add(1)
	}
	c.Local.Submit(ctx, op, a, timeout, sink, tag)
}

// TestWaitingRemembersContention: the first attempt of an acquisition asks
// without waiting, as TryLock does, unless the resource was found held
// lately: then it waits on the nodes at once, which spares a refused call to
// every node per acquisition of a hot lock.
func TestWaitingRemembersContention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var plain atomic.Int32
		c := newWaitingCluster(t, 4, func(_ int, l *locker.Local) locker.NetLocker {
			return &countingSubmitter{Local: l, owner: "b", plain: &plain}
		})
		ctx := context.Background()
		a := dsync.NewDRWMutex(c.client(t, "a", dsync.Config{}), "obj")
		b := c.client(t, "b", dsync.Config{})
		handOver := func() {
			_, err := a.GetLock(ctx, dsync.Options{})
			require.NoError(t, err)
			done := make(chan error)
			m := dsync.NewDRWMutex(b, "obj")
			go func() {
				_, err := m.GetLock(ctx, dsync.Options{Timeout: time.Minute})
				done <- err
			}()
			synctest.Wait() // b waits on the nodes
			require.NoError(t, a.Unlock(ctx))
			require.NoError(t, <-done)
			require.NoError(t, m.Unlock(ctx))
		}
		handOver()
		assert.Equal(t, int32(4), plain.Load(), "the first acquisition asks every node without waiting first")
		time.Sleep(500 * time.Millisecond)
		handOver()
		assert.Equal(t, int32(4), plain.Load(), "the second, within a second, waits at once")
		time.Sleep(2 * time.Second)
		_, err := dsync.NewDRWMutex(b, "obj").GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		assert.Equal(t, int32(8), plain.Load(), "a free lock, long after: asked without waiting")
	})
}
