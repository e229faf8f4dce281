package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dsync-go/dsync/bench/loadgen"
)

// The contention suite (-suite contention) measures, side by side in one
// process, the runs that the contended-lock targets compare, and prints the
// targets with their figures:
//
//   - idle: one locker on resources of its own: the acquire p50 that one
//     hand-off is measured against;
//   - hot-1: 64 lockers on one resource for 20 s: hand-offs per second
//     (pairs/s) × the idle p50 ≥ 0.8, p99.9 acquire ≤ 100 ms, no timeout
//     (5 s);
//   - distinct and hot-16: 256 lockers on resources of their own, then with
//     half of the operations on 16 hot resources: hot-16 ≥ 40% of distinct's
//     pairs/s, its p99.9 ≤ 250 ms;
//   - fair: 16 lockers on one resource, each holding it 1 ms, for 10 s:
//     every locker's pairs within ±25% of the mean, and the longest wait
//     under 3 × 16 × (hold + hand-off), a hold and a hand-off being the
//     run's mean time per pair.
type suiteRun struct {
	name string
	w    loadgen.Workload
}

func contentionSuite(base loadgen.Workload) []suiteRun {
	with := func(f func(w *loadgen.Workload)) loadgen.Workload {
		w := base
		w.Contention, w.Hot, w.Read, w.Section, w.Hold = 0, 16, 0, 0, 0
		f(&w)
		return w
	}
	return []suiteRun{
		{"idle", with(func(w *loadgen.Workload) { w.Concurrency, w.Duration = 1, 5*time.Second })},
		{"hot-1", with(func(w *loadgen.Workload) { w.Concurrency, w.Contention, w.Hot, w.Duration = 64, 1, 1, 20*time.Second })},
		{"distinct", with(func(w *loadgen.Workload) { w.Concurrency, w.Duration = 256, 10*time.Second })},
		{"hot-16", with(func(w *loadgen.Workload) {
			w.Concurrency, w.Contention, w.Hot, w.Duration = 256, 0.5, 16, 10*time.Second
		})},
		{"fair", with(func(w *loadgen.Workload) {
			w.Concurrency, w.Contention, w.Hot, w.Section, w.Duration = 16, 1, 1, time.Millisecond, 10*time.Second
		})},
	}
}

// runSuite runs the contention suite on n nodes and returns its results, in
// the order of contentionSuite.
func runSuite(ctx context.Context, base loadgen.Workload, n int, cc loadgen.ClusterConfig, dc loadgen.DsyncConfig, progress io.Writer) ([]*loadgen.Result, error) {
	var out []*loadgen.Result
	for _, run := range contentionSuite(base) {
		fmt.Printf("contention suite: %s\n", run.name)
		r, err := runOne(ctx, n, run.w, cc, dc, progress)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", run.name, err)
		}
		out = append(out, r)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// writeSuiteTargets prints each target of the contention suite with the
// figure measured and whether it was met.
func writeSuiteTargets(w io.Writer, rs []*loadgen.Result) {
	idle, hot1, distinct, hot16, fair := rs[0], rs[1], rs[2], rs[3], rs[4]
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmeasured\twanted\t")
	row := func(name, got, want string, ok bool) {
		mark := "met"
		if !ok {
			mark = "MISSED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, got, want, mark)
	}
	idleP50 := idle.Latency.Quantile(0.5)
	handoff := hot1.LocksPerSec * idleP50.Seconds()
	row("hot-1: hand-offs/s × idle p50", fmt.Sprintf("%.0f × %v = %.2f", hot1.LocksPerSec, idleP50, handoff), "≥ 0.8", handoff >= 0.8)
	row("hot-1: p99.9 acquire", hot1.Latency.Quantile(0.999).String(), "≤ 100ms", hot1.Latency.Quantile(0.999) <= 100*time.Millisecond)
	row("hot-1: timeouts and errors", fmt.Sprint(hot1.LockErrors+hot1.UnlockErrors), "0", hot1.LockErrors+hot1.UnlockErrors == 0)
	ratio := 0.0
	if distinct.LocksPerSec > 0 {
		ratio = hot16.LocksPerSec / distinct.LocksPerSec
	}
	row("hot-16: pairs/s of distinct's", fmt.Sprintf("%.0f / %.0f = %.0f%%", hot16.LocksPerSec, distinct.LocksPerSec, 100*ratio), "≥ 40%", ratio >= 0.4)
	row("hot-16: p99.9 acquire", hot16.Latency.Quantile(0.999).String(), "≤ 250ms", hot16.Latency.Quantile(0.999) <= 250*time.Millisecond)
	row("fair: furthest locker from the mean", fmt.Sprintf("±%.1f%%", 100*fair.Unfairness), "≤ ±25%", fair.Unfairness >= 0 && fair.Unfairness <= 0.25)
	var bound time.Duration
	if fair.Pairs > 0 {
		perPair := time.Duration(float64(fair.Elapsed) * float64(fair.Workload.Concurrency) / float64(fair.Pairs))
		bound = 3 * perPair // 3 × 16 × (hold + hand-off): one pair of each of the 16 lockers takes perPair
	}
	row("fair: longest wait", fair.Latency.Max().String(), fmt.Sprintf("< %v", bound), fair.Latency.Max() < bound)
	tw.Flush()
}
