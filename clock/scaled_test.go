package clock_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
)

// fired returns the value a timer delivered, and whether it had delivered
// one, without waiting.
func fired(tm clock.Timer) (time.Time, bool) {
	select {
	case at := <-tm.C():
		return at, true
	default:
		return time.Time{}, false
	}
}

func TestScaledAtRateOneReadsTheBase(t *testing.T) {
	f := clock.NewFake(t0)
	f.Advance(time.Hour)
	s := clock.NewScaled(f, 1)
	tm := s.NewTimer(time.Second)
	f.Advance(999 * time.Millisecond)
	assert.Equal(t, f.Now(), s.Now())
	_, ok := fired(tm)
	assert.False(t, ok, "fired before its deadline")
	f.Advance(time.Millisecond)
	at, ok := fired(tm)
	require.True(t, ok, "did not fire at its deadline")
	assert.Equal(t, f.Now(), at)
	assert.Equal(t, time.Hour+time.Second, s.Since(t0))
}

func TestScaledRunsAtItsRate(t *testing.T) {
	for _, rate := range []float64{2, 0.5, 0.95, 1.009, 0.991} {
		f := clock.NewFake(t0)
		s := clock.NewScaled(f, rate)
		assert.Equal(t, t0, s.Now(), "rate %v: a new clock reads the base", rate)
		f.Advance(10 * time.Second)
		want := time.Duration(float64(10*time.Second) * rate)
		assert.Equal(t, want, s.Since(t0), "rate %v", rate)
		assert.Equal(t, rate, s.Rate())
	}
}

// TestScaledTimersFireAtTheirOwnDeadline checks, for random rates and
// durations, that a timer fires exactly when the clock's own time reaches
// its deadline: not one base nanosecond earlier, with the value it reads.
func TestScaledTimersFireAtTheirOwnDeadline(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		rate := 0.5 + rng.Float64()
		d := time.Duration(rng.Int64N(int64(time.Minute))) + 1
		f := clock.NewFake(t0)
		f.Advance(time.Duration(rng.Int64N(int64(time.Hour))))
		s := clock.NewScaled(f, rate)
		f.Advance(time.Duration(rng.Int64N(int64(time.Minute))))
		due := s.Now().Add(d)
		tm := s.NewTimer(d)
		next, ok := f.NextDue()
		require.True(t, ok, "no base timer pending")
		f.Set(next.Add(-1))
		_, early := fired(tm)
		require.False(t, early, "rate %v, d %v: fired before its deadline (own time %v, due %v)", rate, d, s.Now(), due)
		require.True(t, s.Now().Before(due), "rate %v, d %v: own time %v reached %v a base nanosecond early", rate, d, s.Now(), due)
		f.Set(next)
		at, ok := fired(tm)
		require.True(t, ok, "rate %v, d %v: did not fire when its own time reached its deadline", rate, d)
		assert.False(t, at.Before(due), "rate %v, d %v: fired at own time %v, before %v", rate, d, at, due)
		assert.Equal(t, s.Now(), at)
	}
}

func TestScaledStopAndReset(t *testing.T) {
	f := clock.NewFake(t0)
	s := clock.NewScaled(f, 2) // a second of own time is half a second of base time
	tm := s.NewTimer(time.Second)
	assert.True(t, tm.Reset(4*time.Second), "Reset of a pending timer reported false")
	f.Advance(time.Second)
	_, ok := fired(tm)
	assert.False(t, ok, "fired at its old deadline")
	assert.Equal(t, 1, f.Pending(), "the old arming is still pending on the base")
	f.Advance(time.Second)
	_, ok = fired(tm)
	assert.True(t, ok, "did not fire 4s of own time after its reset")
	assert.False(t, tm.Stop(), "Stop of a fired timer reported true")

	tm.Reset(time.Second)
	assert.True(t, tm.Stop())
	assert.Zero(t, f.Pending(), "Stop left a base timer pending")
	f.Advance(time.Hour)
	_, ok = fired(tm)
	assert.False(t, ok, "a stopped timer fired")

	now := s.NewTimer(0)
	_, ok = fired(now)
	assert.True(t, ok, "a zero-duration timer did not fire at once")
	// No stale value after Reset: the firing of the earlier arming is
	// dropped from the channel.
	tm.Reset(time.Second)
	f.Advance(time.Second)
	tm.Reset(time.Second)
	_, ok = fired(tm)
	assert.False(t, ok, "a value of the earlier arming was received after Reset")
}

func TestScaledPauseHoldsTimersUntilResume(t *testing.T) {
	f := clock.NewFake(t0)
	s := clock.NewScaled(f, 0.5)
	early := s.NewTimer(time.Second) // due after 2s of base time
	late := s.NewTimer(time.Minute)  // not due before the resume
	stopped := s.NewTimer(time.Second)
	reset := s.NewTimer(time.Second)

	s.Pause()
	s.Pause() // no-op
	assert.True(t, s.Paused())
	f.Advance(10 * time.Second)
	assert.Equal(t, 5*time.Second, s.Since(t0), "a paused clock's time stopped")
	for _, tm := range []clock.Timer{early, stopped, reset} {
		_, ok := fired(tm)
		assert.False(t, ok, "a timer fired while the clock was paused")
	}
	assert.True(t, stopped.Stop(), "Stop of a held timer reported false: it had not fired")
	assert.True(t, reset.Reset(10*time.Second), "Reset of a held timer reported false")
	after := s.NewTimer(0) // due at once, while paused
	_, ok := fired(after)
	assert.False(t, ok, "a zero-duration timer fired while paused")

	s.Resume()
	assert.False(t, s.Paused())
	for _, tm := range []clock.Timer{early, after} {
		at, ok := fired(tm)
		if assert.True(t, ok, "a held timer did not fire at the resume") {
			assert.Equal(t, s.Now(), at, "a held timer delivered another time than the resume's")
		}
	}
	for _, tm := range []clock.Timer{late, stopped, reset} {
		_, ok := fired(tm)
		assert.False(t, ok, "a timer that was not held fired at the resume")
	}
	s.Resume() // no-op
	f.Advance(20 * time.Second)
	_, ok = fired(reset)
	assert.True(t, ok, "a timer reset while held did not fire at its new deadline")
}

// TestScaledOverAnotherClock runs a Scaled over a base that is not a *Fake
// (another Scaled), where each timer waits on a base timer on a goroutine of
// its own, in a synctest bubble so that the test knows when it has run.
func TestScaledOverAnotherClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := clock.NewFake(t0)
		base := clock.NewScaled(f, 2)
		s := clock.NewScaled(base, 0.5) // as fast as f
		tm := s.NewTimer(time.Second)
		stopped := s.NewTimer(time.Second)
		assert.True(t, stopped.Stop())
		f.Advance(time.Second)
		synctest.Wait()
		at, ok := fired(tm)
		require.True(t, ok, "did not fire")
		assert.Equal(t, s.Now(), at)
		assert.Equal(t, t0.Add(time.Second), s.Now())
		_, ok = fired(stopped)
		assert.False(t, ok, "a stopped timer fired")

		s.Pause()
		tm.Reset(time.Second)
		f.Advance(time.Second)
		synctest.Wait()
		_, ok = fired(tm)
		assert.False(t, ok, "fired while paused")
		s.Resume()
		_, ok = fired(tm)
		assert.True(t, ok, "did not fire at the resume")
	})
}

func TestScaledDrivesWithTimeoutAndSleep(t *testing.T) {
	f := clock.NewFake(t0)
	s := clock.NewScaled(f, 0.5)
	ctx, cancel := clock.WithTimeout(context.Background(), s, time.Second)
	defer cancel()
	f.Advance(1999 * time.Millisecond)
	assert.NoError(t, ctx.Err(), "done before a second of its own time")
	f.Advance(time.Millisecond)
	<-ctx.Done()
	assert.True(t, errors.Is(context.Cause(ctx), context.DeadlineExceeded))

	woke := make(chan bool)
	go func() { woke <- clock.Sleep(context.Background(), s, time.Second) }()
	require.True(t, f.BlockUntil(nil, 1), "the sleeper's timer is not pending on the base")
	s.Pause()
	f.Advance(time.Hour)
	select {
	case <-woke:
		require.Fail(t, "a sleeper woke while its clock was paused")
	default:
	}
	s.Resume()
	assert.True(t, <-woke)
}

func TestNewScaledPanicsOnABadRate(t *testing.T) {
	f := clock.NewFake(t0)
	for _, rate := range []float64{0, -1} {
		assert.PanicsWithValue(t, "clock: NewScaled with rate "+map[float64]string{0: "0", -1: "-1"}[rate]+"; want a positive rate",
			func() { clock.NewScaled(f, rate) })
	}
}
