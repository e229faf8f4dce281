package dsync_test

import (
	"context"
	"fmt"
	"log"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
		require.NoError(t, err)
	}
	c.ds.Close()
	require.Zero(t, c.grants(), "grants left")
}

func TestSemaphoreTakesEveryPermitThenRefuses(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	sem := dsync.NewSemaphore(c.ds, "pool", 4)
	require.Equal(t, 4, sem.Size(), "Size()")
	seen := map[int]bool{}
	for range 4 {
		p, ok, err := sem.TryAcquire(ctx)
		require.NoError(t, err, "TryAcquire with free permits")
		require.True(t, ok, "TryAcquire with free permits")
		seen[p.Slot()] = true
	}
	require.Len(t, seen, 4, "slots taken: %v", seen)
	_, ok, err := sem.TryAcquire(ctx)
	require.NoError(t, err, "TryAcquire with none free")
	require.False(t, ok, "TryAcquire with none free")
	_, err = sem.Acquire(ctx, dsync.Options{Timeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, dsync.ErrTimeout, "Acquire with none free, want ErrTimeout wrapping ErrLocked")
	require.ErrorIs(t, err, dsync.ErrLocked, "Acquire with none free, want ErrTimeout wrapping ErrLocked")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = sem.Acquire(cctx, dsync.Options{})
	require.ErrorIs(t, err, context.Canceled, "Acquire with cancelled ctx")
	require.NotErrorIs(t, err, dsync.ErrTimeout, "Acquire with cancelled ctx")
	_, _, err = sem.TryAcquire(cctx)
	require.ErrorIs(t, err, context.Canceled, "TryAcquire with cancelled ctx")
	// The permits are the locks name/permit/i: 4 resources, each granted
	// on every node, and nothing else.
	require.Equal(t, "pool/permit/0,pool/permit/1,pool/permit/2,pool/permit/3", c.held(), "held")
}

func TestSemaphoreWaiterGetsReleasedPermit(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	sem := dsync.NewSemaphore(c.ds, "pool", 1)
	p, err := sem.Acquire(ctx, dsync.Options{})
	require.NoError(t, err)
	got := make(chan *dsync.Permit)
	go func() {
		q, err := sem.Acquire(ctx, dsync.Options{Timeout: time.Minute})
		assert.NoError(t, err)
		got <- q
	}()
	p.Release(ctx)
	q := <-got
	require.NotNil(t, q, "waiter did not get the released permit")
	require.NoError(t, q.Context().Err(), "waiter did not get the released permit")
	require.Error(t, p.Context().Err(), "released permit's context still live")
	mustPanic(t, "double Release", func() { p.Release(ctx) })
}

func TestSemaphoreNoQuorum(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	c.nodes[1].down.Store(true)
	c.nodes[2].down.Store(true)
	sem := dsync.NewSemaphore(c.ds, "pool", 5)
	_, ok, err := sem.TryAcquire(ctx)
	require.False(t, ok, "TryAcquire with 2 of 3 down: ok=%v err=%v", ok, err)
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "TryAcquire with 2 of 3 down")
	// The round stopped at the first permit: the others meet the same nodes.
	c.nodes[0].mu.Lock()
	seen := c.nodes[0].lockSeen
	c.nodes[0].mu.Unlock()
	require.Equal(t, 1, seen, "node 0 saw lock calls in one round")
	_, err = sem.Acquire(ctx, dsync.Options{Timeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, dsync.ErrTimeout, "Acquire with 2 of 3 down")
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "Acquire with 2 of 3 down")
	// One node back: quorum again.
	c.nodes[1].down.Store(false)
	p, err := sem.Acquire(ctx, dsync.Options{Timeout: time.Minute})
	require.NoError(t, err, "Acquire with 2 of 3 up")
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
	require.NoError(t, err)
	require.True(t, ok)
	for _, n := range c.nodes {
		<-n.locked
	}
	c.forceRelease("pool/permit/0") // as an operator would
	refreshRound(clk)
	<-p.Context().Done()
	require.ErrorIs(t, context.Cause(p.Context()), dsync.ErrLockLost, "cause")
	require.ErrorIs(t, p.Release(ctx), dsync.ErrLockLost, "Release of a lost permit")
	c.ds.Close()
	require.Zero(t, c.grants(), "remains of the lost permit: grants")
}

func TestSemaphoreInvalid(t *testing.T) {
	c := newCluster(t, 1, nil)
	for _, sem := range []*dsync.Semaphore{
		dsync.NewSemaphore(c.ds, "", 1),
		dsync.NewSemaphore(c.ds, "pool", 0),
		dsync.NewSemaphore(c.ds, "pool", -3),
	} {
		_, err := sem.Acquire(context.Background(), dsync.Options{})
		assert.ErrorIs(t, err, locker.ErrInvalidArgs, "Acquire")
		_, _, err = sem.TryAcquire(context.Background())
		assert.ErrorIs(t, err, locker.ErrInvalidArgs, "TryAcquire")
	}
	c.ds.Close()
	_, err := dsync.NewSemaphore(c.ds, "pool", 2).Acquire(context.Background(), dsync.Options{})
	assert.ErrorIs(t, err, dsync.ErrClosed, "Acquire after Close")
}
