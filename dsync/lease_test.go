package dsync_test

import (
	"context"
	"fmt"
	"log"
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

func ExampleLease() {
	ds, err := dsync.New(threeNodes(), dsync.Config{RefreshInterval: 3 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()

	// Renewed every 3 s (the Dsync's RefreshInterval), at most 5 times:
	// the lease is released by itself 15 s after the grant.
	lease, err := dsync.AcquireLease(ctx, ds, "long-running-task", dsync.LeaseOptions{
		Options:     dsync.Options{Timeout: 10 * time.Second},
		MaxRenewals: 5,
	})
	if err != nil {
		log.Fatal(err)
	}
	for step := range 3 {
		if !lease.Valid() {
			fmt.Println("lease lost, aborting at step", step)
			break
		}
		// Work on step under lease.Context().
	}
	fmt.Println("nodes confirm the lease:", lease.Verify(ctx) == nil)
	if err := lease.Release(ctx); err != nil {
		log.Print(err) // dsync.ErrLeaseExpired: the work may have been cut short
	}
	fmt.Println("valid after release:", lease.Valid())
	// Output:
	// nodes confirm the lease: true
	// valid after release: false
}

func TestLeaseMaxHold(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := newCluster(t, 3, clk)
	ctx := context.Background()
	start := clk.Now()
	lease, err := dsync.AcquireLease(ctx, c.ds, "task", dsync.LeaseOptions{MaxHold: 30 * time.Second})
	require.NoError(t, err)
	d, ok := lease.Deadline()
	require.True(t, ok, "Deadline() = %v %v", d, ok)
	require.True(t, d.Equal(start.Add(30*time.Second)), "Deadline() = %v %v", d, ok)
	for _, n := range c.nodes {
		n.mu.Lock()
		n.unlocks = make(chan string, 10)
		n.mu.Unlock()
	}
	clk.Set(start.Add(30*time.Second - time.Nanosecond))
	require.True(t, lease.Valid(), "lease not valid before its maximum hold")
	require.NoError(t, lease.Context().Err(), "lease not valid before its maximum hold")
	clk.Set(start.Add(30 * time.Second))
	require.False(t, lease.Valid(), "lease valid at its maximum hold")
	<-lease.Context().Done()
	cause := context.Cause(lease.Context())
	require.ErrorIs(t, cause, dsync.ErrLeaseExpired, "cause")
	require.NotErrorIs(t, cause, dsync.ErrLockLost, "cause, want ErrLeaseExpired")
	for _, n := range c.nodes {
		<-n.unlocks // the lease released its lock by itself
	}
	require.Zero(t, c.grants(), "grants after the lease expired")
	require.ErrorIs(t, lease.Verify(ctx), dsync.ErrLeaseExpired, "Verify after expiry")
	require.ErrorIs(t, lease.Release(ctx), dsync.ErrLeaseExpired, "Release after expiry")
	mustPanic(t, "second Release", func() { lease.Release(ctx) })
}

func TestLeaseMaxRenewals(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := newCluster(t, 3, clk)
	ctx := context.Background()
	for _, tc := range []struct {
		opts dsync.LeaseOptions
		want time.Duration
	}{
		{dsync.LeaseOptions{MaxRenewals: 2}, 2 * dsync.DefaultRefreshInterval},
		{dsync.LeaseOptions{MaxRenewals: 2, MaxHold: 15 * time.Second}, 15 * time.Second},
		{dsync.LeaseOptions{MaxRenewals: 1, MaxHold: 15 * time.Second}, dsync.DefaultRefreshInterval},
		{dsync.LeaseOptions{Read: true}, 0},
	} {
		lease, err := dsync.AcquireLease(ctx, c.ds, "task", tc.opts)
		require.NoError(t, err)
		d, ok := lease.Deadline()
		assert.Equal(t, tc.want > 0, ok, "%+v: deadline %v (%v), want in %v", tc.opts, d, ok, tc.want)
		if ok {
			assert.Equal(t, tc.want, d.Sub(clk.Now()), "%+v: deadline in", tc.opts)
		}
		require.NoError(t, lease.Release(ctx))
		require.False(t, lease.Valid(), "after Release: valid")
		require.ErrorIs(t, context.Cause(lease.Context()), context.Canceled, "after Release: cause")
	}
}

func TestLeaseReleasedBeforeMaxHoldStaysReleased(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := newCluster(t, 3, clk)
	ctx := context.Background()
	lease, err := dsync.AcquireLease(ctx, c.ds, "task", dsync.LeaseOptions{MaxHold: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, lease.Release(ctx))
	// Someone else takes the lock; the old lease's bound must not touch it.
	m := dsync.NewDRWMutex(c.ds, "task")
	lockCtx, err := m.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	clk.Advance(5 * time.Second) // the old lease's bound; before any refresh is due
	require.NoError(t, lockCtx.Err(), "new holder's lock ended: %v", context.Cause(lockCtx))
	m.Unlock(ctx)
}

func TestLeaseLostAndVerify(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := newCluster(t, 3, clk)
	for _, n := range c.nodes {
		n.locked = make(chan string, 1)
	}
	ctx := context.Background()
	lease, err := dsync.AcquireLease(ctx, c.ds, "task", dsync.LeaseOptions{})
	require.NoError(t, err)
	for _, n := range c.nodes {
		<-n.locked
	}
	require.NoError(t, lease.Verify(ctx), "Verify of a held lease")
	// Two of three nodes down: no quorum to confirm, but no denial either.
	c.nodes[0].down.Store(true)
	c.nodes[1].down.Store(true)
	err = lease.Verify(ctx)
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "Verify with 2 of 3 down")
	require.NotErrorIs(t, err, dsync.ErrLockLost, "Verify with 2 of 3 down, want ErrNoQuorum")
	c.nodes[0].down.Store(false)
	c.nodes[1].down.Store(false)
	// An operator force-releases it on two nodes: Verify sees it at once,
	// before the refresher does.
	c.forceRelease("task")
	require.ErrorIs(t, lease.Verify(ctx), dsync.ErrLockLost, "Verify after force-unlock")
	require.True(t, lease.Valid(), "Valid before the refresher noticed: it asks no node")
	refreshRound(clk)
	<-lease.Context().Done()
	require.ErrorIs(t, context.Cause(lease.Context()), dsync.ErrLockLost, "cause")
	require.False(t, lease.Valid(), "Valid after a loss")
	require.ErrorIs(t, lease.Release(ctx), dsync.ErrLockLost, "Release after a loss")
}

func TestLeaseAcquireFailures(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	for _, opts := range []dsync.LeaseOptions{{MaxHold: -1}, {MaxRenewals: -1}} {
		_, err := dsync.AcquireLease(ctx, c.ds, "task", opts)
		assert.ErrorIs(t, err, locker.ErrInvalidArgs, "%+v", opts)
	}
	_, err := dsync.AcquireLease(ctx, c.ds, "", dsync.LeaseOptions{})
	assert.ErrorIs(t, err, locker.ErrInvalidArgs, "empty name")
	held, err := dsync.AcquireLease(ctx, c.ds, "task", dsync.LeaseOptions{Read: true})
	require.NoError(t, err)
	_, err = dsync.AcquireLease(ctx, c.ds, "task", dsync.LeaseOptions{Options: dsync.Options{Timeout: 20 * time.Millisecond}})
	require.ErrorIs(t, err, dsync.ErrTimeout, "write lease under a read lease")
	require.ErrorIs(t, err, dsync.ErrLocked, "write lease under a read lease")
	held.Release(ctx)
	c.ds.Close()
	_, err = dsync.AcquireLease(ctx, c.ds, "task", dsync.LeaseOptions{})
	require.ErrorIs(t, err, dsync.ErrClosed, "after Close")
}

func TestLeaseCloseEndsWatcher(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := newCluster(t, 3, clk)
	lease, err := dsync.AcquireLease(context.Background(), c.ds, "task", dsync.LeaseOptions{MaxHold: time.Hour})
	require.NoError(t, err)
	c.ds.Close() // returns once the watcher has stopped
	require.ErrorIs(t, context.Cause(lease.Context()), dsync.ErrLockLost, "after Close")
	// The watcher stopped its timer (an acquisition's call timer may still
	// be pending a moment, until its last node call returns).
	waitUntil(t, "no timer pending after Close", func() bool { return clk.Pending() == 0 })
}

// lateRefresh is a node whose refresh answers, once armed, reach the client
// only after the clock has been moved: every node computes its answer, the
// last of them sets the clock, and only then do they return.
type lateRefresh struct {
	*locker.Local
	late *lateAnswers
}

type lateAnswers struct {
	armed   atomic.Bool
	clk     *clock.Fake
	to      time.Time // where the last answer moves the clock
	n       int       // answers to wait for
	mu      sync.Mutex
	got     int
	release chan struct{}
}

func (n lateRefresh) Refresh(ctx context.Context, args locker.RefreshArgs) (locker.RefreshReply, error) {
	r, err := n.Local.Refresh(ctx, args)
	la := n.late
	if !la.armed.Load() {
		return r, err
	}
	la.mu.Lock()
	la.got++
	if la.got == la.n {
		la.clk.Set(la.to)
		close(la.release)
	}
	la.mu.Unlock()
	<-la.release
	return r, err
}

// TestLeaseVerifyAnsweredPastDeadline: every node confirms the lease, but the
// confirmations arrive after its maximum hold has passed. That is no
// confirmation: Verify must say the lease expired, not nil.
func TestLeaseVerifyAnsweredPastDeadline(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	la := &lateAnswers{clk: clk, n: 3, release: make(chan struct{})}
	var ls []locker.NetLocker
	for range la.n {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: validity, Clock: clk, SweepInterval: -1})
		t.Cleanup(func() { tbl.Close() })
		ls = append(ls, lateRefresh{Local: tbl, late: la})
	}
	ds, err := dsync.New(ls, dsync.Config{Validity: validity, Clock: clk})
	require.NoError(t, err)
	defer ds.Close()
	ctx := context.Background()
	// A maximum hold shorter than the refresh interval: no refresh round
	// calls the nodes while the test moves the clock.
	lease, err := dsync.AcquireLease(ctx, ds, "task", dsync.LeaseOptions{MaxHold: dsync.DefaultRefreshInterval / 2})
	require.NoError(t, err)
	deadline, _ := lease.Deadline()
	clk.Set(deadline.Add(-time.Millisecond))
	require.True(t, lease.Valid(), "lease not valid a millisecond before its deadline")
	la.to = deadline
	la.armed.Store(true)
	require.ErrorIs(t, lease.Verify(ctx), dsync.ErrLeaseExpired, "Verify confirmed after the deadline")
}
