package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/cluster"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// Multi-granularity locking over HTTP nodes: what dsync's in-process tests
// show (hierarchy_mode_test.go, mode_test.go), through rest servers and
// clients, with the modes carried on the wire both ways (LockArgs.Mode to
// the nodes, Holder.Mode in their queries' answers).

// modesHeld returns, for every node, the modes in which it holds resource,
// sorted, as a query over HTTP tells them.
func modesHeld(t *testing.T, qs []locker.NetLocker, resource string) [][]locker.Mode {
	t.Helper()
	out := make([][]locker.Mode, len(qs))
	for i, l := range qs {
		r, err := l.(locker.Querier).Query(context.Background(), locker.QueryArgs{Resources: []string{resource}})
		require.NoError(t, err, "query node %d", i)
		require.Len(t, r.Resources, 1)
		for _, h := range r.Resources[0].Holders {
			out[i] = append(out[i], locker.HolderMode(h))
		}
		slices.Sort(out[i])
	}
	return out
}

// everyNode returns n copies of modes: what every node of n must hold.
func everyNode(n int, modes ...locker.Mode) [][]locker.Mode {
	out := make([][]locker.Mode, n)
	for i := range out {
		out[i] = modes
	}
	return out
}

// queued returns how many lock requests wait in the nodes' queues.
func queued(c *cluster.Cluster) int {
	n := 0
	for _, node := range c.Nodes() {
		n += node.Table().Stats().Queued
	}
	return n
}

// Two writers of different objects of one bucket, each an X taken through a
// Hierarchy (with IX on the bucket), hold at once; a listing, S on the
// bucket, waits in the nodes' queues until both have released, and is
// granted then.
func TestHierarchyIntentionsOverHTTP(t *testing.T) {
	c := start(t, cluster.Config{Nodes: 3})
	qs, err := c.Lockers()
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, l := range qs {
			l.Close()
		}
	})
	h, err := dsync.NewHierarchy("bucket", "object")
	require.NoError(t, err)
	ctx := context.Background()
	opts := dsync.Options{Timeout: time.Minute}

	w1, err := h.Lock(ctx, process(t, c, dsync.Config{}), opts, dsync.LevelLock{Level: "object", Name: "photos/cat.jpg"})
	require.NoError(t, err, "writer of cat.jpg")
	w2, err := h.Lock(ctx, process(t, c, dsync.Config{}), opts, dsync.LevelLock{Level: "object", Name: "photos/dog.jpg"})
	require.NoError(t, err, "writer of dog.jpg, while cat.jpg is written")
	require.NoError(t, w1.Context().Err(), "both hold at once")
	// A write quorum granted each lock; the third node's grants follow,
	// each in its own time.
	require.Eventually(t, func() bool {
		return slices.EqualFunc(modesHeld(t, qs, "photos"), everyNode(3, locker.ModeIX, locker.ModeIX), slices.Equal)
	}, time.Minute, 5*time.Millisecond, "every node holds the bucket in IX twice")
	for _, object := range []string{"photos/cat.jpg", "photos/dog.jpg"} {
		require.Eventually(t, func() bool {
			return slices.EqualFunc(modesHeld(t, qs, object), everyNode(3, locker.ModeX), slices.Equal)
		}, time.Minute, 5*time.Millisecond, "every node holds %s in X", object)
	}

	listing := make(chan error, 1)
	var lister *dsync.Held
	go func() {
		var err error
		lister, err = h.Lock(ctx, process(t, c, dsync.Config{}), opts, dsync.LevelLock{Level: "bucket", Name: "photos", Read: true})
		listing <- err
	}()
	require.Eventually(t, func() bool { return queued(c) > 0 }, time.Minute, time.Millisecond, "the listing waits on the nodes")
	assert.Empty(t, listing, "S on the bucket while two of its objects are written")

	require.NoError(t, w1.Release(ctx))
	// Until w2 releases, the bucket holds its IX everywhere, and nothing
	// else: the listing is refused wherever it asks.
	require.Eventually(t, func() bool {
		return slices.EqualFunc(modesHeld(t, qs, "photos"), everyNode(3, locker.ModeIX), slices.Equal)
	}, time.Minute, 5*time.Millisecond, "w1's IX released on every node")
	assert.Empty(t, listing, "S on the bucket while one of its objects is written")
	require.NoError(t, w2.Context().Err())

	require.NoError(t, w2.Release(ctx))
	select {
	case err := <-listing:
		require.NoError(t, err, "S on the bucket once both writers are done")
	case <-time.After(time.Minute):
		t.Fatal("the listing was not granted a minute after both writers released")
	}
	assert.Contains(t, modesHeld(t, qs, "photos")[0:3], []locker.Mode{locker.ModeS})
	require.NoError(t, lister.Release(ctx))
}

// Gray's matrix over HTTP: for every pair of modes, a holder of the first
// on a resource, and another process asking the second. A compatible one
// is granted; an incompatible one times out, having been refused by the
// nodes. ReleaseMode gives the first back, and then the second is granted.
func TestGetModeCompatibilityOverHTTP(t *testing.T) {
	c := start(t, cluster.Config{Nodes: 3})
	holder, asker := process(t, c, dsync.Config{}), process(t, c, dsync.Config{})
	qs, err := c.Lockers()
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, l := range qs {
			l.Close()
		}
	})
	ctx := context.Background()
	modes := []dsync.Mode{dsync.IS, dsync.IX, dsync.S, dsync.SIX, dsync.X}
	compatible := map[dsync.Mode][]dsync.Mode{
		dsync.IS:  {dsync.IS, dsync.IX, dsync.S, dsync.SIX},
		dsync.IX:  {dsync.IS, dsync.IX},
		dsync.S:   {dsync.IS, dsync.S},
		dsync.SIX: {dsync.IS},
		dsync.X:   {},
	}
	for _, a := range modes {
		for _, b := range modes {
			t.Run(fmt.Sprintf("%v-%v", a, b), func(t *testing.T) {
				name := fmt.Sprintf("bucket-%v-%v", a, b)
				first := dsync.NewDRWMutex(holder, name)
				held, err := first.GetMode(ctx, a, dsync.Options{Timeout: time.Minute})
				require.NoError(t, err, "%v on a free resource", a)
				second := dsync.NewDRWMutex(asker, name)
				if slices.Contains(compatible[a], b) {
					_, err := second.GetMode(ctx, b, dsync.Options{Timeout: time.Minute})
					require.NoError(t, err, "%v beside %v", b, a)
					require.NoError(t, held.Err(), "%v still held beside %v", a, b)
					assert.Eventually(t, func() bool {
						return slices.EqualFunc(modesHeld(t, qs, name), everyNode(3, sorted(a, b)...), slices.Equal)
					}, time.Minute, 5*time.Millisecond, "every node holds both")
					require.NoError(t, second.ReleaseMode(ctx, b))
					require.NoError(t, first.ReleaseMode(ctx, a))
					return
				}
				// Refused while a is held: the short timeout is the
				// expected outcome, not a wait for something to happen.
				_, err = second.GetMode(ctx, b, dsync.Options{Timeout: 200 * time.Millisecond})
				require.ErrorIs(t, err, dsync.ErrTimeout, "%v beside %v", b, a)
				for i, m := range modesHeld(t, qs, name) {
					// The first's grant, if it reached the node: nothing
					// beside it.
					assert.Subset(t, []locker.Mode{locker.Mode(a)}, m, "node %d granted %v beside %v", i, b, a)
					assert.LessOrEqual(t, len(m), 1, "node %d granted %v beside %v", i, b, a)
				}
				require.NoError(t, first.ReleaseMode(ctx, a))
				assert.Eventually(t, func() bool {
					return slices.EqualFunc(modesHeld(t, qs, name), everyNode(3), slices.Equal)
				}, time.Minute, 5*time.Millisecond, "ReleaseMode(%v) leaves nothing on the nodes", a)
				_, err = second.GetMode(ctx, b, dsync.Options{Timeout: time.Minute})
				require.NoError(t, err, "%v once %v is released", b, a)
				require.NoError(t, second.ReleaseMode(ctx, b))
			})
		}
	}
}

// sorted returns the locker modes of ms, sorted, as modesHeld reports them.
func sorted(ms ...dsync.Mode) []locker.Mode {
	out := make([]locker.Mode, len(ms))
	for i, m := range ms {
		out[i] = locker.Mode(m)
	}
	slices.Sort(out)
	return out
}
