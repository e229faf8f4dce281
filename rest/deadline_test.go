package rest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
)

func TestDeadlineContext(t *testing.T) {
	t.Run("ErrWithoutDone", func(t *testing.T) {
		clk := clock.NewFake(epoch)
		ctx := newDeadlineContext(context.Background(), clk, time.Second)
		require.NoError(t, ctx.Err(), "Err before the deadline")
		require.Zero(t, clk.Pending(), "Err started a timer")
		clk.Advance(time.Second)
		require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded, "Err at the deadline")
		select {
		case <-ctx.Done():
		default:
			require.Fail(t, "Done after the deadline is not closed")
		}
	})
	t.Run("DoneAtDeadline", func(t *testing.T) {
		clk := clock.NewFake(epoch)
		ctx := newDeadlineContext(context.Background(), clk, time.Second)
		done := ctx.Done()
		clk.BlockUntil(nil, 1)
		clk.Advance(time.Second)
		<-done
		require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded, "Err")
	})
	t.Run("ParentEnds", func(t *testing.T) {
		clk := clock.NewFake(epoch)
		parent, cancel := context.WithCancel(context.Background())
		ctx := newDeadlineContext(parent, clk, time.Hour)
		done := ctx.Done()
		cancel()
		<-done
		require.ErrorIs(t, ctx.Err(), context.Canceled, "Err after the parent ended")
	})
	t.Run("FinishStopsWatching", func(t *testing.T) {
		clk := clock.NewFake(epoch)
		ctx := newDeadlineContext(context.Background(), clk, time.Hour)
		ctx.Done()
		clk.BlockUntil(nil, 1)
		ctx.finish()
		ctx.finish() // idempotent
		require.NoError(t, ctx.Err(), "finish ended the context")
		d, ok := ctx.Deadline()
		require.True(t, ok, "Deadline = %v, %v", d, ok)
		require.True(t, d.Equal(epoch.Add(time.Hour)), "Deadline = %v, %v", d, ok)
	})
}
