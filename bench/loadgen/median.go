package loadgen

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Median summarises the runs of one configuration (target, nodes,
// concurrency, contention, read fraction) repeated in interleaved rounds.
type Median struct {
	Target                         string
	Nodes, Concurrency             int
	Contention, Read               float64
	Runs                           int
	LocksPerSec                    float64       // median of the runs
	CPUPerLock                     time.Duration // median of the runs
	LocksPerSecMin, LocksPerSecMax float64       // the runs' range
	// OfFirst is LocksPerSec over that of the first node count listed for
	// the same target, concurrency, contention and read fraction: the
	// scaling with nodes, from medians.
	OfFirst float64
}

// Medians groups results by configuration, in the order each first
// appears, and returns the median of each group's throughput and CPU per
// pair. On a machine whose speed drifts, runs repeated in interleaved rounds
// and summarised by their medians compare configurations more fairly than
// single runs.
func Medians(results []*Result) []Median {
	type key struct {
		target        string
		nodes, conc   int
		contention, r float64
	}
	var order []key
	groups := map[key][]*Result{}
	for _, r := range results {
		k := key{r.Target, r.Nodes, r.Workload.Concurrency, r.Workload.Contention, r.Workload.Read}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	type base struct {
		target        string
		conc          int
		contention, r float64
	}
	first := map[base]float64{}
	out := make([]Median, 0, len(order))
	for _, k := range order {
		rs := groups[k]
		rates := make([]float64, len(rs))
		cpus := make([]time.Duration, len(rs))
		for i, r := range rs {
			rates[i], cpus[i] = r.LocksPerSec, r.CPUPerLock
		}
		slices.Sort(rates)
		slices.Sort(cpus)
		m := Median{
			Target: k.target, Nodes: k.nodes, Concurrency: k.conc, Contention: k.contention, Read: k.r,
			Runs: len(rs), LocksPerSec: median(rates), CPUPerLock: median(cpus),
			LocksPerSecMin: rates[0], LocksPerSecMax: rates[len(rates)-1],
		}
		b := base{k.target, k.conc, k.contention, k.r}
		if _, ok := first[b]; !ok {
			first[b] = m.LocksPerSec
		}
		if f := first[b]; f > 0 {
			m.OfFirst = m.LocksPerSec / f
		}
		out = append(out, m)
	}
	return out
}

// median returns the middle of sorted values, or the mean of the two
// middle ones.
func median[T float64 | time.Duration](sorted []T) T {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// WriteMedians writes Medians(results) as an aligned text table.
func WriteMedians(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tnodes\tconc\tcontention\tread\truns\tmedian locks/s\tmin\tmax\tmedian CPU/lock\tof first nodes\t")
	for _, m := range Medians(results) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t%d\t%.0f\t%.0f\t%.0f\t%s\t%.1f%%\t\n",
			m.Target, m.Nodes, m.Concurrency, m.Contention, m.Read, m.Runs,
			m.LocksPerSec, m.LocksPerSecMin, m.LocksPerSecMax, dur(m.CPUPerLock), 100*m.OfFirst)
	}
	return tw.Flush()
}
