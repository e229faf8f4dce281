package dsync_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// The two rules that keep reclaims from granting a lock twice (see package
// refresher, and simulation/model for the double grants without them),
// through the whole client: the acquisition tells the refresher which
// nodes granted, and a reclaim names the incarnation of the node that asked
// for it.

const reclaimValidity = 30 * time.Second // refresh rounds every 10 s

// restartInGrace gives node k a fresh table in its default grace period:
// one validity.
func (c *swapCluster) restartInGrace(k int) {
	c.nodes[k].restart(locker.Config{Validity: reclaimValidity, SweepInterval: -1})
}

// TestReclaimOnlyOnNodesThatGranted: node 0 holds the resource for another
// client, so the holder wins it on nodes 1 and 2. Nodes 0 and 1 restart at
// once. The holder reclaims on node 1, which granted it, and not on node 0,
// whose grace keeps the resource for the other client. (The model's first
// trail, RECLAIM_GUARD.)
func TestReclaimOnlyOnNodesThatGranted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		v := reclaimValidity
		c := newSwapCluster(t, dsync.Config{}, v, v, v)
		tbl0, _ := c.nodes[0].table()
		other := locker.LockArgs{UID: "other", Resources: []string{"obj"}}
		r, err := tbl0.Lock(ctx, other)
		require.NoError(t, err)
		require.True(t, r.OK)
		lockCtx, err := dsync.NewDRWMutex(c.ds, "obj").GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		synctest.Wait() // every node has answered

		c.restartInGrace(0)
		c.restartInGrace(1)
		time.Sleep(10 * time.Second)
		synctest.Wait() // a refresh round, and its reclaims
		st := c.ds.Stats()
		assert.EqualValues(t, 1, st.Reclaims, "a reclaim on node 1 alone")
		assert.EqualValues(t, 1, st.Reclaimed)
		require.NoError(t, lockCtx.Err(), "lost: %v", context.Cause(lockCtx))
		for k, want := range []int{0, 1, 1} {
			tbl, _ := c.nodes[k].table()
			assert.Equal(t, want, tbl.Stats().Grants, "node %d", k)
		}
		tbl0, _ = c.nodes[0].table()
		other.Reclaim, other.Incarnation = true, tbl0.Boot().Incarnation
		r, err = tbl0.Lock(ctx, other)
		require.NoError(t, err)
		assert.True(t, r.OK, "the other client reclaims on node 0: %+v", r)
	})
}

// TestReclaimFromAnEarlierRestartIsRefused: node 2 restarts; the holder's
// reclaim there is held up in the network. Node 2's grace ends, it grants
// the resource to another client, and restarts again. The old reclaim,
// arriving in the new grace, names the earlier incarnation and is refused:
// the new grace keeps the resource for the other client. (The model's
// second trail, RECLAIM_EPOCH.)
func TestReclaimFromAnEarlierRestartIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		v := reclaimValidity
		c := newSwapCluster(t, dsync.Config{}, v, v, v)
		lockCtx, err := dsync.NewDRWMutex(c.ds, "obj").GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		c.settle(t, 1)
		// A refresh round counts every node for the deadline: node 2 may
		// have granted after the quorum was in, and not counted for the
		// acquisition's.
		time.Sleep(10 * time.Second)
		synctest.Wait()

		var delayed []locker.LockArgs // written under the node's mu
		c.nodes[2].mu.Lock()
		c.nodes[2].intercept = func(a locker.LockArgs) bool {
			if a.Reclaim {
				delayed = append(delayed, a)
			}
			return a.Reclaim
		}
		c.nodes[2].mu.Unlock()
		c.restartInGrace(2)
		first, _ := c.nodes[2].table()
		time.Sleep(10 * time.Second)
		synctest.Wait() // a refresh round, and its reclaim
		c.nodes[2].mu.Lock()
		c.nodes[2].intercept = nil
		sent := delayed
		c.nodes[2].mu.Unlock()
		require.Len(t, sent, 1)
		stale := sent[0]
		assert.Equal(t, first.Boot().Incarnation, stale.Incarnation, "the reclaim names the incarnation that asked for it")

		time.Sleep(v) // node 2's grace ends
		synctest.Wait()
		r, err := first.Lock(ctx, locker.LockArgs{UID: "other", Resources: []string{"obj"}})
		require.NoError(t, err)
		require.True(t, r.OK, "node 2 no longer holds the lock: it grants another: %+v", r)
		c.restartInGrace(2)
		second, _ := c.nodes[2].table()

		r, err = second.Lock(ctx, stale)
		require.NoError(t, err)
		assert.False(t, r.OK)
		assert.Equal(t, locker.ReasonStaleReclaim, r.Reason)
		r, err = second.Lock(ctx, locker.LockArgs{UID: "other", Resources: []string{"obj"}, Reclaim: true, Incarnation: second.Boot().Incarnation})
		require.NoError(t, err)
		assert.True(t, r.OK, "the other client reclaims what node 2's second restart took: %+v", r)
		require.NoError(t, lockCtx.Err(), "the holder still holds on nodes 0 and 1: %v", context.Cause(lockCtx))
	})
}

// TestReclaimOnANodeThatGrantedLate: GetLock returns once a quorum has
// granted; a node that grants after that holds the lock too, and counts
// for the acquisition's deadline: if it restarts before the first refresh
// round, the holder reclaims there.
func TestReclaimOnANodeThatGrantedLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		v := reclaimValidity
		c := newSwapCluster(t, dsync.Config{}, v, v, v)
		gate := make(chan struct{})
		c.nodes[2].mu.Lock()
		c.nodes[2].intercept = func(locker.LockArgs) bool { <-gate; return false }
		c.nodes[2].mu.Unlock()
		lockCtx, err := dsync.NewDRWMutex(c.ds, "obj").GetLock(ctx, dsync.Options{})
		require.NoError(t, err, "nodes 0 and 1 grant")
		close(gate)
		c.settle(t, 1) // node 2's grant is in

		c.restartInGrace(2)
		time.Sleep(10 * time.Second)
		synctest.Wait() // a refresh round, and its reclaim
		st := c.ds.Stats()
		assert.EqualValues(t, 1, st.Reclaims)
		assert.EqualValues(t, 1, st.Reclaimed)
		tbl, _ := c.nodes[2].table()
		assert.Equal(t, 1, tbl.Stats().Grants)
		require.NoError(t, lockCtx.Err())
	})
}
