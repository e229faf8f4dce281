package simulation

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// op builds a recorded operation for checker tests.
func op(client int, kind OpKind, write bool, out Outcome, call, ret int64) Op {
	return Op{Client: client, Resource: "x", Kind: kind, Write: write, Outcome: out, Call: call, Return: ret}
}

// TestCheckLocks proves the lock checker: histories with a known violation
// must be flagged, legal ones must pass.
func TestCheckLocks(t *testing.T) {
	tests := []struct {
		name string
		ops  []Op
		ok   bool
	}{
		{"sequential writers", []Op{
			op(0, OpAcquire, true, OK, 1, 2), op(0, OpRelease, true, OK, 3, 4),
			op(1, OpAcquire, true, OK, 5, 6), op(1, OpRelease, true, OK, 7, 8),
		}, true},
		{"two writers at once", []Op{
			op(0, OpAcquire, true, OK, 1, 2),
			op(1, OpAcquire, true, OK, 3, 4),
			op(0, OpRelease, true, OK, 5, 6), op(1, OpRelease, true, OK, 7, 8),
		}, false},
		{"writer while a reader holds", []Op{
			op(0, OpAcquire, false, OK, 1, 2),
			op(1, OpAcquire, true, OK, 3, 4),
		}, false},
		{"reader while a writer holds", []Op{
			op(0, OpAcquire, true, OK, 1, 2),
			op(1, OpAcquire, false, OK, 3, 4),
		}, false},
		{"readers share", []Op{
			op(0, OpAcquire, false, OK, 1, 2), op(1, OpAcquire, false, OK, 3, 4),
			op(0, OpRelease, false, OK, 5, 6), op(1, OpRelease, false, OK, 7, 8),
		}, true},
		{"release overlaps the next acquire", []Op{
			op(0, OpAcquire, true, OK, 1, 2),
			op(0, OpRelease, true, OK, 3, 6),
			op(1, OpAcquire, true, OK, 4, 5),
		}, true},
		{"failed acquire changes nothing", []Op{
			op(0, OpAcquire, true, OK, 1, 2),
			op(1, OpAcquire, true, Failed, 3, 4),
			op(0, OpRelease, true, OK, 5, 6),
		}, true},
		{"grant after the holder was told it lost the lock", []Op{
			op(0, OpAcquire, true, OK, 1, 2),
			op(0, OpLost, true, OK, 3, 3),
			op(1, OpAcquire, true, OK, 4, 5),
		}, true},
		{"grant before the holder was told it lost the lock", []Op{
			op(0, OpAcquire, true, OK, 1, 2),
			op(1, OpAcquire, true, OK, 3, 4),
			op(0, OpLost, true, OK, 5, 5),
		}, false},
		{"unknown outcome may not have taken effect", []Op{
			op(0, OpAcquire, true, Unknown, 1, Infinity),
			op(1, OpAcquire, true, OK, 3, 4),
		}, true},
		{"unknown outcome may have taken effect", []Op{
			op(0, OpAcquire, true, OK, 1, 2), op(0, OpRelease, true, OK, 3, 4),
			op(1, OpAcquire, true, Unknown, 5, Infinity),
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckLocks(tc.ops, 0)
			assert.Equal(t, tc.ok, got.Ok, "CheckLocks = %+v, want ok %v", got, tc.ok)
		})
	}
}

// TestCheckLocksPartitionsByResource checks that holders of different
// resources do not conflict.
func TestCheckLocksPartitionsByResource(t *testing.T) {
	a := op(0, OpAcquire, true, OK, 1, 2)
	b := op(1, OpAcquire, true, OK, 3, 4)
	b.Resource = "y"
	got := CheckLocks([]Op{a, b}, 0)
	assert.True(t, got.Ok, "writers of different resources flagged: %+v", got)
}

// TestCheckRegister proves the register checker on sections with a known
// lost update and overlap, and on a clean run.
func TestCheckRegister(t *testing.T) {
	h := NewHistory(nil)
	r := NewRegister(h)
	// Clean: c0 then c1, each increments.
	r.Exit(r.Enter(0, "x", true), true)
	r.Exit(r.Enter(1, "x", true), true)
	// Readers may overlap each other.
	a, b := r.Enter(0, "y", false), r.Enter(1, "y", false)
	r.Exit(a, false)
	r.Exit(b, false)
	rep := CheckRegister(r.Sections(), r.Values())
	require.Zero(t, rep.Violations(), "clean run: %+v", rep)
	require.Equal(t, 2, rep.Writes, "clean run: %+v", rep)

	// c0 and c1 both read 2, both write 3: one update is lost and the
	// sections overlap.
	s0 := r.Enter(0, "x", true)
	s1 := r.Enter(1, "x", true)
	r.Exit(s1, true)
	r.Exit(s0, true)
	rep = CheckRegister(r.Sections(), r.Values())
	require.Equal(t, 1, rep.LostUpdates, "overlapping writers: %+v, want 1 lost update and 1 overlap", rep)
	require.Equal(t, 1, rep.Overlaps, "overlapping writers: %+v, want 1 lost update and 1 overlap", rep)
	require.Len(t, rep.Examples, 1, "overlapping writers: %+v, want 1 lost update and 1 overlap", rep)

	// A reader inside a writer's section, or a writer that crashed inside
	// (never wrote), is not a storage violation.
	w := r.Enter(0, "z", true)
	r.Exit(r.Enter(1, "z", false), false)
	r.Exit(w, true)
	r.Enter(2, "z", true)
	r.Exit(r.Enter(3, "z", true), true)
	rep = CheckRegister(r.Sections(), r.Values())
	require.Equal(t, 1, rep.Overlaps, "reader inside writer and a crashed writer: %+v, want only the earlier overlap and lost update", rep)
	require.Equal(t, 1, rep.LostUpdates, "reader inside writer and a crashed writer: %+v, want only the earlier overlap and lost update", rep)
}

// TestCheckRegisterFenced proves the fenced register and what the checker
// makes of its refusals: a stale write is refused and is no violation; a
// refused writer that still held its lock is one; and a check switched off
// lets the stale write through, which the checker catches.
func TestCheckRegisterFenced(t *testing.T) {
	lost := func() bool { return false } // the writer was told it lost its lock
	held := func() bool { return true }

	// c0 (token 10) reads, c1 (token 20) reads and writes, c0 writes late:
	// refused, the register keeps c1's increment.
	r := NewFencedRegister(NewHistory(nil))
	s0 := r.EnterFenced(0, "x", 10, lost)
	r.Exit(r.EnterFenced(1, "x", 20, held), true)
	r.Exit(s0, true)
	rep := CheckRegister(r.Sections(), r.Values())
	const stale = "stale write after the newer one: %+v, value %d; want 1 write, 1 refused, no violation, value 1"
	require.Zero(t, rep.Violations(), stale, rep, r.Values()["x"])
	require.Equal(t, 1, rep.Writes, stale, rep, r.Values()["x"])
	require.Equal(t, 1, rep.Refused, stale, rep, r.Values()["x"])
	require.Equal(t, 1, r.Values()["x"], stale, rep, r.Values()["x"])

	// The stale write lands between c1's read and c1's write. The register
	// saw c1's token on its read, so it refuses c0's write; a register that
	// kept only the tokens of accepted writes would take it, and c1's write
	// would then overwrite it (a lost update).
	r = NewFencedRegister(NewHistory(nil))
	s0 = r.EnterFenced(0, "x", 10, lost)
	s1 := r.EnterFenced(1, "x", 20, held)
	r.Exit(s0, true)
	r.Exit(s1, true)
	rep = CheckRegister(r.Sections(), r.Values())
	require.Zero(t, rep.Violations(), "stale write inside the newer section: %+v; want 1 write, 1 refused, no violation", rep)
	require.Equal(t, 1, rep.Writes, "stale write inside the newer section: %+v; want 1 write, 1 refused, no violation", rep)
	require.Equal(t, 1, rep.Refused, "stale write inside the newer section: %+v; want 1 write, 1 refused, no violation", rep)

	// Tokens that disagree with the lock order: c0 still holds its lock when
	// its write is refused.
	r = NewFencedRegister(NewHistory(nil))
	s0 = r.EnterFenced(0, "x", 10, held)
	r.Exit(r.EnterFenced(1, "x", 20, held), true)
	r.Exit(s0, true)
	rep = CheckRegister(r.Sections(), r.Values())
	require.Equal(t, 1, rep.RefusedHeld, "refused writer that still held: %+v; want 1 violation (RefusedHeld)", rep)
	require.Equal(t, 1, rep.Violations(), "refused writer that still held: %+v; want 1 violation (RefusedHeld)", rep)
	require.Len(t, rep.Examples, 1, "refused writer that still held: %+v; want 1 violation (RefusedHeld)", rep)

	// Sequential holders with growing tokens, and one holder writing twice
	// with its token, are all accepted; tokens are kept per resource.
	r = NewFencedRegister(NewHistory(nil))
	r.Exit(r.EnterFenced(0, "x", 10, held), true)
	r.Exit(r.EnterFenced(1, "x", 20, held), true)
	r.Exit(r.EnterFenced(1, "x", 20, held), true)
	r.Exit(r.EnterFenced(2, "y", 15, held), true)
	rep = CheckRegister(r.Sections(), r.Values())
	require.Zero(t, rep.Violations(), "sequential fenced writers: %+v; want 4 writes, none refused", rep)
	require.Equal(t, 4, rep.Writes, "sequential fenced writers: %+v; want 4 writes, none refused", rep)
	require.Zero(t, rep.Refused, "sequential fenced writers: %+v; want 4 writes, none refused", rep)

	// The same stale write with the check off: plain storage takes it.
	r = NewFencedRegister(NewHistory(nil))
	r.checkTokens = false
	s0 = r.EnterFenced(0, "x", 10, lost)
	r.Exit(r.EnterFenced(1, "x", 20, held), true)
	r.Exit(s0, true)
	rep = CheckRegister(r.Sections(), r.Values())
	require.Zero(t, rep.Refused, "stale write, check off: %+v; want it accepted: 1 lost update, 1 overlap", rep)
	require.Equal(t, 1, rep.LostUpdates, "stale write, check off: %+v; want it accepted: 1 lost update, 1 overlap", rep)
	require.Equal(t, 1, rep.Overlaps, "stale write, check off: %+v; want it accepted: 1 lost update, 1 overlap", rep)
}

// TestCheckSemaphore proves the semaphore checker: n+1 holders in use at
// once, or two on one permit, must be flagged; holdings that only touch
// (one ends, then the next starts) must pass.
func TestCheckSemaphore(t *testing.T) {
	h := func(client, slot int, start, end int64) Holding {
		return Holding{Client: client, Slot: slot, Start: start, End: end}
	}
	tests := []struct {
		name                 string
		hs                   []Holding
		over, overlaps, most int
	}{
		{"two holders, two permits", []Holding{h(0, 0, 1, 5), h(1, 1, 2, 6), h(2, 0, 7, 9), h(3, 1, 8, 10)}, 0, 0, 2},
		{"handover on a permit", []Holding{h(0, 0, 1, 5), h(1, 0, 6, 8), h(2, 1, 2, 9)}, 0, 0, 2},
		{"n+1 overlapping holders", []Holding{h(0, 0, 1, 10), h(1, 1, 2, 10), h(2, 2, 3, 10)}, 1, 0, 3},
		{"n+1 holders, one never ended", []Holding{h(0, 0, 1, Infinity), h(1, 1, 2, 4), h(2, 0, 3, 6), h(3, 1, 7, 8)}, 1, 1, 3},
		{"two on one permit", []Holding{h(0, 0, 1, 5), h(1, 0, 4, 8)}, 0, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := CheckSemaphore(tc.hs, 2)
			const want = "CheckSemaphore = %+v; want %d beyond the permits, %d sharing a permit, at most %d"
			assert.Equal(t, tc.over, rep.Oversubscribed, want, rep, tc.over, tc.overlaps, tc.most)
			assert.Equal(t, tc.overlaps, rep.SlotOverlaps, want, rep, tc.over, tc.overlaps, tc.most)
			assert.Equal(t, tc.most, rep.MaxHolders, want, rep, tc.over, tc.overlaps, tc.most)
			ok := tc.over == 0 && tc.overlaps == 0
			assert.Equal(t, ok, rep.Violations() == 0, "Violations() = %d; want ok %v", rep.Violations(), ok)
		})
	}
	// The same n+1 holders fail a Safe run.
	r := &Result{Expect: Safe, Lock: LinearizabilityResult{Ok: true},
		Semaphore: CheckSemaphore([]Holding{h(0, 0, 1, 10), h(1, 1, 2, 10), h(2, 0, 3, 10)}, 2)}
	assert.NotEmpty(t, r.Unexpected(), "a Safe run with 3 holders of 2 permits passed: %+v", r.Semaphore)
	assert.NotZero(t, r.Violations(), "a Safe run with 3 holders of 2 permits passed: %+v", r.Semaphore)
}

// TestCheckLeases proves the lease checker: a write at or after its lease's
// deadline must be flagged; one before it, or under a lease without a
// deadline, must pass.
func TestCheckLeases(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := func(at, deadline time.Duration) LeaseUse {
		d := time.Time{}
		if deadline > 0 {
			d = t0.Add(deadline)
		}
		return LeaseUse{Client: 0, Resource: "x", At: t0.Add(at), Deadline: d}
	}
	tests := []struct {
		name string
		uses []LeaseUse
		past int
	}{
		{"before the deadline", []LeaseUse{u(time.Second, 2*time.Second), u(1999*time.Millisecond, 2*time.Second)}, 0},
		{"no deadline", []LeaseUse{u(time.Hour, 0)}, 0},
		{"at the deadline", []LeaseUse{u(2*time.Second, 2*time.Second)}, 1},
		{"past the deadline", []LeaseUse{u(time.Second, 2*time.Second), u(2080*time.Millisecond, 2*time.Second)}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := CheckLeases(tc.uses)
			assert.Equal(t, tc.past, rep.PastDeadline, "CheckLeases = %+v; want %d past the deadline", rep, tc.past)
			assert.Equal(t, tc.past, rep.Violations(), "CheckLeases = %+v; want %d past the deadline", rep, tc.past)
			assert.Equal(t, len(tc.uses), rep.Uses, "CheckLeases = %+v; want %d past the deadline", rep, tc.past)
		})
	}
	r := &Result{Expect: Safe, Lock: LinearizabilityResult{Ok: true}, Lease: CheckLeases([]LeaseUse{u(3*time.Second, 2*time.Second)})}
	assert.NotEmpty(t, r.Unexpected(), "a Safe run with a write past its lease's deadline passed: %+v", r.Lease)
	assert.NotZero(t, r.Violations(), "a Safe run with a write past its lease's deadline passed: %+v", r.Lease)
}

// TestCheckLocksHierarchy feeds the lock checker histories of the hierarchy
// workload, where each level is recorded on its own resource: two readers of
// "global" may each write-lock a different bucket, but not the same one,
// and a write lock of "global" excludes its readers whatever they hold
// below.
func TestCheckLocksHierarchy(t *testing.T) {
	at := func(client int, res string, kind OpKind, write bool, call, ret int64) Op {
		return Op{Client: client, Resource: res, Kind: kind, Write: write, Outcome: OK, Call: call, Return: ret}
	}
	tests := []struct {
		name string
		ops  []Op
		ok   bool
	}{
		{"readers of global, writers of different buckets", []Op{
			at(0, "global", OpAcquire, false, 1, 2), at(0, "bucket-0", OpAcquire, true, 1, 2),
			at(1, "global", OpAcquire, false, 3, 4), at(1, "bucket-1", OpAcquire, true, 3, 4),
		}, true},
		{"readers of global, writers of one bucket", []Op{
			at(0, "global", OpAcquire, false, 1, 2), at(0, "bucket-0", OpAcquire, true, 1, 2),
			at(1, "global", OpAcquire, false, 3, 4), at(1, "bucket-0", OpAcquire, true, 3, 4),
		}, false},
		{"writer of global while another reads it", []Op{
			at(0, "global", OpAcquire, false, 1, 2), at(0, "bucket-0", OpAcquire, true, 1, 2),
			at(1, "global", OpAcquire, true, 3, 4),
		}, false},
		{"bucket released before the next writer", []Op{
			at(0, "global", OpAcquire, false, 1, 2), at(0, "bucket-0", OpAcquire, true, 1, 2),
			at(0, "bucket-0", OpRelease, true, 3, 4), at(0, "global", OpRelease, false, 3, 4),
			at(1, "global", OpAcquire, true, 5, 6), at(1, "bucket-0", OpAcquire, true, 5, 6),
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckLocks(tc.ops, 0)
			assert.Equal(t, tc.ok, got.Ok, "CheckLocks = %+v, want ok %v", got, tc.ok)
		})
	}
}

// TestCheckBarrier proves the barrier checker on hand-made event logs of 2
// parties and 2 generations: a pass before the other party arrived, a pass
// of the wrong generation, a party that never finished with nobody out, and
// a Wait longer than the bound after the heal must be flagged; the same
// stall with a party out (crashed, or its membership lost) must not.
func TestCheckBarrier(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := int64(0)
	ev := func(client int, gen uint64, kind BarrierEventKind, at time.Duration) BarrierEvent {
		seq++
		e := BarrierEvent{Client: client, Gen: gen, Kind: kind, Seq: seq, At: t0.Add(at), Call: t0.Add(at - time.Millisecond)}
		if kind == BarrierPass {
			e.Next = gen + 1
		}
		return e
	}
	const A, P, F = BarrierArrive, BarrierPass, BarrierFail
	full := func() []BarrierEvent {
		return []BarrierEvent{
			ev(0, 0, A, 1), ev(1, 0, A, 2), ev(0, 0, P, 3), ev(1, 0, P, 4),
			ev(1, 1, A, 5), ev(0, 1, A, 6), ev(1, 1, P, 7), ev(0, 1, P, 8),
		}
	}
	early := full()
	early[1], early[2] = early[2], early[1] // c0 passes 0 before c1 arrives
	early[1].Seq, early[2].Seq = early[2].Seq, early[1].Seq
	wrongGen := full()
	wrongGen[7].Gen, wrongGen[7].Next = 0, 1
	stalled := full()[:7]
	lostMember := append(full()[:7], BarrierEvent{Client: 0, Gen: 1, Kind: F, Seq: 100, At: t0, Out: true})
	slow := full()
	slow[7].At = t0.Add(time.Hour)
	tests := []struct {
		name                   string
		events                 []BarrierEvent
		crashed                []bool
		early, order, stuck    int
		out, generations, pass int
	}{
		{"every party passes every generation", full(), nil, 0, 0, 0, 0, 2, 4},
		{"a pass before the other party arrived", early, nil, 1, 0, 0, 0, 2, 4},
		{"a pass of the wrong generation", wrongGen, nil, 0, 1, 1, 0, 1, 4},
		{"a party stuck, nobody out", stalled, nil, 0, 0, 1, 0, 1, 3},
		{"a party stuck, another crashed", stalled, []bool{false, true}, 0, 0, 0, 1, 1, 3},
		{"a party stuck, its membership lost", lostMember, nil, 0, 0, 0, 1, 1, 3},
		{"a Wait beyond the bound after the heal", slow, nil, 0, 0, 1, 0, 2, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := CheckBarrier(tc.events, 2, 2, tc.crashed, t0, time.Minute)
			want := []any{"CheckBarrier = %+v; want %d early, %d out of order, %d stuck, %d out, %d generations, %d passes",
				rep, tc.early, tc.order, tc.stuck, tc.out, tc.generations, tc.pass}
			assert.Equal(t, tc.early, rep.EarlyPasses, want...)
			assert.Equal(t, tc.order, rep.OutOfOrder, want...)
			assert.Equal(t, tc.stuck, rep.Stuck, want...)
			assert.Equal(t, tc.out, rep.Out, want...)
			assert.Equal(t, tc.generations, rep.Generations, want...)
			assert.Equal(t, tc.pass, rep.Passes, want...)
			ok := tc.early+tc.order+tc.stuck == 0
			assert.Equal(t, ok, rep.Violations() == 0, "Violations() = %d; want ok %v", rep.Violations(), ok)
		})
	}
	r := &Result{Expect: Safe, Lock: LinearizabilityResult{Ok: true}, Barrier: CheckBarrier(early, 2, 2, nil, t0, time.Minute)}
	assert.NotEmpty(t, r.Unexpected(), "a Safe run with an early pass passed: %+v", r.Barrier)
	assert.NotZero(t, r.Violations(), "a Safe run with an early pass passed: %+v", r.Barrier)
}

// TestCheckCond proves the cond checker on hand-made logs: a decrement below
// zero, a lost increment, and a Wait that outlasts the bound after the heal
// while the counter stays above zero must be flagged; a long Wait while the
// counter is zero, or above zero only in stretches shorter than the bound,
// or before the heal, or with the producer crashed, must not.
func TestCheckCond(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := time.Second
	ch := func(delta, value int, at time.Duration) CountChange {
		return CountChange{Delta: delta, Value: value, At: t0.Add(at)}
	}
	w := func(from, to time.Duration) WaitSpan {
		return WaitSpan{Client: 1, Start: t0.Add(from), End: t0.Add(to)}
	}
	const bound = 5 * time.Second
	tests := []struct {
		name                         string
		changes                      []CountChange
		final                        int
		waits                        []WaitSpan
		producerCrashed              bool
		heal                         time.Duration
		fromEmpty, lost, lostWakeups int
	}{
		{"produce and consume", []CountChange{ch(1, 1, 1*s), ch(-1, 0, 2*s)}, 0, []WaitSpan{w(0, 2*s)}, false, 0, 0, 0, 0},
		{"taken from empty", []CountChange{ch(1, 1, 1*s), ch(-1, 0, 2*s), ch(-1, -1, 3*s)}, -1, nil, false, 0, 1, 0, 0},
		{"an increment lost", []CountChange{ch(1, 1, 1*s), ch(1, 1, 2*s)}, 1, nil, false, 0, 0, 1, 0},
		{"long wait, nothing ready", []CountChange{ch(1, 1, 1*s), ch(-1, 0, 2*s)}, 0, []WaitSpan{w(3*s, 60*s)}, false, 0, 0, 0, 0},
		{"long wait with an item ready", []CountChange{ch(1, 1, 1*s)}, 1, []WaitSpan{w(0, 60*s)}, false, 0, 0, 0, 1},
		{"item ready after the wait began", []CountChange{ch(1, 1, 10*s)}, 1, []WaitSpan{w(0, 16*s)}, false, 0, 0, 0, 1},
		{"ready in short stretches only", []CountChange{ch(1, 1, 1*s), ch(-1, 0, 5*s), ch(1, 1, 6*s), ch(-1, 0, 10*s)}, 0,
			[]WaitSpan{w(0, 20*s)}, false, 0, 0, 0, 0},
		{"ready before the heal only", []CountChange{ch(1, 1, 1*s)}, 1, []WaitSpan{w(0, 20*s)}, false, 18 * s, 0, 0, 0},
		{"long wait with an item ready, producer crashed", []CountChange{ch(1, 1, 1*s)}, 1, []WaitSpan{w(0, 60*s)}, true, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := CheckCond(tc.changes, tc.final, tc.waits, tc.producerCrashed, t0.Add(tc.heal), bound)
			const want = "CheckCond = %+v; want %d from empty, %d lost updates, %d lost wakeups"
			assert.Equal(t, tc.fromEmpty, rep.FromEmpty, want, rep, tc.fromEmpty, tc.lost, tc.lostWakeups)
			assert.Equal(t, tc.lost, rep.LostUpdates, want, rep, tc.fromEmpty, tc.lost, tc.lostWakeups)
			assert.Equal(t, tc.lostWakeups, rep.LostWakeups, want, rep, tc.fromEmpty, tc.lost, tc.lostWakeups)
			ok := tc.fromEmpty+tc.lost+tc.lostWakeups == 0
			assert.Equal(t, ok, rep.Violations() == 0, "Violations() = %d; want ok %v", rep.Violations(), ok)
		})
	}
	r := &Result{Expect: Safe, Lock: LinearizabilityResult{Ok: true},
		Cond: CheckCond([]CountChange{ch(1, 1, 1*s)}, 1, []WaitSpan{w(0, 60*s)}, false, t0, bound)}
	assert.NotEmpty(t, r.Unexpected(), "a Safe run with a lost wakeup passed: %+v", r.Cond)
	assert.NotZero(t, r.Violations(), "a Safe run with a lost wakeup passed: %+v", r.Cond)
}
