package simulation

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Expectation is what a scenario is expected to show under the current
// design.
type Expectation uint8

// Expectations. A "known" expectation documents a deficiency of the current
// design: the run passes only if the checkers do catch it, so that it stays
// visible until a fix changes the expectation to Safe.
const (
	// Safe: no lock violation, no register violation, every waiting client
	// served within the liveness bound once faults stop.
	Safe Expectation = iota
	// KnownLockViolation: the lock history is not linearizable (two clients
	// believed they held conflicting locks at once).
	KnownLockViolation
	// KnownStorageViolation: the lock history is linearizable (every holder
	// was told it lost its lock before another was granted), but a holder
	// frozen between its check and its write corrupted the register, or a
	// lease holder wrote past its lease's deadline.
	KnownStorageViolation
	// KnownStarvation: safe, but the design promises no bound on the wait:
	// a waiting client may be starved. Liveness failures are reported, not
	// held against the run, and not required either (whether the writer
	// finds a gap depends on the seed).
	KnownStarvation
	// KnownLivenessFailure: safe, but a known deficiency leaves a waiter
	// stuck after the faults stop, where the design promises it is served:
	// the run passes only if a liveness check catches it.
	KnownLivenessFailure
)

func (e Expectation) String() string {
	switch e {
	case Safe:
		return "safe"
	case KnownLockViolation:
		return "known lock violation"
	case KnownStorageViolation:
		return "known storage violation"
	case KnownStarvation:
		return "starvation possible"
	case KnownLivenessFailure:
		return "known liveness failure"
	}
	return "?"
}

// Scenario is a named fault pattern with its expected outcome.
type Scenario struct {
	Name    string
	Faults  string // the faults, in a few words, for reports
	Expect  Expectation
	Explain string // why the expectation holds

	// Setup adjusts the configuration before the cluster is built; Nodes
	// and Clients it sets are the scenario's minimum.
	Setup func(*Config)
	// Drive runs the scenario on c and returns the virtual time at which
	// the last fault ended (the heal), from which liveness is measured.
	// Problems it finds beyond the checkers' are returned as an error.
	Drive func(c *Cluster) (heal time.Duration, err error)

	// SimulatedOnly marks a scenario whose faults exist only in the
	// simulated tier: clock rates other than 1 (Config.ClockDrift) or stops
	// of a process (Cluster.StopClient, Cluster.StopNode), which need every
	// process on a clock of its own derived from virtual time. The
	// real-clock tiers skip it.
	SimulatedOnly bool

	// budget, if not nil, is how a random scenario narrows the budget it
	// is given, for replays to print the schedule it draws.
	budget func(Config, Budget) Budget
}

// Result is the outcome of one run of a scenario.
type Result struct {
	Scenario string
	Seed     uint64
	Expect   Expectation

	Acquires int             // acquisitions attempted
	Acquired int             // acquisitions granted
	Latency  []time.Duration // virtual time each granted acquisition took
	Lock     LinearizabilityResult
	Register RegisterReport
	// Semaphore is the check of the semaphore workload's holdings; its
	// Permits is 0 when the run had no semaphore.
	Semaphore SemaphoreReport
	// Lease is the check of the lease workload's writes; its Leases is 0
	// when the run had no leases.
	Lease LeaseReport
	// Barrier is the check of the barrier workload; its Parties is 0 when
	// the run had no barrier.
	Barrier BarrierReport
	// Cond is the check of the cond workload; its Consumers is 0 when the
	// run had no condition variable.
	Cond CondReport
	// Deadlock is the check of the deadlock workload's rounds; its Rounds is
	// 0 when the run had no deadlock workload.
	Deadlock DeadlockReport
	// Adaptive is the check of the clients' adaptive timeouts; its Clients
	// is 0 when the run had none (Config.Adaptive nil).
	Adaptive AdaptiveReport
	// Clocks describes the processes' clocks: their rates and their stops.
	Clocks ClockReport

	Heal             time.Duration // virtual time faults stopped
	LongestAfterHeal time.Duration // longest wait, counted from the heal, of an acquisition granted after it
	LivenessFailures int           // acquisitions after the heal that failed or took longer than the bound
	Bound            time.Duration // the liveness bound

	RealTime bool          // the run was on the real clock (HTTP tiers)
	Virtual  time.Duration // virtual (or, on the real clock, elapsed) time the run took
	Err      error         // a problem found by the scenario itself
	Notes    []string

	History []Op      // the lock history checked
	Start   time.Time // virtual time of the start of the run
}

// LockViolation reports whether porcupine found the lock history not
// linearizable.
func (r *Result) LockViolation() bool { return !r.Lock.Ok && !r.Lock.Unknown }

// Violations counts everything that went wrong in the run: a lock history
// that is not linearizable counts one, plus lost updates, overlaps, refused
// writes of holders that still held their lock, semaphore holdings beyond
// the permits or sharing a permit, lease writes past their deadline,
// barrier and cond violations, adaptive timeouts that broke their rules or
// did not do what the scenario requires, and liveness failures. Writes a
// fenced register refused from holders that had lost their lock are not
// violations.
func (r *Result) Violations() int {
	n := r.Register.Violations() + r.Semaphore.Violations() + r.Lease.Violations() + r.Barrier.Violations() + r.Cond.Violations() + r.Deadlock.Violations() + r.Adaptive.Violations() + r.LivenessFailures
	if r.LockViolation() {
		n++
	}
	return n
}

// Unexpected returns what in the run contradicts the scenario's
// expectation; empty means the run went as documented.
func (r *Result) Unexpected() []string {
	var out []string
	if r.Err != nil {
		out = append(out, r.Err.Error())
	}
	if r.Lock.Unknown {
		out = append(out, "linearizability check timed out")
	}
	switch r.Expect {
	case Safe, KnownStarvation:
		if r.LockViolation() {
			out = append(out, "lock history not linearizable")
		}
		if r.Register.Violations() > 0 {
			out = append(out, fmt.Sprintf("register: %d lost updates, %d overlaps, %d refused writes of holders that still held, %d stale validated optimistic reads %v",
				r.Register.LostUpdates, r.Register.Overlaps, r.Register.RefusedHeld, r.Register.StaleReads, r.Register.Examples))
		}
		if r.Semaphore.Violations() > 0 {
			out = append(out, fmt.Sprintf("semaphore of %d permits: %d holdings beyond the permits, %d pairs sharing a permit %v",
				r.Semaphore.Permits, r.Semaphore.Oversubscribed, r.Semaphore.SlotOverlaps, r.Semaphore.Examples))
		}
		if r.Lease.Violations() > 0 {
			out = append(out, fmt.Sprintf("lease: %d writes past their lease's deadline %v", r.Lease.PastDeadline, r.Lease.Examples))
		}
		if r.Barrier.EarlyPasses+r.Barrier.OutOfOrder > 0 {
			out = append(out, fmt.Sprintf("barrier: %d passes before every party arrived, %d out of order %v",
				r.Barrier.EarlyPasses, r.Barrier.OutOfOrder, r.Barrier.Examples))
		}
		if r.Barrier.Stuck > 0 && r.Expect == Safe && !r.RealTime {
			out = append(out, fmt.Sprintf("barrier: %d liveness failures with no party out %v", r.Barrier.Stuck, r.Barrier.Examples))
		}
		if r.Cond.FromEmpty+r.Cond.LostUpdates > 0 {
			out = append(out, fmt.Sprintf("cond: %d items taken from an empty queue, %d lost updates %v",
				r.Cond.FromEmpty, r.Cond.LostUpdates, r.Cond.Examples))
		}
		if r.Cond.LostWakeups > 0 && r.Expect == Safe && !r.RealTime {
			out = append(out, fmt.Sprintf("cond: %d Waits went on past the bound with items ready %v", r.Cond.LostWakeups, r.Cond.Examples))
		}
		if d := r.Deadlock; d.FalseVictims+d.WrongVictims > 0 {
			out = append(out, fmt.Sprintf("deadlock: %d ErrDeadlocks where no cycle can close, %d that name no cycle of which the client is the victim %v",
				d.FalseVictims, d.WrongVictims, d.Examples))
		}
		if a := r.Adaptive; a.OutOfBounds+a.WrongAdjustments > 0 {
			out = append(out, fmt.Sprintf("adaptive: %d timeouts outside [Min, Max], %d adjustments against the rules %v",
				a.OutOfBounds, a.WrongAdjustments, a.Examples))
		}
		if a := r.Adaptive; a.NotGrown+a.NotSettled > 0 && r.Expect == Safe && !r.RealTime {
			out = append(out, fmt.Sprintf("adaptive: %d clients whose timeout never grew, %d that did not come back down %v",
				a.NotGrown, a.NotSettled, a.Examples))
		}
		if r.Deadlock.Unfinished > 0 && r.Expect == Safe && !r.RealTime {
			out = append(out, fmt.Sprintf("deadlock: %d clients did not complete their round after the heal %v", r.Deadlock.Unfinished, r.Deadlock.Examples))
		}
		// On the real clock a slow machine can stretch any wait, so the
		// bound is reported there, not enforced.
		if r.LivenessFailures > 0 && r.Expect == Safe && !r.RealTime {
			out = append(out, fmt.Sprintf("%d acquisitions after the heal failed or waited more than %v", r.LivenessFailures, r.Bound))
		}
	case KnownLivenessFailure:
		if r.LockViolation() {
			out = append(out, "lock history not linearizable")
		}
		if r.Register.Violations()+r.Semaphore.Violations()+r.Lease.Violations() > 0 ||
			r.Barrier.EarlyPasses+r.Barrier.OutOfOrder+r.Cond.FromEmpty+r.Cond.LostUpdates > 0 {
			out = append(out, "a safety checker failed")
		}
		// On the real clock liveness is reported, not enforced, either way.
		if r.LivenessFailures+r.Barrier.Stuck+r.Cond.LostWakeups == 0 && !r.RealTime {
			out = append(out, "the known liveness failure was not caught by a liveness check")
		}
	case KnownLockViolation:
		if !r.LockViolation() {
			out = append(out, "the known lock violation was not caught by the checker")
		}
	case KnownStorageViolation:
		if r.LockViolation() {
			out = append(out, "lock history not linearizable")
		}
		if r.Register.Violations()+r.Lease.Violations() == 0 {
			out = append(out, "the known storage violation was not caught by the register or lease checker")
		}
	}
	return out
}

// LivenessBound is how long, once faults stop (the heal), any client may
// wait for a lock. It is the sum of
//
//   - Stale state: max(Validity, WriterIntent). Faults leave behind state
//     on the nodes that no live client will remove, and it refuses others
//     until it lapses on the nodes' clocks. A crashed or cut-off holder's
//     grants expire within Validity of their last refresh, which came before
//     the heal. A writer refused because of readers leaves a writer intent
//     (locker.Config.WriterIntent) that refuses new readers; a live writer
//     renews it and its grant ends it, but a writer that crashed while it
//     waited leaves it to lapse WriterIntent after its last refused attempt,
//     also before the heal. (Random seed 118: a writer refused at 5.42s and
//     crashed at 5.49s; with the library's 10s intent and Validity 2s, a
//     reader was refused until its own timeout, 7.43s after the 6s heal,
//     against a bound of 4.55s that counted grants only.)
//   - A retry: RetryMax + 2×CallTimeout. A waiting client's next request
//     reaches the nodes after its back-off (at most RetryMax) and the
//     attempt in flight (which waits for every answer, then releases what it
//     was granted, each bounded by CallTimeout).
//   - The other clients: Clients×(Hold + RetryMax). Each may take the lock
//     first once, for its hold and a retry.
func LivenessBound(cfg Config) time.Duration {
	cfg = cfg.withDefaults()
	stale := max(cfg.Validity, cfg.WriterIntent) // a negative intent is off
	return stale + cfg.RetryMax + 2*cfg.CallTimeout + time.Duration(cfg.Clients)*(cfg.Hold+cfg.RetryMax)
}

// Run runs scenario s with cfg (Seed and Quiesce set by the caller) and
// checks the run: the lock history with porcupine, the register, and
// liveness after the heal.
func Run(s Scenario, cfg Config) *Result {
	if s.Setup != nil {
		s.Setup(&cfg)
	}
	cfg = cfg.withDefaults()
	res := &Result{Scenario: s.Name, Seed: cfg.Seed, Expect: s.Expect, Bound: LivenessBound(cfg), RealTime: cfg.Transport != TransportSim}
	c, err := NewCluster(cfg)
	if err != nil {
		res.Err = err
		return res
	}
	heal, err := s.Drive(c)
	res.Heal, res.Err, res.Virtual = heal, err, c.Now()
	ops := c.History.Ops() // before Close, which ends whatever is still waiting
	crashed := make([]bool, len(c.clients))
	for i, cl := range c.clients {
		crashed[i] = cl.Crashed()
	}
	if cfg.Primitive == PrimitiveCond {
		res.Cond = c.condReport(heal, res.Virtual, crashed)
	}
	c.Close()
	final := c.History.Ops()
	res.History, res.Start = final, c.Start

	res.Lock = CheckLocks(final, time.Minute)
	res.Register = CheckRegister(c.Register.Sections(), c.Register.Values())
	if cfg.Permits > 0 {
		res.Semaphore = CheckSemaphore(c.Permits.Holdings(), cfg.Permits)
	}
	switch cfg.Primitive {
	case PrimitiveLease:
		res.Lease = c.Leases.report()
	case PrimitiveBarrier:
		res.Barrier = c.barrierReport(heal, crashed)
	case PrimitiveDeadlock, PrimitiveDeadlockChain:
		res.Deadlock = CheckDeadlocks(c.Rounds.Rounds(), cfg.Primitive == PrimitiveDeadlockChain)
	}
	if cfg.Adaptive != nil {
		want := c.adaptiveWant
		want.Crashed = crashed
		res.Adaptive = CheckAdaptive(c.Adaptive.Samples(), c.adaptiveCfg, want)
	}
	res.Clocks = c.clockReport()
	healAt := c.Start.Add(heal)
	// With adaptive timeouts the probe tries an acquisition that timed out
	// again: its wait runs from its first call to its grant, or to its last
	// failure, and must fit in the bound as a single acquisition's would
	// (each of its calls is also checked below, as every acquisition is).
	for _, p := range c.Probes() {
		if p.Calls < 2 {
			continue // one acquisition: checked below as every acquisition is
		}
		from := p.From
		if from.Before(healAt) {
			from = healAt
		}
		if w := p.End.Sub(from); w > res.Bound {
			res.LivenessFailures++
			res.Notes = append(res.Notes, fmt.Sprintf("c%d probe (granted %v) after waiting %v since the heal, over calls that timed out", p.Client, p.Granted, w))
		}
	}
	for _, op := range ops {
		if op.Kind != OpAcquire {
			continue
		}
		res.Acquires++
		if op.Outcome == OK {
			res.Acquired++
			res.Latency = append(res.Latency, op.ReturnAt.Sub(op.CallAt))
		}
		if op.CondWait {
			continue // CheckCond's
		}
		from := op.CallAt
		if from.Before(healAt) {
			from = healAt
		}
		// A wait counts from the later of the call and the heal; failing
		// sooner than the bound after the heal is no liveness failure (the
		// acquisition's own timeout ran out), failing or waiting later is.
		end := op.ReturnAt
		if op.Return == Infinity {
			if crashed[op.Client] {
				continue // died waiting
			}
			end = c.Start.Add(res.Virtual)
		}
		if end.Before(healAt) {
			continue
		}
		w := end.Sub(from)
		if op.Outcome == OK {
			res.LongestAfterHeal = max(res.LongestAfterHeal, w)
		}
		if w > res.Bound {
			res.LivenessFailures++
			res.Notes = append(res.Notes, fmt.Sprintf("c%d %v after waiting %v since the heal", op.Client, op.Outcome, w))
		}
	}
	return res
}

// Percentile returns the p-th percentile (0..100) of ds, or 0 if empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

// Summary describes r in one line.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s seed=%d: %d/%d acquired, lock %s, writes %d, lost updates %d, overlaps %d, liveness failures %d, longest after heal %v",
		r.Scenario, r.Seed, r.Acquired, r.Acquires, linString(r.Lock), r.Register.Writes, r.Register.LostUpdates, r.Register.Overlaps,
		r.LivenessFailures, r.LongestAfterHeal)
	if s := r.Semaphore; s.Permits > 0 {
		fmt.Fprintf(&b, ", semaphore: %d holdings, at most %d of %d permits in use, %d beyond the permits, %d sharing a permit",
			s.Holdings, s.MaxHolders, s.Permits, s.Oversubscribed, s.SlotOverlaps)
	}
	if l := r.Lease; l.Leases > 0 {
		fmt.Fprintf(&b, ", leases: %d granted, %d expired, %d lost, %d writes, %d past the deadline", l.Leases, l.Expired, l.Lost, l.Uses, l.PastDeadline)
	}
	if br := r.Barrier; br.Parties > 0 {
		fmt.Fprintf(&b, ", barrier of %d: %d passes, %d generations, %d failed waits, %d parties out, %d early passes, %d out of order, %d stuck",
			br.Parties, br.Passes, br.Generations, br.Failures, br.Out, br.EarlyPasses, br.OutOfOrder, br.Stuck)
	}
	if cr := r.Cond; cr.Consumers > 0 {
		fmt.Fprintf(&b, ", cond with %d consumers: %d produced, %d consumed, %d waits, %d from empty, %d lost updates, %d lost wakeups",
			cr.Consumers, cr.Produced, cr.Consumed, cr.Waits, cr.FromEmpty, cr.LostUpdates, cr.LostWakeups)
	}
	if d := r.Deadlock; d.Rounds > 0 {
		fmt.Fprintf(&b, ", deadlock: %d rounds, %d done, %d ended by ErrDeadlock, %d by timeout, %d failed, %d false victims, %d wrong victims, %d unfinished",
			d.Rounds, d.Completed, d.Deadlocks, d.Timeouts, d.Failed, d.FalseVictims, d.WrongVictims, d.Unfinished)
	}
	if a := r.Adaptive; a.Clients > 0 {
		fmt.Fprintf(&b, ", adaptive: %d outcomes (%d successes, %d timed out, %d unreported), %d windows (%d grown, %d kept, %d shrunk), timeout %v..%v",
			a.Samples, a.Successes, a.TimedOut, a.Unreported, a.Windows, a.Grown, a.Kept, a.Shrunk, a.Lowest, a.Peak)
		if a.FaultPeak > 0 {
			fmt.Fprintf(&b, ", up to %v during the faults", a.FaultPeak)
		}
		for _, pc := range a.PerClient {
			fmt.Fprintf(&b, "; c%d peak %v final %v", pc.Client, pc.Peak, pc.Final)
		}
		if v := a.Violations(); v > 0 {
			fmt.Fprintf(&b, ", %d adaptive violations %v", v, a.Examples)
		}
	}
	if k := r.Clocks; k.MinRate != 1 || k.MaxRate != 1 || k.ClientStops+k.NodeStops > 0 {
		fmt.Fprintf(&b, ", clocks: rates %.4f..%.4f, %d client stops (%d of a holder, longest %v), %d node stops (longest %v)",
			k.MinRate, k.MaxRate, k.ClientStops, k.HolderStops, k.LongestClientStop, k.NodeStops, k.LongestNodeStop)
	}
	if r.Register.Refused > 0 {
		fmt.Fprintf(&b, ", stale writes refused %d (of holders that still held: %d)", r.Register.Refused, r.Register.RefusedHeld)
	}
	if r.Err != nil {
		fmt.Fprintf(&b, ", error: %v", r.Err)
	}
	return b.String()
}

func linString(l LinearizabilityResult) string {
	switch {
	case l.Unknown:
		return "unknown (timeout)"
	case l.Ok:
		return "linearizable"
	}
	return "NOT linearizable"
}
