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

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// setsCluster is nodes in lock sets, and clients of them.
type setsCluster struct {
	t      *testing.T
	nodes  []*node
	layout [][]int // per set, its nodes (indexes in nodes)
	ds     *dsync.Dsync
}

// newSetsCluster starts nodes in-memory nodes and a client of them in the
// sets of layout, on the real clock (in a synctest bubble if the test
// runs in one).
func newSetsCluster(t *testing.T, nodes int, layout [][]int) *setsCluster {
	t.Helper()
	c := &setsCluster{t: t, layout: layout}
	clk := clock.Real()
	for range nodes {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: validity, Clock: clk, SweepInterval: -1})
		t.Cleanup(func() { tbl.Close() })
		c.nodes = append(c.nodes, &node{Local: tbl, clk: clk})
	}
	c.ds = c.client()
	return c
}

// disjointSets returns the layout of sets sets of size nodes each, node
// i*size+j being node j of set i.
func disjointSets(sets, size int) [][]int {
	layout := make([][]int, sets)
	for s := range layout {
		for j := range size {
			layout[s] = append(layout[s], s*size+j)
		}
	}
	return layout
}

// lockersOf returns the lockers of layout's sets.
func (c *setsCluster) lockersOf(layout [][]int) [][]locker.NetLocker {
	sets := make([][]locker.NetLocker, len(layout))
	for s, ns := range layout {
		for _, i := range ns {
			sets[s] = append(sets[s], c.nodes[i])
		}
	}
	return sets
}

// setsTestConfig is the clients' configuration in these tests.
var setsTestConfig = dsync.Config{Validity: validity, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}

// clientOf returns a client of the sets of layout, closed at the end of
// the test.
func (c *setsCluster) clientOf(layout [][]int) *dsync.Dsync {
	c.t.Helper()
	ds, err := dsync.NewSets(c.lockersOf(layout), setsTestConfig)
	require.NoError(c.t, err)
	c.t.Cleanup(func() { ds.Close() })
	return ds
}

// client makes another client of c's sets, closed at the end of the test.
func (c *setsCluster) client() *dsync.Dsync {
	c.t.Helper()
	return c.clientOf(c.layout)
}

// lockExclusively takes a write lock on names through ds, counts itself
// in each name's inside counter (every count must be 1: no other holder),
// and releases it. It reports false if the lock was not taken.
func lockExclusively(t *testing.T, ds *dsync.Dsync, names []string, inside map[string]*atomic.Int32, what string) bool {
	ctx := context.Background()
	m := dsync.NewDRWMutex(ds, names...)
	_, err := m.GetLock(ctx, dsync.Options{Timeout: 30 * time.Second})
	if !assert.NoError(t, err, "%s: lock %v", what, names) {
		return false
	}
	for _, n := range names {
		assert.Equal(t, int32(1), inside[n].Add(1), "%s: two holders of %q", what, n)
	}
	for _, n := range names {
		inside[n].Add(-1)
	}
	assert.NoError(t, m.Unlock(ctx))
	return true
}

// grantsOf counts the grants held on the nodes of set s.
func (c *setsCluster) grantsOf(s int) int {
	total := 0
	for _, i := range c.layout[s] {
		total += c.nodes[i].Stats().Grants
	}
	return total
}

// grants counts the grants held on every node.
func (c *setsCluster) grants() int {
	total := 0
	for _, n := range c.nodes {
		total += n.Stats().Grants
	}
	return total
}

// nameIn returns a name with prefix that falls into set s of sets.
func nameIn(prefix string, s, sets int) string {
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		if dsync.SetIndex(name, sets) == s {
			return name
		}
	}
}

func TestSetIndexIsStable(t *testing.T) {
	// FNV-1a 64 modulo n: golden values, so that a change of the hash,
	// which would split clients of one layout, fails here.
	for _, tc := range []struct {
		name string
		n    int
		want int
	}{
		{"", 7, int(14695981039346656037 % 7)},
		{"a", 1 << 30, int(0xaf63dc4c8601ec8c % (1 << 30))},
		{"bucket/object", 4, int(0x1e87a8867973395f % 4)},
	} {
		assert.Equal(t, tc.want, dsync.SetIndex(tc.name, tc.n), "SetIndex(%q, %d)", tc.name, tc.n)
	}
	// Spread: 4000 names over 4 sets, each within 15% of a quarter.
	count := make([]int, 4)
	for i := range 4000 {
		count[dsync.SetIndex(fmt.Sprintf("bucket/object-%d", i), 4)]++
	}
	for s, n := range count {
		assert.InDelta(t, 1000, n, 150, "set %d of 4 has %d of 4000 names", s, n)
	}
}

func TestNewSetsRejects(t *testing.T) {
	a := locker.New(locker.Config{})
	b := locker.New(locker.Config{})
	defer a.Close()
	defer b.Close()
	for name, sets := range map[string][][]locker.NetLocker{
		"no sets":         nil,
		"empty set":       {{a}, {}},
		"nil locker":      {{a}, {nil}},
		"twice in a set":  {{a, b}, {b, b}},
		"different sizes": {{a, b}, {a}},
	} {
		_, err := dsync.NewSets(sets, dsync.Config{})
		assert.Error(t, err, name)
	}
	_, err := dsync.NewSets([][]locker.NetLocker{{a}, {b}}, dsync.Config{RetryMin: time.Second, RetryMax: time.Millisecond})
	assert.Error(t, err, "invalid config")
}

// A resource is locked on its set alone, with that set's quorum.
func TestSetsLockOnTheResourcesSet(t *testing.T) {
	ctx := context.Background()
	c := newSetsCluster(t, 9, disjointSets(3, 3))
	require.Equal(t, 3, c.ds.Sets())
	require.Equal(t, 9, c.ds.Lockers())
	require.Equal(t, 2, c.ds.WriteQuorum(), "quorums are of a set")
	require.Equal(t, 2, c.ds.ReadQuorum())
	for s := range 3 {
		name := nameIn("obj", s, 3)
		m := dsync.NewDRWMutex(c.ds, name)
		_, err := m.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		waitForGrants(t, c, 3) // GetLock returns at a quorum: the third grant may come after
		assert.Equal(t, 3, c.grantsOf(s), "lock on %q (set %d) granted on its nodes, and on no other", name, s)
		require.NoError(t, m.Unlock(ctx))
		waitForGrants(t, c, 0)
	}
}

// waitForGrants waits until c holds want grants: Unlock returns at a
// quorum, and the last node's release may still be on its way.
func waitForGrants(t *testing.T, c *setsCluster, want int) {
	t.Helper()
	waitUntil(t, fmt.Sprint(want, " grants"), func() bool { return c.grants() == want })
}

// Every primitive works on a Dsync of sets as on one of New: two clients
// exclude each other through it.
func TestSetsEveryPrimitive(t *testing.T) {
	ctx := context.Background()
	c := newSetsCluster(t, 9, disjointSets(3, 3))
	other := c.client()
	short := dsync.Options{Timeout: 20 * time.Millisecond}

	t.Run("Mutex", func(t *testing.T) {
		for s := range 3 {
			name := nameIn("mutex", s, 3)
			a, b := dsync.NewMutex(c.ds, name), dsync.NewMutex(other, name)
			_, err := a.Lock(ctx)
			require.NoError(t, err)
			ok, _, err := b.TryLock(ctx)
			require.NoError(t, err)
			assert.False(t, ok, "a second client got %q", name)
			require.NoError(t, a.Unlock(ctx))
		}
	})
	t.Run("DRWMutex and GetMode", func(t *testing.T) {
		name := nameIn("rw", 1, 3)
		r1, r2, w := dsync.NewDRWMutex(c.ds, name), dsync.NewDRWMutex(other, name), dsync.NewDRWMutex(other, name)
		_, err := r1.GetRLock(ctx, dsync.Options{})
		require.NoError(t, err)
		_, err = r2.GetMode(ctx, dsync.IS, dsync.Options{})
		require.NoError(t, err)
		_, err = w.GetMode(ctx, dsync.IX, short)
		require.ErrorIs(t, err, dsync.ErrTimeout, "IX beside S")
		require.NoError(t, r1.RUnlock(ctx))
		_, err = w.GetMode(ctx, dsync.IX, dsync.Options{})
		require.NoError(t, err, "IX beside IS")
		require.NoError(t, w.ReleaseMode(ctx, dsync.IX))
		require.NoError(t, r2.ReleaseMode(ctx, dsync.IS))
	})
	t.Run("Semaphore", func(t *testing.T) {
		s1, s2 := dsync.NewSemaphore(c.ds, "sem", 2), dsync.NewSemaphore(other, "sem", 2)
		p1, err := s1.Acquire(ctx, dsync.Options{})
		require.NoError(t, err)
		p2, err := s2.Acquire(ctx, dsync.Options{})
		require.NoError(t, err)
		_, ok, err := s2.TryAcquire(ctx)
		require.NoError(t, err)
		assert.False(t, ok, "a third permit of 2")
		require.NoError(t, p1.Release(ctx))
		require.NoError(t, p2.Release(ctx))
	})
	t.Run("Barrier", func(t *testing.T) {
		b1, b2 := dsync.NewBarrier(c.ds, "barrier", 2), dsync.NewBarrier(other, "barrier", 2)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, b := range []*dsync.Barrier{b1, b2} {
			wg.Go(func() { errs[i] = b.WaitWith(ctx, dsync.Options{Timeout: 10 * time.Second}) })
		}
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		require.NoError(t, b1.Close(ctx))
		require.NoError(t, b2.Close(ctx))
	})
	t.Run("Cond", func(t *testing.T) {
		lockName := nameIn("cond-lock", 0, 3) // the Cond on another set than its lock
		cond := dsync.NewCond(c.ds, nameIn("cond", 2, 3))
		l := dsync.NewMutex(c.ds, lockName)
		_, err := l.Lock(ctx)
		require.NoError(t, err)
		signalUntilWoken(t, ctx, cond, l, dsync.NewCond(other, nameIn("cond", 2, 3)), "the waiter woken")
	})
	t.Run("Lease", func(t *testing.T) {
		lease, err := dsync.AcquireLease(ctx, c.ds, "lease", dsync.LeaseOptions{})
		require.NoError(t, err)
		require.NoError(t, lease.Verify(ctx))
		_, err = dsync.AcquireLease(ctx, other, "lease", dsync.LeaseOptions{Options: short})
		require.ErrorIs(t, err, dsync.ErrTimeout)
		require.NoError(t, lease.Release(ctx))
	})
	t.Run("Hierarchy", func(t *testing.T) {
		h, err := dsync.NewHierarchy("bucket", "object")
		require.NoError(t, err)
		bucket := nameIn("bucket", 0, 3)
		obj1, obj2 := nameIn(bucket+"/a", 1, 3), nameIn(bucket+"/b", 2, 3)
		// Writers of two objects share the bucket (IX); a bucket lock
		// (X) excludes them.
		w1, err := h.Lock(ctx, c.ds, dsync.Options{}, dsync.LevelLock{Level: "object", Name: obj1})
		require.NoError(t, err)
		w2, err := h.Lock(ctx, other, dsync.Options{}, dsync.LevelLock{Level: "object", Name: obj2})
		require.NoError(t, err)
		_, err = h.Lock(ctx, other, short, dsync.LevelLock{Level: "bucket", Name: bucket})
		require.ErrorIs(t, err, dsync.ErrTimeout)
		require.NoError(t, w1.Release(ctx))
		require.NoError(t, w2.Release(ctx))
	})
	t.Run("ReadVersion and Validate", func(t *testing.T) {
		names := []string{nameIn("opt", 0, 3), nameIn("opt", 1, 3)}
		reader := dsync.NewDRWMutex(c.ds, names...)
		v, err := reader.ReadVersion(ctx)
		require.NoError(t, err)
		ok, err := reader.Validate(ctx, v)
		require.NoError(t, err)
		assert.True(t, ok, "nothing written")
		w := dsync.NewDRWMutex(other, names[1])
		_, err = w.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		require.NoError(t, w.Unlock(ctx))
		ok, err = reader.Validate(ctx, v)
		require.NoError(t, err)
		assert.False(t, ok, "a writer of one set's part came in between")
	})
	t.Run("FencingToken", func(t *testing.T) {
		a, b := nameIn("fence", 0, 3), nameIn("fence", 2, 3)
		// Raise set 2's counters well above set 0's.
		for range 5 {
			m := dsync.NewDRWMutex(other, b)
			_, err := m.GetLock(ctx, dsync.Options{})
			require.NoError(t, err)
			_, err = m.FencingToken(ctx)
			require.NoError(t, err)
			require.NoError(t, m.Unlock(ctx))
		}
		both := dsync.NewDRWMutex(c.ds, a, b)
		_, err := both.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		t1, err := both.FencingToken(ctx)
		require.NoError(t, err)
		require.NoError(t, both.Unlock(ctx))
		// The next holder of either resource alone gets a larger token.
		for _, name := range []string{a, b} {
			m := dsync.NewDRWMutex(other, name)
			_, err := m.GetLock(ctx, dsync.Options{})
			require.NoError(t, err)
			t2, err := m.FencingToken(ctx)
			require.NoError(t, err)
			assert.Greater(t, t2, t1, "token of %q after the cross-set token", name)
			require.NoError(t, m.Unlock(ctx))
		}
	})
	// (A Barrier leaves its last arrival to lapse on the nodes: no count
	// of grants left here.)
}

// A lock across sets is all or nothing: refused in one set, it leaves
// nothing in the others.
func TestSetsCrossSetAllOrNothing(t *testing.T) {
	ctx := context.Background()
	c := newSetsCluster(t, 9, disjointSets(3, 3))
	other := c.client()
	a, b := nameIn("x", 0, 3), nameIn("x", 2, 3)
	holder := dsync.NewDRWMutex(other, b)
	_, err := holder.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	// GetLock returns at a quorum: wait for the third grant, which the
	// refused lock's own request for b could otherwise beat to its node.
	waitForGrants(t, c, 3)

	both := dsync.NewDRWMutex(c.ds, a, b)
	ok, _, err := both.TryLock(ctx)
	require.NoError(t, err)
	require.False(t, ok, "b is held")
	// Its release of a returned at a quorum; the third node's follows.
	waitUntil(t, "the refused lock leaves nothing in a's set", func() bool { return c.grantsOf(0) == 0 })
	waitForGrants(t, c, 3) // the holder's grants alone

	_, err = both.GetLock(ctx, dsync.Options{Timeout: 30 * time.Millisecond})
	require.ErrorIs(t, err, dsync.ErrTimeout)
	require.ErrorIs(t, err, dsync.ErrLocked)
	waitForGrants(t, c, 3)

	require.NoError(t, holder.Unlock(ctx))
	lockCtx, err := both.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	assert.NoError(t, lockCtx.Err())
	waitForGrants(t, c, 6)
	assert.Equal(t, 3, c.grantsOf(0), "set 0 holds it")
	assert.Equal(t, 3, c.grantsOf(2), "set 2 holds it")
	require.NoError(t, both.Unlock(ctx))
	assert.Error(t, lockCtx.Err(), "the lock context ends with Unlock")
}

// Losing one set's part ends the lock's context: the lock is lost.
func TestSetsLossOfOnePartEndsTheLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newSetsCluster(t, 6, disjointSets(2, 3))
		m := dsync.NewDRWMutex(c.ds, nameIn("l", 0, 2), nameIn("l", 1, 2))
		lockCtx, err := m.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		for _, i := range c.layout[1][:2] {
			c.nodes[i].down.Store(true) // set 1 loses its quorum: no refresh reaches it
		}
		<-lockCtx.Done()
		require.ErrorIs(t, context.Cause(lockCtx), dsync.ErrLockLost)
		require.ErrorIs(t, m.Unlock(ctx), dsync.ErrLockLost)
	})
}

// Two locks across the same sets, whose names put the sets in opposite
// orders, never deadlock: sets are taken in one global order. Every
// goroutine also checks exclusion on its resources.
func TestSetsCrossSetLocksDoNotDeadlock(t *testing.T) {
	c := newSetsCluster(t, 9, disjointSets(3, 3))
	// a sorts before b but lives in a later set; c0 sorts after both.
	var a, b string
	for i := 0; a == "" || b == ""; i++ {
		n := fmt.Sprintf("r%d", i)
		switch dsync.SetIndex(n, 3) {
		case 2:
			if a == "" {
				a = n
			}
		case 0:
			if a != "" && b == "" {
				b = n
			}
		}
	}
	d := nameIn("s", 1, 3)
	locks := [][]string{{a, b}, {b, a}, {b, d}, {d, a}, {a, d, b}}
	inside := map[string]*atomic.Int32{a: {}, b: {}, d: {}}
	clients := []*dsync.Dsync{c.ds, c.client(), c.client()}
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 30 {
				if !lockExclusively(t, clients[g%len(clients)], locks[(g+i)%len(locks)], inside, fmt.Sprint("goroutine ", g)) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// Quorums are per set: one node down in every set stops nothing; two down
// in one set stop that set's writes only.
func TestSetsQuorumPerSet(t *testing.T) {
	ctx := context.Background()
	c := newSetsCluster(t, 9, disjointSets(3, 3))
	for s := range 3 {
		c.nodes[c.layout[s][s]].down.Store(true)
	}
	for s := range 3 {
		m := dsync.NewDRWMutex(c.ds, nameIn("q", s, 3))
		_, err := m.GetLock(ctx, dsync.Options{})
		require.NoError(t, err, "set %d with one node of three down", s)
		require.NoError(t, m.Unlock(ctx))
	}
	c.nodes[c.layout[0][1]].down.Store(true) // set 0: two of three down
	m := dsync.NewDRWMutex(c.ds, nameIn("q", 0, 3))
	ok, _, err := m.TryLock(ctx)
	require.False(t, ok)
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "set 0 has no quorum")
	for s := 1; s < 3; s++ {
		m := dsync.NewDRWMutex(c.ds, nameIn("q", s, 3))
		ok, _, err := m.TryLock(ctx)
		require.NoError(t, err, "set %d is not set 0", s)
		require.True(t, ok)
		require.NoError(t, m.Unlock(ctx))
	}
	across := dsync.NewDRWMutex(c.ds, nameIn("q", 0, 3), nameIn("q", 1, 3))
	ok, _, err = across.TryLock(ctx)
	require.False(t, ok)
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "a lock across sets needs every one")
}

// refreshCounter counts the Refresh requests a node gets.
type refreshCounter struct {
	*node
	calls, uids atomic.Int32
}

func (r *refreshCounter) Refresh(ctx context.Context, a locker.RefreshArgs) (locker.RefreshReply, error) {
	r.calls.Add(1)
	r.uids.Add(int32(len(a.UIDs)))
	return r.node.Refresh(ctx, a)
}

// A node that serves several sets gets one refresh request per round,
// carrying the locks of every set it serves, and no lock of a set it does
// not serve.
func TestSetsRefresherSendsOneRequestPerNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		clk := clock.Real()
		var nodes []*refreshCounter
		for range 4 {
			tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: validity, Clock: clk, SweepInterval: -1})
			defer tbl.Close()
			nodes = append(nodes, &refreshCounter{node: &node{Local: tbl, clk: clk}})
		}
		// Four sets of three on four nodes: every node serves three sets.
		layout := [][]int{{0, 1, 2}, {1, 2, 3}, {2, 3, 0}, {3, 0, 1}}
		sets := make([][]locker.NetLocker, len(layout))
		for s, ns := range layout {
			for _, i := range ns {
				sets[s] = append(sets[s], nodes[i])
			}
		}
		const every = 10 * time.Second
		ds, err := dsync.NewSets(sets, dsync.Config{RefreshInterval: every})
		require.NoError(t, err)
		defer ds.Close()
		require.Equal(t, 4, ds.Lockers(), "four distinct nodes")
		for s := range 4 { // two locks per set
			for k := range 2 {
				m := dsync.NewDRWMutex(ds, nameIn(fmt.Sprintf("set%d-%d-", s, k), s, 4))
				_, err := m.GetLock(ctx, dsync.Options{})
				require.NoError(t, err)
			}
		}
		synctest.Wait()
		time.Sleep(every) // in the bubble: the fake clock moves when all wait
		synctest.Wait()
		require.EqualValues(t, 1, ds.Stats().RefreshRounds)
		for i, n := range nodes {
			assert.EqualValues(t, 1, n.calls.Load(), "node %d: refresh requests in one round", i)
			assert.EqualValues(t, 6, n.uids.Load(), "node %d: serves 3 sets of 2 locks", i)
		}
		// The locks are still held: refreshed by their quorums.
		for _, n := range nodes {
			assert.Equal(t, 6, n.Stats().Grants)
		}
	})
}

// A part taken first and lost while a later part was waited for is taken
// again: a lock across sets is returned only while every part is held
// (found by the simulation's sets scenario: the lock came back with its
// context about to end, while another client held the lost part).
func TestSetsCrossSetLockRetakesAPartLostWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newSetsCluster(t, 6, disjointSets(2, 3))
		a, b := nameIn("p", 0, 2), nameIn("p", 1, 2)
		other := c.client()
		holder := dsync.NewDRWMutex(other, b)
		_, err := holder.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)

		type result struct {
			lockCtx context.Context
			err     error
		}
		got := make(chan result, 1)
		both := dsync.NewDRWMutex(c.ds, a, b)
		go func() {
			lockCtx, err := both.GetLock(ctx, dsync.Options{})
			got <- result{lockCtx, err}
		}()
		synctest.Wait() // a is held on set 0; b is waited for on set 1
		require.Equal(t, 3, c.grantsOf(0), "a's part is held")
		for _, i := range c.layout[0][:2] {
			c.nodes[i].down.Store(true) // set 0 loses its quorum: a's part cannot be refreshed
		}
		time.Sleep(validity + time.Second) // virtual: a's part is lost
		synctest.Wait()
		for _, i := range c.layout[0][:2] {
			c.nodes[i].down.Store(false)
		}
		require.NoError(t, holder.Unlock(ctx))
		r := <-got
		require.NoError(t, r.err)
		assert.NoError(t, r.lockCtx.Err(), "the lock returned is held: its context is live")
		synctest.Wait()
		assert.GreaterOrEqual(t, c.grantsOf(0), 2, "a's part was taken again")
		require.NoError(t, both.Unlock(ctx))
	})
}
