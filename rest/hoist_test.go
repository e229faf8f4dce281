package rest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// hoist moves the Owner and Source that a's lock and rlock operations
// share into a.Owner and a.Source, and leaves them out of the operations
// that have them: the first such operation's owner (source) becomes the
// batch's, if every lock and rlock operation names one. inherit undoes it:
// a.inherit() after a.hoist() gives every operation back what it had.
//
// It is what the client did before it encoded batches with appendBatch,
// and stays here as appendBatch's reference (see encode_test.go).
func (a *BatchArgs) hoist() {
	a.Owner, a.Source = "", ""
	owner, source := "", ""
	// An operation without an owner (source) would inherit the batch's:
	// then that field stays on every operation.
	everyOwner, everySource := true, true
	for i := range a.Ops {
		op := &a.Ops[i]
		if !namesOrigin(op.Verb) {
			continue
		}
		if op.Lock.Owner == "" {
			everyOwner = false
		} else if owner == "" {
			owner = op.Lock.Owner
		}
		if op.Lock.Source == "" {
			everySource = false
		} else if source == "" {
			source = op.Lock.Source
		}
	}
	if !everyOwner {
		owner = ""
	}
	if !everySource {
		source = ""
	}
	if owner == "" && source == "" {
		return
	}
	a.Owner, a.Source = owner, source
	for i := range a.Ops {
		op := &a.Ops[i]
		if !namesOrigin(op.Verb) {
			continue
		}
		if owner != "" && op.Lock.Owner == owner {
			op.Lock.Owner = ""
		}
		if source != "" && op.Lock.Source == source {
			op.Lock.Source = ""
		}
	}
}

// TestHoistThenInheritGivesBackEveryOrigin checks on random batches that
// the owner and source an operation ends with on the node are the ones the
// client gave it, and that hoisting removes the repeats it can.
func TestHoistThenInheritGivesBackEveryOrigin(t *testing.T) {
	owners := []string{"", "p1:1", "p2:2"}
	sources := []string{"", "a.go:1", "b.go:2", "c.go:3"}
	verbs := []Verb{VerbLock, VerbRLock, VerbUnlock, VerbRUnlock, VerbRefresh, VerbForceUnlock}
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var a BatchArgs
		for i := range 1 + rng.IntN(12) {
			op := BatchOp{Verb: verbs[rng.IntN(len(verbs))]}
			if op.Verb == VerbRefresh {
				op.Refresh.UIDs = []string{fmt.Sprint("r", i)}
			} else {
				op.Lock = locker.LockArgs{UID: fmt.Sprint("u", i), Owner: owners[rng.IntN(len(owners))], Source: sources[rng.IntN(len(sources))]}
				if rng.IntN(3) > 0 { // most batches: one process, few call sites
					op.Lock.Owner = owners[1]
				}
			}
			a.Ops = append(a.Ops, op)
		}
		want := BatchArgs{Ops: append([]BatchOp(nil), a.Ops...)}
		a.hoist()
		for _, op := range a.Ops {
			if namesOrigin(op.Verb) {
				require.False(t, a.Owner != "" && op.Lock.Owner == a.Owner || a.Source != "" && op.Lock.Source == a.Source,
					"seed %d: %+v still repeats the batch's %q, %q", seed, op, a.Owner, a.Source)
			}
		}
		body, err := a.MarshalMsg(nil)
		require.NoError(t, err)
		var got BatchArgs
		_, err = got.UnmarshalMsg(body)
		require.NoError(t, err)
		got.inherit()
		got.Owner, got.Source = "", ""
		require.Equal(t, want, got, "seed %d: after hoist, encode, decode, inherit", seed)
	}
}

// TestBatchCarriesEachLocksOrigin sends locks of two processes and several
// call sites in one batch, and then a batch where one lock names no owner,
// and checks the node's listing: every grant keeps its own owner and
// source.
func TestBatchCarriesEachLocksOrigin(t *testing.T) {
	f := newBatchFixture(t)
	ctx := context.Background()
	want := map[string][2]string{}
	for round, missing := range []bool{false, true} {
		gate, slot := f.holdSlot(t)
		const n = 40
		var wg sync.WaitGroup
		for i := range n {
			a := locker.LockArgs{
				UID: fmt.Sprint("u", round, "-", i), Resources: []string{fmt.Sprint("r", round, "-", i)},
				Owner: "proc-1:1", Source: fmt.Sprint("f.go:", i%3),
			}
			if i%7 == 3 {
				a.Owner = "proc-2:2"
			}
			if missing && i == 11 {
				a.Owner = ""
			}
			want[a.UID] = [2]string{a.Owner, a.Source}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := f.c.Lock(ctx, a)
				assert.NoError(t, err, "lock %s: %+v", a.UID, r)
				assert.True(t, r.OK, "lock %s: %+v", a.UID, r)
			}()
		}
		f.waitQueued(n)
		close(gate)
		wg.Wait()
		require.NoError(t, <-slot)
		r, err := f.c.Unlock(ctx, locker.LockArgs{UID: "gate0"})
		require.NoError(t, err, "unlock gate0: %+v", r)
		require.True(t, r.OK, "unlock gate0: %+v", r)
	}
	require.EqualValues(t, 2, f.batches.Load(), "batches")
	entries, err := listAll(ctx, f.g)
	require.NoError(t, err)
	require.Len(t, entries, len(want), "entries")
	for _, e := range entries {
		w := want[e.UID]
		assert.Equal(t, w[0], e.Owner, "%s: owner %q, source %q; want %q, %q", e.UID, e.Owner, e.Source, w[0], w[1])
		assert.Equal(t, w[1], e.Source, "%s: owner %q, source %q; want %q, %q", e.UID, e.Owner, e.Source, w[0], w[1])
	}
}
