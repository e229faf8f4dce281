package dsync_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

func ExampleSemaphore() {
	ds, err := dsync.New(threeNodes(), dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()

	pool := dsync.NewSemaphore(ds, "resource-pool", 3)
	var permits []*dsync.Permit
	for range 3 {
		p, err := pool.Acquire(ctx, dsync.Options{Timeout: 5 * time.Second})
		if err != nil {
			log.Fatal(err) // dsync.ErrTimeout wrapping ErrLocked: all permits held
		}
		permits = append(permits, p)
	}
	_, ok, _ := pool.TryAcquire(ctx)
	fmt.Println("a fourth permit while three are held:", ok)

	permits[0].Release(ctx)
	p, ok, _ := pool.TryAcquire(ctx)
	fmt.Println("after one was released:", ok)
	fmt.Println("permit context live:", p.Context().Err() == nil)
	// Output:
	// a fourth permit while three are held: false
	// after one was released: true
	// permit context live: true
}

func ExamplePermit() {
	ds, _ := dsync.New(threeNodes(), dsync.Config{})
	defer ds.Close()
	ctx := context.Background()

	p, ok, err := dsync.NewSemaphore(ds, "uploads", 1).TryAcquire(ctx)
	if !ok || err != nil {
		log.Fatal(ok, err)
	}
	work := p.Context() // cancelled when the permit is released or lost
	fmt.Println("slot:", p.Slot())
	p.Release(ctx)
	fmt.Println("work context after Release:", work.Err())
	// Output:
	// slot: 0
	// work context after Release: context canceled
}

func TestSemaphoreBoundsHolders(t *testing.T) {
	c := newCluster(t, 3, nil)
	const permits, workers, rounds = 2, 6, 5
	sem := dsync.NewSemaphore(c.ds, "pool", permits)
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				p, err := sem.Acquire(context.Background(), dsync.Options{Timeout: time.Minute})
				if err != nil {
					errs <- err
					return
				}
				now := inside.Add(1)
				for {
					m := most.Load()
					if now <= m || most.CompareAndSwap(m, now) {
						break
					}
				}
				if now > permits {
					errs <- fmt.Errorf("%d holders of %d permits", now, permits)
				}
				if s := p.Slot(); s < 0 || s >= permits {
					errs <- fmt.Errorf("slot %d", s)
				}
				for range 10 {
					runtime.Gosched() // let others overlap if they can
				}
				inside.Add(-1)
				if err := p.Release(context.Background()); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c.ds.Close()
	if g := c.grants(); g != 0 {
		t.Fatalf("%d grants left", g)
	}
}

func TestSemaphoreTakesEveryPermitThenRefuses(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	sem := dsync.NewSemaphore(c.ds, "pool", 4)
	if sem.Size() != 4 {
		t.Fatalf("Size() = %d", sem.Size())
	}
	seen := map[int]bool{}
	for range 4 {
		p, ok, err := sem.TryAcquire(ctx)
		if !ok || err != nil {
			t.Fatalf("TryAcquire with free permits: ok=%v err=%v", ok, err)
		}
		seen[p.Slot()] = true
	}
	if len(seen) != 4 {
		t.Fatalf("slots taken: %v", seen)
	}
	if _, ok, err := sem.TryAcquire(ctx); ok || err != nil {
		t.Fatalf("TryAcquire with none free: ok=%v err=%v", ok, err)
	}
	_, err := sem.Acquire(ctx, dsync.Options{Timeout: 20 * time.Millisecond})
	if !errors.Is(err, dsync.ErrTimeout) || !errors.Is(err, dsync.ErrLocked) {
		t.Fatalf("Acquire with none free: %v, want ErrTimeout wrapping ErrLocked", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sem.Acquire(cctx, dsync.Options{}); !errors.Is(err, context.Canceled) || errors.Is(err, dsync.ErrTimeout) {
		t.Fatalf("Acquire with cancelled ctx: %v", err)
	}
	if _, _, err := sem.TryAcquire(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("TryAcquire with cancelled ctx: %v", err)
	}
	// The permits are the locks name/permit/i: 4 resources, each granted
	// on every node, and nothing else.
	if h := c.held(); h != "pool/permit/0,pool/permit/1,pool/permit/2,pool/permit/3" {
		t.Fatalf("held: %s", h)
	}
}

func TestSemaphoreWaiterGetsReleasedPermit(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	sem := dsync.NewSemaphore(c.ds, "pool", 1)
	p, err := sem.Acquire(ctx, dsync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *dsync.Permit)
	go func() {
		q, err := sem.Acquire(ctx, dsync.Options{Timeout: time.Minute})
		if err != nil {
			t.Error(err)
		}
		got <- q
	}()
	p.Release(ctx)
	if q := <-got; q == nil || q.Context().Err() != nil {
		t.Fatal("waiter did not get the released permit")
	}
	if p.Context().Err() == nil {
		t.Fatal("released permit's context still live")
	}
	mustPanic(t, "double Release", func() { p.Release(ctx) })
}

func TestSemaphoreNoQuorum(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	c.nodes[1].down.Store(true)
	c.nodes[2].down.Store(true)
	sem := dsync.NewSemaphore(c.ds, "pool", 5)
	if _, ok, err := sem.TryAcquire(ctx); ok || !errors.Is(err, dsync.ErrNoQuorum) {
		t.Fatalf("TryAcquire with 2 of 3 down: ok=%v err=%v", ok, err)
	}
	// The round stopped at the first permit: the others meet the same nodes.
	c.nodes[0].mu.Lock()
	seen := c.nodes[0].lockSeen
	c.nodes[0].mu.Unlock()
	if seen != 1 {
		t.Fatalf("node 0 saw %d lock calls in one round, want 1", seen)
	}
	_, err := sem.Acquire(ctx, dsync.Options{Timeout: 20 * time.Millisecond})
	if !errors.Is(err, dsync.ErrTimeout) || !errors.Is(err, dsync.ErrNoQuorum) {
		t.Fatalf("Acquire with 2 of 3 down: %v", err)
	}
	// One node back: quorum again.
	c.nodes[1].down.Store(false)
	p, err := sem.Acquire(ctx, dsync.Options{Timeout: time.Minute})
	if err != nil {
		t.Fatalf("Acquire with 2 of 3 up: %v", err)
	}
	p.Release(ctx)
}

func TestSemaphoreLostPermit(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := newCluster(t, 3, clk)
	for _, n := range c.nodes {
		n.locked = make(chan string, 1)
	}
	ctx := context.Background()
	sem := dsync.NewSemaphore(c.ds, "pool", 1)
	p, ok, err := sem.TryAcquire(ctx)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	for _, n := range c.nodes {
		<-n.locked
	}
	c.forceRelease("pool/permit/0") // as an operator would
	refreshRound(clk)
	<-p.Context().Done()
	if cause := context.Cause(p.Context()); !errors.Is(cause, dsync.ErrLockLost) {
		t.Fatalf("cause %v, want ErrLockLost", cause)
	}
	if err := p.Release(ctx); !errors.Is(err, dsync.ErrLockLost) {
		t.Fatalf("Release of a lost permit: %v", err)
	}
	c.ds.Close()
	if g := c.grants(); g != 0 {
		t.Fatalf("remains of the lost permit: %d grants", g)
	}
}

func TestSemaphoreInvalid(t *testing.T) {
	c := newCluster(t, 1, nil)
	for _, sem := range []*dsync.Semaphore{
		dsync.NewSemaphore(c.ds, "", 1),
		dsync.NewSemaphore(c.ds, "pool", 0),
		dsync.NewSemaphore(c.ds, "pool", -3),
	} {
		if _, err := sem.Acquire(context.Background(), dsync.Options{}); !errors.Is(err, locker.ErrInvalidArgs) {
			t.Errorf("Acquire: %v, want ErrInvalidArgs", err)
		}
		if _, _, err := sem.TryAcquire(context.Background()); !errors.Is(err, locker.ErrInvalidArgs) {
			t.Errorf("TryAcquire: %v, want ErrInvalidArgs", err)
		}
	}
	c.ds.Close()
	if _, err := dsync.NewSemaphore(c.ds, "pool", 2).Acquire(context.Background(), dsync.Options{}); !errors.Is(err, dsync.ErrClosed) {
		t.Errorf("Acquire after Close: %v", err)
	}
}
