package dsync_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

var bucketsAndObjects, _ = dsync.NewHierarchy("bucket", "object")

// modesOn returns the modes in which node tbl holds resource, sorted.
func modesOn(t *testing.T, tbl *locker.Local, resource string) []locker.Mode {
	t.Helper()
	list, err := tbl.List(context.Background(), locker.ListArgs{})
	require.NoError(t, err)
	var modes []locker.Mode
	for _, e := range list.Entries {
		if e.Resource == resource {
			modes = append(modes, e.Mode)
		}
	}
	slices.Sort(modes)
	return modes
}

// Writers of different objects of one bucket hold the bucket in IX
// together; a listing (S on the bucket) waits until both are done.
func TestHierarchyIntentionWritersShareBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newWaitingCluster(t, 3, nil)
		ctx := context.Background()
		w1, err := bucketsAndObjects.Lock(ctx, c.client(t, "w1", dsync.Config{}), dsync.Options{Timeout: time.Second},
			dsync.LevelLock{Level: "object", Name: "photos/cat.jpg"})
		require.NoError(t, err)
		w2, err := bucketsAndObjects.Lock(ctx, c.client(t, "w2", dsync.Config{}), dsync.Options{Timeout: time.Second},
			dsync.LevelLock{Level: "object", Name: "photos/dog.jpg"})
		require.NoError(t, err, "a writer of another object of the bucket")
		synctest.Wait()
		for i, tbl := range c.tables {
			assert.Equal(t, []locker.Mode{locker.ModeIX, locker.ModeIX}, modesOn(t, tbl, "photos"), "node %d", i)
			assert.Equal(t, []locker.Mode{locker.ModeX}, modesOn(t, tbl, "photos/cat.jpg"), "node %d", i)
		}

		lister := c.client(t, "lister", dsync.Config{})
		_, err = bucketsAndObjects.Lock(ctx, lister, dsync.Options{Timeout: time.Second}, dsync.LevelLock{Level: "bucket", Name: "photos", Read: true})
		require.ErrorIs(t, err, dsync.ErrTimeout, "S on the bucket while objects are written")

		got := make(chan error, 1)
		var listing *dsync.Held
		go func() {
			var err error
			listing, err = bucketsAndObjects.Lock(ctx, lister, dsync.Options{Timeout: time.Hour}, dsync.LevelLock{Level: "bucket", Name: "photos", Read: true})
			got <- err
		}()
		synctest.Wait()
		require.NoError(t, w1.Release(ctx))
		synctest.Wait()
		assert.Empty(t, got, "S on the bucket while one object is written")
		require.NoError(t, w2.Release(ctx))
		require.NoError(t, <-got, "S on the bucket once both writers are done")
		require.NoError(t, listing.Release(ctx))
	})
}

// A holder of S on a bucket keeps writers of its objects out, and so does
// a holder of X; IS of a reader of an object goes beside an S.
func TestHierarchyIntentionBucketLockKeepsObjectsOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newWaitingCluster(t, 3, nil)
		ctx := context.Background()
		a := c.client(t, "a", dsync.Config{})
		b := c.client(t, "b", dsync.Config{})
		for _, bucket := range []dsync.LevelLock{
			{Level: "bucket", Name: "photos", Read: true},
			{Level: "bucket", Name: "photos"},
			{Level: "bucket", Name: "photos", Mode: dsync.SIX, Read: true}, // Mode wins over Read
		} {
			held, err := bucketsAndObjects.Lock(ctx, a, dsync.Options{Timeout: time.Second}, bucket)
			require.NoError(t, err)
			_, err = bucketsAndObjects.Lock(ctx, b, dsync.Options{Timeout: time.Second}, dsync.LevelLock{Level: "object", Name: "photos/cat.jpg"})
			require.ErrorIs(t, err, dsync.ErrTimeout, "X on an object while the bucket is held in %+v", bucket)

			reader, err := bucketsAndObjects.Lock(ctx, b, dsync.Options{Timeout: time.Second}, dsync.LevelLock{Level: "object", Name: "photos/cat.jpg", Read: true})
			if bucket.Read && bucket.Mode != dsync.SIX {
				require.NoError(t, err, "S on an object (IS on the bucket) beside an S on the bucket")
				require.NoError(t, reader.Release(ctx))
			} else if bucket.Mode == dsync.SIX {
				require.NoError(t, err, "S on an object (IS on the bucket) beside a SIX on the bucket")
				require.NoError(t, reader.Release(ctx))
			} else {
				require.ErrorIs(t, err, dsync.ErrTimeout, "S on an object while the bucket is held in X")
			}
			require.NoError(t, held.Release(ctx))

			w, err := bucketsAndObjects.Lock(ctx, b, dsync.Options{Timeout: time.Second}, dsync.LevelLock{Level: "object", Name: "photos/cat.jpg"})
			require.NoError(t, err, "X on an object once the bucket is released")
			require.NoError(t, w.Release(ctx))
		}
	})
}

// unlockRecorder records the resources of the grants a node releases, in
// the order of the releases.
type unlockRecorder struct {
	locker.NetLocker
	mu    sync.Mutex
	res   map[string]string // uid -> its resources
	order []string
}

func (u *unlockRecorder) note(args locker.LockArgs) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.res == nil {
		u.res = map[string]string{}
	}
	u.res[args.UID] = args.Resources[0]
}

func (u *unlockRecorder) released(args locker.LockArgs) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.order = append(u.order, u.res[args.UID])
}

func (u *unlockRecorder) Lock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	u.note(args)
	return u.NetLocker.Lock(ctx, args)
}

func (u *unlockRecorder) RLock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	u.note(args)
	return u.NetLocker.RLock(ctx, args)
}

func (u *unlockRecorder) Unlock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	r, err := u.NetLocker.Unlock(ctx, args)
	u.released(args)
	return r, err
}

func (u *unlockRecorder) RUnlock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	r, err := u.NetLocker.RUnlock(ctx, args)
	u.released(args)
	return r, err
}

// The intention lock is released after the object's lock: innermost
// first.
func TestHierarchyIntentionReleasedInnermostFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var recs []*unlockRecorder
		c := newWaitingCluster(t, 3, func(_ int, l *locker.Local) locker.NetLocker {
			r := &unlockRecorder{NetLocker: l}
			recs = append(recs, r)
			return r
		})
		ctx := context.Background()
		held, err := bucketsAndObjects.Lock(ctx, c.client(t, "a", dsync.Config{}), dsync.Options{},
			dsync.LevelLock{Level: "object", Name: "photos/cat.jpg"})
		require.NoError(t, err)
		require.NoError(t, held.Release(ctx))
		synctest.Wait()
		// Each level's release returns at a quorum, before the next is
		// sent: a node left behind may see them the other way round, but a
		// majority sees them in the order sent.
		// A release may also overtake its own lock request on the node left
		// behind (recorded as "": the node keeps a tombstone that refuses
		// the request): such a node saw no order to check.
		inOrder := 0
		for i, r := range recs {
			seen := slices.DeleteFunc(slices.Clone(r.order), func(s string) bool { return s == "" })
			assert.Subset(t, []string{"photos/cat.jpg", "photos"}, seen, "node %d", i)
			if slices.Equal([]string{"photos/cat.jpg", "photos"}, seen) {
				inOrder++
			}
		}
		assert.GreaterOrEqual(t, inOrder, 2, "the object released before the bucket on a majority of nodes")
	})
}
