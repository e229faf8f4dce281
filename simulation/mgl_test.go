package simulation

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// Multi-granularity locking in the simulation: the lock model checks every
// lock against Gray's matrix (model.go), the hierarchy workload records
// the intention locks its Hierarchy takes (hierarchy.go), and with
// Config.Modes it draws all five modes (the mgl and mgl-random scenarios).

// TestCheckLocksModes feeds the lock checker histories of locks in the
// modes of multi-granularity locking, on one resource (a bucket): every
// compatible pair may be held at once, no incompatible pair may, and a
// release or a loss ends a hold in its own mode.
func TestCheckLocksModes(t *testing.T) {
	at := func(client int, kind OpKind, mode locker.Mode, call, ret int64) Op {
		return Op{Client: client, Resource: "bucket-0", Kind: kind, Write: mode == locker.ModeX, Mode: mode, Outcome: OK, Call: call, Return: ret}
	}
	modes := []locker.Mode{locker.ModeIS, locker.ModeIX, locker.ModeS, locker.ModeSIX, locker.ModeX}
	compatible := map[locker.Mode][]locker.Mode{ // Gray's matrix, written out
		locker.ModeIS:  {locker.ModeIS, locker.ModeIX, locker.ModeS, locker.ModeSIX},
		locker.ModeIX:  {locker.ModeIS, locker.ModeIX},
		locker.ModeS:   {locker.ModeIS, locker.ModeS},
		locker.ModeSIX: {locker.ModeIS},
		locker.ModeX:   nil,
	}
	for _, a := range modes {
		for _, b := range modes {
			ops := []Op{at(0, OpAcquire, a, 1, 2), at(1, OpAcquire, b, 3, 4)}
			assert.Equal(t, slices.Contains(compatible[a], b), CheckLocks(ops, 0).Ok, "%v held while %v is granted", a, b)
			ops = append(ops[:1], at(0, OpRelease, a, 3, 4), at(1, OpAcquire, b, 5, 6))
			assert.True(t, CheckLocks(ops, 0).Ok, "%v released before %v is granted", a, b)
			ops[1].Kind = OpLost
			assert.True(t, CheckLocks(ops, 0).Ok, "%v lost before %v is granted", a, b)
		}
	}
	// A release ends the hold of its own mode only.
	ops := []Op{at(0, OpAcquire, locker.ModeIX, 1, 2), at(0, OpRelease, locker.ModeIS, 3, 4), at(1, OpAcquire, locker.ModeS, 5, 6)}
	assert.False(t, CheckLocks(ops, 0).Ok, "an IS released does not end an IX")
	// Classic locks (no Mode) are S and X: a read lock conflicts with an IX.
	read := Op{Client: 1, Resource: "bucket-0", Kind: OpAcquire, Outcome: OK, Call: 3, Return: 4}
	assert.False(t, CheckLocks([]Op{at(0, OpAcquire, locker.ModeIX, 1, 2), read}, 0).Ok, "a read lock beside an IX")
	assert.True(t, CheckLocks([]Op{at(0, OpAcquire, locker.ModeIS, 1, 2), read}, 0).Ok, "a read lock beside an IS")
	// Three writers of objects share the bucket in IX while a fourth reads
	// one object; a listing (S) only after they all released.
	ops = []Op{
		at(0, OpAcquire, locker.ModeIX, 1, 2), at(1, OpAcquire, locker.ModeIX, 1, 3), at(2, OpAcquire, locker.ModeIX, 2, 4),
		at(3, OpAcquire, locker.ModeIS, 2, 5),
		at(0, OpRelease, locker.ModeIX, 6, 7), at(1, OpRelease, locker.ModeIX, 6, 8), at(2, OpRelease, locker.ModeIX, 6, 9),
		at(4, OpAcquire, locker.ModeS, 6, 10),
	}
	assert.True(t, CheckLocks(ops, 0).Ok, "writers of objects, then a listing")
	ops[len(ops)-1].Call = 5 // the listing may now have been granted before the last release
	assert.True(t, CheckLocks(ops, 0).Ok, "a listing whose call spans the releases")
	ops[len(ops)-1].Return = 5 // granted before any release
	assert.False(t, CheckLocks(ops, 0).Ok, "a listing granted while objects are written")
}

// TestHierarchyIntentionsAsDsyncTakesThem checks the workload's record of
// the intention locks (hierarchyIntentions) against what a real Hierarchy
// takes on real tables: for each sequence of calls on one Held, the
// resources and modes the tables hold are exactly the calls' locks and the
// intentions the workload records.
func TestHierarchyIntentionsAsDsyncTakesThem(t *testing.T) {
	h, err := dsync.NewHierarchy(hierarchyLevels...)
	require.NoError(t, err)
	global := func(m dsync.Mode) dsync.LevelLock { return dsync.LevelLock{Level: "global", Name: "global", Mode: m} }
	bucket := func(m dsync.Mode) dsync.LevelLock { return dsync.LevelLock{Level: "bucket", Name: "bucket-0", Mode: m} }
	object := func(o int, m dsync.Mode) dsync.LevelLock {
		return dsync.LevelLock{Level: "object", Name: fmt.Sprintf("bucket-0/object-%d", o), Mode: m}
	}
	classic := dsync.LevelLock{Level: "object", Name: "bucket-1/object-0", Read: true} // S, by Read
	for _, tc := range []struct {
		name  string
		calls [][]dsync.LevelLock
		want  []string // "resource mode", sorted
	}{
		{"object X", [][]dsync.LevelLock{{object(0, dsync.X)}}, []string{"bucket-0 IX", "bucket-0/object-0 X"}},
		{"object S", [][]dsync.LevelLock{{object(0, dsync.S)}}, []string{"bucket-0 IS", "bucket-0/object-0 S"}},
		{"object read by Read", [][]dsync.LevelLock{{classic}}, []string{"bucket-1 IS", "bucket-1/object-0 S"}},
		{"two objects", [][]dsync.LevelLock{{object(0, dsync.X), object(1, dsync.X)}}, []string{"bucket-0 IX", "bucket-0/object-0 X", "bucket-0/object-1 X"}},
		{"global and object", [][]dsync.LevelLock{{global(dsync.S), object(0, dsync.X)}}, []string{"bucket-0 IX", "bucket-0/object-0 X", "global S"}},
		{"bucket given", [][]dsync.LevelLock{{bucket(dsync.SIX), object(0, dsync.X)}}, []string{"bucket-0 SIX", "bucket-0/object-0 X"}},
		{"global, then object", [][]dsync.LevelLock{{global(dsync.IS)}, {object(0, dsync.S)}}, []string{"bucket-0 IS", "bucket-0/object-0 S", "global IS"}},
		{"bucket, then object", [][]dsync.LevelLock{{bucket(dsync.IX)}, {object(0, dsync.X)}}, []string{"bucket-0 IX", "bucket-0/object-0 X"}},
		{"bucket alone", [][]dsync.LevelLock{{bucket(dsync.X)}}, []string{"bucket-0 X"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var tables []*locker.Local
				var ls []locker.NetLocker
				for range 3 {
					tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: time.Minute, SweepInterval: -1})
					t.Cleanup(func() { tbl.Close() })
					tables, ls = append(tables, tbl), append(ls, tbl)
				}
				ds, err := dsync.New(ls, dsync.Config{})
				require.NoError(t, err)
				t.Cleanup(func() { ds.Close() })
				ctx := context.Background()
				var hd *dsync.Held
				deepest := -1
				var recorded []string
				for _, call := range tc.calls {
					for _, l := range append(hierarchyIntentions(deepest, call), call...) {
						recorded = append(recorded, l.Name+" "+levelMode(l).String())
						deepest = max(deepest, levelIndex(l.Level))
					}
					if hd == nil {
						hd, err = h.Lock(ctx, ds, dsync.Options{Timeout: time.Second}, call...)
					} else {
						err = hd.Lock(ctx, dsync.Options{Timeout: time.Second}, call...)
					}
					require.NoError(t, err)
				}
				synctest.Wait() // every node's grant
				slices.Sort(recorded)
				assert.Equal(t, tc.want, recorded, "recorded by the workload")
				for i, tbl := range tables {
					list, err := tbl.List(ctx, locker.ListArgs{})
					require.NoError(t, err)
					var held []string
					for _, e := range list.Entries {
						held = append(held, e.Resource+" "+e.Mode.String())
					}
					slices.Sort(held)
					assert.Equal(t, tc.want, held, "held by node %d", i)
				}
				require.NoError(t, hd.Release(ctx))
			})
		})
	}
}

// sharedIX returns how many pairs of clients' IX holds of one bucket
// certainly overlapped in ops: both granted (acquisition returned) before
// either's release was called. That is writers of different objects of a
// bucket at work together, which intention locks are for.
func sharedIX(ops []Op) int {
	type hold struct {
		client   int
		from, to int64
	}
	byRes := map[string][]hold{}
	open := map[string]int{} // client/resource -> index in byRes
	for _, op := range ops {
		if OpMode(op) != locker.ModeIX {
			continue
		}
		k := fmt.Sprintf("%d/%s", op.Client, op.Resource)
		switch {
		case op.Kind == OpAcquire && op.Outcome == OK:
			open[k] = len(byRes[op.Resource])
			byRes[op.Resource] = append(byRes[op.Resource], hold{op.Client, op.Return, Infinity})
		case op.Kind != OpAcquire:
			if i, ok := open[k]; ok {
				byRes[op.Resource][i].to = op.Call
				delete(open, k)
			}
		}
	}
	n := 0
	for _, hs := range byRes {
		for i, a := range hs {
			for _, b := range hs[i+1:] {
				if a.client != b.client && a.from < b.to && b.from < a.to {
					n++
				}
			}
		}
	}
	return n
}

// modeCounts counts the granted acquisitions of ops by mode.
func modeCounts(ops []Op) map[locker.Mode]int {
	n := map[locker.Mode]int{}
	for _, op := range ops {
		if op.Kind == OpAcquire && op.Outcome == OK {
			n[OpMode(op)]++
		}
	}
	return n
}

// TestModes runs the mgl scenario (no faults) over a few seeds: safe, with
// every mode granted, and writers of different objects holding their
// bucket's IX at once.
func TestModes(t *testing.T) {
	total, shared := map[locker.Mode]int{}, 0
	for seed := range uint64(5) {
		r := runScenario(t, modesScenario(), Config{Seed: seed})
		t.Log(r.Summary())
		assert.Empty(t, r.Unexpected(), "seed %d", seed)
		for m, n := range modeCounts(r.History) {
			total[m] += n
		}
		shared += sharedIX(r.History)
	}
	t.Logf("granted by mode: %v; pairs of IX holders of one bucket at once: %d", total, shared)
	for _, m := range []locker.Mode{locker.ModeIS, locker.ModeIX, locker.ModeS, locker.ModeSIX, locker.ModeX} {
		assert.Positive(t, total[m], "grants of %v", m)
	}
	assert.Positive(t, shared, "writers of different objects of one bucket at once")
}

// TestModesRandom runs the random scenario over the hierarchy workload in
// the modes of multi-granularity locking: whatever the faults, no two
// clients believe at once that they hold one resource in incompatible
// modes (intention locks included), no two writers overlap on any
// register, waiting clients are served after the heal. SIM_PRIMITIVE_SEEDS
// runs more seeds. A failing seed replays with
//
//	go test ./simulation -run 'TestModesRandom/seed=N$'
func TestModesRandom(t *testing.T) {
	s := ModesRandom(Budget{})
	shared := 0
	for seed := range uint64(primitiveSeeds()) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := runScenario(t, s, Config{Seed: seed})
			shared += sharedIX(r.History)
			if u := r.Unexpected(); !assert.Empty(t, u) {
				t.Log(r.Summary())
				for _, n := range r.Notes {
					t.Log(n)
				}
			}
		})
	}
	t.Logf("pairs of IX holders of one bucket at once: %d", shared)
}

// TestModesCheckerCatchesWeakIntentions proves the lock checker on the
// modes workload: clients that take IS on a bucket where the protocol asks
// for IX (and record IX) write objects beside holders of S on the whole
// bucket, and the lock history must be found not linearizable, while the
// careful runs of the same seeds are safe.
func TestModesCheckerCatchesWeakIntentions(t *testing.T) {
	s := modesScenario()
	weak := s
	weak.Drive = func(c *Cluster) (time.Duration, error) {
		c.weakIntentions = true
		return s.Drive(c)
	}
	caught := 0
	for seed := range uint64(5) {
		r := runScenario(t, s, Config{Seed: seed})
		assert.Empty(t, r.Unexpected(), "careful clients, seed %d", seed)
		r = runScenario(t, weak, Config{Seed: seed})
		t.Log(r.Summary())
		if !r.Lock.Ok {
			caught++
			assert.NotEmpty(t, r.Unexpected(), "seed %d: a run whose lock history is not linearizable passed", seed)
		}
	}
	assert.Positive(t, caught, "runs with IS taken for IX found not linearizable")
}
