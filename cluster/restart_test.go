package cluster_test

// The guarantees of safety by default, checked over real HTTP: the nodes'
// validity is the one source of truth for a holder's deadline, and restarts
// of any number of nodes lose no held lock.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/cluster"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

var epoch = time.Unix(1_700_000_000, 0)

// cuttable is a node as one client process sees it, with a switch that
// cuts the process off from it: every call then fails before it is sent.
// It embeds the locker as a NetLocker, which hides the client's Submit, so
// that every call goes through the switch.
type cuttable struct {
	locker.NetLocker
	cut *atomic.Bool
}

func (c cuttable) check() error {
	if c.cut.Load() {
		return fmt.Errorf("%s: %w (%w)", c.NetLocker, locker.ErrOffline, locker.ErrNotSent)
	}
	return nil
}

func (c cuttable) Lock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	if err := c.check(); err != nil {
		return locker.Reply{}, err
	}
	return c.NetLocker.Lock(ctx, a)
}

func (c cuttable) RLock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	if err := c.check(); err != nil {
		return locker.Reply{}, err
	}
	return c.NetLocker.RLock(ctx, a)
}

func (c cuttable) Unlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	if err := c.check(); err != nil {
		return locker.Reply{}, err
	}
	return c.NetLocker.Unlock(ctx, a)
}

func (c cuttable) Refresh(ctx context.Context, a locker.RefreshArgs) (locker.RefreshReply, error) {
	if err := c.check(); err != nil {
		return locker.RefreshReply{}, err
	}
	return c.NetLocker.Refresh(ctx, a)
}

func (c cuttable) ForceUnlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	if err := c.check(); err != nil {
		return locker.Reply{}, err
	}
	return c.NetLocker.ForceUnlock(ctx, a)
}

// fakeProcess returns a quorum client on clk, with HTTP clients of its own
// (on the real clock, probing an offline node every few milliseconds) that
// cut can switch off.
func fakeProcess(t *testing.T, c *cluster.Cluster, clk clock.Clock, cfg dsync.Config) (*dsync.Dsync, *atomic.Bool) {
	ds, cut, _ := fakeProcessLockers(t, c, clk, cfg)
	return ds, cut
}

// fakeProcessLockers is fakeProcess, and returns the process's lockers too.
func fakeProcessLockers(t *testing.T, c *cluster.Cluster, clk clock.Clock, cfg dsync.Config) (*dsync.Dsync, *atomic.Bool, []locker.NetLocker) {
	t.Helper()
	cut := new(atomic.Bool)
	var ls []locker.NetLocker
	for _, ep := range c.Endpoints() {
		l, err := rest.NewClient(ep, rest.ClientConfig{Secret: c.Secret(), HealthInterval: 5 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		ls = append(ls, cuttable{NetLocker: l, cut: cut})
	}
	cfg.Clock = clk
	ds, err := dsync.New(ls, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { ds.Close() })
	return ds, cut, ls
}

// online waits until every locker reports its node online.
func online(t *testing.T, ls []locker.NetLocker) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, l := range ls {
			if !l.IsOnline() {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond, "the nodes did not come back online")
}

// lostAt returns a function that reports when, on clk, ctx ended, once it
// has: it waits for it (the refresher reports a loss on its own goroutine).
func lostAt(t *testing.T, ctx context.Context, clk clock.Clock) func() time.Time {
	var mu sync.Mutex
	var at time.Time
	ended := make(chan struct{})
	context.AfterFunc(ctx, func() {
		mu.Lock()
		at = clk.Now()
		mu.Unlock()
		close(ended)
	})
	return func() time.Time {
		t.Helper()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			require.Fail(t, "the holder's lock context never ended")
		}
		mu.Lock()
		defer mu.Unlock()
		return at
	}
}

// TestAbandonedHolderIsToldFirst: the nodes' validity is 2 s. A holder
// whose Config.Validity is unset, or set far too long, and whose network
// goes away, learns that its lock is lost before any other client is
// granted it.
func TestAbandonedHolderIsToldFirst(t *testing.T) {
	const nodeValidity = 2 * time.Second
	for _, clientValidity := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprint("client validity ", clientValidity), func(t *testing.T) {
			clk := clock.NewFake(epoch)
			c := start(t, cluster.Config{Nodes: 3, Table: locker.Config{Validity: nodeValidity, Clock: clk, SweepInterval: -1}})
			holder, cut := fakeProcess(t, c, clk, dsync.Config{RefreshInterval: 300 * time.Millisecond, Validity: clientValidity, Owner: "holder"})
			other, _ := fakeProcess(t, c, clk, dsync.Config{RefreshInterval: 300 * time.Millisecond, Owner: "other"})
			ctx := context.Background()

			m := dsync.NewDRWMutex(holder, "obj")
			lockCtx, err := m.GetLock(ctx, dsync.Options{})
			require.NoError(t, err)
			ended := lostAt(t, lockCtx, clk)
			cut.Store(true) // the holder's network goes away

			o := dsync.NewDRWMutex(other, "obj")
			var granted time.Time
			for step := 0; granted.IsZero(); step++ {
				require.Less(t, step, 100, "the other client was never granted the lock")
				clk.Advance(50 * time.Millisecond)
				ok, _, err := o.TryLock(ctx)
				require.NoError(t, err)
				if ok {
					granted = clk.Now()
				}
			}
			lost := ended()
			assert.False(t, lost.After(granted), "the holder learnt of the loss at +%v, after the other client was granted the lock at +%v", lost.Sub(epoch), granted.Sub(epoch))
			assert.GreaterOrEqual(t, granted.Sub(epoch), nodeValidity, "granted before the nodes' validity passed")
			assert.ErrorIs(t, context.Cause(lockCtx), dsync.ErrLockLost)
			assert.ErrorIs(t, m.Unlock(ctx), dsync.ErrLockLost)
			assert.Contains(t, holder.Stats().Validities, nodeValidity)
			require.NoError(t, o.Unlock(ctx))
		})
	}
}

// TestRestartsLoseNoLock: 3 nodes with the default configuration, but for
// their validity; a client holds a write lock while all 3, 2 of them, or
// each in turn, restart with empty tables on the same addresses. The
// holder's context stays alive, no other client gets the lock while it is
// held, and the next client gets it within one validity after the holder's
// Unlock.
func TestRestartsLoseNoLock(t *testing.T) {
	const validity = 10 * time.Second
	for _, tc := range []struct {
		name    string
		batches [][]int // nodes restarted together, batch after batch
	}{
		{"all at once", [][]int{{0, 1, 2}}},
		{"two of three", [][]int{{1, 2}}},
		{"rolling", [][]int{{0}, {1}, {2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(epoch)
			c := start(t, cluster.Config{Nodes: 3, Table: locker.Config{Validity: validity, Clock: clk, SweepInterval: -1}})
			holder, _, holderNodes := fakeProcessLockers(t, c, clk, dsync.Config{Owner: "holder"})
			other, _ := fakeProcess(t, c, clk, dsync.Config{Owner: "other"})
			ctx := context.Background()
			// A round is a refresh request to every node: it waits for
			// those the holder's HTTP clients found offline to be back, as
			// rounds some seconds apart would.
			round := func() {
				t.Helper()
				online(t, holderNodes)
				before := holder.Stats().RefreshRounds
				clk.Advance(validity/3 + time.Millisecond) // the refresher's interval, for this validity
				require.Eventually(t, func() bool { return holder.Stats().RefreshRounds > before }, 10*time.Second, time.Millisecond)
			}

			m := dsync.NewDRWMutex(holder, "obj")
			lockCtx, err := m.GetLock(ctx, dsync.Options{})
			require.NoError(t, err, "a first start grants at once")
			require.Eventually(t, func() bool { return reclaimedOn(c, []int{0, 1, 2}) }, 10*time.Second, time.Millisecond,
				"the third grant did not land") // GetLock returns once a quorum granted
			restarted := 0
			o := dsync.NewDRWMutex(other, "obj")
			mustNotGet := func(when string) {
				t.Helper()
				ok, _, err := o.TryLock(ctx)
				require.False(t, ok, "the other client got the lock %s", when)
				if err != nil {
					require.ErrorIs(t, err, dsync.ErrRestarting, "%s", when)
				}
				require.NoError(t, lockCtx.Err(), "the holder lost its lock %s", when)
			}

			var restartedAt time.Time
			for _, batch := range tc.batches {
				for _, k := range batch {
					require.NoError(t, c.Stop(k))
				}
				restarted += len(batch)
				for _, k := range batch {
					require.NoError(t, c.Restart(k))
					g := c.Nodes()[k].Table().Boot().Grace
					require.Equal(t, validity, g, "node %d restarted while it held a grant: a grace period", k)
				}
				restartedAt = clk.Now()
				mustNotGet("right after the restart")
				// The holder's refresher reclaims the lock on the restarted
				// nodes within a round or two (a round may meet a connection
				// that the restart broke).
				for i := 0; ; i++ {
					require.Less(t, i, 2, "the lock was not reclaimed on nodes %v: %+v", batch, holder.Stats())
					round()
					mustNotGet(fmt.Sprint("after round ", i))
					if reclaimedOn(c, batch) {
						break
					}
				}
			}
			assert.GreaterOrEqual(t, holder.Stats().Reclaimed, uint64(restarted))

			// Past the grace, and for several validities more, the lock is
			// the holder's: its refresher keeps it on every node.
			for clk.Since(restartedAt) < 3*validity {
				round()
				mustNotGet(fmt.Sprintf("%v after the last restart", clk.Since(restartedAt)))
			}

			require.NoError(t, m.Unlock(ctx), "Unlock tells the truth: the lock was held throughout")
			released := clk.Now()
			for {
				ok, _, err := o.TryLock(ctx)
				if err == nil && ok {
					break
				}
				require.LessOrEqual(t, clk.Since(released), validity, "not granted within a validity of the release: %v", err)
				clk.Advance(100 * time.Millisecond)
			}
			require.NoError(t, o.Unlock(ctx))
		})
	}
}

// reclaimedOn reports whether each of nodes holds one grant.
func reclaimedOn(c *cluster.Cluster, nodes []int) bool {
	for _, k := range nodes {
		if c.Nodes()[k].Table().Stats().Grants != 1 {
			return false
		}
	}
	return true
}

// TestUnlockTellsTheTruth: a holder whose grants vanished from a quorum of
// nodes out of their grace gets ErrLockLost from Unlock. (That nodes in
// their grace count as holding is checked in package dsync.)
func TestUnlockTellsTheTruth(t *testing.T) {
	const validity = 10 * time.Second
	clk := clock.NewFake(epoch)
	c := start(t, cluster.Config{Nodes: 3, Table: locker.Config{Validity: validity, Clock: clk, SweepInterval: -1}})
	holder, _ := fakeProcess(t, c, clk, dsync.Config{Owner: "holder"})
	ctx := context.Background()
	admin, err := c.AdminLockers()
	require.NoError(t, err)
	defer func() {
		for _, l := range admin {
			l.Close()
		}
	}()

	// Forgotten by two nodes, not in grace: lost.
	m := dsync.NewDRWMutex(holder, "a")
	_, err = m.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return reclaimedOn(c, []int{0, 1, 2}) }, 10*time.Second, time.Millisecond,
		"the third grant did not land") // GetLock returns once a quorum granted
	for _, l := range admin[:2] {
		r, err := l.ForceUnlock(ctx, locker.LockArgs{Resources: []string{"a"}})
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	err = m.Unlock(ctx)
	require.ErrorIs(t, err, dsync.ErrLockLost)
	assert.Contains(t, err.Error(), "2 of 3 nodes no longer held it at release")
}
