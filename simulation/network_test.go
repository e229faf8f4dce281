package simulation

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

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
		if err != nil {
			t.Fatal(err)
		}
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
		if err := <-done; !errors.Is(err, locker.ErrOffline) {
			t.Errorf("fence over a cut link: %v, want ErrOffline", err)
		}
		if r, _ := n.Table(0).RaiseFence(ctx, locker.FenceArgs{}); r.Fence != before.Fence {
			t.Errorf("a lost fence request moved the counter from %d to %d", before.Fence, r.Fence)
		}
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
				if !ok {
					t.Fatal("call is stuck with no timer pending")
				}
				clk.Set(next)
			}
			t.Fatal("call did not finish")
			return nil
		}

		start := clk.Now()
		if err := settle(callAsync(ctx, 0, 0, "a")); err != nil {
			t.Fatalf("healthy lock: %v", err)
		}
		if got := clk.Since(start); got != 20*time.Millisecond {
			t.Errorf("round trip took %v of virtual time, want 20ms", got)
		}

		// A cut request is lost: the caller times out and nothing is granted.
		n.Cut(1, 1, ToNode)
		tctx, cancel := clock.WithTimeout(ctx, clk, time.Second)
		err := settle(callAsync(tctx, 1, 1, "b"))
		cancel()
		if !errors.Is(err, locker.ErrOffline) {
			t.Errorf("cut request: err = %v, want ErrOffline", err)
		}
		if st := n.Table(1).Stats(); st.Grants != 0 {
			t.Errorf("cut request left %d grants", st.Grants)
		}

		// A cut reply: the caller times out but the node granted the lock.
		n.Heal()
		n.Cut(1, 1, FromNode)
		tctx, cancel = clock.WithTimeout(ctx, clk, time.Second)
		err = settle(callAsync(tctx, 1, 1, "b"))
		cancel()
		if !errors.Is(err, locker.ErrOffline) {
			t.Errorf("cut reply: err = %v, want ErrOffline", err)
		}
		if st := n.Table(1).Stats(); st.Grants != 1 {
			t.Errorf("cut reply: node holds %d grants, want 1", st.Grants)
		}

		// A crashed node refuses connections; after restart its table is
		// empty, and in its grace period: it refuses new locks, and grants
		// a reclaim of the lock the lost table held.
		n.Heal()
		n.CrashNode(0)
		if err := settle(callAsync(ctx, 0, 0, "c")); !errors.Is(err, locker.ErrOffline) {
			t.Errorf("crashed node: err = %v, want ErrOffline", err)
		}
		n.RestartNode(0)
		if err := settle(callAsync(ctx, 1, 0, "d")); err == nil || !strings.Contains(err.Error(), locker.ReasonQuiet.String()) {
			t.Errorf("restarted node: err = %v, want a refusal for its grace period", err)
		}
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
		if err := settle(reclaimed); err != nil {
			t.Errorf("restarted node: reclaim: %v; want granted", err)
		}

		// A paused client's request waits for the resume.
		n.PauseClient(0)
		ch := callAsync(ctx, 0, 1, "e")
		synctest.Wait()
		clk.Advance(time.Hour)
		synctest.Wait()
		select {
		case err := <-ch:
			t.Fatalf("paused client's call returned %v", err)
		default:
		}
		n.ResumeClient(0)
		if err := settle(ch); err == nil || err.Error() != "refused: held by another" {
			t.Errorf("resumed call: %v, want refused (b holds x on n1)", err)
		}

		// A crashed client fails at once.
		n.CrashClient(1)
		if err := settle(callAsync(ctx, 1, 1, "f")); !errors.Is(err, locker.ErrClosed) {
			t.Errorf("crashed client: err = %v, want ErrClosed", err)
		}
	})
}
