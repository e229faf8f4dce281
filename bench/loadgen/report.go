package loadgen

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// WriteTable writes results as an aligned text table, one row per run.
func WriteTable(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tnodes\tconc\tcontention\tread\tlocks/s\tp50\tp99\tp99.9\tmax\tfair±%\tCPU/lock\tcores\tallocs/lock\twire B/lock\trefresh/node/iv\tcalls/lock\trefused\terrors\tops/req\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.1f\t%s\t%s\t%s\t%d\t%d\t%s\t\n",
			r.Target, r.Nodes, r.Workload.Concurrency, r.Workload.Contention, r.Workload.Read,
			r.LocksPerSec, dur(r.Latency.Quantile(0.5)), dur(r.Latency.Quantile(0.99)), dur(r.Latency.Quantile(0.999)),
			dur(r.Latency.Max()), optional(100*r.Unfairness, 0), dur(r.CPUPerLock), r.CPUCores, r.AllocsPerLock, optional(r.WireBytesPerLock, 0), optional(r.RefreshPerNodePerInterval, 2),
			optional(r.NodeCallsPerLock, 2), r.NodeRefusals, r.LockErrors+r.UnlockErrors, optional(r.OpsPerRequest, 1))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s, %d nodes: first error: %s\n", r.Target, r.Nodes, r.FirstError)
		}
	}
	return nil
}

// WriteCSV writes results as CSV with a header row; durations are in
// microseconds.
func WriteCSV(w io.Writer, results []*Result) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"target", "nodes", "concurrency", "contention", "hot", "read", "duration_s", "pairs",
		"locks_per_s", "p50_us", "p99_us", "p999_us", "max_us", "cpu_per_lock_us", "cpu_cores", "allocs_per_lock",
		"wire_bytes_per_lock", "refresh_per_node_per_interval", "node_calls_per_lock", "node_refusals", "node_failures",
		"lock_errors", "unlock_errors", "ops_per_request", "section_us", "unfairness"})
	for _, r := range results {
		cw.Write([]string{
			r.Target, strconv.Itoa(r.Nodes), strconv.Itoa(r.Workload.Concurrency), ff(r.Workload.Contention),
			strconv.Itoa(r.Workload.Hot), ff(r.Workload.Read), ff(r.Elapsed.Seconds()), strconv.FormatUint(r.Pairs, 10),
			ff(r.LocksPerSec), us(r.Latency.Quantile(0.5)), us(r.Latency.Quantile(0.99)), us(r.Latency.Quantile(0.999)),
			us(r.Latency.Max()), us(r.CPUPerLock), ff(r.CPUCores), ff(r.AllocsPerLock), ff(r.WireBytesPerLock),
			ff(r.RefreshPerNodePerInterval), ff(r.NodeCallsPerLock), strconv.FormatInt(r.NodeRefusals, 10),
			strconv.FormatInt(r.NodeFailures, 10), strconv.FormatUint(r.LockErrors, 10), strconv.FormatUint(r.UnlockErrors, 10),
			ff(r.OpsPerRequest), us(r.Workload.Section), ff(r.Unfairness),
		})
	}
	cw.Flush()
	return cw.Error()
}

func ff(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func us(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) }

// dur formats d with three significant digits.
func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3gs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3gms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.3gµs", float64(d)/1e3)
	}
}

// optional formats v, or "-" for a negative v (not measured).
func optional(v float64, prec int) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}
