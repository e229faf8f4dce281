package loadgen

import (
	"encoding/csv"
	"io"
	"strconv"
)

// The charts are drawn by bench/plot, a module of its own (so that nothing
// here pulls a plotting library into the root module), from the CSV that
// WriteCSV and WriteCDFCSV write.

// WriteCDFCSV writes the cumulative distribution of acquire latency of every
// run as CSV with a header row: one line per non-empty histogram bucket,
// latency in microseconds and the fraction of acquires at or under it.
// bench/plot draws it (-kind cdf).
func WriteCDFCSV(w io.Writer, results []*Result) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"target", "nodes", "concurrency", "contention", "latency_us", "fraction"})
	for _, r := range results {
		for _, p := range r.Latency.CDF() {
			cw.Write([]string{
				r.Target, strconv.Itoa(r.Nodes), strconv.Itoa(r.Workload.Concurrency), ff(r.Workload.Contention),
				us(p.Latency), ff(p.Fraction),
			})
		}
	}
	cw.Flush()
	return cw.Error()
}
