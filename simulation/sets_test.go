package simulation

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSetsRandomSeeds runs the sets scenario (3 sets of 3 nodes, a node of
// every set crashed, then another isolated; cross-set locks) over seeds,
// with the checkers unchanged. SIM_PRIMITIVE_SEEDS runs more seeds.
func TestSetsRandomSeeds(t *testing.T) {
	runSeeds(t, setsScenario(), primitiveSeeds(), nil)
}

// The sets scenario's workload does lock resources of different sets at
// once, and they are granted.
func TestSetsWorkloadLocksAcrossSets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := withSetup(setsScenario(), Config{Seed: 1, Quiesce: synctest.Wait})
		c, err := NewCluster(cfg)
		require.NoError(t, err)
		defer c.Close()
		require.True(t, c.RunWorkload(nil))
		type call struct {
			client int
			at     int64
		}
		acquired := map[call][]string{}
		for _, op := range c.History.Ops() {
			if op.Kind == OpAcquire && op.Outcome == OK {
				k := call{op.Client, op.CallAt.UnixNano()}
				acquired[k] = append(acquired[k], op.Resource)
			}
		}
		across := 0
		for _, rs := range acquired {
			if len(rs) == 2 && c.setOf(rs[0]) != c.setOf(rs[1]) {
				across++
			}
		}
		assert.Positive(t, across, "cross-set locks granted")
		t.Logf("%d cross-set locks of %d acquisitions", across, len(acquired))
	})
}

// TestGrowRandomSeeds runs the change-of-layout scenarios (old and change
// clients; change and new clients) over seeds, with the checkers
// unchanged. SIM_PRIMITIVE_SEEDS runs more seeds.
func TestGrowRandomSeeds(t *testing.T) {
	for _, s := range []Scenario{
		growScenario("grow-old-change", LayoutOld, LayoutChange, LayoutChange),
		growScenario("grow-change-new", LayoutChange, LayoutNew, LayoutNew),
	} {
		t.Run(s.Name, func(t *testing.T) { runSeeds(t, s, primitiveSeeds(), nil) })
	}
}

// The negative control of the change: clients of the old layout and of the
// new one together, which the change's steps and the nodes' fingerprints
// exist to prevent, lock resources on different sets, and the checkers
// catch it.
func TestGrowCheckerCatchesOldAndNewTogether(t *testing.T) {
	s := growScenario("grow-old-new", LayoutOld, LayoutNew, LayoutOld, LayoutNew)
	caught := 0
	const seeds = 10
	for seed := range uint64(seeds) {
		r := runScenario(t, s, Config{Seed: seed})
		if len(r.Unexpected()) > 0 {
			caught++
		}
	}
	t.Logf("old and new clients together: caught in %d of %d runs", caught, seeds)
	assert.GreaterOrEqual(t, caught, seeds/2, "old and new clients together were caught in %d of %d runs", caught, seeds)
}
