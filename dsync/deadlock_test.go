package dsync_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
)

// crossing runs holders that each hold first[i] and then ask for second[i],
// at once, and returns what each second acquisition returned. A holder whose
// second acquisition fails releases its first lock, so that the others can
// go on; the others release both.
func crossing(ds *dsync.Dsync, opts dsync.Options, holders, first, second []string) []error {
	return crossingOn(slices.Repeat([]*dsync.Dsync{ds}, len(holders)), opts, holders, first, second)
}

// crossingOn is crossing with holder i acquiring through dss[i].
func crossingOn(dss []*dsync.Dsync, opts dsync.Options, holders, first, second []string) []error {
	ctx := context.Background()
	held := make([]*dsync.DRWMutex, len(holders))
	for i, h := range holders {
		held[i] = dsync.NewDRWMutex(dss[i], first[i])
		if _, err := held[i].GetLock(dsync.WithHolder(ctx, h), dsync.Options{}); err != nil {
			panic(err)
		}
	}
	type result struct {
		i   int
		err error
	}
	results := make(chan result)
	for i, h := range holders {
		go func() {
			m := dsync.NewDRWMutex(dss[i], second[i])
			_, err := m.GetLock(dsync.WithHolder(ctx, h), opts)
			if err == nil {
				m.Unlock(ctx)
			}
			held[i].Unlock(ctx)
			results <- result{i, err}
		}()
	}
	errs := make([]error, len(holders))
	for range holders {
		r := <-results
		errs[r.i] = r.err
	}
	return errs
}

// namesEdge reports whether the error message msg names the edge: holder
// from waits for resource held by to. Holders may be named by their id (a
// cycle seen within the process) or by their name across processes, the
// Dsync's Owner, a slash and the id (a cycle read from the nodes).
func namesEdge(msg, from, resource, to string) bool {
	holder := func(id string) string { return `"([^"]*/)?` + regexp.QuoteMeta(id) + `"` }
	re := holder(from) + ` waits for "` + regexp.QuoteMeta(resource) + `" held by ` + holder(to)
	return regexp.MustCompile(re).MatchString(msg)
}

func ExampleWithHolder() {
	ds, err := dsync.New(threeNodes(), dsync.Config{RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()

	// Worker A holds "a" and asks for "b"; worker B holds "b" and asks for
	// "a". Whichever asks second would close the cycle: it fails at once.
	a, b := dsync.WithHolder(ctx, "A"), dsync.WithHolder(ctx, "B")
	ma, mb := dsync.NewDRWMutex(ds, "a"), dsync.NewDRWMutex(ds, "b")
	ma.GetLock(a, dsync.Options{})
	mb.GetLock(b, dsync.Options{})
	results := make(chan error, 2)
	for _, w := range []struct {
		ctx  context.Context
		held *dsync.DRWMutex
		want string
	}{{a, ma, "b"}, {b, mb, "a"}} {
		go func() {
			m := dsync.NewDRWMutex(ds, w.want)
			_, err := m.GetLock(w.ctx, dsync.Options{})
			if err == nil {
				m.Unlock(ctx)
			}
			w.held.Unlock(ctx) // the victim gives up what it holds
			results <- err
		}()
	}
	deadlocks := 0
	for range 2 {
		if err := <-results; errors.Is(err, dsync.ErrDeadlock) {
			deadlocks++
		}
	}
	fmt.Println("acquisitions that failed with ErrDeadlock:", deadlocks)
	// Output:
	// acquisitions that failed with ErrDeadlock: 1
}

func TestDeadlockTwoHoldersCrossing(t *testing.T) {
	c := newCluster(t, 3, nil)
	for range 20 { // either may close the cycle: exercise both orders
		errs := crossing(c.ds, dsync.Options{Timeout: time.Minute}, []string{"A", "B"}, []string{"a", "b"}, []string{"b", "a"})
		victim := -1
		for i, err := range errs {
			switch {
			case err == nil:
			case errors.Is(err, dsync.ErrDeadlock) && victim < 0:
				victim = i
			default:
				require.Failf(t, "not the one deadlock victim", "holder %d: %v", i, err)
			}
		}
		require.GreaterOrEqual(t, victim, 0, "no acquisition reported the deadlock")
		msg := errs[victim].Error()
		for _, want := range [][3]string{{"A", "b", "B"}, {"B", "a", "A"}} {
			require.True(t, namesEdge(msg, want[0], want[1], want[2]), "error %q does not name %q waiting for %q held by %q", msg, want[0], want[1], want[2])
		}
	}
	c.ds.Close()
	require.Zero(t, c.grants(), "grants left")
}

func TestDeadlockThreeHolders(t *testing.T) {
	c := newCluster(t, 3, nil)
	errs := crossing(c.ds, dsync.Options{Timeout: time.Minute}, []string{"A", "B", "C"}, []string{"a", "b", "c"}, []string{"b", "c", "a"})
	n := 0
	for _, err := range errs {
		if errors.Is(err, dsync.ErrDeadlock) {
			n++
			require.Equal(t, 3, strings.Count(err.Error(), "waits for"), "cycle of three named as %q", err)
		} else {
			require.NoError(t, err)
		}
	}
	require.Equal(t, 1, n, "acquisitions failed with ErrDeadlock, want exactly 1: %v", errs)
}

func TestDeadlockWithoutHolderIsOnlyATimeout(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	a, b := dsync.NewDRWMutex(c.ds, "a"), dsync.NewDRWMutex(c.ds, "b")
	a.GetLock(ctx, dsync.Options{})
	b.GetLock(ctx, dsync.Options{})
	_, err := dsync.NewDRWMutex(c.ds, "b").GetLock(ctx, dsync.Options{Timeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, dsync.ErrTimeout, "without holders, want a plain ErrTimeout")
	require.NotErrorIs(t, err, dsync.ErrDeadlock, "without holders, want a plain ErrTimeout")
	// One side names a holder, the other does not: the graph sees no cycle.
	_, err = dsync.NewDRWMutex(c.ds, "a").GetLock(dsync.WithHolder(ctx, "B"), dsync.Options{Timeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, dsync.ErrTimeout, "half-named")
}

func TestDeadlockSelf(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := dsync.WithHolder(context.Background(), "A")
	r := dsync.NewDRWMutex(c.ds, "x")
	_, err := r.GetRLock(ctx, dsync.Options{})
	require.NoError(t, err)
	// Another read lock by the same holder shares: no deadlock.
	r2 := dsync.NewDRWMutex(c.ds, "x")
	_, err = r2.GetRLock(ctx, dsync.Options{Timeout: time.Minute})
	require.NoError(t, err, "second read lock")
	r2.RUnlock(ctx)
	// Upgrading to a write lock while holding the read lock would wait for
	// itself.
	_, err = dsync.NewDRWMutex(c.ds, "x").GetLock(ctx, dsync.Options{Timeout: time.Minute})
	require.ErrorIs(t, err, dsync.ErrDeadlock, "upgrade: want ErrDeadlock naming A")
	require.True(t, namesEdge(err.Error(), "A", "x", "A"), "upgrade: %v, want ErrDeadlock naming A", err)
	r.RUnlock(ctx)
	// Released: the holder may take the write lock now.
	w := dsync.NewDRWMutex(c.ds, "x")
	_, err = w.GetLock(ctx, dsync.Options{Timeout: time.Minute})
	require.NoError(t, err, "after release")
	w.Unlock(ctx)
}

func TestDeadlockSeesTryLockHolds(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := dsync.WithHolder(context.Background(), "A")
	m := dsync.NewDRWMutex(c.ds, "x")
	ok, _, err := m.TryLock(ctx)
	require.NoError(t, err, "TryLock")
	require.True(t, ok, "TryLock")
	_, err = dsync.NewDRWMutex(c.ds, "x").GetLock(ctx, dsync.Options{Timeout: time.Minute})
	require.ErrorIs(t, err, dsync.ErrDeadlock, "after TryLock")
	m.Unlock(ctx)
	again := dsync.NewDRWMutex(c.ds, "x")
	_, err = again.GetLock(ctx, dsync.Options{Timeout: time.Minute})
	require.NoError(t, err, "after Unlock the hold is forgotten")
	again.Unlock(ctx)
}

func TestDeadlockReleasedHoldIsNotAWait(t *testing.T) {
	c := newCluster(t, 3, nil)
	a := dsync.WithHolder(context.Background(), "A")
	b := dsync.WithHolder(context.Background(), "B")
	for range 50 {
		// A releases x and asks for it again at once, while B holds it: A
		// waits for B, not for its own released hold.
		m := dsync.NewDRWMutex(c.ds, "x")
		_, err := m.GetLock(a, dsync.Options{})
		require.NoError(t, err)
		m.Unlock(a)
		mb := dsync.NewDRWMutex(c.ds, "x")
		_, err = mb.GetLock(b, dsync.Options{})
		require.NoError(t, err)
		_, err = dsync.NewDRWMutex(c.ds, "x").GetLock(a, dsync.Options{Timeout: time.Millisecond})
		require.ErrorIs(t, err, dsync.ErrTimeout, "A asking again")
		mb.Unlock(b)
	}
}
