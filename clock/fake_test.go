package clock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFakeFiresTimersOfOneInstantInArmingOrder checks the order in which
// Set fires timers: by due time, and timers due at the same instant in the
// order they were armed (a Reset arms again), whatever was stopped between
// them. The simulation's replay depends on it.
func TestFakeFiresTimersOfOneInstantInArmingOrder(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	f := NewFake(t0)
	var fired []string
	arm := func(name string, d time.Duration) *fakeTimer {
		return f.afterFunc(d, func(time.Time) { fired = append(fired, name) })
	}
	a := arm("a", 2*time.Second)
	arm("b", 2*time.Second)
	c := arm("c", time.Second)
	arm("d", 2*time.Second)
	e := arm("e", 2*time.Second)
	arm("f", 3*time.Second)
	require.True(t, c.Stop())
	a.Reset(2 * time.Second) // armed again: now after e
	require.True(t, e.Stop())
	require.Equal(t, 4, f.Pending())
	due, ok := f.NextDue()
	require.True(t, ok)
	assert.Equal(t, t0.Add(2*time.Second), due)

	f.Advance(3 * time.Second)
	assert.Equal(t, []string{"b", "d", "a", "f"}, fired)
	assert.Zero(t, f.Pending())
}

// TestFakeFireNextFiresOneTimer checks FireNext: the earliest timer due by
// the limit fires alone, the time moves to its due time, and nothing
// happens past the limit.
func TestFakeFireNextFiresOneTimer(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	f := NewFake(t0)
	var fired []string
	for _, name := range []string{"a", "b"} {
		f.afterFunc(time.Second, func(time.Time) { fired = append(fired, name) })
	}
	f.afterFunc(5*time.Second, func(time.Time) { fired = append(fired, "late") })

	require.True(t, f.FireNext(t0.Add(2*time.Second)))
	assert.Equal(t, []string{"a"}, fired)
	assert.Equal(t, t0.Add(time.Second), f.Now())
	require.True(t, f.FireNext(t0.Add(2*time.Second)))
	assert.Equal(t, []string{"a", "b"}, fired)
	assert.False(t, f.FireNext(t0.Add(2*time.Second)), "the next timer is due after the limit")
	assert.Equal(t, t0.Add(time.Second), f.Now(), "FireNext moved the time without firing")
	assert.Equal(t, 1, f.Pending())
}
