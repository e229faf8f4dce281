package dsync_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// swapNode is a node whose table a test can replace, as a restart does, or
// cut off, as a partition does.
type swapNode struct {
	mu  sync.Mutex
	tbl *locker.Local
	cut atomic.Bool
	// intercept, if set, sees every Lock and RLock first: if it returns
	// true, the call fails with ErrOffline and does not reach the table
	// (a request held up in the network). Guarded by mu.
	intercept func(locker.LockArgs) bool
}

// intercepted reports whether intercept takes a.
func (n *swapNode) intercepted(a locker.LockArgs) bool {
	n.mu.Lock()
	f := n.intercept
	n.mu.Unlock()
	return f != nil && f(a)
}

func (n *swapNode) table() (*locker.Local, error) {
	if n.cut.Load() {
		return nil, locker.ErrOffline
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.tbl, nil
}

// restart replaces the table with a fresh one configured by cfg.
func (n *swapNode) restart(cfg locker.Config) {
	t := locker.New(cfg)
	n.mu.Lock()
	old := n.tbl
	n.tbl = t
	n.mu.Unlock()
	old.Close()
}

func (n *swapNode) Lock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	t, err := n.table()
	if err != nil {
		return locker.Reply{}, err
	}
	if n.intercepted(a) {
		return locker.Reply{}, locker.ErrOffline
	}
	return t.Lock(ctx, a)
}

func (n *swapNode) RLock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	t, err := n.table()
	if err != nil {
		return locker.Reply{}, err
	}
	if n.intercepted(a) {
		return locker.Reply{}, locker.ErrOffline
	}
	return t.RLock(ctx, a)
}

func (n *swapNode) Unlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	t, err := n.table()
	if err != nil {
		return locker.Reply{}, err
	}
	return t.Unlock(ctx, a)
}

func (n *swapNode) RUnlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	t, err := n.table()
	if err != nil {
		return locker.Reply{}, err
	}
	return t.RUnlock(ctx, a)
}

func (n *swapNode) Refresh(ctx context.Context, a locker.RefreshArgs) (locker.RefreshReply, error) {
	t, err := n.table()
	if err != nil {
		return locker.RefreshReply{}, err
	}
	return t.Refresh(ctx, a)
}

func (n *swapNode) ForceUnlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	t, err := n.table()
	if err != nil {
		return locker.Reply{}, err
	}
	return t.ForceUnlock(ctx, a)
}

func (n *swapNode) IsOnline() bool { return !n.cut.Load() }
func (n *swapNode) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return "swap-" + n.tbl.String()
}
func (n *swapNode) Close() error { return nil }

// swapCluster is nodes, one validity each, and a Dsync over them, all on
// the real clock: tests run it in a testing/synctest bubble, where time
// moves on when every goroutine waits.
type swapCluster struct {
	clk   clock.Clock
	nodes []*swapNode
	ds    *dsync.Dsync
	log   *bytes.Buffer
}

func newSwapCluster(t *testing.T, cfg dsync.Config, validities ...time.Duration) *swapCluster {
	t.Helper()
	c := &swapCluster{clk: clock.Real(), log: new(bytes.Buffer)}
	var ls []locker.NetLocker
	for _, v := range validities {
		n := &swapNode{tbl: locker.New(locker.Config{Validity: v, SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})}
		t.Cleanup(func() { n.mu.Lock(); n.tbl.Close(); n.mu.Unlock() })
		c.nodes = append(c.nodes, n)
		ls = append(ls, n)
	}
	cfg.Clock = c.clk
	cfg.Logger = slog.New(slog.NewTextHandler(c.log, nil))
	ds, err := dsync.New(ls, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { ds.Close() })
	c.ds = ds
	return c
}

// settle waits until every node's table holds n grants: an acquisition
// returns once a quorum granted, and the other grants land after.
func (c *swapCluster) settle(t *testing.T, n int) {
	t.Helper()
	synctest.Wait()
	for i, nd := range c.nodes {
		tbl, _ := nd.table()
		require.Equal(t, n, tbl.Stats().Grants, "node %d", i)
	}
}

// TestDeadlineIsTheNodesValidity: a holder cut off from its nodes gives its
// lock up before the smallest validity among a quorum of them has passed,
// whatever Config.Validity says, and never earlier than it must.
func TestDeadlineIsTheNodesValidity(t *testing.T) {
	for _, tc := range []struct {
		name       string
		client     time.Duration
		validities []time.Duration
		want       time.Duration // the validity the deadline is counted from
	}{
		{"client unset", 0, []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second}, 2 * time.Second},
		{"client longer", time.Minute, []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second}, 2 * time.Second},
		{"client shorter", time.Second, []time.Duration{time.Minute, time.Minute, time.Minute}, time.Second},
		// Two nodes of three keep the lock 30 s: a quorum holds it that long.
		{"one node shorter", 0, []time.Duration{2 * time.Second, 30 * time.Second, 30 * time.Second}, 30 * time.Second},
		// Only one node keeps it 30 s: a quorum holds it 2 s.
		{"two nodes shorter", 0, []time.Duration{2 * time.Second, 2 * time.Second, 30 * time.Second}, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newSwapCluster(t, dsync.Config{Validity: tc.client, RefreshInterval: 100 * time.Millisecond}, tc.validities...)
				lockCtx, err := dsync.NewDRWMutex(c.ds, "obj").GetLock(context.Background(), dsync.Options{})
				require.NoError(t, err)
				// One refresh round hears every node (the acquisition heard
				// a quorum), then the holder is cut off.
				c.settle(t, 1)
				rounds := c.ds.Stats().RefreshRounds
				time.Sleep(100 * time.Millisecond)
				synctest.Wait()
				require.Equal(t, rounds+1, c.ds.Stats().RefreshRounds)
				start := time.Now() // when that round was sent
				for _, n := range c.nodes {
					n.cut.Store(true)
				}
				<-lockCtx.Done()
				assert.Equal(t, tc.want-tc.want/50, time.Since(start), "the validity less the margin for clock rates")
				assert.ErrorIs(t, context.Cause(lockCtx), dsync.ErrLockLost)
			})
		})
	}
}

// TestDisagreeingNodesAreReported: nodes of one cluster that give different
// validities are counted and logged.
func TestDisagreeingNodesAreReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSwapCluster(t, dsync.Config{}, 30*time.Second, 30*time.Second, 30*time.Second)
		m := dsync.NewDRWMutex(c.ds, "a")
		cycle := func() {
			_, err := m.GetLock(context.Background(), dsync.Options{})
			require.NoError(t, err)
			synctest.Wait() // every node has answered
			time.Sleep(10 * time.Second)
			synctest.Wait() // a refresh round has heard every node
			require.NoError(t, m.Unlock(context.Background()))
		}
		cycle()
		st := c.ds.Stats()
		assert.Equal(t, []time.Duration{30 * time.Second, 30 * time.Second, 30 * time.Second}, st.Validities)
		assert.Zero(t, st.ValidityDisagreements)
		assert.Empty(t, c.log.String())

		c.nodes[2].restart(locker.Config{Validity: 5 * time.Second, SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
		cycle()
		cycle()
		st = c.ds.Stats()
		assert.Equal(t, []time.Duration{30 * time.Second, 30 * time.Second, 5 * time.Second}, st.Validities)
		assert.EqualValues(t, 1, st.ValidityDisagreements, "reported once per change")
		assert.Contains(t, c.log.String(), "nodes disagree on their validity")
		assert.Contains(t, c.log.String(), "validity=5s")
	})
}

// TestRefreshFollowsShortValidity: nodes whose validity is far shorter than
// Config.RefreshInterval still see the lock refreshed in time.
func TestRefreshFollowsShortValidity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSwapCluster(t, dsync.Config{}, 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond)
		lockCtx, err := dsync.NewDRWMutex(c.ds, "obj").GetLock(context.Background(), dsync.Options{})
		require.NoError(t, err)
		time.Sleep(10 * time.Second) // some 30 validities
		require.NoError(t, lockCtx.Err(), "lost: %v", context.Cause(lockCtx))
		assert.GreaterOrEqual(t, c.ds.Stats().RefreshRounds, uint64(99), "a round every third of the validity")
	})
}

// TestUnlockTellsTheTruthAboutRestarts: a holder whose nodes forgot its
// grant in a restart and are still in their grace period held the lock to
// the end (nobody else can have had it): Unlock returns nil. Nodes out of
// their grace that forgot it may have granted it since: Unlock says the lock
// was lost.
func TestUnlockTellsTheTruthAboutRestarts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
		lost  bool
	}{
		{"in grace", 0, false}, // the default grace: one validity
		{"no grace", locker.NoQuietPeriod, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const v = 30 * time.Second
				c := newSwapCluster(t, dsync.Config{}, v, v, v)
				m := dsync.NewDRWMutex(c.ds, "obj")
				_, err := m.GetLock(context.Background(), dsync.Options{})
				require.NoError(t, err)
				c.settle(t, 1)
				for _, n := range c.nodes[:2] {
					n.restart(locker.Config{Validity: v, SweepInterval: -1, QuietPeriod: tc.grace})
				}
				err = m.Unlock(context.Background())
				if tc.lost {
					require.ErrorIs(t, err, dsync.ErrLockLost)
					assert.Contains(t, err.Error(), "2 of 3 nodes no longer held it at release")
				} else {
					require.NoError(t, err)
				}
			})
		})
	}
}

// noValidity grants without saying for how long, as a locker that predates
// protocol 2 would.
type noValidity struct{ *locker.Local }

func (n noValidity) Lock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	r, err := n.Local.Lock(ctx, a)
	r.Validity = 0
	return r, err
}

func (n noValidity) Submit(ctx context.Context, op locker.Op, a *locker.LockArgs, timeout time.Duration, sink locker.Sink, tag int) {
	r, err := op.Call(ctx, n, *a)
	sink.Done(tag, r, err)
}

// TestGrantWithoutValidityIsNotCounted: a grant that says nothing of its
// validity cannot be relied on; it is counted as a failure, and released.
func TestGrantWithoutValidityIsNotCounted(t *testing.T) {
	var ls []locker.NetLocker
	var tables []*locker.Local
	for range 3 {
		tbl := locker.New(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
		t.Cleanup(func() { tbl.Close() })
		tables = append(tables, tbl)
	}
	ls = append(ls, noValidity{tables[0]}, noValidity{tables[1]}, tables[2])
	ds, err := dsync.New(ls, dsync.Config{})
	require.NoError(t, err)
	defer ds.Close()
	ok, _, err := dsync.NewDRWMutex(ds, "obj").TryLock(context.Background())
	assert.False(t, ok)
	require.ErrorIs(t, err, dsync.ErrNoQuorum)
	assert.Contains(t, err.Error(), "granted without a validity")
	require.NoError(t, ds.Close()) // waits for the background releases
	for i, tbl := range tables {
		assert.Zero(t, tbl.Stats().Grants, "node %d keeps a grant", i)
	}
}
