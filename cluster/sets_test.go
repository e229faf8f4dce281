package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/cluster"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/layout"
	"github.com/dsync-go/dsync/locker"
)

// nameIn returns a name that falls into set s of sets.
func nameIn(s, sets int) string {
	for i := 0; ; i++ {
		if name := fmt.Sprint("obj-", i); dsync.SetIndex(name, sets) == s {
			return name
		}
	}
}

// Lock sets over HTTP: the nodes know their layout, a client of the same
// layout locks through them, with one node of every set down, across sets
// too; a client of another layout is refused.
func TestLockSetsOverHTTP(t *testing.T) {
	ctx := context.Background()
	c := start(t, cluster.Config{Nodes: 6, SetSize: 3})
	require.Len(t, c.Layout().Sets, 2)
	sets, err := c.LockerSets(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, set := range sets {
			for _, l := range set {
				l.Close()
			}
		}
	})
	ds, err := dsync.NewSets(sets, dsync.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { ds.Close() })

	require.NoError(t, c.Stop(0)) // one node of set 0
	require.NoError(t, c.Stop(5)) // one node of set 1
	for _, names := range [][]string{{nameIn(0, 2)}, {nameIn(1, 2)}, {nameIn(0, 2), nameIn(1, 2)}} {
		m := dsync.NewDRWMutex(ds, names...)
		_, err := m.GetLock(ctx, dsync.Options{Timeout: 10 * time.Second})
		require.NoError(t, err, "%v", names)
		require.NoError(t, m.Unlock(ctx))
	}

	// A client that takes the six nodes as one set, or as three sets of
	// two, is refused by every node that answers.
	ls, err := c.Lockers()
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, l := range ls {
			l.Close()
		}
	})
	for _, size := range []int{0, 2} {
		other, err := layout.Parse(c.Endpoints(), size)
		require.NoError(t, err)
		err = layout.Check(ctx, other, []locker.NetLocker{ls[1], ls[2], ls[3], ls[4]})
		require.ErrorIs(t, err, layout.ErrMismatch, "sets of %d", size)
		assert.Contains(t, err.Error(), c.Layout().Fingerprint(), "the error names the nodes' layout")
	}
}

// Nodes told no layout are one set, as before lock sets: a client of one
// set passes the check, a client of sets does not.
func TestClusterWithoutSetsIsOneSet(t *testing.T) {
	ctx := context.Background()
	c := start(t, cluster.Config{Nodes: 4})
	sets, err := c.LockerSets(ctx)
	require.NoError(t, err)
	require.Len(t, sets, 1)
	for _, l := range sets[0] {
		l.Close()
	}
	two, err := layout.Parse(c.Endpoints(), 2)
	require.NoError(t, err)
	ls, err := c.Lockers()
	require.NoError(t, err)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	require.ErrorIs(t, layout.Check(ctx, two, ls), layout.ErrMismatch)
}
