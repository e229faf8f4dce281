package lockertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// RunVersion checks the locker.Versioner contract of lockers made by f: it
// skips if they do not implement it. A resource's write fence moves on
// write grants only, and stays after the write is released and the
// resource dropped, also once the node's memory of dropped resources has
// overflowed (then it may only be larger); WriteHeld tells a live write
// grant; a write granted after a read has a fence above its Counter; the
// limits on names are those of locks.
func RunVersion(t *testing.T, f Factory) {
	t.Helper()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	const maxResources = 4
	l := f(t, locker.Config{Validity: Validity, Clock: clk, SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod, Shards: 1, MaxResources: maxResources})
	vr, ok := l.(locker.Versioner)
	if !ok {
		t.Skip("locker does not implement Versioner")
	}
	ctx := context.Background()
	version := func(names ...string) locker.VersionReply {
		t.Helper()
		r, err := vr.Version(ctx, locker.VersionArgs{Resources: names})
		require.NoError(t, err, "Version(%v)", names)
		require.Len(t, r.Writes, len(names), "Writes of Version(%v)", names)
		require.Len(t, r.WriteHeld, len(names), "WriteHeld of Version(%v)", names)
		return r
	}
	grant := func(write bool, uid string, names ...string) uint64 {
		t.Helper()
		a := locker.LockArgs{UID: uid, Resources: names, Quorum: 1}
		lock := l.RLock
		if write {
			lock = l.Lock
		}
		r, err := lock(ctx, a)
		require.NoError(t, err, "lock %s", uid)
		require.True(t, r.OK, "lock %s: %+v", uid, r)
		return r.Fence
	}
	release := func(write bool, uid string) {
		t.Helper()
		unlock := l.RUnlock
		if write {
			unlock = l.Unlock
		}
		r, err := unlock(ctx, locker.LockArgs{UID: uid})
		require.NoError(t, err, "unlock %s", uid)
		require.True(t, r.OK, "unlock %s", uid)
	}

	v0 := version("a", "b")
	assert.NotZero(t, v0.Incarnation, "the incarnation")
	assert.NotZero(t, v0.Counter, "the counter of a fresh table starts above the values of a previous run")
	assert.Equal(t, []uint64{0, 0}, v0.Writes, "no write was ever granted")
	assert.Equal(t, []bool{false, false}, v0.WriteHeld)
	assert.Zero(t, v0.Grace)

	// Readers come and go: no write to report.
	grant(false, "r1", "a")
	v := version("a", "b")
	assert.Equal(t, []uint64{0, 0}, v.Writes, "a read grant is no write")
	assert.Equal(t, []bool{false, false}, v.WriteHeld, "a read grant is no write")
	release(false, "r1")
	assert.Equal(t, []uint64{0, 0}, version("a", "b").Writes, "after a read grant")

	// A write: above the counter read before it, held, then remembered.
	w1 := grant(true, "w1", "a")
	assert.Greater(t, w1, v0.Counter, "a write granted after a read has a fence above its counter")
	v = version("a", "b")
	assert.Equal(t, []uint64{w1, 0}, v.Writes, "while the write is held")
	assert.Equal(t, []bool{true, false}, v.WriteHeld, "while the write is held")
	assert.GreaterOrEqual(t, v.Counter, w1, "the counter is at least every fence issued")
	assert.Equal(t, v0.Incarnation, v.Incarnation, "the incarnation of one table")
	release(true, "w1")
	v = version("a", "b")
	assert.Equal(t, []uint64{w1, 0}, v.Writes, "the write is remembered once released and its resource dropped")
	assert.Equal(t, []bool{false, false}, v.WriteHeld, "after the write was released")

	// Readers again: the last write stays what it was.
	grant(false, "r2", "a", "b")
	assert.Equal(t, []uint64{w1, 0}, version("a", "b").Writes, "read grants after the write")
	release(false, "r2")

	// A write grant that expired is no longer held, but was granted.
	w2 := grant(true, "w2", "b")
	clk.Advance(Validity + time.Second)
	v = version("a", "b")
	assert.Equal(t, []uint64{w1, w2}, v.Writes, "an expired write grant")
	assert.Equal(t, []bool{false, false}, v.WriteHeld, "an expired write grant is not held")
	w3 := grant(true, "w3", "b") // takes over from the expired one
	assert.Equal(t, []uint64{w1, w3}, version("a", "b").Writes, "a write that replaced an expired one")
	release(true, "w3")

	// Many writes on other names overflow the memory of dropped resources:
	// a name's answer may grow, never fall below its last write.
	fences := map[string]uint64{"a": w1, "b": w3}
	for i := range 600 {
		name := fmt.Sprintf("many-%d", i)
		fences[name] = grant(true, "wm-"+name, name)
		release(true, "wm-"+name)
	}
	for name, fence := range fences {
		got := version(name).Writes[0]
		assert.GreaterOrEqual(t, got, fence, "the last write of %s, once %d other resources were written", name, len(fences))
	}

	// The limits on names are those of a lock's.
	_, err := vr.Version(ctx, locker.VersionArgs{})
	assert.ErrorIs(t, err, locker.ErrInvalidArgs, "no resources")
	_, err = vr.Version(ctx, locker.VersionArgs{Resources: []string{"a", ""}})
	assert.ErrorIs(t, err, locker.ErrInvalidArgs, "an empty name")
	_, err = vr.Version(ctx, locker.VersionArgs{Resources: []string{"a", "b", "c", "d", "e"}})
	assert.ErrorIs(t, err, locker.ErrInvalidArgs, "more than MaxResources")
	version("a", "b", "c", "d") // MaxResources itself
}
