package dsync

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// TestCollectorDecidesAndGathersAll answers a collector from one goroutine
// per node, in a random order, while the waiter decides on a quorum and then
// waits for the rest, as a failed acquisition does. Every round must decide
// rightly, see each node at most once, and get every answer from waitAll:
// a wake lost between the decision rule changing and the last answer would
// hang the test.
func TestCollectorDecidesAndGathersAll(t *testing.T) {
	const n, q = 16, 9
	for round := range 2000 {
		grant := round % 3 // 0: all grant; 1: all refuse; 2: every other node grants
		c := newCollector(n, q)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if grant == 0 || grant == 2 && i%2 == 0 {
					c.Done(i, locker.Reply{OK: true, Fence: uint64(i + 1)}, nil)
				} else if i%5 == 0 {
					c.Done(i, locker.Reply{}, errors.New("down"))
				} else {
					c.Done(i, locker.Reply{Reason: locker.ReasonConflict}, nil)
				}
			}()
		}
		got, in := c.wait(context.Background(), nil)
		// Between wait and waitAll the checks are ifs that fail with
		// require.Failf: a require call each (t.Helper, runtime.Callers)
		// would widen the window in which the late answers arrive, so that
		// waitAll would seldom have to wait for them.
		if !in {
			require.Failf(t, "wait gave up", "round %d: wait without a deadline gave up", round)
		}
		granted, against := 0, 0
		seen := map[int]bool{}
		for _, r := range got {
			if seen[r.node] {
				require.Failf(t, "an answer counted twice", "round %d: node %d answered twice", round, r.node)
			}
			seen[r.node] = true
			if r.state() == stateGranted {
				granted++
			} else {
				against++
			}
		}
		switch grant {
		case 0:
			if granted < q {
				require.Failf(t, "decided without a quorum of grants", "round %d: decided with %d grants of %d, want a quorum of %d", round, granted, len(got), q)
			}
		case 1:
			if against <= n-q {
				require.Failf(t, "decided without enough against", "round %d: decided with %d against, want more than %d", round, against, n-q)
			}
		case 2: // 8 grants of 16: a quorum of 9 fails once 8 are against
			if against <= n-q && len(got) < n {
				require.Failf(t, "decided too early", "round %d: decided with %d grants, %d against", round, granted, against)
			}
		}
		all := c.waitAll()
		require.Len(t, all, n, "round %d: waitAll", round)
		clear(seen)
		for _, r := range all {
			seen[r.node] = true
		}
		require.Len(t, seen, n, "round %d: waitAll saw distinct nodes", round)
		c.done()
		wg.Wait()
	}
}

// TestCollectorWaitEndsWithCtx checks that a waiter whose ctx ends gets
// what is in so far, and that the late answers still reach waitAll.
func TestCollectorWaitEndsWithCtx(t *testing.T) {
	c := newCollector(3, 2)
	c.Done(0, locker.Reply{OK: true}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, in := c.wait(ctx, nil)
	require.False(t, in, "wait after cancel: %+v, %v; want the one answer and false", got, in)
	require.Len(t, got, 1, "wait after cancel: %+v, %v; want the one answer and false", got, in)
	require.Equal(t, 0, got[0].node, "wait after cancel: %+v, %v; want the one answer and false", got, in)
	go func() {
		c.Done(2, locker.Reply{}, nil)
		c.Done(1, locker.Reply{OK: true}, nil)
	}()
	require.Len(t, c.waitAll(), 3, "waitAll")
	c.done()
}
