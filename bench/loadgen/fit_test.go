package loadgen

import (
	"math"
	"slices"
	"testing"
	"time"
)

// TestNodeFits checks the line through the medians: exact points give the
// line back, with no residual; a configuration run at one node count gets no
// line; and the predicted ratio follows from the line.
func TestNodeFits(t *testing.T) {
	run := func(target string, nodes int, cpu time.Duration) *Result {
		return &Result{Target: target, Nodes: nodes, Workload: Workload{Concurrency: 256}, CPUPerLock: cpu}
	}
	us := time.Microsecond
	results := []*Result{
		// On the line 6µs + 2µs·n, two rounds; the second round's 16 nodes is
		// an outlier that the median of three discards.
		run("dsync/http", 4, 14*us), run("dsync/http", 8, 22*us), run("dsync/http", 16, 38*us),
		run("dsync/http", 4, 14*us), run("dsync/http", 8, 22*us), run("dsync/http", 16, 90*us),
		run("dsync/http", 16, 38*us),
		// Not on a line: least squares through (4, 10) (8, 20) (16, 30).
		run("dsync/local", 4, 10*us), run("dsync/local", 8, 20*us), run("dsync/local", 16, 30*us),
		// One node count only.
		run("dsync/one", 4, 10*us), run("dsync/one", 4, 12*us),
	}
	fits := NodeFits(results)
	if len(fits) != 2 {
		t.Fatalf("%d fits, want 2: %+v", len(fits), fits)
	}
	f := fits[0]
	if f.Target != "dsync/http" || f.PerPair != 6*us || f.PerNode != 2*us || f.MaxResidual != 0 ||
		!slices.Equal(f.Nodes, []int{4, 8, 16}) || f.FirstNodes != 4 || f.LastNodes != 16 {
		t.Errorf("http fit %+v, want 6µs + 2µs·n over 4,8,16 with no residual", f)
	}
	if got, want := f.Ratio(), 14.0/38; math.Abs(got-want) > 1e-9 {
		t.Errorf("ratio %v, want %v", got, want)
	}
	// Slope (3·(40+160+480) − 28·60)/(3·336 − 784) = 360/224; intercept
	// (60 − slope·28)/3.
	g := fits[1]
	slope := 360.0 / 224
	wantNode := time.Duration(slope * float64(us))
	wantPair := time.Duration((60 - slope*28) / 3 * float64(us))
	if (g.PerNode-wantNode).Abs() > time.Nanosecond || (g.PerPair-wantPair).Abs() > time.Nanosecond {
		t.Errorf("local fit %v + %v·n, want %v + %v·n", g.PerPair, g.PerNode, wantPair, wantNode)
	}
	if g.MaxResidual < time.Microsecond {
		t.Errorf("local fit residual %v: the points are not on a line", g.MaxResidual)
	}
}
