// Command dsync-bench is the load generator: it starts lock servers in this
// process (node tables called directly, or served over loopback HTTP), runs
// a workload of lock+unlock pairs through the quorum client against each
// requested number of nodes, and reports throughput, acquire latency, CPU
// and allocations per lock, bytes on the wire per lock and refresh requests
// per node per interval.
//
//	go run ./bench/cmd/dsync-bench -nodes 1,3,4,5,8,16 -transport http -duration 10s \
//	    -csv bench/results/nodes.csv -cdf bench/results/latency-cdf.csv
//
// The charts are drawn from those CSV files by bench/plot, a module of its own
// (gonum.org/v1/plot): cd bench/plot && go run . -kind throughput -in ../results/nodes.csv -out ../results/throughput.png
//
// With -set-size 0,4 every node count runs twice, side by side: every lock
// on every node, and in lock sets of 4 (dsync.NewSets); -spread 2 makes
// the sets' locks cover two resources in two sets.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"time"

	"github.com/dsync-go/dsync/bench/loadgen"
)

func main() {
	var (
		nodes       = flag.String("nodes", "4", "comma-separated numbers of nodes; one run each")
		concurrency = flag.Int("concurrency", 256, "concurrent lockers")
		contention  = flag.String("contention", "0", "comma-separated fractions (0..1) of operations on the hot set; one run each")
		hot         = flag.Int("hot", 16, "size of the hot set")
		read        = flag.Float64("read", 0, "fraction (0..1) of operations that take a read lock")
		duration    = flag.Duration("duration", 10*time.Second, "how long each run lasts")
		timeout     = flag.Duration("timeout", 5*time.Second, "bound on one acquire")
		hold        = flag.Int("hold", 0, "locks acquired before each run and held through it (refresh traffic)")
		section     = flag.Duration("section", 0, "how long each lock is held before it is released (0: at once)")
		transport   = flag.String("transport", loadgen.TransportLocal, "comma-separated transports, one run each: local (tables called in-process), http (package rest over loopback), https (the same with mutual TLS)")
		secret      = flag.String("secret", "", "shared secret for http (default: a fixed benchmark secret)")
		insecure    = flag.Bool("insecure", false, "http without authentication")
		refresh     = flag.Duration("refresh", 0, "refresh interval (0 = dsync's default, 10s)")
		validity    = flag.Duration("validity", 0, "grant validity on the nodes (0 = locker's default, 1m)")
		retryMin    = flag.Duration("retry-min", 0, "acquire back-off lower bound (0 = dsync's default)")
		retryMax    = flag.Duration("retry-max", 0, "acquire back-off upper bound (0 = dsync's default)")
		csvFile     = flag.String("csv", "", "write the results as CSV to this file")
		cdfFile     = flag.String("cdf", "", "write the acquire latency distribution of every run as CSV to this file (bench/plot -kind cdf draws it)")
		quiet       = flag.Bool("quiet", false, "no progress lines")
		cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the runs to this file")
		traceFile   = flag.String("trace", "", "write an execution trace of the runs to this file (go tool trace)")
		memProfile  = flag.String("memprofile", "", "write a profile of the runs' allocations to this file (go tool pprof -sample_index=alloc_objects)")
		maxInFlight = flag.Int("max-inflight", 0, "http: requests in flight per node before calls are batched (0 = rest's default)")
		maxBatch    = flag.Int("max-batch", 0, "http: operations per batch request (0 = rest's default)")
		noBatch     = flag.Bool("no-batch", false, "http: send every call in its own request")
		metrics     = flag.Bool("metrics", false, "http: give every node Prometheus metrics (package dsyncprom), to measure their cost")
		suite       = flag.String("suite", "", "contention: run the contended-lock suite (idle, hot-1, distinct, hot-16, fair; see suite.go) on the first of -nodes and -transport, and print its targets")
		setSize     = flag.String("set-size", "0", "comma-separated lock set sizes, one run each: 0 locks on every node (dsync.New), n in sets of n nodes (dsync.NewSets; -nodes must be multiples)")
		spread      = flag.String("spread", "1", "with -set-size: comma-separated numbers of sets each lock covers, one run each: its resource and one in each of spread-1 other sets (a lock across sets)")
		rounds      = flag.Int("rounds", 1, "run the whole list of runs this many times, interleaved, and print each configuration's medians (for machines whose speed drifts)")
	)
	flag.Parse()

	counts, err := parseCounts(*nodes)
	if err != nil {
		fail(err)
	}
	contentions, err := parseFractions(*contention)
	if err != nil {
		fail(err)
	}
	transports, err := parseTransports(*transport)
	if err != nil {
		fail(err)
	}
	setSizes, err := parseSetSizes(*setSize)
	if err != nil {
		fail(err)
	}
	spreads, err := parseCounts(*spread)
	if err != nil {
		fail(fmt.Errorf("-spread: %w", err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	w := loadgen.Workload{
		Concurrency: *concurrency, Duration: *duration, Hot: *hot,
		Read: *read, Timeout: *timeout, Hold: *hold, Section: *section,
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			fail(err)
		}
		if err := trace.Start(f); err != nil {
			fail(err)
		}
		defer func() { trace.Stop(); f.Close() }()
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 64 << 10 // finer than the default, for counts per operation
		defer writeFile(*memProfile, func(f io.Writer) error {
			runtime.GC() // the profile counts allocations up to the last GC
			return pprof.Lookup("allocs").WriteTo(f, 0)
		})
	}
	var progress io.Writer = os.Stdout
	if *quiet {
		progress = nil
	}
	if *rounds < 1 {
		fail(fmt.Errorf("-rounds %d: want at least 1", *rounds))
	}
	cc := func(n int, tr string) loadgen.ClusterConfig {
		return loadgen.ClusterConfig{
			Nodes: n, Transport: tr, Secret: *secret, Insecure: *insecure, Validity: *validity,
			MaxInFlight: *maxInFlight, MaxBatch: *maxBatch, DisableBatching: *noBatch, Metrics: *metrics,
		}
	}
	dc := loadgen.DsyncConfig{RefreshInterval: *refresh, RetryMin: *retryMin, RetryMax: *retryMax}
	switch *suite {
	case "":
	case "contention":
		results, err := runSuite(ctx, w, counts[0], cc(counts[0], transports[0]), dc, progress)
		if err != nil {
			fail(err)
		}
		fmt.Println()
		loadgen.WriteTable(os.Stdout, results)
		fmt.Println()
		writeSuiteTargets(os.Stdout, results)
		writeFile(*csvFile, func(f io.Writer) error { return loadgen.WriteCSV(f, results) })
		return
	default:
		fail(fmt.Errorf("-suite %q: the only suite is contention", *suite))
	}
	var results []*loadgen.Result
runs:
	for range *rounds {
		for _, tr := range transports {
			for _, c := range contentions {
				w.Contention = c
				for _, size := range setSizes {
					dc.SetSize = size
					for _, sp := range spreads {
						if size == 0 && sp > 1 {
							continue // spreads are of sets
						}
						dc.Spread = sp
						for _, n := range counts {
							if size > 0 && (n%size != 0 || sp > n/size) {
								continue // not a layout of n nodes
							}
							r, err := runOne(ctx, n, w, cc(n, tr), dc, progress)
							if err != nil {
								fail(err)
							}
							results = append(results, r)
							if ctx.Err() != nil {
								break runs
							}
						}
					}
				}
			}
		}
	}
	fmt.Println()
	loadgen.WriteTable(os.Stdout, results)
	if *rounds > 1 {
		fmt.Printf("\nmedians of %d interleaved rounds (\"of first nodes\": median locks/s over that of %d nodes):\n", *rounds, counts[0])
		loadgen.WriteMedians(os.Stdout, results)
		if len(counts) > 1 {
			fmt.Println("\nCPU per pair against nodes, a least-squares line through the medians (a: the part paid once per pair; b: the part paid per node):")
			loadgen.WriteNodeFits(os.Stdout, results)
		}
	}
	writeFile(*csvFile, func(f io.Writer) error { return loadgen.WriteCSV(f, results) })
	writeFile(*cdfFile, func(f io.Writer) error { return loadgen.WriteCDFCSV(f, results) })
}

func runOne(ctx context.Context, n int, w loadgen.Workload, cc loadgen.ClusterConfig, dc loadgen.DsyncConfig, progress io.Writer) (*loadgen.Result, error) {
	c, err := loadgen.StartCluster(cc)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	t, err := loadgen.NewDsyncTarget(c, dc)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	fmt.Printf("%s, %d nodes: %d lockers, contention %.2f (hot %d), read %.2f, for %v\n",
		t.Name(), n, w.Concurrency, w.Contention, w.Hot, w.Read, w.Duration)
	return loadgen.Run(ctx, t, w, progress)
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("-nodes: %q is not a number of nodes from 1 to 64", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseSetSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || n > 64 {
			return nil, fmt.Errorf("-set-size: %q is not a set size from 0 to 64", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFractions(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v < 0 || v > 1 {
			return nil, fmt.Errorf("-contention: %q is not a fraction from 0 to 1", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func writeFile(name string, write func(io.Writer) error) {
	if name == "" {
		return
	}
	f, err := os.Create(name)
	if err != nil {
		fail(err)
	}
	if err := write(f); err != nil {
		fail(err)
	}
	if err := f.Close(); err != nil {
		fail(err)
	}
	fmt.Println("wrote", name)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dsync-bench:", err)
	os.Exit(1)
}

func parseTransports(s string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t != loadgen.TransportLocal && t != loadgen.TransportHTTP && t != loadgen.TransportHTTPS {
			return nil, fmt.Errorf("-transport: %q is none of %s, %s, %s", t, loadgen.TransportLocal, loadgen.TransportHTTP, loadgen.TransportHTTPS)
		}
		out = append(out, t)
	}
	return out, nil
}
