package clock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestFakeTimersFireInOrderAtTheirTime(t *testing.T) {
	f := clock.NewFake(t0)
	late := f.NewTimer(3 * time.Second)
	early := f.NewTimer(time.Second)
	never := f.NewTimer(time.Hour)
	require.Equal(t, 3, f.Pending(), "pending")
	due, ok := f.NextDue()
	require.True(t, ok, "NextDue = %v %v", due, ok)
	require.True(t, due.Equal(t0.Add(time.Second)), "NextDue = %v %v", due, ok)
	f.Advance(2 * time.Second)
	select {
	case at := <-early.C():
		require.True(t, at.Equal(t0.Add(time.Second)), "early fired with %v", at)
	default:
		require.Fail(t, "early timer did not fire")
	}
	select {
	case <-late.C():
		require.Fail(t, "late timer fired early")
	default:
	}
	f.Advance(time.Second)
	at := <-late.C()
	require.True(t, at.Equal(t0.Add(3*time.Second)), "late fired with %v", at)
	require.True(t, f.Now().Equal(t0.Add(3*time.Second)), "now %v", f.Now())
	require.Equal(t, 3*time.Second, f.Since(t0), "now %v", f.Now())
	require.True(t, never.Stop(), "Stop did not report the pending timer once")
	require.False(t, never.Stop(), "Stop did not report the pending timer once")
	require.Zero(t, f.Pending(), "pending after all fired or stopped")
}

func TestFakeResetAndZeroDuration(t *testing.T) {
	f := clock.NewFake(t0)
	tm := f.NewTimer(time.Second)
	require.True(t, tm.Reset(5*time.Second), "Reset of a pending timer reported false")
	f.Advance(4 * time.Second)
	select {
	case <-tm.C():
		require.Fail(t, "fired at its old time")
	default:
	}
	f.Advance(time.Second)
	<-tm.C()
	now := f.NewTimer(0)
	select {
	case <-now.C():
	default:
		require.Fail(t, "zero-duration timer did not fire at once")
	}
	f.Set(t0) // never backwards
	require.True(t, f.Now().Equal(t0.Add(5*time.Second)), "Set moved the clock back to %v", f.Now())
}

func TestBlockUntilWaitsForSleepers(t *testing.T) {
	f := clock.NewFake(t0)
	woke := make(chan bool)
	go func() { woke <- clock.Sleep(context.Background(), f, time.Minute) }()
	require.True(t, f.BlockUntil(nil, 1), "BlockUntil gave up")
	f.Advance(time.Minute)
	require.True(t, <-woke, "Sleep reported it was interrupted")
	done := make(chan struct{})
	close(done)
	require.False(t, f.BlockUntil(done, 5), "BlockUntil reported 5 timers")
}

func TestSleepStopsWithContext(t *testing.T) {
	f := clock.NewFake(t0)
	ctx, cancel := context.WithCancel(context.Background())
	woke := make(chan bool)
	go func() { woke <- clock.Sleep(ctx, f, time.Minute) }()
	f.BlockUntil(nil, 1)
	cancel()
	require.False(t, <-woke, "Sleep reported the full duration")
	require.Zero(t, f.Pending(), "Sleep left its timer pending")
	require.True(t, clock.Sleep(ctx, f, 0), "Sleep(0) reported an interruption")
}

func TestWithTimeoutOnFakeClock(t *testing.T) {
	f := clock.NewFake(t0)
	ctx, cancel := clock.WithTimeout(context.Background(), f, time.Second)
	defer cancel()
	f.Advance(999 * time.Millisecond)
	require.NoError(t, ctx.Err(), "done before its timeout")
	f.Advance(time.Millisecond)
	<-ctx.Done()
	require.ErrorIs(t, context.Cause(ctx), context.DeadlineExceeded, "cause")
	ctx2, cancel2 := clock.WithTimeout(context.Background(), f, time.Second)
	cancel2()
	require.Zero(t, f.Pending(), "cancel left timers, err %v", ctx2.Err())
	require.ErrorIs(t, ctx2.Err(), context.Canceled, "cancel left %d timers", f.Pending())
}

func TestRealClock(t *testing.T) {
	c := clock.OrReal(nil)
	start := c.Now()
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	require.GreaterOrEqual(t, c.Since(start), time.Millisecond, "real timer fired early")
	ctx, cancel := clock.WithTimeout(context.Background(), c, time.Millisecond)
	defer cancel()
	<-ctx.Done()
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded, "real WithTimeout")
}
