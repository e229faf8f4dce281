package locker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBusyRefusesPastMaxWaiters(t *testing.T) {
	l := New(Config{QuietPeriod: NoQuietPeriod, MaxWaiters: 1, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	// Hold the shard of "a", so that a lock of "a" waits for it.
	sa := &l.shards[l.shardOf(l.hash("a"))]
	sa.mu.Lock()
	// The second caller's UID must not sort before "a"'s shard, or it could
	// wait on a shard the first caller holds rather than be refused on "a"'s.
	u2 := "u2"
	for i := 0; l.shardOf(l.hash(u2)) < l.shardOf(l.hash("a")); i++ {
		u2 = fmt.Sprint("u2-", i)
	}

	first := make(chan error, 1)
	go func() {
		r, err := l.Lock(ctx, LockArgs{UID: "u1", Resources: []string{"a"}})
		if err == nil && !r.OK {
			err = errors.New("refused")
		}
		first <- err
	}()
	// Wait until the goroutine counts as a waiter on one of those shards.
	for sa.waiters.Load() == 0 {
		runtime.Gosched()
	}
	_, err := l.Lock(ctx, LockArgs{UID: u2, Resources: []string{"a"}})
	require.ErrorIs(t, err, ErrBusy, "second waiter")
	// Unlocks are never refused: ErrBusy must not apply to them.
	sa.mu.Unlock()
	require.NoError(t, <-first, "first waiter")
	r, err := l.Unlock(ctx, LockArgs{UID: "u1"})
	require.NoError(t, err, "unlock")
	require.True(t, r.OK, "unlock: %v", r)
	require.Equal(t, Stats{}, l.Stats(), "busy call left state behind")
}

// Names whose hashes collide are told apart by name. Real collisions of
// 64-bit hashes do not happen in tests, so drive a shard with one hash for
// several names.
func TestShardHashCollisions(t *testing.T) {
	var s shard
	s.init()
	const h = 42
	a, b, c := &grant{uid: "a"}, &grant{uid: "b"}, &grant{uid: "c"}
	for _, g := range []*grant{a, b, c} {
		s.putGrant(h, g)
	}
	for _, g := range []*grant{a, b, c} {
		require.Same(t, g, s.grant(h, g.uid), "grant(%s) not found", g.uid)
	}
	require.Nil(t, s.grant(h, "d"), "found a grant never added")
	s.dropGrant(h, b) // middle of the probe run
	require.Nil(t, s.grant(h, "b"), "dropping the middle of the run broke it")
	require.Same(t, a, s.grant(h, "a"), "dropping the middle of the run broke it")
	require.Same(t, c, s.grant(h, "c"), "dropping the middle of the run broke it")
	s.dropGrant(h, a) // its start
	s.dropGrant(h, c)
	require.Zero(t, s.grants.len(), "entries the grants index keeps")

	x, y := &grant{uid: "x"}, &grant{uid: "y"}
	s.newResource(h, "r1").writer = x
	s.newResource(h, "r2").addReader(y)
	require.Same(t, x, s.resource(h, "r1").writer, "colliding resources mixed up")
	require.Len(t, s.resource(h, "r2").readerGrants(), 1, "colliding resources mixed up")
	s.release(s.resource(h, "r1"), x, func() int64 { return 0 })
	require.Nil(t, s.resource(h, "r1"), "releasing one colliding resource disturbed the other")
	require.NotNil(t, s.resource(h, "r2"), "releasing one colliding resource disturbed the other")
	s.release(s.resource(h, "r2"), y, func() int64 { return 0 })
	require.Zero(t, s.resources.len(), "entries the resources index keeps")
}

func TestOriginsAreInternedAndForgotten(t *testing.T) {
	l := New(Config{QuietPeriod: NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	for i := range 100 {
		a := LockArgs{UID: fmt.Sprint("u", i), Resources: []string{fmt.Sprint("r", i)}, Owner: "host:1", Source: fmt.Sprint("f.go:", i%3)}
		r, err := l.Lock(ctx, a)
		require.NoError(t, err)
		require.True(t, r.OK, "%v", r)
	}
	distinct := 0
	for i := range l.shards {
		distinct += len(l.shards[i].origins)
	}
	require.LessOrEqual(t, distinct, 3*len(l.shards), "interned origins for 3 distinct ones")
	require.GreaterOrEqual(t, distinct, 3, "interned origins for 3 distinct ones")
	entries, _ := listAll(ctx, l)
	for _, e := range entries {
		require.Equal(t, "host:1", e.Owner, "entry %+v lost its origin", e)
		require.NotEmpty(t, e.Source, "entry %+v lost its origin", e)
	}
	for i := range 100 {
		l.Unlock(ctx, LockArgs{UID: fmt.Sprint("u", i)})
	}
	l.Expire() // the sweep forgets unused origins
	for i := range l.shards {
		require.Empty(t, l.shards[i].origins, "shard %d keeps origins after every grant left", i)
	}
}

func TestDefaultShards(t *testing.T) {
	for _, c := range []struct{ procs, want int }{
		{1, 8}, {2, 8}, {3, 16}, {4, 16}, {16, 64}, {64, 256}, {1000, 256},
	} {
		assert.Equal(t, c.want, defaultShards(c.procs), "defaultShards(%d)", c.procs)
	}
	l := New(Config{QuietPeriod: NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	assert.Len(t, l.shards, defaultShards(runtime.GOMAXPROCS(0)), "shards of New(Config{})")
}

// TestSweepGivesBackIndexSlots checks that the slots a surge of locks took
// are given back by the sweep once the locks are gone, and not before: a
// table whose locks come and go in waves keeps its indexes' size between
// sweeps instead of resizing them on every wave.
func TestSweepGivesBackIndexSlots(t *testing.T) {
	l := New(Config{QuietPeriod: NoQuietPeriod, SweepInterval: -1, Shards: 1})
	defer l.Close()
	ctx := context.Background()
	s := &l.shards[0]
	for i := range 1000 {
		a := LockArgs{UID: fmt.Sprint("u", i), Resources: []string{fmt.Sprint("r", i)}}
		r, err := l.Lock(ctx, a)
		require.NoError(t, err)
		require.True(t, r.OK, "%v", r)
	}
	peak := len(s.grants.slots)
	for i := range 999 {
		r, err := l.Unlock(ctx, LockArgs{UID: fmt.Sprint("u", i)})
		require.NoError(t, err)
		require.True(t, r.OK, "%v", r)
	}
	// Unlocked grants leave no tombstone; the resources' index is as big.
	require.Len(t, s.grants.slots, peak, "unlocks resized the grants index")
	require.GreaterOrEqual(t, len(s.resources.slots), peak, "unlocks resized the resources index")
	l.Expire()
	require.Len(t, s.grants.slots, minIndexSize, "grants index slots for one lock after the sweep")
	require.Len(t, s.resources.slots, minIndexSize, "resources index slots for one lock after the sweep")
	r, err := l.Unlock(ctx, LockArgs{UID: "u999"})
	require.NoError(t, err)
	require.True(t, r.OK, "%v", r)
	l.Expire()
	require.Nil(t, s.grants.slots, "an empty table keeps %d grants slots", len(s.grants.slots))
	require.Nil(t, s.resources.slots, "an empty table keeps %d resources slots", len(s.resources.slots))
}

// A grant is kept to 96 bytes and a resource entry to 48, size classes of
// the allocator (see their doc comments): a node holding a million locks
// holds a million of each.
func TestEntrySizes(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(grant{}), uintptr(104), "bytes a grant takes")
	assert.LessOrEqual(t, unsafe.Sizeof(resource{}), uintptr(48), "bytes a resource entry takes")
}

// A grant keeps the holder its request named in its own buffer, after its
// UID, and interns only the owner and call site: holders of their own per
// lock share one origin. Grants recycled into new ones with UIDs, holders
// and names of other lengths must each list exactly what they were given,
// and the lists and wait edges must hold copies.
func TestHolderKeptWithGrant(t *testing.T) {
	l := New(Config{QuietPeriod: NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	type held struct{ holder, resource string }
	model := map[string]held{}
	for round := range 4 {
		for i := range 50 {
			uid := fmt.Sprintf("u%d-%s", i, strings.Repeat("x", (i*7+round)%23))
			h := held{resource: fmt.Sprintf("r%d-%d-%s", round, i, strings.Repeat("n", i%5))}
			if i%3 != 0 {
				h.holder = fmt.Sprintf("host:1/%s", strings.Repeat("h", (i+round)%40))
			}
			a := LockArgs{UID: uid, Resources: []string{h.resource, h.resource + "/more"}, Owner: "host:1", Source: "f.go:1", Holder: h.holder}
			r, err := l.Lock(ctx, a)
			require.NoError(t, err)
			require.True(t, r.OK, "%v", r)
			model[uid] = h
		}
		entries, err := listAll(ctx, l)
		require.NoError(t, err)
		require.Len(t, entries, 2*len(model), "round %d: entries for %d grants on two resources", round, len(model))
		for _, e := range entries {
			h := model[e.UID]
			require.Equal(t, h.holder, e.Holder, "round %d: entry %+v, want holder %q on %q", round, e, h.holder, h.resource)
			require.True(t, e.Resource == h.resource || e.Resource == h.resource+"/more", "round %d: entry %+v, want holder %q on %q", round, e, h.holder, h.resource)
			require.Equal(t, "host:1", e.Owner, "round %d: entry %+v, want holder %q on %q", round, e, h.holder, h.resource)
		}
		// Release two thirds, so that their buffers go to the next round's
		// grants.
		for uid := range model {
			if len(uid)%3 != 0 {
				r, err := l.Unlock(ctx, LockArgs{UID: uid})
				require.NoError(t, err)
				require.True(t, r.OK, "%v", r)
				delete(model, uid)
			}
		}
	}
	distinct := 0
	for i := range l.shards {
		distinct += len(l.shards[i].origins)
	}
	require.LessOrEqual(t, distinct, len(l.shards), "interned origins for one owner and call site")
}

func TestHolderLimit(t *testing.T) {
	// The most a table may be configured to accept, which its grants keep
	// the length of in two bytes.
	l := New(Config{QuietPeriod: NoQuietPeriod, SweepInterval: -1, MaxLabelLen: MaxHolderLen})
	defer l.Close()
	a := LockArgs{UID: "u", Resources: []string{"r"}, Holder: strings.Repeat("h", MaxHolderLen+1)}
	_, err := l.Lock(context.Background(), a)
	require.ErrorIs(t, err, ErrInvalidArgs, "Lock with a holder over the limit")
	require.ErrorContains(t, err, "holder of 65536 bytes", "Lock with a holder over the limit: want its length named")
	a.Holder = a.Holder[1:]
	r, err := l.Lock(context.Background(), a)
	require.NoError(t, err, "Lock with a holder at the limit")
	require.True(t, r.OK, "Lock with a holder at the limit = %+v", r)
	entries, _ := listAll(context.Background(), l)
	require.Len(t, entries, 1, "the holder at the limit is not kept whole")
	// Not require.Equal: its message would print both 64 KiB holders.
	require.True(t, entries[0].Holder == a.Holder, "the holder at the limit is not kept whole")
}

// listAll returns the whole listing of l, walking its pages.
func listAll(ctx context.Context, l Lister) ([]Entry, error) {
	var out []Entry
	for e, err := range Entries(ctx, l, 0) {
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
