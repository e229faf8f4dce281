package dsync_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

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
		t.Fatal(err)
	}
}

func TestBarrierCancelledPartyStaysArrived(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	a, b := dsync.NewBarrier(c.ds, "b", 2), dsync.NewBarrier(c.ds, "b", 2)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := a.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("alone at the barrier: %v, want DeadlineExceeded", err)
	}
	if a.Generation() != 0 {
		t.Fatal("a cancelled Wait moved the generation")
	}
	// b arrives: a counts as arrived, so b passes on its own...
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// ...and a's next Wait resumes generation 0 and passes.
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Generation() != 1 || b.Generation() != 1 {
		t.Fatalf("generations %d and %d, want 1", a.Generation(), b.Generation())
	}
	// Generation 1: b waits for a.
	done := make(chan error)
	go func() { done <- b.Wait(ctx) }()
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a.Close(ctx)
	b.Close(ctx)
	if err := a.Wait(ctx); !errors.Is(err, dsync.ErrBarrierClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	// Close gave back the member slots and left only the last arrivals, to
	// lapse on the nodes. (Releases return at a quorum: closing the Dsync
	// waits for node 0's answers.)
	c.ds.Close()
	entries, _ := listAll(ctx, c.nodes[0])
	for _, e := range entries {
		if e.Resource != "b/gen/1/0" && e.Resource != "b/gen/1/1" {
			t.Fatalf("left after Close: %+v", entries)
		}
	}
}

func TestBarrierExtraPartyWaitsForASlot(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	a := dsync.NewBarrier(c.ds, "b", 1)
	if err := a.Wait(ctx); err != nil { // one party: passes alone
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := dsync.NewBarrier(c.ds, "b", 1).Wait(short); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, dsync.ErrLocked) {
		t.Fatalf("a second party of a one-party barrier: %v", err)
	}
}

func TestBarrierNodesDown(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	a, b := dsync.NewBarrier(c.ds, "b", 2), dsync.NewBarrier(c.ds, "b", 2)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := a.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	// Two of three nodes go down: b cannot join...
	c.nodes[1].down.Store(true)
	c.nodes[2].down.Store(true)
	short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if err := b.Wait(short2); !errors.Is(err, dsync.ErrNoQuorum) {
		t.Fatalf("joining with 2 of 3 down: %v, want ErrNoQuorum", err)
	}
	// ...and a, looking for b's arrival with one node answering, cannot
	// tell whether it missed it.
	short3, cancel3 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel3()
	if err := a.Wait(short3); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, dsync.ErrNoQuorum) {
		t.Fatalf("waiting with 2 of 3 down: %v, want DeadlineExceeded wrapping ErrNoQuorum", err)
	}
	// One node back: b joins and both pass.
	c.nodes[1].down.Store(false)
	done := make(chan error)
	go func() { done <- a.Wait(ctx) }()
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
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
		if err := a.Wait(ctx); !errors.Is(err, dsync.ErrLockLost) {
			t.Fatalf("Wait after losing the membership: %v, want ErrLockLost", err)
		}
	})
}

func TestBarrierInvalid(t *testing.T) {
	c := newCluster(t, 1, nil)
	for _, b := range []*dsync.Barrier{dsync.NewBarrier(c.ds, "", 2), dsync.NewBarrier(c.ds, "b", 0)} {
		if err := b.Wait(context.Background()); !errors.Is(err, locker.ErrInvalidArgs) {
			t.Errorf("Wait: %v, want ErrInvalidArgs", err)
		}
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
	if err != nil {
		t.Fatal(err)
	}
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
	if err := run(p0, 0, func(g int) {
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
	}); err != nil {
		t.Fatalf("p0: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("p1: %v", err)
	}
}
