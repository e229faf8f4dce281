package simulation

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

// TestLinkConformance runs the NetLocker conformance suite over a healthy
// simulated link without delay.
func TestLinkConformance(t *testing.T) {
	lockertest.Run(t, func(t *testing.T, cfg locker.Config) locker.NetLocker {
		n := NewNetwork(NetworkConfig{Node: cfg, Clock: cfg.Clock.(clock.Clock)})
		t.Cleanup(n.Close)
		return n.Link(0, 0)
	})
}

// TestLinkFence runs the locker.Fencer contract over a healthy simulated
// link, and checks that a fence call suffers the link's faults like any
// other call: a cut request is lost and the counter stays where it was.
func TestLinkFence(t *testing.T) {
	lockertest.RunFence(t, func(t *testing.T, cfg locker.Config) locker.NetLocker {
		n := NewNetwork(NetworkConfig{Node: cfg, Clock: cfg.Clock.(clock.Clock)})
		t.Cleanup(n.Close)
		return n.Link(0, 0)
	})
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(time.Unix(1_700_000_000, 0))
		n := NewNetwork(NetworkConfig{Clock: clk, Node: locker.Config{SweepInterval: -1}})
		defer n.Close()
		ctx := context.Background()
		before, err := n.Link(0, 0).RaiseFence(ctx, locker.FenceArgs{})
		require.NoError(t, err)
		n.Cut(0, 0, ToNode)
		tctx, cancel := clock.WithTimeout(ctx, clk, time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := n.Link(0, 0).RaiseFence(tctx, locker.FenceArgs{Floor: before.Fence + 100})
			done <- err
		}()
		synctest.Wait()
		clk.Advance(time.Second)
		assert.ErrorIs(t, <-done, locker.ErrOffline, "fence over a cut link, want ErrOffline")
		r, _ := n.Table(0).RaiseFence(ctx, locker.FenceArgs{})
		assert.Equal(t, before.Fence, r.Fence, "a lost fence request moved the counter")
	})
}

func lockArgs(uid, res string) locker.LockArgs {
	return locker.LockArgs{UID: uid, Resources: []string{res}, Owner: "test", Quorum: 1}
}

// TestNetworkFaults checks each fault of the network on one link, in virtual
// time inside a synctest bubble.
func TestNetworkFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(time.Unix(1_700_000_000, 0))
		n := NewNetwork(NetworkConfig{Nodes: 2, Clients: 2, Clock: clk, Delay: 10 * time.Millisecond,
			Node: locker.Config{Validity: 2 * time.Hour, SweepInterval: -1}})
		defer n.Close()
		ctx := context.Background()

		// callAsync starts a call and returns a channel with its error.
		callAsync := func(ctx context.Context, c, k int, uid string) chan error {
			ch := make(chan error, 1)
			go func() {
				r, err := n.Link(c, k).Lock(ctx, lockArgs(uid, "x"))
				if err == nil && !r.OK {
					err = errors.New("refused: " + r.Reason.String())
				}
				ch <- err
			}()
			return ch
		}
		// settle advances virtual time until ch has a value.
		settle := func(ch chan error) error {
			for range 1000 {
				synctest.Wait()
				select {
				case err := <-ch:
					return err
				default:
				}
				next, ok := clk.NextDue()
				require.True(t, ok, "call is stuck with no timer pending")
				clk.Set(next)
			}
			require.Fail(t, "call did not finish")
			return nil
		}

		start := clk.Now()
		require.NoError(t, settle(callAsync(ctx, 0, 0, "a")), "healthy lock")
		assert.Equal(t, 20*time.Millisecond, clk.Since(start), "round trip of virtual time")

		// A cut request is lost: the caller times out and nothing is granted.
		n.Cut(1, 1, ToNode)
		tctx, cancel := clock.WithTimeout(ctx, clk, time.Second)
		err := settle(callAsync(tctx, 1, 1, "b"))
		cancel()
		assert.ErrorIs(t, err, locker.ErrOffline, "cut request, want ErrOffline")
		assert.Zero(t, n.Table(1).Stats().Grants, "cut request left grants")

		// A cut reply: the caller times out but the node granted the lock.
		n.Heal()
		n.Cut(1, 1, FromNode)
		tctx, cancel = clock.WithTimeout(ctx, clk, time.Second)
		err = settle(callAsync(tctx, 1, 1, "b"))
		cancel()
		assert.ErrorIs(t, err, locker.ErrOffline, "cut reply, want ErrOffline")
		assert.Equal(t, 1, n.Table(1).Stats().Grants, "cut reply: node holds grants")

		// A crashed node refuses connections; after restart its table is
		// empty, and in its grace period: it refuses new locks, and grants
		// a reclaim of the lock the lost table held.
		n.Heal()
		n.CrashNode(0)
		assert.ErrorIs(t, settle(callAsync(ctx, 0, 0, "c")), locker.ErrOffline, "crashed node, want ErrOffline")
		n.RestartNode(0)
		assert.ErrorContains(t, settle(callAsync(ctx, 1, 0, "d")), locker.ReasonQuiet.String(), "restarted node, want a refusal for its grace period")
		reclaim := lockArgs("a", "x") // the holder of "a" on the lost table reclaims it
		reclaim.Reclaim, reclaim.Incarnation = true, n.Table(0).Boot().Incarnation
		reclaimed := make(chan error, 1)
		go func() {
			r, err := n.Link(0, 0).Lock(ctx, reclaim)
			if err == nil && !r.OK {
				err = errors.New("refused: " + r.Reason.String())
			}
			reclaimed <- err
		}()
		assert.NoError(t, settle(reclaimed), "restarted node: reclaim; want granted")

		// A paused client's request waits for the resume.
		n.PauseClient(0)
		ch := callAsync(ctx, 0, 1, "e")
		synctest.Wait()
		clk.Advance(time.Hour)
		synctest.Wait()
		select {
		case err := <-ch:
			require.Failf(t, "paused client's call returned", "returned %v", err)
		default:
		}
		n.ResumeClient(0)
		assert.EqualError(t, settle(ch), "refused: held by another", "resumed call, want refused (b holds x on n1)")

		// A crashed client fails at once.
		n.CrashClient(1)
		assert.ErrorIs(t, settle(callAsync(ctx, 1, 1, "f")), locker.ErrClosed, "crashed client, want ErrClosed")
	})
}

// TestOrderedDepartures: with NetworkConfig.Ordered, the messages sent at
// one instant take their fate (here their jitter, and so when their calls
// return) by what they are, not by which goroutine reached the link first:
// two calls sent in either order return at the same times.
func TestOrderedDepartures(t *testing.T) {
	// took runs two lock calls on one link, started in the order of uids,
	// and returns how long each took, by UID.
	took := func(t *testing.T, uids ...string) map[string]time.Duration {
		got := map[string]time.Duration{}
		synctest.Test(t, func(t *testing.T) {
			clk := clock.NewFake(time.Unix(1_700_000_000, 0))
			n := NewNetwork(NetworkConfig{Clock: clk, Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 7,
				Node: locker.Config{Validity: time.Hour, SweepInterval: -1}, Ordered: true})
			defer n.Close()
			start := clk.Now()
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, uid := range uids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := n.Link(0, 0).Lock(context.Background(), lockArgs(uid, uid))
					assert.NoError(t, err)
					mu.Lock()
					got[uid] = clk.Since(start)
					mu.Unlock()
				}()
				synctest.Wait() // this one waits to leave before the next starts
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			for {
				synctest.Wait()
				for n.Depart() {
					synctest.Wait()
				}
				select {
				case <-done:
					return
				default:
				}
				next, ok := clk.NextDue()
				require.True(t, ok, "calls are stuck with no timer pending")
				clk.FireNext(next)
			}
		})
		return got
	}
	ab, ba := took(t, "a", "b"), took(t, "b", "a")
	require.Len(t, ab, 2)
	assert.NotEqual(t, ab["a"], ab["b"], "the two calls drew the same jitter: the test shows nothing")
	assert.Equal(t, ab, ba, "the calls' times depend on the order they were sent in")
}
