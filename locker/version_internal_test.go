package locker

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWriteMemory checks the bounded memory of released writes: exact while
// a name keeps its slot, and never below a name's last write once another
// name took the slot (the floor), also for two names of one hash.
func TestWriteMemory(t *testing.T) {
	var m writeMemory
	assert.Zero(t, m.last(7), "an empty memory")
	slot := func(i uint64) uint64 { return i << 40 } // hashes of slot i
	a, b, c := slot(1), slot(1)|1, slot(1)|2         // three names of one slot
	other := slot(2)

	m.remember(a, 10)
	assert.Equal(t, uint64(10), m.last(a), "a's write")
	assert.Zero(t, m.last(b), "b, never written, in a's slot")
	assert.Zero(t, m.last(other), "a name of another slot")

	m.remember(b, 20) // evicts a into the floor
	assert.Equal(t, uint64(20), m.last(b), "b's write")
	assert.Equal(t, uint64(10), m.last(a), "a, evicted: the floor, which is its write")
	assert.Equal(t, uint64(10), m.last(c), "c, never written: the floor")

	m.remember(c, 30) // evicts b
	assert.Equal(t, uint64(20), m.last(a), "a: the floor, now above its write")
	assert.Equal(t, uint64(20), m.last(b), "b, evicted")
	assert.Equal(t, uint64(30), m.last(c), "c's write")
	assert.Zero(t, m.last(other), "another slot is untouched")

	m.remember(c, 25) // a lower fence for the same hash: two names of one hash
	assert.Equal(t, uint64(30), m.last(c), "names of one hash share the larger fence")
}

// TestVersionAfterManyDrops checks, through the table, that a resource
// whose entry was dropped long ago reports a bound at least its last write.
func TestVersionAfterManyDrops(t *testing.T) {
	l := New(Config{QuietPeriod: NoQuietPeriod, SweepInterval: -1, Shards: 1})
	defer l.Close()
	ctx := context.Background()
	write := func(uid, name string) uint64 {
		r, err := l.Lock(ctx, LockArgs{UID: uid, Resources: []string{name}})
		require.NoError(t, err)
		require.True(t, r.OK)
		_, err = l.Unlock(ctx, LockArgs{UID: uid})
		require.NoError(t, err)
		return r.Fence
	}
	first := write("u0", "first")
	for i := range 40 * writeSlots { // every slot overflows, but with odds below e^-30
		write("u", string(rune('a'+i%26))+string(rune(i)))
	}
	v, err := l.Version(ctx, VersionArgs{Resources: []string{"first", "never"}})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, v.Writes[0], first, "a write long dropped")
	assert.Greater(t, v.Writes[0], first, "so many writes later, first's slot has evicted others into its floor")
	assert.LessOrEqual(t, v.Writes[1], v.Counter, "a bound is never above the counter")
	assert.Equal(t, l.Stats().Resources, 0, "every entry was dropped")
}
