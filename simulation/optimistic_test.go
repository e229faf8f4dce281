package simulation

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCheckRegisterOptimistic proves the checker of optimistic reads: a
// validated read that a write came between (or that read two values) is a
// violation; an unvalidated one, or a validated one with no write between,
// is not.
func TestCheckRegisterOptimistic(t *testing.T) {
	h := NewHistory(nil)
	r := NewRegister(h)
	read := func(client int, between func(), validated bool) {
		o := r.EnterOptimistic(client, "x")
		between()
		r.ReadAgain(o)
		r.Validated(o, validated)
	}
	write := func() { r.Exit(r.Enter(9, "x", true), true) }

	read(0, func() {}, true)
	read(1, write, false)
	rep := CheckRegister(r.Sections(), r.Values())
	assert.Zero(t, rep.Violations(), "a quiet validated read, and a read not validated: %+v", rep)
	assert.Equal(t, 2, rep.Optimistic)
	assert.Equal(t, 1, rep.Validated)

	read(2, write, true)
	rep = CheckRegister(r.Sections(), r.Values())
	assert.Equal(t, 1, rep.StaleReads, "a validated read with a write between: %+v", rep)
	assert.Equal(t, 1, rep.Violations())

	// A write that a crashed or abandoned writer never made is no change.
	read(3, func() { r.Exit(r.Enter(8, "x", true), false) }, true)
	rep = CheckRegister(r.Sections(), r.Values())
	assert.Equal(t, 1, rep.StaleReads, "a write section that did not write: %+v", rep)
}

// TestRandomOptimistic runs the random scenario with half of the reads made
// optimistically (Config.Optimistic) over a fifth of TestRandom's seeds:
// whatever the faults (partitions, crashes and restarts of nodes and
// clients, pauses), a read that validated must have seen no write. A failing
// seed replays with
//
//	go test ./simulation -run 'TestRandomOptimistic/seed=N$'
func TestRandomOptimistic(t *testing.T) {
	s := Random(Budget{})
	optimistic, validated := 0, 0
	for seed := range uint64(randomSeeds() / 5) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := runScenario(t, s, Config{Seed: seed, Optimistic: 0.5, ReadFraction: 0.5})
			optimistic += r.Register.Optimistic
			validated += r.Register.Validated
			reportUnexpected(t, r)
		})
	}
	t.Logf("%d optimistic reads, %d validated", optimistic, validated)
	assert.Positive(t, validated, "some optimistic reads validated")
}
