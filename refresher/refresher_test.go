package refresher_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/refresher"
)

const (
	interval = 10 * time.Second
	validity = 60 * time.Second
)

// countingLocker counts Refresh calls and can be made to fail them.
type countingLocker struct {
	locker.NetLocker
	refreshes atomic.Int64
	uids      atomic.Int64
	down      atomic.Bool
}

func (c *countingLocker) Refresh(ctx context.Context, a locker.RefreshArgs) (locker.RefreshReply, error) {
	c.refreshes.Add(1)
	c.uids.Add(int64(len(a.UIDs)))
	if c.down.Load() {
		return locker.RefreshReply{}, locker.ErrOffline
	}
	return c.NetLocker.Refresh(ctx, a)
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
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	f.r = r
	return f
}

// hold grants uid on the given nodes and registers it.
func (f *fixture) hold(uid string, quorum int, on ...int) {
	f.t.Helper()
	for _, i := range on {
		if r, err := f.tables[i].Lock(context.Background(), locker.LockArgs{UID: uid, Resources: []string{uid}}); err != nil || !r.OK {
			f.t.Fatalf("lock %s on node %d: %v %v", uid, i, r, err)
		}
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
		if st.Locks != locks || st.Refreshed != locks || st.Requests != 4 || st.Lost != 0 {
			t.Fatalf("round %d: %+v", round, st)
		}
		for i, n := range f.nodes {
			if got := n.refreshes.Load(); got != int64(round) {
				t.Fatalf("node %d got %d refresh requests after %d rounds", i, got, round)
			}
		}
	}
	// Refreshed locks outlive the validity on the nodes.
	if st := f.tables[0].Stats(); st.Grants != locks {
		t.Fatalf("node 0 holds %d grants", st.Grants)
	}
}

func TestLostWhenMoreThanNMinusQuorumDeny(t *testing.T) {
	f := newFixture(t, 3)
	f.hold("a", 2, 0, 1, 2)
	f.hold("b", 2, 0, 1, 2)
	// One node forgets "a": n−q = 1 denial is tolerated.
	f.tables[0].ForceUnlock(context.Background(), locker.LockArgs{UID: "a"})
	if st := f.tick(); st.Lost != 0 {
		t.Fatalf("lost after one denial: %+v", st)
	}
	// A second node forgets "a": lost.
	f.tables[1].ForceUnlock(context.Background(), locker.LockArgs{UID: "a"})
	if st := f.tick(); st.Lost != 1 {
		t.Fatalf("round after two denials: %+v", st)
	}
	if uid := <-f.lost; uid != "a" {
		t.Fatalf("lost %q, want a", uid)
	}
	if err := f.lostReason("a"); !errors.Is(err, refresher.ErrNotHeld) || !errors.Is(err, refresher.ErrLost) {
		t.Fatalf("reason %v, want ErrNotHeld", err)
	}
	if f.r.Len() != 1 {
		t.Fatalf("%d locks registered, want 1", f.r.Len())
	}
}

func TestUnreachableNodesAreNotDenials(t *testing.T) {
	f := newFixture(t, 3)
	f.hold("a", 2, 0, 1, 2)
	f.nodes[0].down.Store(true)
	f.nodes[1].down.Store(true)
	// Refreshes miss the quorum but nobody denies: the lock stands until
	// its deadline, validity less the margin after it was acquired.
	for range 5 { // 50s of 60s
		if st := f.tick(); st.Lost != 0 || st.Failed != 2 || st.Refreshed != 0 {
			t.Fatalf("round: %+v", st)
		}
	}
	select {
	case uid := <-f.lost:
		t.Fatalf("%s lost before its deadline", uid)
	default:
	}
	// The deadline (58.8s) passes before the next tick and before the nodes'
	// validity (60s).
	f.clk.Advance(validity - validity/50 - 5*interval)
	if uid := <-f.lost; uid != "a" {
		t.Fatalf("lost %q", uid)
	}
	if err := f.lostReason("a"); !errors.Is(err, refresher.ErrExpired) {
		t.Fatalf("reason %v, want ErrExpired", err)
	}
	// The holder gave up before the nodes expired the grant.
	if st := f.tables[2].Stats(); st.Grants != 1 {
		t.Fatalf("node 2 no longer holds the grant: %+v", st)
	}
}

func TestQuorumRefreshMovesDeadline(t *testing.T) {
	f := newFixture(t, 3)
	f.hold("a", 2, 0, 1, 2)
	f.nodes[0].down.Store(true)
	for range 20 { // 200s: far past the validity, refreshed by 2 of 3
		if st := f.tick(); st.Refreshed != 1 || st.Lost != 0 {
			t.Fatalf("round: %+v", st)
		}
	}
	if f.r.Len() != 1 {
		t.Fatal("lock dropped although a quorum refreshed it")
	}
}

func TestRemoveStopsRefreshing(t *testing.T) {
	f := newFixture(t, 1)
	f.hold("a", 1, 0)
	if !f.r.Remove("a") || f.r.Remove("a") {
		t.Fatal("Remove did not report registration correctly")
	}
	if st := f.tick(); st.Locks != 0 || st.Requests != 0 {
		t.Fatalf("round after remove: %+v", st)
	}
	if n := f.nodes[0].refreshes.Load(); n != 0 {
		t.Fatalf("%d refresh requests for no locks", n)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []refresher.Config{
		{Interval: -1},
		{Interval: time.Minute, Validity: time.Minute},
		{Validity: time.Second},
	}
	for _, c := range bad {
		if _, err := refresher.New([]locker.NetLocker{locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})}, c); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", c)
		}
	}
	if _, err := refresher.New(nil, refresher.Config{}); err == nil {
		t.Error("New without lockers accepted")
	}
}

func TestCloseReportsHeldLocksLost(t *testing.T) {
	f := newFixture(t, 1)
	f.hold("a", 1, 0)
	f.r.Close()
	if uid := <-f.lost; uid != "a" {
		t.Fatalf("lost %q", uid)
	}
	if err := f.lostReason("a"); !errors.Is(err, refresher.ErrStopped) || !errors.Is(err, refresher.ErrLost) {
		t.Fatalf("reason %v", err)
	}
	f.r.Close() // idempotent
}

func TestDeadlineFollowsRefreshes(t *testing.T) {
	f := newFixture(t, 3)
	start := f.clk.Now()
	f.hold("a", 2, 0, 1, 2)
	want := start.Add(validity - validity/50)
	if d, ok := f.r.Deadline("a"); !ok || !d.Equal(want) {
		t.Fatalf("Deadline after Add: %v %v, want %v", d, ok, want)
	}
	f.tick() // a round that reaches every node moves it on
	if d, ok := f.r.Deadline("a"); !ok || !d.Equal(want.Add(interval)) {
		t.Fatalf("Deadline after a round: %v %v, want %v", d, ok, want.Add(interval))
	}
	f.r.Remove("a")
	if _, ok := f.r.Deadline("a"); ok {
		t.Fatal("Deadline of a removed lock")
	}
}
