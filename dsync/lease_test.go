package dsync_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := lease.Deadline(); !ok || !d.Equal(start.Add(30*time.Second)) {
		t.Fatalf("Deadline() = %v %v", d, ok)
	}
	for _, n := range c.nodes {
		n.mu.Lock()
		n.unlocks = make(chan string, 10)
		n.mu.Unlock()
	}
	clk.Set(start.Add(30*time.Second - time.Nanosecond))
	if !lease.Valid() || lease.Context().Err() != nil {
		t.Fatal("lease not valid before its maximum hold")
	}
	clk.Set(start.Add(30 * time.Second))
	if lease.Valid() {
		t.Fatal("lease valid at its maximum hold")
	}
	<-lease.Context().Done()
	if cause := context.Cause(lease.Context()); !errors.Is(cause, dsync.ErrLeaseExpired) || errors.Is(cause, dsync.ErrLockLost) {
		t.Fatalf("cause %v, want ErrLeaseExpired", cause)
	}
	for _, n := range c.nodes {
		<-n.unlocks // the lease released its lock by itself
	}
	if g := c.grants(); g != 0 {
		t.Fatalf("%d grants after the lease expired", g)
	}
	if err := lease.Verify(ctx); !errors.Is(err, dsync.ErrLeaseExpired) {
		t.Fatalf("Verify after expiry: %v", err)
	}
	if err := lease.Release(ctx); !errors.Is(err, dsync.ErrLeaseExpired) {
		t.Fatalf("Release after expiry: %v, want ErrLeaseExpired", err)
	}
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
		if err != nil {
			t.Fatal(err)
		}
		d, ok := lease.Deadline()
		if ok != (tc.want > 0) || (ok && d.Sub(clk.Now()) != tc.want) {
			t.Errorf("%+v: deadline in %v (%v), want %v", tc.opts, d.Sub(clk.Now()), ok, tc.want)
		}
		if err := lease.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if lease.Valid() || !errors.Is(context.Cause(lease.Context()), context.Canceled) {
			t.Fatalf("after Release: valid %v, cause %v", lease.Valid(), context.Cause(lease.Context()))
		}
	}
}

func TestLeaseReleasedBeforeMaxHoldStaysReleased(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := newCluster(t, 3, clk)
	ctx := context.Background()
	lease, err := dsync.AcquireLease(ctx, c.ds, "task", dsync.LeaseOptions{MaxHold: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// Someone else takes the lock; the old lease's bound must not touch it.
	m := dsync.NewDRWMutex(c.ds, "task")
	lockCtx, err := m.GetLock(ctx, dsync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Second) // the old lease's bound; before any refresh is due
	if lockCtx.Err() != nil {
		t.Fatalf("new holder's lock ended: %v", context.Cause(lockCtx))
	}
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
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		<-n.locked
	}
	if err := lease.Verify(ctx); err != nil {
		t.Fatalf("Verify of a held lease: %v", err)
	}
	// Two of three nodes down: no quorum to confirm, but no denial either.
	c.nodes[0].down.Store(true)
	c.nodes[1].down.Store(true)
	if err := lease.Verify(ctx); !errors.Is(err, dsync.ErrNoQuorum) || errors.Is(err, dsync.ErrLockLost) {
		t.Fatalf("Verify with 2 of 3 down: %v, want ErrNoQuorum", err)
	}
	c.nodes[0].down.Store(false)
	c.nodes[1].down.Store(false)
	// An operator force-releases it on two nodes: Verify sees it at once,
	// before the refresher does.
	c.forceRelease("task")
	if err := lease.Verify(ctx); !errors.Is(err, dsync.ErrLockLost) {
		t.Fatalf("Verify after force-unlock: %v, want ErrLockLost", err)
	}
	if !lease.Valid() {
		t.Fatal("Valid before the refresher noticed: it asks no node")
	}
	refreshRound(clk)
	<-lease.Context().Done()
	if cause := context.Cause(lease.Context()); !errors.Is(cause, dsync.ErrLockLost) {
		t.Fatalf("cause %v, want ErrLockLost", cause)
	}
	if lease.Valid() {
		t.Fatal("Valid after a loss")
	}
	if err := lease.Release(ctx); !errors.Is(err, dsync.ErrLockLost) {
		t.Fatalf("Release after a loss: %v", err)
	}
}

func TestLeaseAcquireFailures(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	for _, opts := range []dsync.LeaseOptions{{MaxHold: -1}, {MaxRenewals: -1}} {
		if _, err := dsync.AcquireLease(ctx, c.ds, "task", opts); !errors.Is(err, locker.ErrInvalidArgs) {
			t.Errorf("%+v: %v", opts, err)
		}
	}
	if _, err := dsync.AcquireLease(ctx, c.ds, "", dsync.LeaseOptions{}); !errors.Is(err, locker.ErrInvalidArgs) {
		t.Errorf("empty name: %v", err)
	}
	held, err := dsync.AcquireLease(ctx, c.ds, "task", dsync.LeaseOptions{Read: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dsync.AcquireLease(ctx, c.ds, "task", dsync.LeaseOptions{Options: dsync.Options{Timeout: 20 * time.Millisecond}})
	if !errors.Is(err, dsync.ErrTimeout) || !errors.Is(err, dsync.ErrLocked) {
		t.Fatalf("write lease under a read lease: %v", err)
	}
	held.Release(ctx)
	c.ds.Close()
	if _, err := dsync.AcquireLease(ctx, c.ds, "task", dsync.LeaseOptions{}); !errors.Is(err, dsync.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestLeaseCloseEndsWatcher(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := newCluster(t, 3, clk)
	lease, err := dsync.AcquireLease(context.Background(), c.ds, "task", dsync.LeaseOptions{MaxHold: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c.ds.Close() // returns once the watcher has stopped
	if !errors.Is(context.Cause(lease.Context()), dsync.ErrLockLost) {
		t.Fatalf("after Close: %v", context.Cause(lease.Context()))
	}
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
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()
	// A maximum hold shorter than the refresh interval: no refresh round
	// calls the nodes while the test moves the clock.
	lease, err := dsync.AcquireLease(ctx, ds, "task", dsync.LeaseOptions{MaxHold: dsync.DefaultRefreshInterval / 2})
	if err != nil {
		t.Fatal(err)
	}
	deadline, _ := lease.Deadline()
	clk.Set(deadline.Add(-time.Millisecond))
	if !lease.Valid() {
		t.Fatal("lease not valid a millisecond before its deadline")
	}
	la.to = deadline
	la.armed.Store(true)
	if err := lease.Verify(ctx); !errors.Is(err, dsync.ErrLeaseExpired) {
		t.Fatalf("Verify confirmed after the deadline: %v, want ErrLeaseExpired", err)
	}
}
