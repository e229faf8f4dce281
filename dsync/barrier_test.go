package dsync_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

func ExampleBarrier() {
	ds, err := dsync.New(threeNodes(), dsync.Config{RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()

	// Three tasks, in any processes, meet at "sync-point" twice.
	var wg sync.WaitGroup
	var passed atomic.Int32
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := dsync.NewBarrier(ds, "sync-point", 3)
			defer b.Close(context.Background())
			for range 2 {
				// ... work of this round ...
				if err := b.Wait(context.Background()); err != nil {
					log.Print(err)
					return
				}
				passed.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Println("passes:", passed.Load())
	// Output:
	// passes: 6
}

func TestBarrierNobodyPassesEarly(t *testing.T) {
	c := newCluster(t, 3, nil)
	const parties, rounds = 3, 8
	var arrived [rounds]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 2*parties*rounds)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a failure must not hang
	defer cancel()
	for range parties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := dsync.NewBarrier(c.ds, "b", parties)
			defer b.Close(context.Background())
			for r := range rounds {
				if g := b.Generation(); g != uint64(r) {
					errs <- fmt.Errorf("generation %d in round %d", g, r)
				}
				arrived[r].Add(1)
				if err := b.Wait(ctx); err != nil {
					errs <- err
					return
				}
				if n := arrived[r].Load(); n != parties {
					errs <- fmt.Errorf("round %d: passed with %d of %d parties arrived", r, n, parties)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestBarrierCancelledPartyStaysArrived(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	a, b := dsync.NewBarrier(c.ds, "b", 2), dsync.NewBarrier(c.ds, "b", 2)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, a.Wait(short), context.DeadlineExceeded, "alone at the barrier")
	require.Zero(t, a.Generation(), "a cancelled Wait moved the generation")
	// b arrives: a counts as arrived, so b passes on its own...
	require.NoError(t, b.Wait(ctx))
	// ...and a's next Wait resumes generation 0 and passes.
	require.NoError(t, a.Wait(ctx))
	require.Equal(t, uint64(1), a.Generation(), "generations %d and %d, want 1", a.Generation(), b.Generation())
	require.Equal(t, uint64(1), b.Generation(), "generations %d and %d, want 1", a.Generation(), b.Generation())
	// Generation 1: b waits for a.
	done := make(chan error)
	go func() { done <- b.Wait(ctx) }()
	require.NoError(t, a.Wait(ctx))
	require.NoError(t, <-done)
	a.Close(ctx)
	b.Close(ctx)
	require.ErrorIs(t, a.Wait(ctx), dsync.ErrBarrierClosed, "Wait after Close")
	// Close gave back the member slots and left only the last arrivals, to
	// lapse on the nodes. (Releases return at a quorum: closing the Dsync
	// waits for node 0's answers.)
	c.ds.Close()
	entries, _ := listAll(ctx, c.nodes[0])
	for _, e := range entries {
		require.Contains(t, []string{"b/gen/1/0", "b/gen/1/1"}, e.Resource, "left after Close: %+v", entries)
	}
}

func TestBarrierExtraPartyWaitsForASlot(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	a := dsync.NewBarrier(c.ds, "b", 1)
	require.NoError(t, a.Wait(ctx)) // one party: passes alone
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err := dsync.NewBarrier(c.ds, "b", 1).Wait(short)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a second party of a one-party barrier")
	require.ErrorIs(t, err, dsync.ErrLocked, "a second party of a one-party barrier")
}

func TestBarrierNodesDown(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	a, b := dsync.NewBarrier(c.ds, "b", 2), dsync.NewBarrier(c.ds, "b", 2)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, a.Wait(short), context.DeadlineExceeded)
	// Two of three nodes go down: b cannot join...
	c.nodes[1].down.Store(true)
	c.nodes[2].down.Store(true)
	short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	require.ErrorIs(t, b.Wait(short2), dsync.ErrNoQuorum, "joining with 2 of 3 down")
	// ...and a, looking for b's arrival with one node answering, cannot
	// tell whether it missed it.
	short3, cancel3 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel3()
	err := a.Wait(short3)
	require.ErrorIs(t, err, context.DeadlineExceeded, "waiting with 2 of 3 down, want DeadlineExceeded wrapping ErrNoQuorum")
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "waiting with 2 of 3 down, want DeadlineExceeded wrapping ErrNoQuorum")
	// One node back: b joins and both pass.
	c.nodes[1].down.Store(false)
	done := make(chan error)
	go func() { done <- a.Wait(ctx) }()
	require.NoError(t, b.Wait(ctx))
	require.NoError(t, <-done)
}

func TestBarrierMembershipLost(t *testing.T) {
	// In a bubble, so that the short wait joins and arrives before it ends
	// however loaded the machine is.
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		ctx := context.Background()
		a := dsync.NewBarrier(c.ds, "b", 2)
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		a.Wait(short) // joins and arrives
		c.ds.Close()  // every lock of the process is lost
		require.ErrorIs(t, a.Wait(ctx), dsync.ErrLockLost, "Wait after losing the membership")
	})
}

func TestBarrierInvalid(t *testing.T) {
	c := newCluster(t, 1, nil)
	for _, b := range []*dsync.Barrier{dsync.NewBarrier(c.ds, "", 2), dsync.NewBarrier(c.ds, "b", 0)} {
		assert.ErrorIs(t, b.Wait(context.Background()), locker.ErrInvalidArgs, "Wait")
	}
}

// Query makes the test node's queries fail while it is down, as its other
// calls do (dsync_test.go).
func (n *node) Query(ctx context.Context, a locker.QueryArgs) (locker.QueryReply, error) {
	if err := n.fail(); err != nil {
		return locker.QueryReply{}, err
	}
	return n.Local.Query(ctx, a)
}

// TestBarrierArrivalLostIsTakenAgain: the arrivals at generation 1 are
// force-released on every node as soon as every node granted one (as node
// restarts can leave an arrival on too few nodes for its refresher). A party
// whose arrival was lost must arrive again, in its Wait of generation 1 if it
// is still there, or else in its Wait of generation 2 (the other party may
// still be passing 1): otherwise the other party never sees it, and the
// barrier is stuck.
func TestBarrierArrivalLostIsTakenAgain(t *testing.T) {
	c := newCluster(t, 3, nil)
	var ls []locker.NetLocker
	for _, n := range c.nodes {
		ls = append(ls, n)
	}
	// Refreshes often, so that the loss is found soon.
	ds, err := dsync.New(ls, dsync.Config{
		Validity: time.Second, RefreshInterval: 20 * time.Millisecond,
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
	})
	require.NoError(t, err)
	defer ds.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a failure must not hang
	defer cancel()
	const generations = 3
	p0, p1 := dsync.NewBarrier(ds, "b", 2), dsync.NewBarrier(ds, "b", 2)
	defer p0.Close(context.Background())
	defer p1.Close(context.Background())
	run := func(b *dsync.Barrier, from int, before func(gen int)) error {
		for g := from; g < generations; g++ {
			before(g)
			if err := b.Wait(ctx); err != nil {
				return fmt.Errorf("generation %d: %w", g, err)
			}
		}
		return nil
	}
	nothing := func(int) {}
	done := make(chan error, 1)
	go func() { done <- run(p1, 0, nothing) }()
	require.NoError(t, run(p0, 0, func(g int) {
		if g != 1 {
			return
		}
		arrived := make(chan struct{}, 64)
		for _, n := range c.nodes {
			n.mu.Lock()
			n.onLock = func(a locker.LockArgs) {
				if strings.HasPrefix(a.Resources[0], "b/gen/1/") {
					select {
					case arrived <- struct{}{}:
					default: // the release below has begun
					}
				}
			}
			n.mu.Unlock()
		}
		go func() {
			for range c.nodes {
				<-arrived
			}
			for _, n := range c.nodes {
				n.ForceUnlock(context.Background(), locker.LockArgs{Resources: []string{"b/gen/1/0", "b/gen/1/1"}})
			}
		}()
	}), "p0")
	require.NoError(t, <-done, "p1")
}
