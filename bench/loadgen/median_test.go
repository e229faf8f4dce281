package loadgen

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMediansGroupInterleavedRounds(t *testing.T) {
	run := func(nodes int, c float64, rate float64, cpu time.Duration) *Result {
		return &Result{Target: "dsync/http", Nodes: nodes, Workload: Workload{Concurrency: 256, Contention: c},
			LocksPerSec: rate, CPUPerLock: cpu}
	}
	// Three rounds of 4 and 16 nodes at contention 0, and two of 4 nodes at
	// contention 0.5, as -rounds interleaves them.
	results := []*Result{
		run(4, 0, 100_000, 18*time.Microsecond), run(16, 0, 38_000, 50*time.Microsecond), run(4, 0.5, 20_000, 60*time.Microsecond),
		run(4, 0, 120_000, 16*time.Microsecond), run(16, 0, 47_000, 41*time.Microsecond), run(4, 0.5, 22_000, 58*time.Microsecond),
		run(4, 0, 90_000, 21*time.Microsecond), run(16, 0, 40_000, 48*time.Microsecond),
	}
	got := Medians(results)
	require.Len(t, got, 3, "groups")
	want := []Median{
		{Target: "dsync/http", Nodes: 4, Concurrency: 256, Runs: 3, LocksPerSec: 100_000, CPUPerLock: 18 * time.Microsecond,
			LocksPerSecMin: 90_000, LocksPerSecMax: 120_000, OfFirst: 1},
		{Target: "dsync/http", Nodes: 16, Concurrency: 256, Runs: 3, LocksPerSec: 40_000, CPUPerLock: 48 * time.Microsecond,
			LocksPerSecMin: 38_000, LocksPerSecMax: 47_000, OfFirst: 0.4},
		{Target: "dsync/http", Nodes: 4, Concurrency: 256, Contention: 0.5, Runs: 2, LocksPerSec: 21_000, CPUPerLock: 59 * time.Microsecond,
			LocksPerSecMin: 20_000, LocksPerSecMax: 22_000, OfFirst: 1},
	}
	for i, w := range want {
		g := got[i]
		assert.InDelta(t, w.OfFirst, g.OfFirst, 1e-9, "group %d: OfFirst", i)
		g.OfFirst = w.OfFirst
		assert.Equal(t, w, g, "group %d", i)
	}
}
