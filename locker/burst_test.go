package locker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

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
	if err != nil || !r.OK {
		t.Fatalf("Lock(%s) = %+v, %v; want granted", args.UID, r, err)
	}
}

// heldFor returns how long ago, by the table's clock, l granted uid.
func heldFor(t *testing.T, l *locker.Local, uid string) time.Duration {
	t.Helper()
	entries, err := listAll(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.UID == uid {
			return time.Duration(e.HeldFor)
		}
	}
	t.Fatalf("%s is not held", uid)
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
	if got, want := clk.Reads()-before, int64(calls/locker.BurstCalls); got != want {
		t.Fatalf("%d lock calls in a burst read the clock %d times, want %d", calls, got, want)
	}

	before = clk.Reads()
	for i := range locker.BurstCalls {
		mustGrant(t, context.Background(), l, lockArgs(calls+i))
	}
	if got := clk.Reads() - before; got != locker.BurstCalls {
		t.Fatalf("%d lock calls outside a burst read the clock %d times, want one each", locker.BurstCalls, got)
	}
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
	if got := heldFor(t, l, "u0"); got != 2*time.Second {
		t.Fatalf("first call of the burst held for %v, want 2s", got)
	}
	if got := heldFor(t, l, fmt.Sprintf("u%d", locker.BurstCalls-1)); got != 2*time.Second {
		t.Fatalf("call %d of the burst held for %v, want 2s", locker.BurstCalls, got)
	}
	if got := heldFor(t, l, fmt.Sprintf("u%d", locker.BurstCalls)); got != time.Second {
		t.Fatalf("call %d of the burst held for %v, want 1s (a fresh reading)", locker.BurstCalls+1, got)
	}
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
		if _, err := l.Lock(ctx, lockArgs(0)); !errors.Is(err, context.Canceled) {
			t.Fatalf("first call of a cancelled burst = %v, want Canceled", err)
		}
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
		if _, err := l.Lock(ctx, lockArgs(locker.BurstCalls)); !errors.Is(err, context.Canceled) {
			t.Fatalf("call renewing the reading after cancel = %v, want Canceled", err)
		}
	})
	t.Run("AfterDone", func(t *testing.T) {
		l, clk, ctx, cancel := cancellableBurst(t)
		mustGrant(t, ctx, l, lockArgs(0))
		// A call that waits asks for Done: the next call reads the clock
		// and looks at the context again.
		<-func() <-chan struct{} { cancel(); return ctx.Done() }()
		reads := clk.Reads()
		if _, err := l.Lock(ctx, lockArgs(1)); !errors.Is(err, context.Canceled) {
			t.Fatalf("call after Done = %v, want Canceled", err)
		}
		if clk.Reads() == reads {
			t.Fatal("call after Done did not read the clock")
		}
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
	if got := clk2.Reads() - before; got != 4 {
		t.Fatalf("4 calls to a table with another table's burst read its clock %d times, want 4", got)
	}
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
	if got := heldFor(t, l, "u1"); got != 0 {
		t.Fatalf("first grant of a restarted burst held for %v, want 0 (a fresh reading)", got)
	}
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
		t.Error(err)
	}
	if st := l.Stats(); st.Grants != 8*2*locker.BurstCalls {
		t.Fatalf("%d grants, want %d", st.Grants, 8*2*locker.BurstCalls)
	}
}
