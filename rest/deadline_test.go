package rest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dsync-go/dsync/clock"
)

func TestDeadlineContext(t *testing.T) {
	t.Run("ErrWithoutDone", func(t *testing.T) {
		clk := clock.NewFake(epoch)
		ctx := newDeadlineContext(context.Background(), clk, time.Second)
		if err := ctx.Err(); err != nil {
			t.Fatalf("Err before the deadline = %v", err)
		}
		if clk.Pending() != 0 {
			t.Fatal("Err started a timer")
		}
		clk.Advance(time.Second)
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err at the deadline = %v", err)
		}
		select {
		case <-ctx.Done():
		default:
			t.Fatal("Done after the deadline is not closed")
		}
	})
	t.Run("DoneAtDeadline", func(t *testing.T) {
		clk := clock.NewFake(epoch)
		ctx := newDeadlineContext(context.Background(), clk, time.Second)
		done := ctx.Done()
		clk.BlockUntil(nil, 1)
		clk.Advance(time.Second)
		<-done
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err = %v", err)
		}
	})
	t.Run("ParentEnds", func(t *testing.T) {
		clk := clock.NewFake(epoch)
		parent, cancel := context.WithCancel(context.Background())
		ctx := newDeadlineContext(parent, clk, time.Hour)
		done := ctx.Done()
		cancel()
		<-done
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err after the parent ended = %v", err)
		}
	})
	t.Run("FinishStopsWatching", func(t *testing.T) {
		clk := clock.NewFake(epoch)
		ctx := newDeadlineContext(context.Background(), clk, time.Hour)
		ctx.Done()
		clk.BlockUntil(nil, 1)
		ctx.finish()
		ctx.finish() // idempotent
		if ctx.Err() != nil {
			t.Fatal("finish ended the context")
		}
		if d, ok := ctx.Deadline(); !ok || !d.Equal(epoch.Add(time.Hour)) {
			t.Fatalf("Deadline = %v, %v", d, ok)
		}
	})
}
