package clock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dsync-go/dsync/clock"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestFakeTimersFireInOrderAtTheirTime(t *testing.T) {
	f := clock.NewFake(t0)
	late := f.NewTimer(3 * time.Second)
	early := f.NewTimer(time.Second)
	never := f.NewTimer(time.Hour)
	if f.Pending() != 3 {
		t.Fatalf("pending %d", f.Pending())
	}
	if due, ok := f.NextDue(); !ok || !due.Equal(t0.Add(time.Second)) {
		t.Fatalf("NextDue = %v %v", due, ok)
	}
	f.Advance(2 * time.Second)
	select {
	case at := <-early.C():
		if !at.Equal(t0.Add(time.Second)) {
			t.Fatalf("early fired with %v", at)
		}
	default:
		t.Fatal("early timer did not fire")
	}
	select {
	case <-late.C():
		t.Fatal("late timer fired early")
	default:
	}
	f.Advance(time.Second)
	if at := <-late.C(); !at.Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("late fired with %v", at)
	}
	if !f.Now().Equal(t0.Add(3*time.Second)) || f.Since(t0) != 3*time.Second {
		t.Fatalf("now %v", f.Now())
	}
	if !never.Stop() || never.Stop() {
		t.Fatal("Stop did not report the pending timer once")
	}
	if f.Pending() != 0 {
		t.Fatalf("pending %d after all fired or stopped", f.Pending())
	}
}

func TestFakeResetAndZeroDuration(t *testing.T) {
	f := clock.NewFake(t0)
	tm := f.NewTimer(time.Second)
	if !tm.Reset(5 * time.Second) {
		t.Fatal("Reset of a pending timer reported false")
	}
	f.Advance(4 * time.Second)
	select {
	case <-tm.C():
		t.Fatal("fired at its old time")
	default:
	}
	f.Advance(time.Second)
	<-tm.C()
	now := f.NewTimer(0)
	select {
	case <-now.C():
	default:
		t.Fatal("zero-duration timer did not fire at once")
	}
	f.Set(t0) // never backwards
	if !f.Now().Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("Set moved the clock back to %v", f.Now())
	}
}

func TestBlockUntilWaitsForSleepers(t *testing.T) {
	f := clock.NewFake(t0)
	woke := make(chan bool)
	go func() { woke <- clock.Sleep(context.Background(), f, time.Minute) }()
	if !f.BlockUntil(nil, 1) {
		t.Fatal("BlockUntil gave up")
	}
	f.Advance(time.Minute)
	if !<-woke {
		t.Fatal("Sleep reported it was interrupted")
	}
	done := make(chan struct{})
	close(done)
	if f.BlockUntil(done, 5) {
		t.Fatal("BlockUntil reported 5 timers")
	}
}

func TestSleepStopsWithContext(t *testing.T) {
	f := clock.NewFake(t0)
	ctx, cancel := context.WithCancel(context.Background())
	woke := make(chan bool)
	go func() { woke <- clock.Sleep(ctx, f, time.Minute) }()
	f.BlockUntil(nil, 1)
	cancel()
	if <-woke {
		t.Fatal("Sleep reported the full duration")
	}
	if f.Pending() != 0 {
		t.Fatal("Sleep left its timer pending")
	}
	if !clock.Sleep(ctx, f, 0) {
		t.Fatal("Sleep(0) reported an interruption")
	}
}

func TestWithTimeoutOnFakeClock(t *testing.T) {
	f := clock.NewFake(t0)
	ctx, cancel := clock.WithTimeout(context.Background(), f, time.Second)
	defer cancel()
	f.Advance(999 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatal("done before its timeout")
	}
	f.Advance(time.Millisecond)
	<-ctx.Done()
	if !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		t.Fatalf("cause %v", context.Cause(ctx))
	}
	ctx2, cancel2 := clock.WithTimeout(context.Background(), f, time.Second)
	cancel2()
	if f.Pending() != 0 || !errors.Is(ctx2.Err(), context.Canceled) {
		t.Fatalf("cancel left %d timers, err %v", f.Pending(), ctx2.Err())
	}
}

func TestRealClock(t *testing.T) {
	c := clock.OrReal(nil)
	start := c.Now()
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	if c.Since(start) < time.Millisecond {
		t.Fatal("real timer fired early")
	}
	ctx, cancel := clock.WithTimeout(context.Background(), c, time.Millisecond)
	defer cancel()
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("real WithTimeout: %v", ctx.Err())
	}
}
