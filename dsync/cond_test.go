package dsync_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

func ExampleCond() {
	ds, err := dsync.New(threeNodes(), dsync.Config{RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()

	// In a real system the state lives in storage written under the mutex;
	// here it is a variable shared by two goroutines.
	ready := false
	cond := dsync.NewCond(ds, "job-ready")

	done := make(chan struct{})
	go func() { // the consumer, in any process
		defer close(done)
		m := dsync.NewMutex(ds, "job")
		_, err := m.Lock(ctx)
		for err == nil && !ready {
			_, err = cond.Wait(ctx, m)
		}
		if err != nil {
			log.Print(err)
			return
		}
		fmt.Println("consumer sees the job ready")
		m.Unlock(ctx)
	}()

	m := dsync.NewMutex(ds, "job") // the producer, in another
	if _, err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	ready = true
	m.Unlock(ctx)
	if err := cond.Broadcast(ctx); err != nil {
		log.Print(err)
	}
	<-done
	// Output:
	// consumer sees the job ready
}

// registered returns how many waiters node 0 holds for cond "c".
func (c *cluster) registered() int {
	r, err := c.nodes[0].Query(context.Background(), locker.QueryArgs{Resources: []string{"c/waiters"}})
	require.NoError(c.t, err)
	return len(r.Resources[0].Holders)
}

// waitUntil yields until ok holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			require.Failf(t, "timed out", "timed out waiting until %s", what)
		}
		runtime.Gosched()
	}
}

// signalUntilWoken has a goroutine Wait on cond with l, which the caller
// holds, and signals through signaller (the same Cond, perhaps of another
// client) until that Wait returns; then it unlocks l. what names the
// waiter in a failure.
func signalUntilWoken(t *testing.T, ctx context.Context, cond *dsync.Cond, l *dsync.Mutex, signaller *dsync.Cond, what string) {
	t.Helper()
	woke := make(chan error, 1)
	go func() {
		_, err := cond.Wait(ctx, l)
		woke <- err
	}()
	waitUntil(t, what, func() bool {
		select {
		case err := <-woke:
			require.NoError(t, err)
			return true
		default:
		}
		require.NoError(t, signaller.Signal(ctx))
		return false
	})
	require.NoError(t, l.Unlock(ctx))
}

func TestCondSignalWakesOneBroadcastAll(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	cond := dsync.NewCond(c.ds, "c")
	woken := make(chan error, 3)
	for i := range 3 {
		go func() {
			m := dsync.NewMutex(c.ds, fmt.Sprint("m", i))
			if _, err := m.Lock(ctx); err != nil {
				woken <- err
				return
			}
			lockCtx, err := cond.Wait(ctx, m)
			if err == nil {
				if lockCtx.Err() != nil {
					err = errors.New("woken without the mutex held")
				}
				m.Unlock(ctx)
			}
			woken <- err
		}()
	}
	waitUntil(t, "3 waiters registered", func() bool { return c.registered() == 3 })
	require.NoError(t, cond.Signal(ctx))
	require.NoError(t, <-woken)
	require.Equal(t, 2, c.registered(), "after one Signal: waiters registered")
	require.NoError(t, cond.Broadcast(ctx))
	for range 2 {
		require.NoError(t, <-woken)
	}
	require.Zero(t, c.registered(), "registrations left")
	require.NoError(t, cond.Signal(ctx)) // nobody waits: nothing to do
}

func TestCondNoLostWakeup(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	cond := dsync.NewCond(c.ds, "c")
	for range 20 {
		waiter := dsync.NewMutex(c.ds, "m")
		_, err := waiter.Lock(ctx)
		require.NoError(t, err)
		woken := make(chan error, 1)
		go func() {
			_, err := cond.Wait(ctx, waiter)
			if err == nil {
				waiter.Unlock(ctx)
			}
			woken <- err
		}()
		// The signaller takes the mutex, which the waiter gives up only
		// once registered, and signals at once.
		signaller := dsync.NewMutex(c.ds, "m")
		_, err = signaller.Lock(ctx)
		require.NoError(t, err)
		require.NoError(t, cond.Signal(ctx))
		signaller.Unlock(ctx)
		require.NoError(t, <-woken)
	}
}

func TestCondWaitCancelled(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	cond := dsync.NewCond(c.ds, "c")
	m := dsync.NewMutex(c.ds, "m")
	_, err := m.Lock(ctx)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = cond.Wait(short, m)
	require.ErrorIs(t, err, context.DeadlineExceeded, "Wait without a signal")
	// Neither the mutex nor the registration is left behind.
	ok, _, _ := dsync.NewMutex(c.ds, "m").TryLock(ctx)
	require.True(t, ok, "mutex still held after a failed Wait")
	require.Zero(t, c.registered(), "registrations left after a cancelled Wait")
	mustPanic(t, "Wait without the mutex", func() { cond.Wait(ctx, dsync.NewMutex(c.ds, "other")) })
}

func TestCondNodesDown(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	cond := dsync.NewCond(c.ds, "c")
	c.nodes[1].down.Store(true)
	c.nodes[2].down.Store(true)
	require.ErrorIs(t, cond.Broadcast(ctx), dsync.ErrNoQuorum, "Broadcast with 2 of 3 down")
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, cond.Signal(short), dsync.ErrNoQuorum, "Signal with 2 of 3 down")
	require.ErrorIs(t, dsync.NewCond(c.ds, "").Signal(ctx), locker.ErrInvalidArgs, "empty name")
}

// withoutQuery hides the table's Querier.
type withoutQuery struct{ locker.NetLocker }

func TestBarrierAndCondNeedQueries(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	ds, err := dsync.New([]locker.NetLocker{withoutQuery{tbl}}, dsync.Config{})
	require.NoError(t, err)
	defer ds.Close()
	ctx := context.Background()
	assert.ErrorIs(t, dsync.NewBarrier(ds, "b", 2).Wait(ctx), dsync.ErrQueryUnsupported, "Barrier.Wait")
	c := dsync.NewCond(ds, "c")
	assert.ErrorIs(t, c.Signal(ctx), dsync.ErrQueryUnsupported, "Cond.Signal")
	m := dsync.NewMutex(ds, "m")
	m.Lock(ctx)
	_, err = c.Wait(ctx, m)
	assert.ErrorIs(t, err, dsync.ErrQueryUnsupported, "Cond.Wait")
}

// A waiter's registration makes its UID public, so that a signaller can
// release it; a grant on the waiters' resource whose UID is secret is no
// registration: Signal leaves it alone, and the nodes tell only its tag.
func TestCondWakesOnlyPublicRegistrations(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	for _, n := range c.nodes {
		r, err := n.RLock(ctx, locker.LockArgs{UID: "secret-reader", Resources: []string{"c/waiters"}, Quorum: 2})
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	require.NoError(t, dsync.NewCond(c.ds, "c").Signal(ctx))
	for _, n := range c.nodes {
		q, err := n.Query(ctx, locker.QueryArgs{Resources: []string{"c/waiters"}})
		require.NoError(t, err)
		require.Len(t, q.Resources[0].Holders, 1, "the secret grant stays")
		h := q.Resources[0].Holders[0]
		assert.Equal(t, locker.UIDTag("secret-reader"), h.Tag)
		assert.Empty(t, h.UID)
	}
}
