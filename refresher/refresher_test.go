package refresher_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/refresher"
)

const (
	interval = 10 * time.Second
	validity = 60 * time.Second
)

// countingLocker counts Refresh calls and reclaims, and can be made to
// fail refreshes.
type countingLocker struct {
	locker.NetLocker
	refreshes atomic.Int64
	uids      atomic.Int64
	reclaims  atomic.Int64
	down      atomic.Bool
	// afterRefresh, if set, is called after each refresh answer, on the
	// refresher's goroutine, before the answer is returned.
	afterRefresh func()
}

func (c *countingLocker) Refresh(ctx context.Context, a locker.RefreshArgs) (locker.RefreshReply, error) {
	c.refreshes.Add(1)
	c.uids.Add(int64(len(a.UIDs)))
	if c.down.Load() {
		return locker.RefreshReply{}, locker.ErrOffline
	}
	r, err := c.NetLocker.Refresh(ctx, a)
	if c.afterRefresh != nil {
		c.afterRefresh()
	}
	return r, err
}

func (c *countingLocker) Lock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	if a.Reclaim {
		c.reclaims.Add(1)
	}
	return c.NetLocker.Lock(ctx, a)
}

type fixture struct {
	t       *testing.T
	clk     *clock.Fake
	tables  []*locker.Local
	nodes   []*countingLocker
	r       *refresher.Refresher
	rounds  chan refresher.RoundStats
	lostMu  sync.Mutex
	lostErr map[string]error
	lost    chan string
}

func newFixture(t *testing.T, n int) *fixture {
	f := &fixture{
		t: t, clk: clock.NewFake(time.Unix(1_700_000_000, 0)),
		rounds: make(chan refresher.RoundStats, 100), lostErr: map[string]error{}, lost: make(chan string, 10000),
	}
	var ls []locker.NetLocker
	for range n {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: validity, Clock: f.clk, SweepInterval: -1})
		t.Cleanup(func() { tbl.Close() })
		c := &countingLocker{NetLocker: tbl}
		f.tables = append(f.tables, tbl)
		f.nodes = append(f.nodes, c)
		ls = append(ls, c)
	}
	r, err := refresher.New(ls, refresher.Config{
		Interval: interval, Validity: validity, Clock: f.clk,
		OnRound: func(s refresher.RoundStats) { f.rounds <- s },
	})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	f.r = r
	return f
}

// hold grants uid on the given nodes and registers it.
func (f *fixture) hold(uid string, quorum int, on ...int) {
	f.t.Helper()
	for _, i := range on {
		r, err := f.tables[i].Lock(context.Background(), locker.LockArgs{UID: uid, Resources: []string{uid}})
		require.NoError(f.t, err, "lock %s on node %d", uid, i)
		require.True(f.t, r.OK, "lock %s on node %d: %v", uid, i, r)
	}
	f.r.Add(refresher.Lock{UID: uid, Quorum: quorum, Acquired: f.clk.Now(), OnLost: func(err error) {
		f.lostMu.Lock()
		f.lostErr[uid] = err
		f.lostMu.Unlock()
		f.lost <- uid
	}})
}

// tick advances the clock by one interval and waits for the round.
func (f *fixture) tick() refresher.RoundStats {
	f.t.Helper()
	// The loop arms its tick timer and a deadline timer.
	f.clk.BlockUntil(nil, 1)
	f.clk.Advance(interval)
	return <-f.rounds
}

func (f *fixture) lostReason(uid string) error {
	f.lostMu.Lock()
	defer f.lostMu.Unlock()
	return f.lostErr[uid]
}

func TestOneRequestPerNodePerInterval(t *testing.T) {
	f := newFixture(t, 4)
	const locks = 10000
	for i := range locks {
		f.hold(fmt.Sprint("u", i), 3, 0, 1, 2, 3)
	}
	for round := 1; round <= 3; round++ {
		st := f.tick()
		require.Equal(t, locks, st.Locks, "round %d: %+v", round, st)
		require.Equal(t, locks, st.Refreshed, "round %d: %+v", round, st)
		require.Equal(t, 4, st.Requests, "round %d: %+v", round, st)
		require.Zero(t, st.Lost, "round %d: %+v", round, st)
		for i, n := range f.nodes {
			require.Equal(t, int64(round), n.refreshes.Load(), "node %d: refresh requests after %d rounds", i, round)
		}
	}
	// Refreshed locks outlive the validity on the nodes.
	require.Equal(t, locks, f.tables[0].Stats().Grants, "grants node 0 holds")
}

func TestLostWhenMoreThanNMinusQuorumDeny(t *testing.T) {
	f := newFixture(t, 3)
	f.hold("a", 2, 0, 1, 2)
	f.hold("b", 2, 0, 1, 2)
	// One node forgets "a": n−q = 1 denial is tolerated.
	f.tables[0].ForceUnlock(context.Background(), locker.LockArgs{UID: "a"})
	st := f.tick()
	require.Zero(t, st.Lost, "lost after one denial: %+v", st)
	// A second node forgets "a": lost.
	f.tables[1].ForceUnlock(context.Background(), locker.LockArgs{UID: "a"})
	st = f.tick()
	require.Equal(t, 1, st.Lost, "round after two denials: %+v", st)
	require.Equal(t, "a", <-f.lost, "lost")
	err := f.lostReason("a")
	require.ErrorIs(t, err, refresher.ErrNotHeld, "reason")
	require.ErrorIs(t, err, refresher.ErrLost, "reason")
	require.Equal(t, 1, f.r.Len(), "locks registered")
}

func TestUnreachableNodesAreNotDenials(t *testing.T) {
	f := newFixture(t, 3)
	f.hold("a", 2, 0, 1, 2)
	f.nodes[0].down.Store(true)
	f.nodes[1].down.Store(true)
	// Refreshes miss the quorum but nobody denies: the lock stands until
	// its deadline, validity less the margin after it was acquired.
	for range 5 { // 50s of 60s
		st := f.tick()
		require.Zero(t, st.Lost, "round: %+v", st)
		require.Equal(t, 2, st.Failed, "round: %+v", st)
		require.Zero(t, st.Refreshed, "round: %+v", st)
	}
	select {
	case uid := <-f.lost:
		require.Failf(t, "lost before its deadline", "%s lost before its deadline", uid)
	default:
	}
	// The deadline (58.8s) passes before the next tick and before the nodes'
	// validity (60s).
	f.clk.Advance(validity - validity/50 - 5*interval)
	require.Equal(t, "a", <-f.lost, "lost")
	require.ErrorIs(t, f.lostReason("a"), refresher.ErrExpired, "reason")
	// The holder gave up before the nodes expired the grant.
	st := f.tables[2].Stats()
	require.Equal(t, 1, st.Grants, "node 2 no longer holds the grant: %+v", st)
}

func TestQuorumRefreshMovesDeadline(t *testing.T) {
	f := newFixture(t, 3)
	f.hold("a", 2, 0, 1, 2)
	f.nodes[0].down.Store(true)
	for range 20 { // 200s: far past the validity, refreshed by 2 of 3
		st := f.tick()
		require.Equal(t, 1, st.Refreshed, "round: %+v", st)
		require.Zero(t, st.Lost, "round: %+v", st)
	}
	require.Equal(t, 1, f.r.Len(), "lock dropped although a quorum refreshed it")
}

func TestRemoveStopsRefreshing(t *testing.T) {
	f := newFixture(t, 1)
	f.hold("a", 1, 0)
	require.True(t, f.r.Remove("a"), "Remove did not report registration correctly")
	require.False(t, f.r.Remove("a"), "Remove did not report registration correctly")
	st := f.tick()
	require.Zero(t, st.Locks, "round after remove: %+v", st)
	require.Zero(t, st.Requests, "round after remove: %+v", st)
	require.Zero(t, f.nodes[0].refreshes.Load(), "refresh requests for no locks")
}

func TestConfigValidate(t *testing.T) {
	bad := []refresher.Config{
		{Interval: -1},
		{Interval: time.Minute, Validity: time.Minute},
		{Validity: time.Second},
	}
	for _, c := range bad {
		_, err := refresher.New([]locker.NetLocker{locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})}, c)
		assert.Error(t, err, "New(%+v) accepted an invalid config", c)
	}
	_, err := refresher.New(nil, refresher.Config{})
	assert.Error(t, err, "New without lockers accepted")
}

func TestCloseReportsHeldLocksLost(t *testing.T) {
	f := newFixture(t, 1)
	f.hold("a", 1, 0)
	f.r.Close()
	require.Equal(t, "a", <-f.lost, "lost")
	err := f.lostReason("a")
	require.ErrorIs(t, err, refresher.ErrStopped, "reason")
	require.ErrorIs(t, err, refresher.ErrLost, "reason")
	f.r.Close() // idempotent
}

func TestDeadlineFollowsRefreshes(t *testing.T) {
	f := newFixture(t, 3)
	start := f.clk.Now()
	f.hold("a", 2, 0, 1, 2)
	want := start.Add(validity - validity/50)
	d, ok := f.r.Deadline("a")
	require.True(t, ok, "Deadline after Add")
	require.True(t, d.Equal(want), "Deadline after Add: %v, want %v", d, want)
	f.tick() // a round that reaches every node moves it on
	d, ok = f.r.Deadline("a")
	require.True(t, ok, "Deadline after a round")
	require.True(t, d.Equal(want.Add(interval)), "Deadline after a round: %v, want %v", d, want.Add(interval))
	f.r.Remove("a")
	_, ok = f.r.Deadline("a")
	require.False(t, ok, "Deadline of a removed lock")
}

// holdReclaimable grants a write lock on uid's resource on the given nodes
// and registers it with its arguments, and those nodes as its holders, so
// that it can be reclaimed there.
func (f *fixture) holdReclaimable(uid string, quorum int, v time.Duration, on ...int) {
	f.t.Helper()
	args := locker.LockArgs{UID: uid, Resources: []string{uid}, Owner: "o", Quorum: quorum}
	held := make([]bool, len(f.tables))
	for _, i := range on {
		r, err := f.tables[i].Lock(context.Background(), args)
		require.NoError(f.t, err)
		require.True(f.t, r.OK)
		held[i] = true
	}
	f.holdArgs(refresher.Lock{UID: uid, Quorum: quorum, Acquired: f.clk.Now(), Validity: v, Write: true, Args: args, Held: held})
}

// holdArgs registers l, its loss reported to the fixture.
func (f *fixture) holdArgs(l refresher.Lock) {
	l.OnLost = func(err error) {
		f.lostMu.Lock()
		f.lostErr[l.UID] = err
		f.lostMu.Unlock()
		f.lost <- l.UID
	}
	f.r.Add(l)
}

// restart gives node i a fresh table configured as the fixture's, with the
// given grace period.
func (f *fixture) restart(i int, grace time.Duration) {
	f.t.Helper()
	f.restartWith(i, locker.Config{QuietPeriod: grace, Validity: validity, Clock: f.clk, SweepInterval: -1})
}

// restartWith gives node i a fresh table configured by cfg.
func (f *fixture) restartWith(i int, cfg locker.Config) {
	tbl := locker.New(cfg)
	f.t.Cleanup(func() { tbl.Close() })
	f.tables[i].Close()
	f.tables[i] = tbl
	f.nodes[i].NetLocker = tbl
}

// TestReclaimAfterRestarts: nodes that restart, all of them at once, are
// sent reclaims of what they lost during their grace period; their "not
// held" is no loss, and the lock stands.
func TestReclaimAfterRestarts(t *testing.T) {
	f := newFixture(t, 3)
	f.holdReclaimable("a", 2, validity, 0, 1, 2)
	for i := range 3 {
		f.restart(i, 0) // the default grace: one validity
	}
	st := f.tick()
	assert.Equal(t, 3, st.Reclaims)
	assert.Equal(t, 3, st.Reclaimed)
	assert.Equal(t, 1, st.Refreshed)
	assert.Zero(t, st.Lost)
	for i, tbl := range f.tables {
		assert.Equal(t, 1, tbl.Stats().Grants, "node %d", i)
	}
	d, ok := f.r.Deadline("a")
	require.True(t, ok)
	assert.Equal(t, f.clk.Now().Add(validity-validity/50), d, "the reclaims count as a refresh by the round")
	// The next round refreshes what was reclaimed.
	st = f.tick()
	assert.Zero(t, st.Reclaims)
	assert.Equal(t, 1, st.Refreshed)
}

// TestRestartWithoutGraceIsALoss: nodes that restarted without a grace
// period may have granted the lock since: their "not held" counts.
func TestRestartWithoutGraceIsALoss(t *testing.T) {
	f := newFixture(t, 3)
	f.holdReclaimable("a", 2, validity, 0, 1, 2)
	f.restart(0, locker.NoQuietPeriod)
	f.restart(1, locker.NoQuietPeriod)
	st := f.tick()
	assert.Zero(t, st.Reclaims)
	assert.Equal(t, 1, st.Lost)
	assert.Equal(t, "a", <-f.lost)
	assert.ErrorIs(t, f.lostReason("a"), refresher.ErrNotHeld)
}

// TestReclaimRefusedIsALoss: a reclaim that conflicts with a grant the
// node holds (reclaimed by another holder) counts as "not held".
func TestReclaimRefusedIsALoss(t *testing.T) {
	f := newFixture(t, 3)
	f.holdReclaimable("a", 2, validity, 0, 1, 2)
	for i := range 2 {
		f.restart(i, 0)
		r, err := f.tables[i].Lock(context.Background(), locker.LockArgs{UID: "intruder", Resources: []string{"a"}, Reclaim: true, Incarnation: f.tables[i].Boot().Incarnation})
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	st := f.tick()
	assert.Equal(t, 2, st.Reclaims)
	assert.Zero(t, st.Reclaimed)
	assert.Equal(t, 1, st.Lost)
}

// TestValidityFromTheNodes: without Config.Validity, a lock's deadline is
// counted from the validity it was granted with, and then from what the
// nodes answer; Config.Validity caps both. (In a synctest bubble, on the
// real clock.)
func TestValidityFromTheNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ls []locker.NetLocker
		for range 3 {
			tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: 30 * time.Second, SweepInterval: -1})
			t.Cleanup(func() { tbl.Close() })
			_, err := tbl.Lock(context.Background(), locker.LockArgs{UID: "a", Resources: []string{"a"}})
			require.NoError(t, err)
			ls = append(ls, tbl)
		}
		var reported sync.Map
		r, err := refresher.New(ls, refresher.Config{Interval: 5 * time.Second,
			OnValidity: func(node int, v time.Duration) { reported.Store(node, v) }})
		require.NoError(t, err)
		defer r.Close()
		start := time.Now()
		r.Add(refresher.Lock{UID: "a", Quorum: 2, Acquired: start, Validity: 10 * time.Second, OnLost: func(error) {}})
		d, _ := r.Deadline("a")
		assert.Equal(t, start.Add(10*time.Second-200*time.Millisecond), d, "the granted validity")
		// The interval follows the shortest validity: a third of it.
		time.Sleep(10*time.Second/3 + time.Nanosecond)
		synctest.Wait()
		d, _ = r.Deadline("a")
		assert.Equal(t, start.Add(10*time.Second/3+30*time.Second-600*time.Millisecond), d, "the nodes' validity, from the round")
		v, ok := reported.Load(1)
		assert.True(t, ok)
		assert.Equal(t, 30*time.Second, v)

		assert.Panics(t, func() { r.Add(refresher.Lock{UID: "b", Quorum: 2, Acquired: start}) }, "a lock of unknown validity")

		capped, err := refresher.New(ls, refresher.Config{Interval: time.Second, Validity: 3 * time.Second})
		require.NoError(t, err)
		defer capped.Close()
		// Acquired now: acquired at start, its capped deadline would have
		// passed already, and the lock be lost as it is added.
		now := time.Now()
		capped.Add(refresher.Lock{UID: "a", Quorum: 2, Acquired: now, Validity: 10 * time.Second, OnLost: func(error) {}})
		d, _ = capped.Deadline("a")
		assert.Equal(t, now.Add(3*time.Second-60*time.Millisecond), d, "Config.Validity caps")
	})
}

// TestReclaimOnlyWhereItCounted: a node that never held the lock (it
// granted the resource to another client, then restarted) answers "not
// held" in its grace as one that lost the lock does, but is not sent a
// reclaim: its grace protects the other client's grant. A node that
// granted the lock is. (The model's first trail: simulation/model,
// RECLAIM_GUARD.)
func TestReclaimOnlyWhereItCounted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 3)
	r, err := f.tables[0].Lock(ctx, locker.LockArgs{UID: "other", Resources: []string{"a"}})
	require.NoError(t, err)
	require.True(t, r.OK)
	f.holdReclaimable("a", 2, validity, 1, 2)
	f.restart(0, 0)
	f.restart(1, 0)
	st := f.tick()
	assert.Equal(t, 1, st.Reclaims, "only node 1, which granted the lock, is sent a reclaim")
	assert.Zero(t, f.nodes[0].reclaims.Load(), "node 0 never held the lock")
	assert.Equal(t, 1, st.Reclaimed)
	assert.Equal(t, 1, st.Refreshed, "node 1's reclaim and node 2's refresh make a quorum")
	assert.Zero(t, st.Lost)
	assert.Zero(t, f.tables[0].Stats().Grants)
	// Node 0's grace keeps the resource for the client it granted it to.
	r, err = f.tables[0].Lock(ctx, locker.LockArgs{UID: "other", Resources: []string{"a"}, Reclaim: true, Incarnation: f.tables[0].Boot().Incarnation})
	require.NoError(t, err)
	assert.True(t, r.OK, "the other client's reclaim: %+v", r)
	// Node 0 counts for no later deadline either.
	st = f.tick()
	assert.Zero(t, st.Reclaims)
	assert.Equal(t, 1, st.Refreshed)
}

// TestReclaimFollowsTheRoundThatSetTheDeadline: once a refresh round moves
// the deadline, the nodes that counted in it are the ones reclaimed on. A
// node that granted the acquisition but missed the round may have let the
// grant expire before the new deadline.
func TestReclaimFollowsTheRoundThatSetTheDeadline(t *testing.T) {
	f := newFixture(t, 3)
	f.holdReclaimable("a", 2, validity, 0, 1, 2)
	f.nodes[0].down.Store(true)
	st := f.tick()
	require.Equal(t, 1, st.Refreshed, "nodes 1 and 2")
	f.nodes[0].down.Store(false)
	f.restart(0, 0)
	st = f.tick()
	assert.Zero(t, st.Reclaims, "node 0 did not count for the deadline")
	assert.Zero(t, f.nodes[0].reclaims.Load())
	assert.Equal(t, 1, st.Refreshed)
	// Node 1 counted in that round: it is reclaimed on when it restarts.
	f.restart(1, 0)
	st = f.tick()
	assert.Equal(t, 1, st.Reclaims)
	assert.Equal(t, int64(1), f.nodes[1].reclaims.Load())
	assert.Equal(t, 1, st.Reclaimed)
	assert.Equal(t, 1, st.Refreshed)
}

// TestReclaimWithoutHeld: a lock registered without Lock.Held is reclaimed
// nowhere until a round has counted its nodes.
func TestReclaimWithoutHeld(t *testing.T) {
	f := newFixture(t, 3)
	args := locker.LockArgs{UID: "a", Resources: []string{"a"}, Quorum: 2}
	for _, tbl := range f.tables {
		r, err := tbl.Lock(context.Background(), args)
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	f.holdArgs(refresher.Lock{UID: "a", Quorum: 2, Acquired: f.clk.Now(), Validity: validity, Write: true, Args: args})
	f.restart(2, 0)
	st := f.tick()
	assert.Zero(t, st.Reclaims, "nil Held marks no node")
	assert.Equal(t, 1, st.Refreshed, "nodes 0 and 1")
	f.restart(0, 0)
	st = f.tick()
	assert.Equal(t, 1, st.Reclaims, "node 0 counted in the last round; node 2 did not")
	assert.Equal(t, int64(1), f.nodes[0].reclaims.Load())
	assert.Zero(t, f.nodes[2].reclaims.Load())
	assert.Equal(t, 1, st.Refreshed)
}

// TestReclaimNotWhereTheValidityIsShorter: a node that refreshed with a
// shorter validity than the deadline was counted with may let the grant
// expire before the deadline: it did not count for it.
func TestReclaimNotWhereTheValidityIsShorter(t *testing.T) {
	f := newFixture(t, 3)
	short := locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: validity / 2, Clock: f.clk, SweepInterval: -1}
	f.restartWith(2, short)
	f.holdReclaimable("a", 2, validity, 0, 1, 2) // as if node 2 had granted with the longer validity
	st := f.tick()
	require.Equal(t, 1, st.Refreshed)
	d, _ := f.r.Deadline("a")
	assert.Equal(t, f.clk.Now().Add(validity-validity/50), d, "the second longest validity: nodes 0 and 1")
	short.QuietPeriod = 0
	f.restartWith(2, short)
	st = f.tick()
	assert.Zero(t, st.Reclaims, "node 2 holds the lock for less than the deadline")
	f.restart(1, 0)
	st = f.tick()
	assert.Equal(t, 1, st.Reclaims, "node 1 counted")
	assert.Equal(t, int64(1), f.nodes[1].reclaims.Load())
}

// TestStaleReclaimIsNoDenial: a node that restarts again between its
// refresh answer and the reclaim that answer asked for refuses the reclaim
// (it names the earlier incarnation); the refusal is no denial, and the
// next round reclaims on the node's new run.
func TestStaleReclaimIsNoDenial(t *testing.T) {
	f := newFixture(t, 3)
	f.holdReclaimable("a", 3, validity, 0, 1, 2) // a quorum of 3: a single denial is a loss
	f.restart(0, 0)
	var again sync.Once
	f.nodes[0].afterRefresh = func() { again.Do(func() { f.restart(0, 0) }) }
	st := f.tick()
	assert.Equal(t, 1, st.Reclaims)
	assert.Zero(t, st.Reclaimed)
	assert.Zero(t, st.Lost)
	assert.Zero(t, st.Refreshed, "nodes 1 and 2 are not a quorum of 3")
	st = f.tick()
	assert.Equal(t, 1, st.Reclaims)
	assert.Equal(t, 1, st.Reclaimed, "the reclaim names the new incarnation")
	assert.Equal(t, 1, st.Refreshed)
	assert.Equal(t, 1, f.tables[0].Stats().Grants)
}

// TestMarkHeld: a node that granted the acquisition after Add (after its
// quorum was in) counts for the acquisition's deadline once marked, if its
// validity is long enough; once a round has set another deadline, a mark
// is too late.
func TestMarkHeld(t *testing.T) {
	f := newFixture(t, 4)
	args := locker.LockArgs{UID: "a", Resources: []string{"a"}, Owner: "o", Quorum: 2}
	for _, tbl := range f.tables {
		r, err := tbl.Lock(context.Background(), args)
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	held := []bool{true, true, false, false} // nodes 2 and 3 granted late
	f.holdArgs(refresher.Lock{UID: "a", Quorum: 2, Acquired: f.clk.Now(), Validity: validity, Write: true, Args: args, Held: held})
	held[3] = true // Add copied it
	f.r.MarkHeld("a", 2, validity)
	f.r.MarkHeld("a", 3, validity/2) // too short to last until the deadline
	f.r.MarkHeld("a", 7, validity)   // no such node
	f.r.MarkHeld("b", 3, validity)   // no such lock
	f.restart(2, 0)
	f.restart(3, 0)
	st := f.tick()
	assert.Equal(t, 1, st.Reclaims, "node 2 alone")
	assert.Equal(t, int64(1), f.nodes[2].reclaims.Load())
	assert.Equal(t, 1, st.Reclaimed)
	// That round set the deadline: a late mark no longer counts.
	f.r.MarkHeld("a", 3, validity)
	st = f.tick()
	assert.Zero(t, st.Reclaims)
	assert.Zero(t, f.nodes[3].reclaims.Load())
}
