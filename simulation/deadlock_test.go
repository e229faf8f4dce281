package simulation

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

// TestLinkWaits runs the locker.WaitReporter contract over a healthy
// simulated link, and checks that a read of the edges suffers the link's
// faults like any other call: over a cut link it fails with ErrOffline and
// a withdrawal sent over it does not reach the node.
func TestLinkWaits(t *testing.T) {
	lockertest.RunWaits(t, func(t *testing.T, cfg locker.Config) locker.NetLocker {
		n := NewNetwork(NetworkConfig{Node: cfg, Clock: cfg.Clock.(clock.Clock)})
		t.Cleanup(n.Close)
		return n.Link(0, 0)
	})
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(time.Unix(1_700_000_000, 0))
		n := NewNetwork(NetworkConfig{Clients: 2, Clock: clk, Node: locker.Config{SweepInterval: -1, WaitExpiry: time.Minute}})
		defer n.Close()
		ctx := context.Background()
		_, err := n.Link(0, 0).Lock(ctx, locker.LockArgs{UID: "u0", Resources: []string{"a"}, Owner: "c0", Quorum: 1, Holder: "c0/c0"})
		require.NoError(t, err)
		lr, err := n.Link(1, 0).Lock(ctx, locker.LockArgs{UID: "u1", Resources: []string{"a"}, Owner: "c1", Quorum: 1, Holder: "c1/c1"})
		require.NoError(t, err, "conflicting lock: %+v; want refused", lr)
		require.False(t, lr.OK, "conflicting lock: %+v; want refused", lr)
		n.Cut(1, 0, ToNode)
		call := func(args locker.WaitsArgs) error {
			tctx, cancel := clock.WithTimeout(ctx, clk, time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := n.Link(1, 0).Waits(tctx, args)
				done <- err
			}()
			synctest.Wait()
			clk.Advance(time.Second)
			return <-done
		}
		assert.ErrorIs(t, call(locker.WaitsArgs{}), locker.ErrOffline, "waits over a cut link, want ErrOffline")
		assert.ErrorIs(t, call(locker.WaitsArgs{Withdraw: "c1/c1", Resources: []string{"a"}}), locker.ErrOffline, "withdrawal over a cut link, want ErrOffline")
		r, err := n.Link(0, 0).Waits(ctx, locker.WaitsArgs{})
		const edges = "edges over a healthy link after a lost withdrawal: %+v; want c1/c1 waiting for c0/c0"
		if assert.NoError(t, err, edges, r.Edges) && assert.Len(t, r.Edges, 1, edges, r.Edges) {
			assert.Equal(t, "c1/c1", r.Edges[0].Waiter, edges, r.Edges)
			assert.Equal(t, "c0/c0", r.Edges[0].Holder, edges, r.Edges)
		}
	})
}

// TestCheckDeadlocks checks CheckDeadlocks on hand-made rounds: an
// ErrDeadlock in a chain, one whose cycle has a larger holder than the
// victim or does not go through it, and a live client whose last probe
// round did not complete are each caught; a justified victim, a crashed
// client's unfinished probe and a probe that completed after losing once
// are not.
func TestCheckDeadlocks(t *testing.T) {
	const (
		justified  = `dsync: lock [bucket/object-1]: dsync: deadlock: across processes: "c2/c2" waits for "bucket/object-1" held by "c1/c1", "c1/c1" waits for "bucket/object-0" held by "c2/c2"`
		notLargest = `dsync: lock [bucket/object-1]: dsync: deadlock: across processes: "c1/c1" waits for "bucket/object-1" held by "c2/c2", "c2/c2" waits for "bucket/object-0" held by "c1/c1"`
		notThrough = `dsync: lock [bucket/object-1]: dsync: deadlock: across processes: "c2/c2" waits for "bucket/object-1" held by "c0/c0", "c0/c0" waits for "bucket/object-0" held by "c2/c2"`
		inProcess  = `dsync: lock [bucket/object-1]: dsync: deadlock: "c2" waits for itself`
	)
	good := []Round{
		{Client: 2, Outcome: RoundDeadlock, Err: justified},
		{Client: 1, Outcome: RoundDone},
		{Client: 2, Outcome: RoundDone},
		{Client: 0, Outcome: RoundTimeout, Err: "dsync: timed out"},
		{Client: 2, Outcome: RoundDeadlock, Err: justified, Probe: true},
		{Client: 2, Outcome: RoundDone, Probe: true},
		{Client: 1, Outcome: RoundDone, Probe: true},
		{Client: 0, Outcome: RoundFailed, Probe: true, Crashed: true},
	}
	rep := CheckDeadlocks(good, false)
	const justifiedWant = "justified victims: %+v; want no violation, 8 rounds: 4 done, 2 deadlocks, 1 timeout, 1 failed"
	assert.Zero(t, rep.Violations(), justifiedWant, rep)
	assert.Equal(t, 8, rep.Rounds, justifiedWant, rep)
	assert.Equal(t, 4, rep.Completed, justifiedWant, rep)
	assert.Equal(t, 2, rep.Deadlocks, justifiedWant, rep)
	assert.Equal(t, 1, rep.Timeouts, justifiedWant, rep)
	assert.Equal(t, 1, rep.Failed, justifiedWant, rep)
	rep = CheckDeadlocks(good, true)
	assert.Equal(t, 2, rep.FalseVictims, "the same rounds in a chain: %+v; want both ErrDeadlocks false victims", rep)
	assert.Equal(t, 2, rep.Violations(), "the same rounds in a chain: %+v; want both ErrDeadlocks false victims", rep)
	for _, msg := range []string{notLargest, notThrough, inProcess, "dsync: deadlock: across processes: garbled"} {
		rep := CheckDeadlocks([]Round{{Client: 1, Outcome: RoundDeadlock, Err: msg}}, false)
		assert.Equal(t, 1, rep.WrongVictims, "c1 victim of %s: %+v; want a wrong victim", msg, rep)
		assert.Equal(t, 1, rep.Violations(), "c1 victim of %s: %+v; want a wrong victim", msg, rep)
	}
	stuck := []Round{
		{Client: 0, Outcome: RoundDone, Probe: true},
		{Client: 1, Outcome: RoundDone, Probe: true},
		{Client: 1, Outcome: RoundTimeout, Probe: true, Err: "dsync: timed out"},
	}
	rep = CheckDeadlocks(stuck, false)
	assert.Equal(t, 1, rep.Unfinished, "c1's last probe round timed out: %+v; want 1 unfinished", rep)
	assert.Equal(t, 1, rep.Violations(), "c1's last probe round timed out: %+v; want 1 unfinished", rep)
}

// TestDeadlockRandom runs the random scenario over the deadlock workload:
// every lock linearizable, no overlapping writers, every ErrDeadlock a
// justified victim, and once faults stop every client completes its round
// within the liveness bound (no cycle survives). SIM_PRIMITIVE_SEEDS runs
// more seeds. A failing seed replays with
//
//	go test ./simulation -run 'TestDeadlockRandom/seed=N$'
func TestDeadlockRandom(t *testing.T) {
	var runs, rounds, deadlocks, timeouts int
	runSeeds(t, DeadlockRandom(Budget{}), primitiveSeeds(), func(t *testing.T, r *Result) {
		assert.NotZero(t, r.Deadlock.Rounds, "deadlock report %+v: want rounds", r.Deadlock)
		runs++
		rounds += r.Deadlock.Rounds
		deadlocks += r.Deadlock.Deadlocks
		timeouts += r.Deadlock.Timeouts
	})
	t.Logf("%d runs: %d rounds, %d ended by ErrDeadlock, %d by timeout", runs, rounds, deadlocks, timeouts)
}

// TestDeadlockCheckersCatchUndetectedCycles proves the liveness check on the
// deadlock workload: with detection off (the clients name no holder, or the
// nodes record no waits) the same cycles last until Options.Timeout, and the
// run must fail; with it on, the same seed is safe and has victims.
func TestDeadlockCheckersCatchUndetectedCycles(t *testing.T) {
	s := deadlockScenario()
	r := runScenario(t, s, Config{Seed: 1})
	t.Log(r.Summary())
	u := r.Unexpected()
	assert.Empty(t, u, "with detection: %v, %+v; want safe, with victims", u, r.Deadlock)
	assert.NotZero(t, r.Deadlock.Deadlocks, "with detection: %v, %+v; want safe, with victims", u, r.Deadlock)

	anonymous := s
	anonymous.Drive = func(c *Cluster) (time.Duration, error) {
		c.anonymous = true
		return s.Drive(c)
	}
	noWaits := s
	noWaits.Setup = func(cfg *Config) {
		s.Setup(cfg)
		cfg.WaitExpiry = -1
	}
	for name, broken := range map[string]Scenario{"no holder": anonymous, "nodes record no waits": noWaits} {
		r := runScenario(t, broken, Config{Seed: 1, Ops: 5}) // each cycle waits out the timeout: a few rounds show it
		t.Log(r.Summary())
		want := []any{"%s: %+v, %d liveness failures; want no victim, timeouts, liveness failures, and the run failed",
			name, r.Deadlock, r.LivenessFailures}
		assert.Zero(t, r.Deadlock.Deadlocks, want...)
		assert.NotZero(t, r.Deadlock.Timeouts, want...)
		assert.NotZero(t, r.LivenessFailures, want...)
		assert.NotEmpty(t, r.Unexpected(), want...)
	}
}

// TestDeadlockChainCheckerCatchesCycles proves the chain's check on a real
// run: the chain scenario with the cycle workload's orders has victims, each
// of which is a violation there.
func TestDeadlockChainCheckerCatchesCycles(t *testing.T) {
	s := deadlockChain()
	unordered := s
	unordered.Drive = func(c *Cluster) (time.Duration, error) {
		c.unorderedChain = true
		return s.Drive(c)
	}
	r := runScenario(t, unordered, Config{Seed: 1})
	t.Log(r.Summary())
	assert.NotZero(t, r.Deadlock.FalseVictims, "chain with cycles: %+v; want false victims, and the run failed", r.Deadlock)
	assert.NotEmpty(t, r.Unexpected(), "chain with cycles: %+v; want false victims, and the run failed", r.Deadlock)
}
