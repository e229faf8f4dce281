// Command dsync-soak runs the real lock stack for a long time under faults
// and shows that the process does not leak and that no lock is lost or
// doubled. In this one process it starts the simulation's HTTP tier (nodes
// serving rest with authentication on loopback, over real locker tables;
// client processes, one dsync.Dsync each, every link to a node through a
// fault-injecting TCP proxy; see simulation.Soak), then:
//
//  1. measures the peak throughput of the register workload (acquire,
//     read-modify-write of a shared register, release; several resources)
//     for -peak-for, without faults: the median of its one-second rates;
//  2. runs it for -duration at half of that (or at -rate), under the fault
//     schedule (node kills and restarts into their grace period,
//     partitions of a node from some or all clients, lost replies; never
//     more than n−W nodes faulty at once), sampling every -interval the
//     process's RSS, goroutines, open file descriptors and Go heap, and the
//     workload's throughput, acquire latency and errors by kind;
//  3. checks every window of every resource's history with porcupine and
//     the register's checker (no two holders at once, no lost update, no
//     overlapping writers), that no long holder lost its lock, that RSS,
//     goroutines and file descriptors stay within -tolerance of their
//     median after the warm-up, and that the workload held its rate there
//     (the median throughput of those samples no more than -tolerance
//     below it: a soak that ran far slower than it claims says little).
//
// It prints a row per sample as it goes and a summary at the end, writes
// the samples as CSV with -csv, and exits with status 1 if a check fails.
// Everything is on loopback and stops by itself after -duration.
//
//	go run ./simulation/cmd/dsync-soak                   # 30 minutes
//	go run ./simulation/cmd/dsync-soak -duration 2m      # to try it
//	go run ./simulation/cmd/dsync-soak -duration 30m -csv soak.csv
//
// It is a command of its own rather than a mode of dsync-sim: dsync-sim
// runs many short seeded runs, in virtual time where it can, and reports
// per scenario; a soak is one run on the real clock, whose output is a
// time series of the process, and whose pass or fail depends on it.
package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // with -pprof
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dsync-go/dsync/simulation"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	duration, peakFor, interval, warmup time.Duration
	rate, tolerance                     float64
	csvFile, pprofAddr                  string
	noFaults, verbose                   bool
	cfg                                 simulation.SoakConfig
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("dsync-soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 30*time.Minute, "how long the soak runs at its rate, under faults")
	fs.Float64Var(&o.rate, "rate", 0, "acquisitions per second, in all (0: half of the peak measured first)")
	fs.DurationVar(&o.peakFor, "peak-for", 20*time.Second, "how long the peak throughput is measured, without faults (not with -rate)")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "how often the process and the workload are sampled, each resource's history checked and dropped just before")
	fs.DurationVar(&o.warmup, "warmup", 0, "samples before this are not checked for flatness (0: 10% of -duration, at most 2m)")
	fs.Float64Var(&o.tolerance, "tolerance", 0.10, "how far RSS, goroutines and file descriptors may stray from their median after the warm-up, and the settled samples' median throughput fall below the rate (0.10: ±10%)")
	fs.StringVar(&o.csvFile, "csv", "", "write the samples as CSV to this file")
	fs.BoolVar(&o.noFaults, "no-faults", false, "run without the fault schedule")
	fs.BoolVar(&o.verbose, "v", false, "log what the nodes and the clients log, to stderr")
	fs.StringVar(&o.pprofAddr, "pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060), to look inside a soak that leaks")
	c := &o.cfg
	fs.IntVar(&c.Nodes, "nodes", 0, "nodes (0: 3)")
	fs.IntVar(&c.Clients, "clients", 0, "client processes, one dsync.Dsync each (0: 4)")
	fs.IntVar(&c.Workers, "workers", 0, "workload goroutines per client (0: 4)")
	fs.IntVar(&c.Resources, "resources", 0, "registers the workers share (0: 8)")
	fs.Float64Var(&c.ReadFraction, "read", 0, "share of read locks (0: 0.3; negative: none)")
	fs.DurationVar(&c.Hold, "hold", 0, "a worker's section lasts up to this (0: 1ms; negative: no wait)")
	fs.DurationVar(&c.LongHold, "long-hold", 0, "each client's long holder keeps its lock this long (0: the validity; negative: no long holders)")
	fs.DurationVar(&c.Validity, "validity", 0, "grant validity; refresh every quarter of it; a restarted node's grace (0: 5s)")
	fs.DurationVar(&c.Outage, "outage", 0, "how long each fault lasts (0: 3s)")
	fs.DurationVar(&c.FaultGap, "fault-gap", 0, "quiet time between faults, at least validity + long hold + 2s (0: that, or settle + 10s if longer)")
	fs.DurationVar(&c.Settle, "settle", 0, "samples within this of a fault's end are not settled, and not checked for flatness (0: 30s)")
	faultKinds := fs.String("faults", strings.Join(simulation.SoakFaultKinds, ","), "kinds of fault the schedule cycles through, in order")
	fs.DurationVar(&c.CallTimeout, "call-timeout", 0, "bound on one call to one node (0: 500ms)")
	fs.DurationVar(&c.MaxWait, "max-wait", 0, "how long one attempt of a contended acquisition waits in the nodes' queues (0: dsync's default; negative, e.g. -1s: back off between attempts instead)")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the workload's choices and the fault schedule")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.Faults = strings.Split(*faultKinds, ",")

	if o.duration <= 0 || o.interval <= 0 || o.rate < 0 || (o.rate == 0 && o.peakFor < time.Second) {
		fmt.Fprintln(stderr, "dsync-soak: -duration and -interval must be positive, -rate not negative, and -peak-for at least 1s without -rate")
		return 2
	}
	if o.warmup == 0 {
		o.warmup = min(o.duration/10, 2*time.Minute)
	}
	if o.verbose {
		c.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if o.pprofAddr != "" {
		host, _, err := net.SplitHostPort(o.pprofAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			fmt.Fprintf(stderr, "dsync-soak: -pprof %q: want a loopback address and port\n", o.pprofAddr)
			return 2
		}
		ln, err := net.Listen("tcp", o.pprofAddr)
		if err != nil {
			fmt.Fprintln(stderr, "dsync-soak:", err)
			return 2
		}
		srv := &http.Server{Handler: http.DefaultServeMux}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(stdout, "pprof on http://%s/debug/pprof/\n", ln.Addr())
	}

	s, err := simulation.NewSoak(o.cfg)
	if err != nil {
		fmt.Fprintln(stderr, "dsync-soak:", err)
		return 2
	}
	defer s.Close()
	cfg := s.Config()
	fmt.Fprintf(stdout, "dsync-soak: %d nodes (HTTP, authenticated, on loopback through fault-injecting proxies), %d clients × %d workers on %d resources (read %.2f, hold ≤ %v)",
		cfg.Nodes, cfg.Clients, cfg.Workers, cfg.Resources, max(cfg.ReadFraction, 0), max(cfg.Hold, 0))
	if cfg.LongHold > 0 {
		fmt.Fprintf(stdout, ", %d long holders (%v each)", cfg.Clients, cfg.LongHold)
	}
	maxWait := "dsync's default"
	switch {
	case cfg.MaxWait < 0:
		maxWait = "none (back-off)"
	case cfg.MaxWait > 0:
		maxWait = cfg.MaxWait.String()
	}
	fmt.Fprintf(stdout, "; validity %v, call timeout %v, wait on the nodes %s, seed %d\n", cfg.Validity, cfg.CallTimeout, maxWait, cfg.Seed)

	var failures []string
	rate := o.rate
	if rate == 0 {
		fmt.Fprintf(stdout, "measuring the peak for %v, without faults...\n", o.peakFor)
		peak, err := s.Run(ctx, simulation.SoakPhase{Duration: o.peakFor, SampleEvery: time.Second})
		if err != nil {
			fmt.Fprintln(stderr, "dsync-soak:", err)
			return 1
		}
		rates := make([]float64, 0, len(peak.Samples))
		for _, smp := range peak.Samples {
			rates = append(rates, smp.Throughput)
		}
		p := peak.Throughput()
		how := fmt.Sprintf("over the whole %v", peak.Elapsed.Round(time.Millisecond))
		if len(rates) > 0 {
			p = medianOf(rates)
			how = fmt.Sprintf("median of %d rates over a second each, %.0f to %.0f; %.0f over the whole %v",
				len(rates), slices.Min(rates), slices.Max(rates), peak.Throughput(), peak.Elapsed.Round(time.Millisecond))
		}
		fmt.Fprintf(stdout, "peak: %.0f acquisitions/s (%s); %d windows checked, %d violations\n",
			p, how, peak.Check.Windows, peak.Check.Violations())
		failures = append(failures, prefixed("peak: ", peak.Failures())...)
		rate = p / 2
		if rate <= 0 {
			fmt.Fprintln(stderr, "dsync-soak: no acquisition completed while measuring the peak")
			return 1
		}
	}
	faults := "under the fault schedule"
	if o.noFaults {
		faults = "without faults"
	}
	fmt.Fprintf(stdout, "soak: %v at %.0f acquisitions/s, %s (outage %v, gap %v); sampling every %v; warm-up %v\n\n",
		o.duration, rate, faults, cfg.Outage, cfg.FaultGap, o.interval, o.warmup)

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "t\trss MiB\theld MiB\theap MiB\tgoroutines\tfds\tacq/s\tp50\tp99\terrors\t fault")
	tw.Flush()
	res, err := s.Run(ctx, simulation.SoakPhase{
		Duration: o.duration, Rate: rate, Faults: !o.noFaults, SampleEvery: o.interval,
		OnSample: func(smp simulation.SoakSample) {
			fault := smp.Fault
			if fault == "" && !smp.Settled {
				fault = "(settling)"
			}
			fmt.Fprintf(tw, "%v\t%.1f\t%.1f\t%.1f\t%d\t%d\t%.0f\t%v\t%v\t%s\t %s\n",
				smp.At.Round(min(o.interval, time.Second)), mib(smp.RSS), mib(smp.HeldRSS), mib(smp.HeapInuse), smp.Goroutines, smp.FDs, smp.Throughput,
				round(smp.P50), round(smp.P99), smp.Errors, fault)
			tw.Flush()
		},
	})
	if err != nil {
		fmt.Fprintln(stderr, "dsync-soak:", err)
		return 1
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "\ninterrupted")
	}
	if o.csvFile != "" {
		if err := writeCSV(o.csvFile, res.Samples); err != nil {
			fmt.Fprintln(stderr, "dsync-soak:", err)
			return 1
		}
		fmt.Fprintln(stdout, "\nwrote", o.csvFile)
	}

	fmt.Fprintf(stdout, "\n%v: %d acquire-section-release cycles (%.0f/s), %d long holds; faults:", res.Elapsed.Round(time.Second),
		res.Ops, res.Throughput(), res.LongHolds)
	for _, k := range simulation.SoakFaultKinds {
		fmt.Fprintf(stdout, " %s %d", k, res.Faults[k])
	}
	fmt.Fprintf(stdout, "; reclaims %d sent, %d granted; %d refresh rounds\n", res.Reclaims, res.Reclaimed, res.RefreshRounds)
	fmt.Fprintf(stdout, "errors: %s\n", res.Errors)
	if len(res.Losses) > 0 {
		fmt.Fprintf(stdout, "locks lost (the first %d):\n", len(res.Losses))
		for _, l := range res.Losses {
			fmt.Fprintf(stdout, "  %s\n", l)
		}
	}
	ch := res.Check
	fmt.Fprintf(stdout, "checked %d windows (%d lock operations): %d not linearizable, %d undecided; %d writes, %d lost updates, %d overlapping writers\n",
		ch.Windows, ch.Ops, ch.NotLinearizable, ch.Undecided, ch.Register.Writes, ch.Register.LostUpdates, ch.Register.Overlaps)
	failures = append(failures, res.Failures()...)
	settled := simulation.SettledSamples(res.Samples)
	flat := simulation.CheckFlat(settled, o.warmup, o.tolerance)
	fmt.Fprintf(stdout, "the settled samples after the warm-up (flat: within ±%.0f%% of the median; throughput: at most %.0f%% below the rate; %d of %d samples settled):\n",
		100*o.tolerance, 100*o.tolerance, len(settled), len(res.Samples))
	for _, f := range flat {
		fmt.Fprintf(stdout, "  %s\n", f)
		if f.Failed() {
			failures = append(failures, f.String())
		}
	}
	rateCheck := simulation.CheckRate(settled, o.warmup, rate, o.tolerance)
	fmt.Fprintf(stdout, "  %s\n", rateCheck)
	if rateCheck.Failed() {
		failures = append(failures, rateCheck.String())
	}
	fmt.Fprintln(stdout, "every sample after the warm-up, faults included (reported, not checked):")
	for _, f := range simulation.CheckFlat(res.Samples, o.warmup, o.tolerance) {
		fmt.Fprintf(stdout, "  %s\n", f.Range())
	}
	if len(res.Samples) > 0 && !res.Samples[0].RSSFromOS {
		fmt.Fprintln(stdout, "  (rss is runtime.MemStats.Sys here, a stand-in: the OS's resident set is not known on this system)")
	}
	if ctx.Err() != nil {
		failures = append(failures, "interrupted before -duration")
	}
	if len(failures) > 0 {
		fmt.Fprintln(stdout, "\nFAIL:")
		for _, f := range failures {
			fmt.Fprintln(stdout, "  "+f)
		}
		return 1
	}
	fmt.Fprintln(stdout, "\nPASS")
	return 0
}

func prefixed(p string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = p + l
	}
	return out
}

func medianOf(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// writeCSV writes one row per sample.
func writeCSV(name string, samples []simulation.SoakSample) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	header := []string{"t_s", "rss_bytes", "held_rss_bytes", "rss_from_os", "heap_inuse_bytes", "goroutines", "fds", "ops", "ops_per_s", "p50_us", "p99_us"}
	header = append(header, simulation.SoakErrorNames...)
	header = append(header, "fault", "settled")
	w.Write(header)
	for _, s := range samples {
		row := []string{
			strconv.FormatFloat(s.At.Seconds(), 'f', 3, 64), strconv.FormatUint(s.RSS, 10), strconv.FormatUint(s.HeldRSS, 10),
			strconv.FormatBool(s.RSSFromOS),
			strconv.FormatUint(s.HeapInuse, 10), strconv.Itoa(s.Goroutines), strconv.Itoa(s.FDs),
			strconv.FormatInt(s.Ops, 10), strconv.FormatFloat(s.Throughput, 'f', 1, 64),
			strconv.FormatInt(s.P50.Microseconds(), 10), strconv.FormatInt(s.P99.Microseconds(), 10),
		}
		for _, v := range s.Errors.Values() {
			row = append(row, strconv.FormatInt(v, 10))
		}
		row = append(row, s.Fault, strconv.FormatBool(s.Settled))
		w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
