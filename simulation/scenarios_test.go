package simulation

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runScenario runs s with seed in a synctest bubble, where Quiesce is exact
// and the clock advances only when every goroutine waits.
// runCareless runs s with seed 1, which must be safe (careful says whose
// care, for the error), then the same seed with the workload's clients made
// careless (Cluster.careless), and returns the careless run's result for
// the caller to check that its checker caught them.
func runCareless(t *testing.T, s Scenario, careful string) *Result {
	t.Helper()
	u := runScenario(t, s, Config{Seed: 1}).Unexpected()
	assert.Empty(t, u, "%s: %v", careful, u)
	careless := s
	careless.Drive = func(c *Cluster) (time.Duration, error) {
		c.careless = true
		return s.Drive(c)
	}
	r := runScenario(t, careless, Config{Seed: 1})
	t.Log(r.Summary())
	return r
}

func runScenario(t *testing.T, s Scenario, cfg Config) *Result {
	t.Helper()
	var r *Result
	synctest.Test(t, func(t *testing.T) {
		cfg.Quiesce = synctest.Wait
		r = Run(s, cfg)
	})
	return r
}

// TestScenarios runs every named scenario once and checks its documented
// expectation: safe, or a known deficiency that the checkers must catch. The
// random ones run over many seeds in TestRandom, TestRandomFenced,
// TestSemaphoreRandom, TestLeaseRandom, TestHierarchyRandom, TestBarrierRandom,
// TestCondRandom and TestDeadlockRandom.
func TestScenarios(t *testing.T) {
	for _, s := range Scenarios(Budget{}) {
		if strings.Contains(s.Name, "random") {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			r := runScenario(t, s, Config{Seed: 1})
			t.Log(r.Summary())
			for _, n := range r.Notes {
				t.Log(n)
			}
			for _, u := range r.Unexpected() {
				assert.Failf(t, "unexpected outcome", "%s (expected %v): %s", s.Name, s.Expect, u)
			}
			// Starvation is possible, not certain; with this seed it
			// happens, and the liveness check must see it.
			if s.Expect == KnownStarvation {
				assert.NotZero(t, r.LivenessFailures, "%s seed 1: the writer was not starved, or the liveness check missed it", s.Name)
			}
		})
	}
}

// TestPausedPastExpiryFenced checks what the fencing token changes for a
// write holder paused past its validity. Without tokens the register takes
// the stale write (the known storage violation: a lost update and an
// overlap). With tokens it refuses it, and the run is safe. With tokens but
// the register's check off, the same stale write is accepted again and the
// fenced scenario fails: the check, not a change of timing, is what makes it
// safe.
func TestPausedPastExpiryFenced(t *testing.T) {
	plain, _ := ScenarioByName("paused-past-expiry", Budget{})
	fenced, _ := ScenarioByName("paused-past-expiry-fenced", Budget{})

	r := runScenario(t, plain, Config{Seed: 1})
	t.Log(r.Summary())
	reg := r.Register
	const accepted = "%s: %+v; want the stale write accepted (1 lost update, 1 overlap)"
	assert.Equal(t, 1, reg.LostUpdates, accepted, "without tokens", reg)
	assert.Equal(t, 1, reg.Overlaps, accepted, "without tokens", reg)
	assert.Zero(t, reg.Refused, accepted, "without tokens", reg)

	r = runScenario(t, fenced, Config{Seed: 1})
	t.Log(r.Summary())
	reg = r.Register
	assert.Equal(t, 1, reg.Writes, "with tokens: %+v; want 1 accepted write, 1 refused, no violation", reg)
	assert.Equal(t, 1, reg.Refused, "with tokens: %+v; want 1 accepted write, 1 refused, no violation", reg)
	assert.Zero(t, reg.Violations(), "with tokens: %+v; want 1 accepted write, 1 refused, no violation", reg)
	for _, u := range r.Unexpected() {
		assert.Failf(t, "unexpected outcome", "with tokens: %s", u)
	}

	unchecked := fenced
	unchecked.Drive = func(c *Cluster) (time.Duration, error) {
		c.Register.checkTokens = false
		return fenced.Drive(c)
	}
	r = runScenario(t, unchecked, Config{Seed: 1})
	t.Log(r.Summary())
	reg = r.Register
	assert.Equal(t, 1, reg.LostUpdates, accepted, "with tokens, check off", reg)
	assert.Equal(t, 1, reg.Overlaps, accepted, "with tokens, check off", reg)
	assert.Zero(t, reg.Refused, accepted, "with tokens, check off", reg)
	assert.NotEmpty(t, r.Unexpected(), "with tokens, check off: the fenced scenario passed; its expectation must fail without the check")
}

// randomSeeds is how many seeds TestRandom runs: hundreds normally, fewer
// under the race detector or -short to stay within the CI budget.
func randomSeeds() int {
	switch {
	case testing.Short():
		return 20
	case raceEnabled:
		return 100
	}
	return 500
}

// reportUnexpected fails t with each unexpected outcome of r, after the
// run's summary and notes.
func reportUnexpected(t *testing.T, r *Result) {
	t.Helper()
	u := r.Unexpected()
	if len(u) == 0 {
		return
	}
	t.Log(r.Summary())
	for _, n := range r.Notes {
		t.Log(n)
	}
	for _, x := range u {
		assert.Fail(t, x)
	}
}

// TestRandom runs the random scenario over many seeds: seeded fault
// schedules within the default budget must never break safety or liveness.
// A failing seed replays with
//
//	go test ./simulation -run 'TestRandom/seed=N$'
func TestRandom(t *testing.T) {
	s := Random(Budget{})
	for seed := range uint64(randomSeeds()) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			reportUnexpected(t, runScenario(t, s, Config{Seed: seed}))
		})
	}
}

// TestRandomFenced runs the random scenario in fenced mode (Config.Fenced)
// over a fifth of TestRandom's seeds: every write holder also asks for its
// fencing token, through the same faults, and the register refuses stale
// tokens. The random clients are careful (they check their lock context just
// before writing), so no write should be refused at all; a refusal of a
// writer that still held its lock would mean a token smaller than an earlier
// holder's. A failing seed replays with
//
//	go test ./simulation -run 'TestRandomFenced/seed=N$'
func TestRandomFenced(t *testing.T) {
	s := Random(Budget{})
	refused := 0
	for seed := range uint64(randomSeeds() / 5) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := runScenario(t, s, Config{Seed: seed, Fenced: true})
			refused += r.Register.Refused
			reportUnexpected(t, r)
		})
	}
	if refused > 0 {
		t.Logf("%d writes refused for a stale token (their writers had lost their lock)", refused)
	}
}

// TestSemaphoreRandom runs the random scenario over the semaphore workload
// (4 clients, 2 permits) for a few seeds, a twentieth of TestRandom's (25;
// 5 under the race detector, where a seed takes up to a second): the random
// fault schedule must never let more than 2 holders use a permit at once, nor
// two share one, and waiting clients must get a permit within the liveness
// bound after the heal.
// A failing seed replays with
//
//	go test ./simulation -run 'TestSemaphoreRandom/seed=N$'
func TestSemaphoreRandom(t *testing.T) {
	s := SemaphoreRandom(Budget{})
	seeds := max(randomSeeds()/20, 1)
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := runScenario(t, s, Config{Seed: seed})
			assert.Equal(t, 2, r.Semaphore.Permits, "semaphore report %+v: want holdings of 2 permits", r.Semaphore)
			assert.NotZero(t, r.Semaphore.Holdings, "semaphore report %+v: want holdings of 2 permits", r.Semaphore)
			reportUnexpected(t, r)
		})
	}
}

// Flags of TestReplay, printed by the dsync-sim command for a failing seed.
var (
	replayScenario = flag.String("sim.scenario", "", "scenario for TestReplay")
	replaySeed     = flag.Uint64("sim.seed", 0, "seed for TestReplay")
	replayNodes    = flag.Int("sim.nodes", 0, "nodes for TestReplay (0: the scenario's default)")
	replayClients  = flag.Int("sim.clients", 0, "clients for TestReplay (0: the scenario's default)")
	replayOps      = flag.Int("sim.ops", 0, "operations per client for TestReplay (0: default)")
	replayFaults   = flag.Int("sim.faults", 0, "faults of the random scenario for TestReplay (0: default)")
	replayDrift    = flag.Float64("sim.drift", 0, "clock drift for TestReplay (Config.ClockDrift; 0: the scenario's)")
	replayHistory  = flag.Bool("sim.history", false, "TestReplay logs the lock history")
)

// TestReplay replays one run in a synctest bubble, where quiescence is exact,
// and logs its history. The dsync-sim command prints the line that runs it:
//
//	go test ./simulation -run TestReplay -v -args -sim.scenario=random -sim.seed=7
func TestReplay(t *testing.T) {
	if *replayScenario == "" {
		t.Skip("no -sim.scenario given")
	}
	s, ok := ScenarioByName(*replayScenario, Budget{Faults: *replayFaults})
	require.True(t, ok, "no scenario %q", *replayScenario)
	cfg := Config{Seed: *replaySeed, Nodes: *replayNodes, Clients: *replayClients, Ops: *replayOps, ClockDrift: *replayDrift}
	if strings.Contains(s.Name, "random") {
		b := Budget{Faults: *replayFaults}
		if s.budget != nil {
			b = s.budget(withSetup(s, cfg), b)
		}
		faults, _ := RandomFaults(withSetup(s, cfg), b)
		for _, f := range faults {
			t.Logf("fault at %v: %s", f.At, f.Name)
		}
	}
	r := runScenario(t, s, cfg)
	if *replayHistory {
		for _, op := range r.History {
			t.Logf("%v at %v..%v %s", op, op.CallAt.Sub(r.Start), op.ReturnAt.Sub(r.Start), op.Err)
		}
	}
	if *replayHistory {
		for _, ch := range r.Cond.Changes {
			t.Logf("cond: c%d %+d -> %d at %v", ch.Client, ch.Delta, ch.Value, ch.At.Sub(r.Start))
		}
		for _, w := range r.Cond.WaitSpans {
			t.Logf("cond: c%d waited %v..%v", w.Client, w.Start.Sub(r.Start), w.End.Sub(r.Start))
		}
		for _, e := range r.Barrier.Events {
			t.Logf("barrier: %+v at %v", e, e.At.Sub(r.Start))
		}
	}
	t.Log(r.Summary())
	for _, n := range r.Notes {
		t.Log(n)
	}
	for _, u := range r.Unexpected() {
		assert.Failf(t, "unexpected outcome", "unexpected: %s", u)
	}
}

// withSetup returns cfg as scenario s adjusts it.
func withSetup(s Scenario, cfg Config) Config {
	if s.Setup != nil {
		s.Setup(&cfg)
	}
	return cfg
}

// TestSemaphoreCheckerCatchesOversubscription proves the semaphore checker on
// a real run: clients that believe the semaphore has 3 permits take 3 at once,
// and the same holdings checked against 2 permits must fail, while checked
// against the 3 they used they pass.
func TestSemaphoreCheckerCatchesOversubscription(t *testing.T) {
	s := semaphoreScenario()
	var as2 SemaphoreReport
	drive := s.Drive
	s.Drive = func(c *Cluster) (time.Duration, error) {
		heal, err := drive(c)
		as2 = CheckSemaphore(c.Permits.Holdings(), 2)
		return heal, err
	}
	r := runScenario(t, s, Config{Seed: 1, Permits: 3})
	t.Log(r.Summary())
	u := r.Unexpected()
	assert.Empty(t, u, "with 3 permits checked as 3: %v, %+v; want safe, 3 in use at some instant", u, r.Semaphore)
	assert.Equal(t, 3, r.Semaphore.MaxHolders, "with 3 permits checked as 3: %v, %+v; want safe, 3 in use at some instant", u, r.Semaphore)
	assert.NotZero(t, as2.Oversubscribed, "3 permits checked as 2: %+v; want holdings beyond the permits", as2)
}

// primitiveSeeds is how many seeds the random scenarios over the other
// primitives run: a fiftieth of TestRandom's (10; 2 under the race detector).
func primitiveSeeds() int {
	if n := os.Getenv("SIM_PRIMITIVE_SEEDS"); n != "" {
		if v, err := strconv.Atoi(n); err == nil {
			return v
		}
	}
	return max(randomSeeds()/50, 2)
}

// runSeeds runs s over seeds in bubbles; check, if not nil, adds its own
// expectations of each result.
func runSeeds(t *testing.T, s Scenario, seeds int, check func(t *testing.T, r *Result)) {
	t.Helper()
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := runScenario(t, s, Config{Seed: seed})
			if check != nil {
				check(t, r)
			}
			reportUnexpected(t, r)
		})
	}
}

// TestLeaseRandom runs the random scenario over the lease workload: no
// write past a lease's deadline, no overlapping writers, each lease a
// linearizable lock, waiting clients served after the heal. SIM_PRIMITIVE_SEEDS
// runs more seeds. A failing seed replays with
//
//	go test ./simulation -run 'TestLeaseRandom/seed=N$'
func TestLeaseRandom(t *testing.T) {
	var runs, leases, expired, lost, writes int
	runSeeds(t, LeaseRandom(Budget{}), primitiveSeeds(), func(t *testing.T, r *Result) {
		assert.NotZero(t, r.Lease.Leases, "lease report %+v: want leases and writes", r.Lease)
		assert.NotZero(t, r.Lease.Uses, "lease report %+v: want leases and writes", r.Lease)
		runs++
		leases += r.Lease.Leases
		expired += r.Lease.Expired
		lost += r.Lease.Lost
		writes += r.Lease.Uses
	})
	t.Logf("%d runs: %d leases, %d expired, %d lost; %d writes", runs, leases, expired, lost, writes)
}

// TestHierarchyRandom runs the random scenario over the hierarchy workload:
// every level's lock linearizable, no overlapping writers on any level's
// register, waiting clients served after the heal (no deadlock).
// SIM_PRIMITIVE_SEEDS runs more seeds. A failing seed replays with
//
//	go test ./simulation -run 'TestHierarchyRandom/seed=N$'
func TestHierarchyRandom(t *testing.T) {
	runSeeds(t, HierarchyRandom(Budget{}), primitiveSeeds(), nil)
}

// TestLeaseCheckerCatchesCarelessHolders proves the lease checkers on real
// runs: the same lease workload, with holders that write without asking
// Valid or Verify, must show writes past their lease's deadline, and
// overlapping writers, while the careful run of the same seed is safe.
func TestLeaseCheckerCatchesCarelessHolders(t *testing.T) {
	s := leaseScenario()
	r := runScenario(t, s, Config{Seed: 1})
	u := r.Unexpected()
	assert.Empty(t, u, "careful holders: %v, %+v; want safe, with leases that expired", u, r.Lease)
	assert.NotZero(t, r.Lease.Expired, "careful holders: %v, %+v; want safe, with leases that expired", u, r.Lease)
	careless := s
	careless.Drive = func(c *Cluster) (time.Duration, error) {
		c.careless = true
		return s.Drive(c)
	}
	r = runScenario(t, careless, Config{Seed: 1})
	t.Log(r.Summary())
	const carelessWant = "careless holders: %+v, register %+v; want writes past the deadline and overlaps, and the run failed"
	assert.NotZero(t, r.Lease.PastDeadline, carelessWant, r.Lease, r.Register)
	assert.NotZero(t, r.Register.Overlaps, carelessWant, r.Lease, r.Register)
	assert.NotEmpty(t, r.Unexpected(), carelessWant, r.Lease, r.Register)
}

// TestHierarchyCheckerCatchesWritesUnderReadLocks proves the register checker
// on the hierarchy workload: holders that write the registers of levels they
// hold for reading overlap other readers that do the same, and the run must
// fail, while the careful run of the same seed is safe.
func TestHierarchyCheckerCatchesWritesUnderReadLocks(t *testing.T) {
	s := hierarchyScenario()
	r := runCareless(t, s, "careful holders")
	assert.NotZero(t, r.Register.Overlaps, "writes under read locks: register %+v; want overlaps, and the run failed", r.Register)
	assert.NotEmpty(t, r.Unexpected(), "writes under read locks: register %+v; want overlaps, and the run failed", r.Register)
}

// TestBarrierRandom runs the random scenarios over the barrier workload
// (barrier-random, barrier-random-live): no
// party passes a generation before every party called Wait for it,
// generations pass in order, and with no party out every party passes every
// generation within the liveness bound after the heal. SIM_PRIMITIVE_SEEDS
// runs more seeds. A failing seed replays with
//
//	go test ./simulation -run 'TestBarrierRandom/barrier-random/seed=N$'
func TestBarrierRandom(t *testing.T) {
	for _, s := range []Scenario{BarrierRandom(Budget{}), BarrierRandomLive(Budget{})} {
		t.Run(s.Name, func(t *testing.T) { testBarrierRandom(t, s) })
	}
}

func testBarrierRandom(t *testing.T, s Scenario) {
	var runs, out, complete, failed int
	runSeeds(t, s, primitiveSeeds(), func(t *testing.T, r *Result) {
		assert.Equal(t, 3, r.Barrier.Parties, "barrier report %+v: want 3 parties", r.Barrier)
		runs++
		if r.Barrier.Out > 0 {
			out++
		}
		if r.Barrier.Generations == 20 {
			complete++
		}
		failed += r.Barrier.Failures
	})
	t.Logf("%d runs: %d with a party out, %d with every generation passed; %d failed Waits", runs, out, complete, failed)
}

// TestBarrierCheckerCatchesTooFewParties proves the barrier checker on a real
// run: the 3 clients make a barrier of 2 parties, so two of them pass each
// generation without the third; checked as 3 parties, the run must show
// early passes and fail.
func TestBarrierCheckerCatchesTooFewParties(t *testing.T) {
	s := barrierScenario()
	wrong := s
	wrong.Drive = func(c *Cluster) (time.Duration, error) {
		c.barrierParties = 2
		return s.Drive(c)
	}
	r := runScenario(t, wrong, Config{Seed: 1})
	t.Log(r.Summary())
	assert.NotZero(t, r.Barrier.EarlyPasses, "barrier of 2 parties checked as 3: %+v; want early passes, and the run failed", r.Barrier)
	assert.NotEmpty(t, r.Unexpected(), "barrier of 2 parties checked as 3: %+v; want early passes, and the run failed", r.Barrier)
}

// TestCondRandom runs the random scenario over the cond workload: the
// mutex's lock history linearizable, the counter never below zero nor an
// increment lost, and once faults stop no consumer waiting beyond the
// liveness bound while items are ready. SIM_PRIMITIVE_SEEDS runs more seeds.
// A failing seed replays with
//
//	go test ./simulation -run 'TestCondRandom/seed=N$'
func TestCondRandom(t *testing.T) {
	var runs, unchecked, waits, produced, consumed int
	runSeeds(t, CondRandom(Budget{}), primitiveSeeds(), func(t *testing.T, r *Result) {
		assert.Equal(t, 2, r.Cond.Consumers, "cond report %+v: want 2 consumers", r.Cond)
		runs++
		if r.Cond.WakeupsUnchecked {
			unchecked++
		}
		waits += r.Cond.Waits
		produced += r.Cond.Produced
		consumed += r.Cond.Consumed
	})
	t.Logf("%d runs (%d with the producer crashed: wakeups unchecked): %d produced, %d consumed, %d Waits",
		runs, unchecked, produced, consumed, waits)
}

// TestCondCheckerCatchesConsumersThatDoNotRecheck proves the cond checker on
// a real run: consumers that take an item after one Wait without checking
// the counter again take from an empty queue when a Broadcast wakes both
// for one item, and the run must fail, while the careful run of the same
// seed is safe.
func TestCondCheckerCatchesConsumersThatDoNotRecheck(t *testing.T) {
	s := condScenario()
	r := runCareless(t, s, "careful consumers")
	assert.NotZero(t, r.Cond.FromEmpty, "consumers that do not re-check: %+v; want items taken from empty, and the run failed", r.Cond)
	assert.NotEmpty(t, r.Unexpected(), "consumers that do not re-check: %+v; want items taken from empty, and the run failed", r.Cond)
}

// TestCondCheckerCatchesMissingSignals proves the lost-wakeup check on a real
// run: a producer that never signals leaves consumers waiting with items
// ready until their Waits time out, and the run must fail.
func TestCondCheckerCatchesMissingSignals(t *testing.T) {
	s := condScenario()
	silent := s
	silent.Drive = func(c *Cluster) (time.Duration, error) {
		c.silentProducer = true
		return s.Drive(c)
	}
	r := runScenario(t, silent, Config{Seed: 1})
	t.Log(r.Summary())
	assert.NotZero(t, r.Cond.LostWakeups, "a producer that never signals: %+v; want lost wakeups, and the run failed", r.Cond)
	assert.NotEmpty(t, r.Unexpected(), "a producer that never signals: %+v; want lost wakeups, and the run failed", r.Cond)
}

// TestContention runs the contention scenario over a tenth of TestRandom's
// seeds: many clients waiting in the nodes' queues on two resources, under
// the random faults and stops, must keep mutual exclusion and be served
// within the liveness bound once faults stop. It also checks that the
// workload contended: acquisitions were queued on the nodes. A failing seed
// replays with
//
//	go test ./simulation -run 'TestContention/seed=N$'
func TestContention(t *testing.T) {
	s := Contention(Budget{})
	for seed := range uint64(max(randomSeeds()/10, 3)) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			reportUnexpected(t, runScenario(t, s, Config{Seed: seed}))
		})
	}
}
