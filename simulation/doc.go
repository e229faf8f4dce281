// Package simulation is where the real node tables (package locker), the
// real quorum client (package dsync) and the real HTTP transport (package
// rest) meet a hostile network, and where every run is checked.
//
// # Pieces, each in the file named after it
//
//   - network.go: Network, an in-process Fabric. Every client reaches every
//     node through its own Link (a locker.NetLocker) with per-direction delay,
//     jitter, drop and cut; nodes crash (their table is lost) and restart
//     (optionally with a QuietPeriod); clients pause (their messages and
//     workload freeze, their timers run on) and crash; nodes and clients
//     stop (stop-the-world: nothing of the process runs, its clock does).
//   - httpnet.go, netns.go: the same Fabric over rest on loopback, through a
//     fault-injecting TCP proxy per link (blackhole, drop, delay, reset), and
//     with every node in its own network namespace, partitions made by taking
//     veth links down.
//   - cluster.go: Cluster, n nodes and m dsync clients, each on a clock of
//     its own derived from one virtual clock (Config.ClockDrift), the stops
//     of a client (StopClient, which stops its clock's timers too), and the
//     driver that advances virtual time.
//   - history.go, model.go: the lock history and its porcupine model (a
//     multi-granularity lock partitioned by resource: IS, IX, S, SIX and X,
//     checked against Gray's matrix, the classic read and write locks being
//     its S and X; acquisitions that never returned have an unknown
//     outcome).
//   - checker.go: Register, the protected resource of the read-modify-write
//     workload, and CheckRegister, which counts lost updates and overlapping
//     writers. A fenced register (Config.Fenced) refuses writes whose
//     fencing token is below the largest it has seen; refusals are counted
//     apart from violations.
//   - semaphore.go: the semaphore workload (Config.Permits: clients share
//     one dsync.Semaphore) and CheckSemaphore, which checks that no more
//     holders than permits, and never two on one permit, were in use at once.
//   - lease.go: the lease workload (Config.Primitive PrimitiveLease: leases
//     bounded by MaxHold or MaxRenewals, the register written only after
//     Valid, or Verify then Valid) and CheckLeases, which flags writes at or
//     after a lease's deadline.
//   - hierarchy.go: the hierarchy workload (global/bucket/object levels taken
//     through one dsync.Hierarchy; with Config.Modes in all five modes of
//     multi-granularity locking); each level enters the lock history as the
//     lock it is, in its mode, with the intention locks (IS, IX) the
//     Hierarchy takes on the buckets of the objects it locks, and a bucket's
//     S, SIX or X covers its objects' registers.
//   - barrier.go: the barrier workload (every client a party of one
//     dsync.Barrier) and CheckBarrier: no pass of generation g before every
//     party called Wait for g, generations in order, liveness when no party
//     is out.
//   - cond.go: the cond workload (a producer and consumers over a dsync.Mutex
//     and a dsync.Cond) and CheckCond: never an item taken from empty, no
//     lost increment, no consumer left waiting past the bound with items
//     ready once faults stop.
//   - deadlock.go: the deadlock workload (Config.Primitive PrimitiveDeadlock:
//     every client a holder taking 2 or 3 write locks one at a time in
//     orders that close cycles; PrimitiveDeadlockChain: in one global order)
//     and CheckDeadlocks: no ErrDeadlock where no cycle can close, every
//     ErrDeadlock naming a cycle of which its holder is the largest, every
//     live client's round completed after the heal.
//   - adaptive.go: adaptive timeouts (Config.Adaptive: one
//     dsync.AdaptiveTimeout per client, passed by every acquisition that
//     takes Options), the samples they leave, Settle (fast acquisitions once
//     faults stop) and CheckAdaptive: every timeout within [Min, Max], each
//     window's change as the rules say, growth during the faults a scenario
//     names, and back down once faults stop.
//   - workload.go: the register workload and the fault-schedule driver, with
//     its liveness probe.
//   - scenario.go, scenarios.go: Scenario, Result, the expectations and the
//     named scenarios; RandomFaults draws a schedule within a Budget.
//   - soak.go, soakfaults.go, soakwindows.go, soakresult.go: Soak, the HTTP
//     tier (authenticated) under the register workload for as long as
//     asked, at a paced rate, with a fault schedule within n−W (node kills
//     into their grace period, partitions, lost replies), its history
//     checked in windows per resource so that its own memory stays flat;
//     procstat.go and flatness.go: what it samples of the process (RSS,
//     goroutines, file descriptors), CheckFlat and CheckRate.
//   - cmd/dsync-sim: runs scenarios over many seeds and prints the table.
//   - cmd/dsync-soak: measures the register workload's peak, soaks at half
//     of it under faults, and checks the windows, the flatness and that
//     it held its rate.
//
// # Time, and what replays
//
// In the simulated tier time is one *clock.Fake, virtual time, which every
// message delay uses. Every node table and every dsync client (refresher
// included, with its workload) runs on a clock of its own, a clock.Scaled of
// the fake: at rate 1 (the default) it reads virtual time; with
// Config.ClockDrift each runs at its own rate, and a stopped process's clock
// holds its timers until the process continues. The driver advances the
// fake to the next pending timer only when every goroutine of the run
// waits, so a run that spans minutes of lock validity takes milliseconds.
// Every run goes inside a testing/synctest bubble, where synctest.Wait
// tells exactly when that is (Config.Quiesce): tests call synctest.Test,
// and so does the dsync-sim command, with a *testing.T it gets from the
// testing package's runner.
//
// A run is a function of its seed: the fault schedule, every client's
// workload choices (resource, mode, hold and think times), the drop and
// jitter draws of each link, each client's back-off draws and its lock
// UIDs (dsync.Config.UIDSource) derive from it, and the timers due at one
// instant fire one at a time, in the order they were armed, each once what
// the one before woke has settled (Cluster.Step). What is left is the Go
// scheduler: on one P (GOMAXPROCS=1) the goroutines a timer woke take turns
// in an order that depends on the run alone, and a run of the random
// scenario replays bit for bit (TestReplayIsExact; the dsync-sim command
// runs its runs so, in worker processes); on more Ps they race, and about
// 40% of random seeds ran differently; the race detector shuffles the
// scheduler on purpose, and so does Go's select among ready cases and map
// iteration, which is why a few seeds of the scenarios with many clients or
// queued waiters (contention, deadlock-random) still vary on one P.
//
// # Expectations
//
// Each scenario states its expectation: Safe (no violation, and every
// waiting client served within LivenessBound once faults stop), or a known
// deficiency of the current design that the checkers must catch
// (KnownLockViolation, KnownStorageViolation), or KnownStarvation (safe, no
// bound on the wait). See README.md for the table of outcomes.
package simulation
