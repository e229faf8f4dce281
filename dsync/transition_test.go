package dsync_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
)

// transition returns a client of the transition from one layout to
// another, closed at the end of the test.
func (c *setsCluster) transition(from, to [][]int) *dsync.Dsync {
	c.t.Helper()
	ds, err := dsync.NewTransition(c.lockersOf(from), c.lockersOf(to), setsTestConfig)
	require.NoError(c.t, err)
	c.t.Cleanup(func() { ds.Close() })
	return ds
}

// The layouts the transition tests change between, on 9 nodes: 2 sets of
// 3 grow by a pool (a third set of new nodes); and the same 6 nodes
// resliced into 3 sets of 2 (sets that overlap the old ones, of another
// size).
var (
	twoOfThree   = [][]int{{0, 1, 2}, {3, 4, 5}}
	threeOfThree = [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}}
	threeOfTwo   = [][]int{{0, 1}, {2, 3}, {4, 5}}
)

// A transition client's locks exclude those of the old layout's clients
// and those of the new layout's, both ways, on every resource; its read
// locks share with both layouts' read locks.
func TestTransitionExcludesBothLayouts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		from, to [][]int
	}{
		{"a pool added", twoOfThree, threeOfThree},
		{"resliced", twoOfThree, threeOfTwo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSetsCluster(t, 9, tc.from)
			old, trans, next := c.clientOf(tc.from), c.transition(tc.from, tc.to), c.clientOf(tc.to)
			other := c.transition(tc.from, tc.to)
			for _, pair := range []struct {
				what string
				x, y *dsync.Dsync
			}{
				{"old then transition", old, trans}, {"transition then old", trans, old},
				{"transition then new", trans, next}, {"new then transition", next, trans},
				{"two transition clients", trans, other},
			} {
				for i := range 24 {
					name := fmt.Sprintf("bucket/object-%d", i)
					holder, asker := dsync.NewDRWMutex(pair.x, name), dsync.NewDRWMutex(pair.y, name)
					_, err := holder.GetLock(ctx, dsync.Options{})
					require.NoError(t, err, "%s: %s", pair.what, name)
					ok, _, err := asker.TryLock(ctx)
					require.NoError(t, err)
					assert.False(t, ok, "%s: two writers of %s", pair.what, name)
					ok, _, err = asker.TryRLock(ctx)
					require.NoError(t, err)
					assert.False(t, ok, "%s: a reader beside the writer of %s", pair.what, name)
					require.NoError(t, holder.Unlock(ctx))

					_, err = holder.GetRLock(ctx, dsync.Options{})
					require.NoError(t, err)
					ok, _, err = asker.TryRLock(ctx)
					require.NoError(t, err)
					assert.True(t, ok, "%s: readers of %s share", pair.what, name)
					require.NoError(t, asker.RUnlock(ctx))
					ok, _, err = asker.TryLock(ctx)
					require.NoError(t, err)
					assert.False(t, ok, "%s: a writer beside the reader of %s", pair.what, name)
					require.NoError(t, holder.RUnlock(ctx))
				}
			}
		})
	}
}

// The price of a transition: a lock on a resource whose old and new sets
// are disjoint tolerates as many nodes down among both as the more
// fragile set alone: one of six for sets of three.
func TestTransitionToleratesTheFragilerSet(t *testing.T) {
	ctx := context.Background()
	c := newSetsCluster(t, 9, twoOfThree)
	trans := c.transition(twoOfThree, threeOfThree)
	name := ""
	for i := 0; name == ""; i++ { // in old set 0 and new set 2 (the new nodes)
		n := fmt.Sprint("r", i)
		if dsync.SetIndex(n, 2) == 0 && dsync.SetIndex(n, 3) == 2 {
			name = n
		}
	}
	m := dsync.NewDRWMutex(trans, name)
	c.nodes[0].down.Store(true) // one of the old set
	_, err := m.GetLock(ctx, dsync.Options{})
	require.NoError(t, err, "one node of six down")
	require.NoError(t, m.Unlock(ctx))

	c.nodes[6].down.Store(true) // and one of the new set
	ok, _, err := m.TryLock(ctx)
	assert.False(t, ok)
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "two of six down: the union's quorum is 5")

	// A client of either layout alone still has its quorum.
	for _, ds := range []*dsync.Dsync{c.clientOf(twoOfThree), c.clientOf(threeOfThree)} {
		m := dsync.NewDRWMutex(ds, name)
		_, err := m.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		require.NoError(t, m.Unlock(ctx))
	}
}

// Locks on several resources, taken by the clients that may run at once
// during a change (old and transition, then transition and new), in every
// name order, never deadlock and never overlap: every client takes names
// in one order, whatever its layout.
func TestTransitionCrossSetLocksDoNotDeadlock(t *testing.T) {
	c := newSetsCluster(t, 9, twoOfThree)
	names := []string{"a", "b", "c", "d", "e", "f"}
	for _, phase := range []struct {
		what    string
		clients []*dsync.Dsync
	}{
		{"old and transition", []*dsync.Dsync{c.clientOf(twoOfThree), c.transition(twoOfThree, threeOfTwo)}},
		{"transition and new", []*dsync.Dsync{c.transition(twoOfThree, threeOfTwo), c.clientOf(threeOfTwo)}},
	} {
		inside := map[string]*atomic.Int32{}
		for _, n := range names {
			inside[n] = &atomic.Int32{}
		}
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 1))
				for range 25 {
					pick := slices.Clone(names)
					rng.Shuffle(len(pick), func(i, j int) { pick[i], pick[j] = pick[j], pick[i] })
					pick = pick[:2+rng.IntN(3)]
					if !lockExclusively(t, phase.clients[g%2], pick, inside, fmt.Sprintf("%s: goroutine %d", phase.what, g)) {
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// The primitives that count nodes to see every holder (Barrier, Cond) and
// fencing tokens work between the clients of a change.
func TestTransitionPrimitives(t *testing.T) {
	ctx := context.Background()
	c := newSetsCluster(t, 9, twoOfThree)
	old, trans, next := c.clientOf(twoOfThree), c.transition(twoOfThree, threeOfThree), c.clientOf(threeOfThree)

	t.Run("Barrier", func(t *testing.T) {
		for _, pair := range [][2]*dsync.Dsync{{old, trans}, {trans, next}} {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			bs := []*dsync.Barrier{dsync.NewBarrier(pair[0], "barrier", 2), dsync.NewBarrier(pair[1], "barrier", 2)}
			for i, b := range bs {
				wg.Go(func() { errs[i] = b.WaitWith(ctx, dsync.Options{Timeout: 10 * time.Second}) })
			}
			wg.Wait()
			require.NoError(t, errs[0])
			require.NoError(t, errs[1])
			for _, b := range bs {
				require.NoError(t, b.Close(ctx))
			}
		}
	})
	t.Run("Cond", func(t *testing.T) {
		for _, pair := range [][2]*dsync.Dsync{{old, trans}, {trans, old}, {trans, next}, {next, trans}} {
			l := dsync.NewMutex(pair[0], "cond-lock")
			_, err := l.Lock(ctx)
			require.NoError(t, err)
			signalUntilWoken(t, ctx, dsync.NewCond(pair[0], "cond"), l, dsync.NewCond(pair[1], "cond"), "the waiter woken by the other layout's client")
		}
	})
	t.Run("FencingToken", func(t *testing.T) {
		var last uint64
		for i, ds := range []*dsync.Dsync{old, old, trans, trans, next, next} {
			m := dsync.NewDRWMutex(ds, "fenced")
			_, err := m.GetLock(ctx, dsync.Options{})
			require.NoError(t, err)
			tok, err := m.FencingToken(ctx)
			require.NoError(t, err)
			assert.Greater(t, tok, last, "holder %d's token", i)
			last = tok
			require.NoError(t, m.Unlock(ctx))
		}
	})
	t.Run("Semaphore", func(t *testing.T) {
		s1, s2 := dsync.NewSemaphore(old, "sem", 1), dsync.NewSemaphore(trans, "sem", 1)
		p, err := s1.Acquire(ctx, dsync.Options{})
		require.NoError(t, err)
		_, ok, err := s2.TryAcquire(ctx)
		require.NoError(t, err)
		assert.False(t, ok, "the one permit twice")
		require.NoError(t, p.Release(ctx))
	})
}

// Bad layouts are refused with a precise error.
func TestNewTransitionRefusesBadLayouts(t *testing.T) {
	c := newSetsCluster(t, 9, twoOfThree)
	_, err := dsync.NewTransition(nil, c.lockersOf(threeOfThree), dsync.Config{})
	assert.ErrorContains(t, err, "needs lock sets")
	_, err = dsync.NewTransition(c.lockersOf([][]int{{0, 1, 2}, {3, 4}}), c.lockersOf(threeOfThree), dsync.Config{})
	assert.ErrorContains(t, err, "old set 1 has 2 lockers")
	_, err = dsync.NewTransition(c.lockersOf(twoOfThree), c.lockersOf([][]int{{0, 0}}), dsync.Config{})
	assert.ErrorContains(t, err, "new set 0")
}
