package locker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

func newBurstTable(t *testing.T) (*locker.Local, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Clock: clk, SweepInterval: -1, Validity: time.Minute})
	t.Cleanup(func() { l.Close() })
	return l, clk
}

func lockArgs(i int) locker.LockArgs {
	return locker.LockArgs{UID: fmt.Sprintf("u%d", i), Resources: []string{fmt.Sprintf("r%d", i)}, Quorum: 1}
}

func mustGrant(t *testing.T, ctx context.Context, l *locker.Local, args locker.LockArgs) {
	t.Helper()
	r, err := l.Lock(ctx, args)
	require.NoError(t, err, "Lock(%s) = %+v; want granted", args.UID, r)
	require.True(t, r.OK, "Lock(%s) = %+v; want granted", args.UID, r)
}

// heldFor returns how long ago, by the table's clock, l granted uid.
func heldFor(t *testing.T, l *locker.Local, uid string) time.Duration {
	t.Helper()
	entries, err := listAll(context.Background(), l)
	require.NoError(t, err)
	for _, e := range entries {
		if e.UID == uid {
			return time.Duration(e.HeldFor)
		}
	}
	require.Failf(t, "not held", "%s is not held", uid)
	return 0
}

func TestBurstReadsTheClockOncePerBurstCalls(t *testing.T) {
	l, clk := newBurstTable(t)
	var b locker.Burst
	before := clk.Reads()
	ctx := l.StartBurst(context.Background(), &b)
	const calls = 3 * locker.BurstCalls
	for i := range calls {
		mustGrant(t, ctx, l, lockArgs(i))
	}
	// One reading at the start, then one at the first call of each later
	// run of BurstCalls.
	require.Equal(t, int64(calls/locker.BurstCalls), clk.Reads()-before, "clock reads of %d lock calls in a burst", calls)

	before = clk.Reads()
	for i := range locker.BurstCalls {
		mustGrant(t, context.Background(), l, lockArgs(calls+i))
	}
	require.Equal(t, int64(locker.BurstCalls), clk.Reads()-before, "clock reads of %d lock calls outside a burst: want one each", locker.BurstCalls)
}

func TestBurstStampsGrantsWithItsReading(t *testing.T) {
	l, clk := newBurstTable(t)
	var b locker.Burst
	ctx := l.StartBurst(context.Background(), &b)
	clk.Advance(time.Second)
	for i := range locker.BurstCalls + 1 {
		mustGrant(t, ctx, l, lockArgs(i))
	}
	clk.Advance(time.Second)
	// The first BurstCalls grants carry the burst's starting reading, two
	// seconds ago; the next call read the clock again, a second ago.
	require.Equal(t, 2*time.Second, heldFor(t, l, "u0"), "first call of the burst held for")
	require.Equal(t, 2*time.Second, heldFor(t, l, fmt.Sprintf("u%d", locker.BurstCalls-1)), "call %d of the burst held for", locker.BurstCalls)
	require.Equal(t, time.Second, heldFor(t, l, fmt.Sprintf("u%d", locker.BurstCalls)), "call %d of the burst held for (want a fresh reading)", locker.BurstCalls+1)
}

// cancellableBurst returns a table, its clock, and a burst of it under a
// context that cancel ends.
func cancellableBurst(t *testing.T) (*locker.Local, *clock.Fake, *locker.Burst, context.CancelFunc) {
	l, clk := newBurstTable(t)
	parent, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return l, clk, l.StartBurst(parent, new(locker.Burst)), cancel
}

func TestBurstChecksItsContext(t *testing.T) {
	t.Run("FirstCall", func(t *testing.T) {
		l, _, ctx, cancel := cancellableBurst(t)
		cancel()
		_, err := l.Lock(ctx, lockArgs(0))
		require.ErrorIs(t, err, context.Canceled, "first call of a cancelled burst")
	})
	t.Run("NextReading", func(t *testing.T) {
		l, _, ctx, cancel := cancellableBurst(t)
		mustGrant(t, ctx, l, lockArgs(0))
		cancel()
		// Calls that reuse the reading do not look (see Burst); the one that
		// renews it does.
		for i := 1; i < locker.BurstCalls; i++ {
			mustGrant(t, ctx, l, lockArgs(i))
		}
		_, err := l.Lock(ctx, lockArgs(locker.BurstCalls))
		require.ErrorIs(t, err, context.Canceled, "call renewing the reading after cancel")
	})
	t.Run("AfterDone", func(t *testing.T) {
		l, clk, ctx, cancel := cancellableBurst(t)
		mustGrant(t, ctx, l, lockArgs(0))
		// A call that waits asks for Done: the next call reads the clock
		// and looks at the context again.
		<-func() <-chan struct{} { cancel(); return ctx.Done() }()
		reads := clk.Reads()
		_, err := l.Lock(ctx, lockArgs(1))
		require.ErrorIs(t, err, context.Canceled, "call after Done")
		require.NotEqual(t, reads, clk.Reads(), "call after Done did not read the clock")
	})
}

func TestBurstOfAnotherTableIsIgnored(t *testing.T) {
	l1, _ := newBurstTable(t)
	l2, clk2 := newBurstTable(t)
	var b locker.Burst
	ctx := l1.StartBurst(context.Background(), &b)
	before := clk2.Reads()
	for i := range 4 {
		mustGrant(t, ctx, l2, lockArgs(i))
	}
	require.Equal(t, int64(4), clk2.Reads()-before, "clock reads of 4 calls to a table with another table's burst")
}

func TestBurstEndAndRestart(t *testing.T) {
	l, clk := newBurstTable(t)
	var b locker.Burst
	ctx := l.StartBurst(context.Background(), &b)
	mustGrant(t, ctx, l, lockArgs(0))
	b.End()
	clk.Advance(time.Second)
	ctx = l.StartBurst(context.Background(), &b)
	mustGrant(t, ctx, l, lockArgs(1))
	require.Equal(t, time.Duration(0), heldFor(t, l, "u1"), "first grant of a restarted burst held for (want a fresh reading)")
}

// TestBurstConcurrentCalls fans a burst's calls out, as a table wrapper may:
// under -race, the Burst must be safe for concurrent use.
func TestBurstConcurrentCalls(t *testing.T) {
	l, _ := newBurstTable(t)
	var b locker.Burst
	ctx := l.StartBurst(context.Background(), &b)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := range 2 * locker.BurstCalls {
				args := lockArgs(w*1000 + i)
				if r, err := l.Lock(ctx, args); err != nil || !r.OK {
					errs <- fmt.Errorf("Lock(%s) = %+v, %v", args.UID, r, err)
					return
				}
				if w == 0 && i%8 == 0 {
					ctx.Done() // as a waiting wrapper would
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	require.Equal(t, 8*2*locker.BurstCalls, l.Stats().Grants, "grants")
}
