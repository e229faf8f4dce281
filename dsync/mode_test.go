package dsync_test

import (
	"context"
	"fmt"
	"log"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

var allModes = []dsync.Mode{dsync.IS, dsync.IX, dsync.S, dsync.SIX, dsync.X}

// modeMatrix is Gray's compatibility matrix: modeMatrix[held][asked].
var modeMatrix = map[dsync.Mode]map[dsync.Mode]bool{
	dsync.IS:  {dsync.IS: true, dsync.IX: true, dsync.S: true, dsync.SIX: true},
	dsync.IX:  {dsync.IS: true, dsync.IX: true},
	dsync.S:   {dsync.IS: true, dsync.S: true},
	dsync.SIX: {dsync.IS: true},
	dsync.X:   {},
}

// TestModeMatrixThroughQuorum asks for every pair of modes through the
// quorum client, with 3 and 4 nodes (an even n makes R+W = n+1 exactly): a
// compatible pair is held at once, a conflicting one waits until the
// first is released.
func TestModeMatrixThroughQuorum(t *testing.T) {
	for _, n := range []int{3, 4} {
		t.Run(fmt.Sprint(n, "nodes"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newWaitingCluster(t, n, nil)
				a := c.client(t, "a", dsync.Config{})
				b := c.client(t, "b", dsync.Config{})
				ctx := context.Background()
				for _, held := range allModes {
					for _, asked := range allModes {
						ma := dsync.NewDRWMutex(a, "bucket")
						mb := dsync.NewDRWMutex(b, "bucket")
						_, err := ma.GetMode(ctx, held, dsync.Options{Timeout: time.Second})
						require.NoError(t, err, "%v on a free resource", held)

						_, err = mb.GetMode(ctx, asked, dsync.Options{Timeout: time.Second})
						if modeMatrix[held][asked] {
							require.NoError(t, err, "%v while %v is held", asked, held)
							require.NoError(t, mb.ReleaseMode(ctx, asked))
							require.NoError(t, ma.ReleaseMode(ctx, held))
							continue
						}
						require.ErrorIs(t, err, dsync.ErrTimeout, "%v while %v is held", asked, held)

						// It waits for the holder, and gets the lock at its release.
						got := make(chan error, 1)
						go func() {
							_, err := mb.GetMode(ctx, asked, dsync.Options{Timeout: time.Minute})
							got <- err
						}()
						synctest.Wait()
						assert.Empty(t, got, "%v granted while %v is held", asked, held)
						require.NoError(t, ma.ReleaseMode(ctx, held))
						require.NoError(t, <-got, "%v after %v was released", asked, held)
						require.NoError(t, mb.ReleaseMode(ctx, asked))
					}
				}
			})
		})
	}
}

// The quorums: IS and S are granted by a read quorum, IX, SIX and X by a
// write quorum, and the nodes' listings show the mode.
func TestModeQuorums(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newWaitingCluster(t, 4, nil)
		ds := c.client(t, "a", dsync.Config{})
		ctx := context.Background()
		want := map[dsync.Mode]int{dsync.IS: 2, dsync.S: 2, dsync.IX: 3, dsync.SIX: 3, dsync.X: 3}
		for _, mode := range allModes {
			m := dsync.NewDRWMutex(ds, "r")
			_, err := m.GetMode(ctx, mode, dsync.Options{Timeout: time.Second})
			require.NoError(t, err)
			synctest.Wait() // the grants beyond the quorum come in too
			for i, tbl := range c.tables {
				list, err := tbl.List(ctx, locker.ListArgs{})
				require.NoError(t, err)
				for _, e := range list.Entries {
					assert.Equal(t, locker.Mode(mode), e.Mode, "node %d", i)
					assert.Equal(t, want[mode], e.Quorum, "%v's quorum", mode)
				}
			}
			require.NoError(t, m.ReleaseMode(ctx, mode))
		}
	})
}

// GetRLock is GetMode(S): it conflicts with an IX held by another, and an
// IX waits for readers as for an S.
func TestModeRLockConflictsWithIX(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newWaitingCluster(t, 3, nil)
		a := c.client(t, "a", dsync.Config{})
		b := c.client(t, "b", dsync.Config{})
		ctx := context.Background()
		ix := dsync.NewDRWMutex(a, "bucket")
		_, err := ix.GetMode(ctx, dsync.IX, dsync.Options{})
		require.NoError(t, err)

		reader := dsync.NewDRWMutex(b, "bucket")
		_, err = reader.GetRLock(ctx, dsync.Options{Timeout: time.Second})
		require.ErrorIs(t, err, dsync.ErrTimeout, "GetRLock while an IX is held")
		ok, _, err := reader.TryRLock(ctx)
		require.NoError(t, err)
		assert.False(t, ok, "TryRLock while an IX is held")

		require.NoError(t, ix.ReleaseMode(ctx, dsync.IX))
		_, err = reader.GetRLock(ctx, dsync.Options{Timeout: time.Second})
		require.NoError(t, err, "GetRLock once the IX is released")

		_, err = ix.GetMode(ctx, dsync.IX, dsync.Options{Timeout: time.Second})
		require.ErrorIs(t, err, dsync.ErrTimeout, "IX while a read lock is held")
		_, err = ix.GetMode(ctx, dsync.IS, dsync.Options{Timeout: time.Second})
		require.NoError(t, err, "IS beside a read lock")
		require.NoError(t, reader.RUnlock(ctx))
		require.NoError(t, ix.ReleaseMode(ctx, dsync.IS))
	})
}

// A lock of an intention mode is refreshed like any other, and outlives
// many validities of the nodes.
func TestModeIsRefreshed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newWaitingCluster(t, 3, nil)
		a := c.client(t, "a", dsync.Config{})
		b := c.client(t, "b", dsync.Config{})
		ctx := context.Background()
		m := dsync.NewDRWMutex(a, "bucket")
		lockCtx, err := m.GetMode(ctx, dsync.SIX, dsync.Options{})
		require.NoError(t, err)
		time.Sleep(5 * time.Minute) // virtual time: five validities of the nodes
		require.NoError(t, lockCtx.Err(), "the SIX was lost")
		_, err = dsync.NewDRWMutex(b, "bucket").GetMode(ctx, dsync.IX, dsync.Options{Timeout: time.Second})
		require.ErrorIs(t, err, dsync.ErrTimeout, "IX while the SIX is held")
		require.NoError(t, m.ReleaseMode(ctx, dsync.SIX))
	})
}

func TestReleaseModeNotHeldPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newWaitingCluster(t, 3, nil)
		ds := c.client(t, "a", dsync.Config{})
		ctx := context.Background()
		m := dsync.NewDRWMutex(ds, "bucket")
		_, err := m.GetMode(ctx, dsync.IX, dsync.Options{})
		require.NoError(t, err)
		assert.PanicsWithValue(t, "dsync: ReleaseMode of IS on a DRWMutex that does not hold it", func() { m.ReleaseMode(ctx, dsync.IS) })
		assert.Panics(t, func() { m.RUnlock(ctx) }, "RUnlock of an IX")
		assert.Panics(t, func() { m.ReleaseMode(ctx, 9) })
		_, err = m.GetMode(ctx, 9, dsync.Options{})
		assert.ErrorIs(t, err, locker.ErrInvalidArgs)
		require.NoError(t, m.ReleaseMode(ctx, dsync.IX))
	})
}

func ExampleDRWMutex_GetMode() {
	ds, err := dsync.New(threeNodes(), dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()

	// Two writers of different objects announce them on the bucket with an
	// IX each: intention locks of the same kind share the bucket.
	w1 := dsync.NewDRWMutex(ds, "bucket")
	w2 := dsync.NewDRWMutex(ds, "bucket")
	if _, err := w1.GetMode(ctx, dsync.IX, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	if _, err := w2.GetMode(ctx, dsync.IX, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	// A listing of the whole bucket, a read lock (S), waits for them.
	lister := dsync.NewDRWMutex(ds, "bucket")
	ok, _, _ := lister.TryRLock(ctx)
	fmt.Println("listing while objects are written:", ok)

	w1.ReleaseMode(ctx, dsync.IX)
	w2.ReleaseMode(ctx, dsync.IX)
	ok, _, _ = lister.TryRLock(ctx)
	fmt.Println("listing once they are done:", ok)
	lister.RUnlock(ctx)
	// Output:
	// listing while objects are written: false
	// listing once they are done: true
}
