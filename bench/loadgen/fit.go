package loadgen

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// NodeFit is a straight line through the median CPU per pair of one
// configuration run at several node counts: CPU per pair ≈ PerPair +
// PerNode·n. PerPair is what a lock+unlock pair costs whatever the number of
// nodes (the caller, the quorum client's bookkeeping); PerNode is what each
// node adds (its calls on the client, the wire, and the node's own work).
//
// When the process is CPU-bound at every node count, throughput is inversely
// proportional to CPU per pair, so the line predicts how throughput scales:
// throughput at n₂ over throughput at n₁ is (PerPair + PerNode·n₁) /
// (PerPair + PerNode·n₂). It follows that the ratio rises as PerNode falls
// and also as PerPair grows: making the per-pair part cheaper, which raises
// throughput at every n, lowers the ratio.
type NodeFit struct {
	Target                string
	Concurrency           int
	Contention, Read      float64
	Nodes                 []int         // the node counts fitted, in the order run
	PerPair, PerNode      time.Duration // the line's intercept and slope
	MaxResidual           time.Duration // the largest distance of a median from the line
	FirstNodes, LastNodes int           // the smallest and largest of Nodes
}

// Ratio is the throughput at LastNodes over that at FirstNodes that the line
// predicts for a CPU-bound process.
func (f NodeFit) Ratio() float64 {
	return f.At(f.FirstNodes).Seconds() / f.At(f.LastNodes).Seconds()
}

// At is the CPU per pair the line gives at n nodes.
func (f NodeFit) At(n int) time.Duration { return f.PerPair + time.Duration(n)*f.PerNode }

// NodeFits fits a line to the median CPU per pair of each configuration run
// at two or more node counts (see Medians), in the order configurations
// first appear.
func NodeFits(results []*Result) []NodeFit {
	type key struct {
		target        string
		conc          int
		contention, r float64
	}
	var order []key
	groups := map[key][]Median{}
	for _, m := range Medians(results) {
		k := key{m.Target, m.Concurrency, m.Contention, m.Read}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], m)
	}
	var out []NodeFit
	for _, k := range order {
		ms := groups[k]
		if len(ms) < 2 {
			continue
		}
		var sx, sy, sxx, sxy float64
		f := NodeFit{Target: k.target, Concurrency: k.conc, Contention: k.contention, Read: k.r,
			FirstNodes: ms[0].Nodes, LastNodes: ms[0].Nodes}
		for _, m := range ms {
			x, y := float64(m.Nodes), float64(m.CPUPerLock)
			sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
			f.Nodes = append(f.Nodes, m.Nodes)
			f.FirstNodes, f.LastNodes = min(f.FirstNodes, m.Nodes), max(f.LastNodes, m.Nodes)
		}
		n := float64(len(ms))
		d := n*sxx - sx*sx
		if d == 0 {
			continue // one node count, repeated
		}
		slope := (n*sxy - sx*sy) / d
		f.PerNode = time.Duration(slope)
		f.PerPair = time.Duration((sy - slope*sx) / n)
		for _, m := range ms {
			f.MaxResidual = max(f.MaxResidual, (m.CPUPerLock - f.At(m.Nodes)).Abs())
		}
		out = append(out, f)
	}
	return out
}

// WriteNodeFits writes NodeFits(results) as an aligned text table.
func WriteNodeFits(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tconc\tcontention\tread\tnodes\ta (per pair)\tb (per node)\tb/a\tmax residual\tpredicted last/first\t")
	for _, f := range NodeFits(results) {
		nodes := make([]string, len(f.Nodes))
		for i, n := range f.Nodes {
			nodes[i] = fmt.Sprint(n)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%s\t%s\t%s\t%.2f\t%s\t%.1f%%\t\n",
			f.Target, f.Concurrency, f.Contention, f.Read, strings.Join(nodes, ","),
			dur(f.PerPair), dur(f.PerNode), f.PerNode.Seconds()/f.PerPair.Seconds(), dur(f.MaxResidual), 100*f.Ratio())
	}
	return tw.Flush()
}
