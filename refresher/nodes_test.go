package refresher_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/refresher"
)

// holdOn grants uid on the nodes of set and registers it as a lock of
// those nodes (Lock.Nodes), with quorum.
func (f *fixture) holdOn(uid string, quorum int, set []int) {
	f.t.Helper()
	for _, i := range set {
		r, err := f.tables[i].Lock(context.Background(), locker.LockArgs{UID: uid, Resources: []string{uid}})
		require.NoError(f.t, err)
		require.True(f.t, r.OK)
	}
	f.r.Add(refresher.Lock{UID: uid, Quorum: quorum, Acquired: f.clk.Now(), Nodes: set, OnLost: func(err error) {
		f.lostMu.Lock()
		f.lostErr[uid] = err
		f.lostMu.Unlock()
		f.lost <- uid
	}})
}

// Locks of lock sets: each node is sent, in one request, the UIDs of the
// locks on it and no other; a lock's quorum and losses count its nodes
// alone; a node that holds no lock is sent nothing.
func TestLocksOfSetsGoToTheirNodesOnly(t *testing.T) {
	f := newFixture(t, 5)
	f.holdOn("a", 2, []int{0, 1, 2})
	f.holdOn("b", 2, []int{1, 2, 3})
	f.holdOn("c", 2, []int{2, 3, 0})
	st := f.tick()
	assert.Equal(t, 3, st.Refreshed, "%+v", st)
	assert.Zero(t, st.Lost, "nodes outside a lock's set are no denial: %+v", st)
	assert.Equal(t, 4, st.Requests, "node 4 holds nothing: %+v", st)
	for i, want := range []int64{2, 2, 3, 2, 0} {
		assert.Equal(t, min(want, 1), f.nodes[i].refreshes.Load(), "node %d: requests", i)
		assert.Equal(t, want, f.nodes[i].uids.Load(), "node %d: UIDs sent", i)
	}
	// Two of a's three nodes no longer hold it: lost, whatever the others.
	_, err := f.tables[0].ForceUnlock(context.Background(), locker.LockArgs{UID: "a"})
	require.NoError(t, err)
	_, err = f.tables[1].ForceUnlock(context.Background(), locker.LockArgs{UID: "a"})
	require.NoError(t, err)
	st = f.tick()
	assert.Equal(t, 1, st.Lost, "%+v", st)
	assert.Equal(t, "a", <-f.lost)
	assert.ErrorIs(t, f.lostReason("a"), refresher.ErrNotHeld)
}
