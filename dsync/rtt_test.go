package dsync_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// laggingNode is a node that can be made slow (every call waits delay
// first) or dead (no call ever answers: each waits for its ctx).
type laggingNode struct {
	locker.NetLocker
	delay atomic.Int64
	dead  atomic.Bool
}

func (n *laggingNode) lag(ctx context.Context) error {
	if n.dead.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if d := time.Duration(n.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (n *laggingNode) Lock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	if err := n.lag(ctx); err != nil {
		return locker.Reply{}, err
	}
	return n.NetLocker.Lock(ctx, a)
}

func (n *laggingNode) Unlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	if err := n.lag(ctx); err != nil {
		return locker.Reply{}, err
	}
	return n.NetLocker.Unlock(ctx, a)
}

func (n *laggingNode) Refresh(ctx context.Context, a locker.RefreshArgs) (locker.RefreshReply, error) {
	if err := n.lag(ctx); err != nil {
		return locker.RefreshReply{}, err
	}
	return n.NetLocker.Refresh(ctx, a)
}

// laggingCluster returns n nodes whose answers the test can delay, and a
// Dsync over them that learns their round trips (call timeouts between
// minTimeout and callTimeout), retries at once and never waits on the
// nodes.
func laggingCluster(t *testing.T, n int, callTimeout, minTimeout time.Duration) ([]*laggingNode, *dsync.Dsync) {
	nodes := make([]*laggingNode, n)
	ls := make([]locker.NetLocker, n)
	for i := range nodes {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: time.Minute, SweepInterval: -1})
		t.Cleanup(func() { tbl.Close() })
		nodes[i] = &laggingNode{NetLocker: netOnly{tbl}}
		ls[i] = nodes[i]
	}
	ds, err := dsync.New(ls, dsync.Config{
		CallTimeout: callTimeout, MinCallTimeout: minTimeout,
		RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond, MaxWait: -1,
	})
	require.NoError(t, err)
	t.Cleanup(func() { ds.Close() })
	return nodes, ds
}

// TestCallTimeoutsAdaptPerNode: each node's lock calls are bounded by its
// retransmission timeout, learnt from its round trips. A node that stops
// answering costs a failing attempt that timeout, not CallTimeout; a node
// that turns slow is given what it needs after a timeout or two, and then
// every time.
func TestCallTimeoutsAdaptPerNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const callTimeout, minTimeout, slow = 5 * time.Second, 50 * time.Millisecond, 300 * time.Millisecond
		nodes, ds := laggingCluster(t, 4, callTimeout, minTimeout)
		ctx := context.Background()
		for i := range 4 {
			assert.Equal(t, callTimeout, ds.RTO(i), "node %d before any measure", i)
		}
		// Measured round trips (zero in virtual time) bring every RTO down
		// to its floor.
		m := dsync.NewDRWMutex(ds, "obj")
		for range 3 {
			_, err := m.GetLock(ctx, dsync.Options{})
			require.NoError(t, err)
			require.NoError(t, m.Unlock(ctx))
			time.Sleep(20 * time.Millisecond) // past the sampling interval
		}
		for i := range 4 {
			assert.Equal(t, minTimeout, ds.RTO(i), "node %d after fast answers", i)
		}

		// Two dead nodes: no quorum, known within their RTO.
		nodes[0].dead.Store(true)
		nodes[1].dead.Store(true)
		start := time.Now()
		ok, _, err := m.TryLock(ctx)
		assert.False(t, ok)
		assert.ErrorIs(t, err, dsync.ErrNoQuorum)
		assert.Equal(t, minTimeout, time.Since(start), "a failing attempt waits for dead nodes their RTO, not CallTimeout")
		assert.Equal(t, 2*minTimeout, ds.RTO(0), "a timeout doubles the RTO")

		// Node 0 comes back slow, node 1 stays dead: the lock needs node 0,
		// whose RTO grows until its answer fits, and then keeps fitting.
		nodes[0].dead.Store(false)
		nodes[0].delay.Store(int64(slow))
		start = time.Now()
		_, err = m.GetLock(ctx, dsync.Options{Timeout: time.Minute})
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 2*time.Second, "the slow node is given what it needs well before CallTimeout")
		assert.GreaterOrEqual(t, ds.RTO(0), slow, "the slow node's RTO fits its round trip")
		require.NoError(t, m.Unlock(ctx))
		time.Sleep(20 * time.Millisecond)
		start = time.Now()
		_, err = m.GetLock(ctx, dsync.Options{Timeout: time.Minute})
		require.NoError(t, err)
		assert.Equal(t, slow, time.Since(start), "granted at the slow node's first answer, with no timeout")
		assert.Less(t, ds.RTO(1), callTimeout, "the dead node is still not given CallTimeout")
		require.NoError(t, m.Unlock(ctx))
	})
}

// TestCancelledCallIsNoRoundTrip: a lock call that ends because its caller
// gave up (here: cancelled the lock's context while the slow node's late
// answer was on its way) says how long the caller waited, not how long the
// node takes: it leaves the node's RTO as the measured round trips made it.
// (It used to be taken for a round trip. The calls a Held's Release
// cancels end at one instant, in the order in which the context package
// cancels children, which is a map's: the RTO then depended on that order,
// and the simulation's hierarchy-random runs did not replay exactly.)
func TestCancelledCallIsNoRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const callTimeout, minTimeout, slow = 5 * time.Second, 10 * time.Millisecond, 300 * time.Millisecond
		nodes, ds := laggingCluster(t, 3, callTimeout, minTimeout)
		nodes[2].delay.Store(int64(slow))

		// One measured round trip of the slow node: its late answer, after
		// the quorum of the two others.
		m := dsync.NewDRWMutex(ds, "obj")
		_, err := m.GetLock(context.Background(), dsync.Options{})
		require.NoError(t, err)
		time.Sleep(slow)
		synctest.Wait()
		rto := ds.RTO(2)
		require.Equal(t, slow+4*slow/2, rto, "the slow node's RTO after its first round trip (SRTT + 4·RTTVAR)")
		require.NoError(t, m.Unlock(context.Background()))
		time.Sleep(20 * time.Millisecond) // past the sampling interval

		// A sampled attempt whose call to the slow node its caller cancels
		// 10ms in.
		ctx, cancel := context.WithCancel(context.Background())
		_, err = m.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		time.Sleep(10 * time.Millisecond)
		cancel()
		synctest.Wait()
		assert.Equal(t, rto, ds.RTO(2), "a call its caller cancelled is no round trip")
		require.NoError(t, m.Unlock(context.Background()))
	})
}
