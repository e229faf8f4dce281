package loadgen

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.Len(t, fits, 2, "fits")
	f := fits[0]
	const httpFit = "http fit %+v, want 6µs + 2µs·n over 4,8,16 with no residual"
	assert.Equal(t, "dsync/http", f.Target, httpFit, f)
	assert.Equal(t, 6*us, f.PerPair, httpFit, f)
	assert.Equal(t, 2*us, f.PerNode, httpFit, f)
	assert.Zero(t, f.MaxResidual, httpFit, f)
	assert.True(t, slices.Equal(f.Nodes, []int{4, 8, 16}), httpFit, f)
	assert.Equal(t, 4, f.FirstNodes, httpFit, f)
	assert.Equal(t, 16, f.LastNodes, httpFit, f)
	assert.InDelta(t, 14.0/38, f.Ratio(), 1e-9, "ratio")
	// Slope (3·(40+160+480) − 28·60)/(3·336 − 784) = 360/224; intercept
	// (60 − slope·28)/3.
	g := fits[1]
	slope := 360.0 / 224
	wantNode := time.Duration(slope * float64(us))
	wantPair := time.Duration((60 - slope*28) / 3 * float64(us))
	assert.LessOrEqual(t, (g.PerNode - wantNode).Abs(), time.Nanosecond, "local fit %v + %v·n, want %v + %v·n", g.PerPair, g.PerNode, wantPair, wantNode)
	assert.LessOrEqual(t, (g.PerPair - wantPair).Abs(), time.Nanosecond, "local fit %v + %v·n, want %v + %v·n", g.PerPair, g.PerNode, wantPair, wantNode)
	assert.GreaterOrEqual(t, g.MaxResidual, time.Microsecond, "local fit residual: the points are not on a line")
}
