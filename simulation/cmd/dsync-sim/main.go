// Command dsync-sim runs the simulation's scenarios over many seeds and
// reports, per scenario, what survived: runs, operations, violations, lost
// updates, acquire latency and the longest wait after faults stopped, and the
// stale writes a fenced register refused. It
// exits with status 1 if any run contradicts its scenario's documented
// expectation, and prints the command that replays each such run.
//
//	go run ./simulation/cmd/dsync-sim -seeds 200
//	go run ./simulation/cmd/dsync-sim -scenarios random -seeds 1000 -nodes 5 -clients 8 -faults 12
//	go run ./simulation/cmd/dsync-sim -transport netns -scenarios lease-random,barrier -seeds 5
//
// -transport http or netns runs the same scenarios over the rest transport on
// the real clock (netns: every node in its own network namespace; root);
// latencies and waits are then real time, and liveness bounds are reported,
// not enforced. Scenarios whose faults need the simulated tier (clock rates,
// stops of a process) are skipped there.
//
// -drift runs every process on a clock of its own, at a rate drawn within
// ±drift (simulation.Config.ClockDrift), in every scenario that does not set
// its rates itself:
//
//	go run ./simulation/cmd/dsync-sim -scenarios double-grant-restart,paused-past-expiry -drift 0.009 -seeds 50
//
// In the simulated tier the runs go to -parallel worker processes
// (GOMAXPROCS by default), copies of the command that each run their share
// of the seeds one at a time on one P, every run in a testing/synctest
// bubble of its own (see withTestingT), where the virtual clock moves
// exactly when every goroutine of the run waits. A run of random,
// random-clocks or lease-random is then a function of its seed, whichever
// worker runs it: the replay command printed for a failing run, the same
// command for that one seed, replays it (simulation/README.md says which
// scenarios do not replay exactly yet).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dsync-go/dsync/simulation"
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if spec := os.Getenv(workerEnv); spec != "" {
		os.Exit(worker(spec, os.Args[1:], os.Stdout, os.Stderr, withTestingT))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// gcPercent is the command's GOGC unless the environment sets one. A run
// allocates in bursts of short-lived objects (messages, timers, contexts,
// goroutines) and keeps little: at Go's default of 100 the collector took a
// third of the wall time of parallel runs (500 seeds of random: 6.6 s at
// 100, 4.3 s at 400, on 2 cores), for 50 MB of memory more.
const gcPercent = 400

type options struct {
	nodes, clients, ops, faults int
	scenarios                   string
	seeds                       int
	seed                        uint64
	duration                    time.Duration
	parallel                    int
	verbose                     bool
	transport                   string
	drift                       float64
}

// run runs the command with args: on virtual time in worker processes
// (workers.go), on the real clock in this one.
func run(args []string, stdout, stderr io.Writer) int {
	o, list, transport, code := parse(args, stderr)
	if list == nil {
		return code
	}
	if transport == simulation.TransportNetns {
		defer simulation.CleanupNetns() // whatever a failed run left behind
	}
	start := time.Now()
	var results [][]*simulation.Result
	prog := newProgress(stderr)
	if transport == simulation.TransportSim {
		var err error
		if results, err = runInWorkers(args, list, o, start, stderr, prog); err != nil {
			fmt.Fprintf(stderr, "\n%v\n", err)
			return 1
		}
	} else {
		for _, s := range list {
			results = append(results, runSeeds(s, o, start, prog))
		}
	}
	return report(list, results, o, transport, start, stdout, stderr)
}

// parse parses the command's arguments and returns its options and the
// scenarios to run, or a nil list and the exit code.
func parse(args []string, stderr io.Writer) (options, []simulation.Scenario, simulation.Transport, int) {
	var o options
	fs := flag.NewFlagSet("dsync-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.nodes, "nodes", 0, "nodes per cluster (0: each scenario's default, 3 or 5)")
	fs.IntVar(&o.clients, "clients", 0, "clients per cluster (0: each scenario's default)")
	fs.IntVar(&o.ops, "ops", 0, "acquisitions per client in workload scenarios (0: 20)")
	fs.IntVar(&o.faults, "faults", 0, "fault budget of the random scenario: faults drawn per run (0: 6)")
	fs.StringVar(&o.scenarios, "scenarios", "all", "comma-separated scenario names, or all")
	fs.IntVar(&o.seeds, "seeds", 20, "runs per scenario (seeds seed, seed+1, ...)")
	fs.Uint64Var(&o.seed, "seed", 0, "first seed")
	fs.DurationVar(&o.duration, "duration", 0, "stop starting new runs after this much wall-clock time (0: no limit)")
	fs.IntVar(&o.parallel, "parallel", 0, "runs at once: worker processes on virtual time, each running one run at a time on one P; goroutines on the real clock (0: GOMAXPROCS)")
	fs.BoolVar(&o.verbose, "v", false, "print every run")
	fs.Float64Var(&o.drift, "drift", 0, "clock drift: every process's clock rate drawn within ±drift, in scenarios that do not set their own (simulated tier only)")
	fs.StringVar(&o.transport, "transport", "sim", "sim (in-process network, virtual time), http (rest over loopback through fault-injecting proxies, real time) or netns (http with every node in its own network namespace; Linux, root)")
	if err := fs.Parse(args); err != nil {
		return o, nil, 0, 2
	}
	transport, ok := transports[o.transport]
	if !ok {
		fmt.Fprintf(stderr, "dsync-sim: no transport %q; have sim, http, netns\n", o.transport)
		return o, nil, 0, 2
	}
	if transport == simulation.TransportNetns {
		if err := simulation.NetnsAvailable(); err != nil {
			fmt.Fprintf(stderr, "dsync-sim: netns transport: %v (it needs root and a working `ip netns`)\n", err)
			return o, nil, 0, 2
		}
	}
	if o.drift != 0 && transport != simulation.TransportSim {
		fmt.Fprintf(stderr, "dsync-sim: -drift needs -transport sim: the real-clock tiers run every process on the machine's clock\n")
		return o, nil, 0, 2
	}
	budget := simulation.Budget{Faults: o.faults}
	var list []simulation.Scenario
	if o.scenarios == "all" {
		for _, s := range simulation.Scenarios(budget) {
			if s.SimulatedOnly && transport != simulation.TransportSim {
				fmt.Fprintf(stderr, "dsync-sim: %s skipped: its faults need the simulated tier\n", s.Name)
				continue
			}
			list = append(list, s)
		}
	} else {
		for _, name := range strings.Split(o.scenarios, ",") {
			s, ok := simulation.ScenarioByName(strings.TrimSpace(name), budget)
			if !ok {
				fmt.Fprintf(stderr, "dsync-sim: no scenario %q; have:", name)
				for _, s := range simulation.Scenarios(budget) {
					fmt.Fprintf(stderr, " %s", s.Name)
				}
				fmt.Fprintln(stderr)
				return o, nil, 0, 2
			}
			if s.SimulatedOnly && transport != simulation.TransportSim {
				fmt.Fprintf(stderr, "dsync-sim: %s needs -transport sim: its faults (clock rates, stops of a process) exist only there\n", s.Name)
				return o, nil, 0, 2
			}
			list = append(list, s)
		}
	}

	if o.parallel <= 0 {
		o.parallel = runtime.GOMAXPROCS(0)
	}
	return o, list, transport, 0
}

// report prints the table of the results of every scenario of list, and
// returns the exit code.
func report(list []simulation.Scenario, all [][]*simulation.Result, o options, transport simulation.Transport, start time.Time, stdout, stderr io.Writer) int {
	var failures []string
	var refused []string   // per scenario: writes a fenced register refused
	var permits []string   // per semaphore scenario: most permits in use at once
	var leases []string    // per lease scenario: leases granted, expired, lost; writes, past the deadline
	var barriers []string  // per barrier scenario: passes, runs with a party out, runs with every generation passed
	var conds []string     // per cond scenario: items, Waits, runs with wakeups unchecked
	var deadlocks []string // per deadlock scenario: rounds and how they ended
	var adaptive []string  // per scenario with adaptive timeouts: outcomes, windows, how far the timeouts moved
	var clocks []string    // per scenario with clock rates other than 1 or stops: rates, stops
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\texpect\truns\tops\tacquired\tviolations\tlost upd\toverlaps\tp50 acq\tp99 acq\tmax wait after heal\tunexpected\t")
	for si, s := range list {
		results := all[si]
		if o.verbose {
			fmt.Fprintln(stderr)
		}
		var agg struct {
			ops, acquired, violations, lost, overlaps, unexpected, refused int
			permits, maxHolders                                            int
			leases, expired, lostLeases, leaseWrites, pastDeadline         int
			barrier, passes, early, outRuns, completeRuns, failedWaits     int
			cond, produced, consumed, condWaits, unchecked, lostWakeups    int
			rounds, done, victims, timeouts, failedRounds, wrongVictims    int
			adaptiveRuns, successes, timedOut, unreported, windows         int
			grown, kept, shrunk, grewRuns, adaptiveViolations              int
			lowest, peak, faultPeak                                        time.Duration
			lat                                                            []time.Duration
			longest                                                        time.Duration
			minRate, maxRate                                               float64
			clientStops, holderStops, nodeStops                            int
			longestClientStop, longestNodeStop                             time.Duration
		}
		agg.minRate, agg.maxRate = 1, 1
		for _, r := range results {
			agg.ops += r.Acquires
			agg.acquired += r.Acquired
			agg.violations += r.Violations()
			agg.lost += r.Register.LostUpdates
			agg.overlaps += r.Register.Overlaps
			agg.refused += r.Register.Refused
			agg.permits = max(agg.permits, r.Semaphore.Permits)
			agg.maxHolders = max(agg.maxHolders, r.Semaphore.MaxHolders)
			agg.leases += r.Lease.Leases
			agg.expired += r.Lease.Expired
			agg.lostLeases += r.Lease.Lost
			agg.leaseWrites += r.Lease.Uses
			agg.pastDeadline += r.Lease.PastDeadline
			if r.Barrier.Parties > 0 {
				agg.barrier++
				agg.passes += r.Barrier.Passes
				agg.early += r.Barrier.EarlyPasses
				agg.failedWaits += r.Barrier.Failures
				if r.Barrier.Out > 0 {
					agg.outRuns++
				}
				if r.Barrier.Generations == r.Barrier.Target {
					agg.completeRuns++
				}
			}
			if r.Cond.Consumers > 0 {
				agg.cond++
				agg.produced += r.Cond.Produced
				agg.consumed += r.Cond.Consumed
				agg.condWaits += r.Cond.Waits
				agg.lostWakeups += r.Cond.LostWakeups
				if r.Cond.WakeupsUnchecked {
					agg.unchecked++
				}
			}
			agg.rounds += r.Deadlock.Rounds
			agg.done += r.Deadlock.Completed
			agg.victims += r.Deadlock.Deadlocks
			agg.timeouts += r.Deadlock.Timeouts
			agg.failedRounds += r.Deadlock.Failed
			agg.wrongVictims += r.Deadlock.FalseVictims + r.Deadlock.WrongVictims
			if a := r.Adaptive; a.Clients > 0 {
				if agg.adaptiveRuns == 0 || a.Lowest < agg.lowest {
					agg.lowest = a.Lowest
				}
				agg.adaptiveRuns++
				agg.successes += a.Successes
				agg.timedOut += a.TimedOut
				agg.unreported += a.Unreported
				agg.windows += a.Windows
				agg.grown += a.Grown
				agg.kept += a.Kept
				agg.shrunk += a.Shrunk
				agg.adaptiveViolations += a.Violations()
				agg.peak = max(agg.peak, a.Peak)
				agg.faultPeak = max(agg.faultPeak, a.FaultPeak)
				if a.Peak > a.Config.Initial {
					agg.grewRuns++
				}
			}
			if k := r.Clocks; k.MaxRate > 0 {
				agg.minRate, agg.maxRate = min(agg.minRate, k.MinRate), max(agg.maxRate, k.MaxRate)
				agg.clientStops += k.ClientStops
				agg.holderStops += k.HolderStops
				agg.nodeStops += k.NodeStops
				agg.longestClientStop = max(agg.longestClientStop, k.LongestClientStop)
				agg.longestNodeStop = max(agg.longestNodeStop, k.LongestNodeStop)
			}
			agg.lat = append(agg.lat, r.Latency...)
			agg.longest = max(agg.longest, r.LongestAfterHeal)
			if o.verbose {
				fmt.Fprintln(stderr, r.Summary())
			}
			if u := r.Unexpected(); len(u) > 0 {
				agg.unexpected++
				failure := fmt.Sprintf("%s seed %d: %s\n  replay: %s", s.Name, r.Seed, strings.Join(u, "; "), replayRun(o, s.Name, r.Seed))
				if transport != simulation.TransportSim {
					failure += "\n  or, on virtual time: " + replayTest(o, s.Name, r.Seed)
				}
				failures = append(failures, failure)
			}
		}
		fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t%v\t%v\t%d\t\n", s.Name, s.Expect, len(results),
			agg.ops, agg.acquired, agg.violations, agg.lost, agg.overlaps,
			round(simulation.Percentile(agg.lat, 50)), round(simulation.Percentile(agg.lat, 99)), round(agg.longest), agg.unexpected)
		if agg.permits > 0 {
			permits = append(permits, fmt.Sprintf("%s %d of %d", s.Name, agg.maxHolders, agg.permits))
		}
		if agg.barrier > 0 {
			barriers = append(barriers, fmt.Sprintf("%s %d passes (%d early), %d failed Waits; %d of %d runs with a party out, %d with every generation passed",
				s.Name, agg.passes, agg.early, agg.failedWaits, agg.outRuns, agg.barrier, agg.completeRuns))
		}
		if agg.cond > 0 {
			conds = append(conds, fmt.Sprintf("%s %d produced, %d consumed, %d Waits, %d lost wakeups; %d of %d runs with the producer crashed (wakeups unchecked)",
				s.Name, agg.produced, agg.consumed, agg.condWaits, agg.lostWakeups, agg.unchecked, agg.cond))
		}
		if agg.rounds > 0 {
			deadlocks = append(deadlocks, fmt.Sprintf("%s %d rounds: %d done, %d ended by ErrDeadlock (%d false or wrong victims), %d by timeout, %d failed otherwise",
				s.Name, agg.rounds, agg.done, agg.victims, agg.wrongVictims, agg.timeouts, agg.failedRounds))
		}
		if agg.adaptiveRuns > 0 {
			adaptive = append(adaptive, fmt.Sprintf("%s %d outcomes: %d successes, %d timed out, %d unreported; %d windows: %d grown, %d kept, %d shrunk; "+
				"timeouts from %v to %v (%v during required growth), above Initial in %d of %d runs; %d violations",
				s.Name, agg.successes+agg.timedOut+agg.unreported, agg.successes, agg.timedOut, agg.unreported, agg.windows, agg.grown, agg.kept, agg.shrunk,
				round(agg.lowest), round(agg.peak), round(agg.faultPeak), agg.grewRuns, agg.adaptiveRuns, agg.adaptiveViolations))
		}
		if agg.minRate != 1 || agg.maxRate != 1 || agg.clientStops+agg.nodeStops > 0 {
			line := fmt.Sprintf("%s rates %.4f to %.4f", s.Name, agg.minRate, agg.maxRate)
			if agg.clientStops+agg.nodeStops > 0 {
				line += fmt.Sprintf("; %d client stops (%d of a holder, longest %v), %d node stops (longest %v)",
					agg.clientStops, agg.holderStops, round(agg.longestClientStop), agg.nodeStops, round(agg.longestNodeStop))
			}
			clocks = append(clocks, line)
		}
		if agg.leases > 0 {
			leases = append(leases, fmt.Sprintf("%s %d granted, %d expired, %d lost, %d writes, %d past the deadline",
				s.Name, agg.leases, agg.expired, agg.lostLeases, agg.leaseWrites, agg.pastDeadline))
		}
		if agg.refused > 0 {
			refused = append(refused, fmt.Sprintf("%s %d", s.Name, agg.refused))
		}
	}
	fmt.Fprintln(stderr)
	tw.Flush()
	timeIs := "virtual time"
	if transport != simulation.TransportSim {
		timeIs = "real time over " + o.transport
	}
	fmt.Fprintf(stdout, "\nlatencies and waits are %s; wall-clock %v\n", timeIs, time.Since(start).Round(time.Millisecond))
	fmt.Fprintln(stdout, "violations = non-linearizable lock histories + lost updates + overlapping writers + liveness failures")
	fmt.Fprintln(stdout, "(+ in fenced runs, writes refused while their writer still held the lock;")
	fmt.Fprintln(stdout, "+ in semaphore runs, holdings beyond the permits and pairs of holders sharing a permit;")
	fmt.Fprintln(stdout, "+ in lease runs, writes past their lease's deadline;")
	fmt.Fprintln(stdout, "+ in barrier runs, passes before every party arrived or out of order, and, with no party out, parties stuck;")
	fmt.Fprintln(stdout, "+ in cond runs, items taken from empty, lost increments and, unless the producer crashed, lost wakeups;")
	fmt.Fprintln(stdout, "+ in deadlock runs, ErrDeadlocks in a chain or that do not name a cycle of which the client is the victim,")
	fmt.Fprintln(stdout, "  and clients that did not complete their round after the heal;")
	fmt.Fprintln(stdout, "+ with adaptive timeouts, timeouts outside [Min, Max], windows against the rules, no growth where required, no settling);")
	fmt.Fprintln(stdout, "they are expected only where the expectation says \"known\" (a documented deficiency the checkers must catch).")
	if len(permits) > 0 {
		fmt.Fprintf(stdout, "most semaphore permits in use at one instant: %s\n", strings.Join(permits, ", "))
	}
	if len(conds) > 0 {
		fmt.Fprintf(stdout, "conds: %s\n", strings.Join(conds, "; "))
	}
	if len(barriers) > 0 {
		fmt.Fprintf(stdout, "barriers: %s\n", strings.Join(barriers, "; "))
	}
	if len(deadlocks) > 0 {
		fmt.Fprintf(stdout, "deadlocks: %s\n", strings.Join(deadlocks, "; "))
	}
	if len(leases) > 0 {
		fmt.Fprintf(stdout, "leases: %s\n", strings.Join(leases, "; "))
	}
	if len(adaptive) > 0 {
		fmt.Fprintf(stdout, "adaptive: %s\n", strings.Join(adaptive, ";\n  "))
	}
	if len(clocks) > 0 {
		fmt.Fprintf(stdout, "clocks: %s\n", strings.Join(clocks, ";\n  "))
	}
	if len(refused) > 0 {
		fmt.Fprintf(stdout, "stale writes refused by the register's fencing-token check (not violations): %s\n", strings.Join(refused, ", "))
	}
	if len(failures) > 0 {
		fmt.Fprintf(stdout, "\n%d runs contradict their expectation:\n", len(failures))
		for _, f := range failures {
			fmt.Fprintln(stdout, f)
		}
		return 1
	}
	return 0
}

// runSeeds runs o.seeds seeds of s on the real clock (http, netns),
// o.parallel at a time, showing progress on w, and returns their results in
// seed order.
func runSeeds(s simulation.Scenario, o options, start time.Time, prog *progress) []*simulation.Result {
	results := make([]*simulation.Result, o.seeds)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(o.parallel, 1))
	done, bad := 0, 0
	for i := range o.seeds {
		if o.duration > 0 && time.Since(start) > o.duration {
			break
		}
		seed := o.seed + uint64(i)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := simulation.Run(s, simulation.Config{Seed: seed, Nodes: o.nodes, Clients: o.clients, Ops: o.ops, ClockDrift: o.drift, Transport: transports[o.transport]})
			trim(r)
			mu.Lock()
			defer mu.Unlock()
			results[i] = r
			done++
			if len(r.Unexpected()) > 0 {
				bad++
			}
			prog.show(s.Name, done, o.seeds, bad, start)
		}()
	}
	wg.Wait()
	return dropMissing(results)
}

// trim drops from r what replays print and the tables do not use: a
// nightly run keeps 100,000 results.
func trim(r *simulation.Result) {
	r.History, r.Cond.Changes, r.Cond.WaitSpans, r.Barrier.Events = nil, nil, nil, nil
}

// dropMissing returns results without the runs -duration left out.
func dropMissing(results []*simulation.Result) []*simulation.Result {
	return slices.DeleteFunc(results, func(r *simulation.Result) bool { return r == nil })
}

// transports are the values of -transport.
var transports = map[string]simulation.Transport{
	"sim": simulation.TransportSim, "http": simulation.TransportHTTP, "netns": simulation.TransportNetns,
}

func flags(o options) string {
	var b strings.Builder
	for _, f := range []struct {
		name string
		v    int
	}{{"nodes", o.nodes}, {"clients", o.clients}, {"ops", o.ops}, {"faults", o.faults}} {
		if f.v != 0 {
			fmt.Fprintf(&b, " -%s %d", f.name, f.v)
		}
	}
	if o.drift != 0 {
		fmt.Fprintf(&b, " -drift %v", o.drift)
	}
	return b.String()
}

func replayRun(o options, scenario string, seed uint64) string {
	tr := ""
	if o.transport != "sim" {
		tr = " -transport " + o.transport
	}
	return fmt.Sprintf("go run ./simulation/cmd/dsync-sim -scenarios %s -seed %d -seeds 1 -v%s%s", scenario, seed, flags(o), tr)
}

func replayTest(o options, scenario string, seed uint64) string {
	return fmt.Sprintf("go test ./simulation -run TestReplay -v -args -sim.scenario=%s -sim.seed=%d%s",
		scenario, seed, strings.ReplaceAll(flags(o), " -", " -sim."))
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d
}
