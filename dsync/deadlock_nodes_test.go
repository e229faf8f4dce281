package dsync_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// countedTable is one process's view of a shared node table: it counts the
// wait-for reads the process makes.
type countedTable struct {
	*locker.Local
	reads *atomic.Int32
}

func (c countedTable) Waits(ctx context.Context, args locker.WaitsArgs) (locker.WaitsReply, error) {
	if args.Withdraw == "" {
		c.reads.Add(1)
	}
	return c.Local.Waits(ctx, args)
}

// processes returns k Dsyncs, "processes" named p1, p2, ..., over the same n
// in-memory node tables, and for each the number of wait-for reads it made.
// Detection across them can only go through the tables: each Dsync's own
// graph sees only its own holders.
func processes(t *testing.T, k, n int) ([]*dsync.Dsync, []*atomic.Int32, []*locker.Local) {
	t.Helper()
	var tables []*locker.Local
	for range n {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
		t.Cleanup(func() { tbl.Close() })
		tables = append(tables, tbl)
	}
	var dss []*dsync.Dsync
	var reads []*atomic.Int32
	for p := range k {
		r := new(atomic.Int32)
		var ls []locker.NetLocker
		for _, tbl := range tables {
			ls = append(ls, countedTable{tbl, r})
		}
		ds, err := dsync.New(ls, dsync.Config{
			Owner:    fmt.Sprint("p", p+1),
			RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		})
		require.NoError(t, err)
		t.Cleanup(func() { ds.Close() })
		dss = append(dss, ds)
		reads = append(reads, r)
	}
	return dss, reads, tables
}

// checkOneVictim checks that exactly errs[victim] is an ErrDeadlock that
// names the cycle's edges, and that every other acquisition succeeded.
func checkOneVictim(t *testing.T, errs []error, victim int, edges [][3]string) {
	t.Helper()
	for i, err := range errs {
		if i == victim {
			require.ErrorIs(t, err, dsync.ErrDeadlock, "holder %d, the largest in the cycle", i)
		} else {
			require.NoError(t, err, "holder %d: want its lock once the victim released", i)
		}
	}
	msg := errs[victim].Error()
	require.Equal(t, len(edges), strings.Count(msg, "waits for"), "cycle of %d named as %q", len(edges), msg)
	for _, e := range edges {
		require.Contains(t, msg, fmt.Sprintf("%q waits for %q held by %q", e[0], e[1], e[2]), "error does not name %q waiting for %q held by %q", e[0], e[1], e[2])
	}
}

// TestDeadlockAcrossProcesses: holder A of process p1 holds a and asks for
// b, holder B of process p2 holds b and asks for a. Only the nodes see both:
// exactly one acquisition fails with ErrDeadlock, B's ("p2/B" is the larger
// name), whichever asks first, and A gets b once B's caller releases.
func TestDeadlockAcrossProcesses(t *testing.T) {
	dss, _, tables := processes(t, 2, 3)
	for i := range 10 {
		procs, holders, first, second := []*dsync.Dsync{dss[0], dss[1]}, []string{"A", "B"}, []string{"a", "b"}, []string{"b", "a"}
		if i%2 == 1 { // p2's holder starts its goroutine first
			slices.Reverse(procs)
			slices.Reverse(holders)
			slices.Reverse(first)
			slices.Reverse(second)
		}
		errs := crossingOn(procs, dsync.Options{Timeout: 30 * time.Second}, holders, first, second)
		victim := 1
		if i%2 == 1 {
			victim = 0
		}
		checkOneVictim(t, errs, victim, [][3]string{{"p2/B", "a", "p1/A"}, {"p1/A", "b", "p2/B"}})
	}
	for _, ds := range dss {
		ds.Close() // waits for the withdrawals
	}
	for i, tbl := range tables {
		assert.Zero(t, tbl.Stats().Grants, "node %d: grants left", i)
		r, err := tbl.Waits(context.Background(), locker.WaitsArgs{})
		assert.NoError(t, err, "node %d: edges left %+v", i, r.Edges)
		assert.Empty(t, r.Edges, "node %d: edges left", i)
	}
}

// TestDeadlockAcrossThreeProcesses: A (p1) waits for B (p2), B for C (p3),
// C for A: only C's acquisition fails.
func TestDeadlockAcrossThreeProcesses(t *testing.T) {
	dss, _, _ := processes(t, 3, 3)
	errs := crossingOn(dss, dsync.Options{Timeout: 30 * time.Second},
		[]string{"A", "B", "C"}, []string{"a", "b", "c"}, []string{"b", "c", "a"})
	checkOneVictim(t, errs, 2, [][3]string{{"p3/C", "a", "p1/A"}, {"p1/A", "b", "p2/B"}, {"p2/B", "c", "p3/C"}})
}

// TestDeadlockAcrossProcessesChain: A (p1) waits for B (p2), which waits for
// C (p3), which waits for nobody. No cycle: once both waiters have read the
// edges a few times, C releases, and both get their locks.
func TestDeadlockAcrossProcessesChain(t *testing.T) {
	dss, reads, tables := processes(t, 3, 3)
	ctx := context.Background()
	opts := dsync.Options{Timeout: 30 * time.Second}
	c := dsync.NewDRWMutex(dss[2], "c")
	_, err := c.GetLock(dsync.WithHolder(ctx, "C"), opts)
	require.NoError(t, err)
	results := make(chan error, 2)
	chain := func(ds *dsync.Dsync, holder, own, next string) {
		hctx := dsync.WithHolder(ctx, holder)
		m := dsync.NewDRWMutex(ds, own)
		if _, err := m.GetLock(hctx, opts); err != nil {
			results <- err
			return
		}
		n := dsync.NewDRWMutex(ds, next)
		_, err := n.GetLock(hctx, opts)
		if err == nil {
			n.Unlock(ctx)
		}
		m.Unlock(ctx)
		results <- err
	}
	// B first holds b, so that A waits for it rather than taking it.
	go chain(dss[1], "B", "b", "c")
	waitEdges(t, tables[0], "p2/B c p3/C")
	go chain(dss[0], "A", "a", "b")
	waitEdges(t, tables[0], "p1/A b p2/B", "p2/B c p3/C")
	// Both waiters read the whole chain, twice over, from every node.
	r0, r1 := reads[0].Load(), reads[1].Load()
	deadline := time.Now().Add(30 * time.Second)
	for reads[0].Load() < r0+6 || reads[1].Load() < r1+6 {
		select {
		case err := <-results:
			require.Failf(t, "a waiter of a chain stopped waiting", "with %v", err)
		default:
		}
		if time.Now().After(deadline) {
			require.Failf(t, "the waiters did not read the edges", "the waiters read the nodes' edges %d and %d times in 30 s", reads[0].Load()-r0, reads[1].Load()-r1)
		}
		runtime.Gosched()
	}
	c.Unlock(ctx)
	for range 2 {
		require.NoError(t, <-results, "a chain is not a deadlock")
	}
}

// waitEdges waits until tbl reports exactly the edges want, each as
// "waiter resource holder".
func waitEdges(t *testing.T, tbl *locker.Local, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := tbl.Waits(context.Background(), locker.WaitsArgs{})
		require.NoError(t, err)
		var got []string
		for _, e := range r.Edges {
			got = append(got, e.Waiter+" "+e.Resource+" "+e.Holder)
		}
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		if time.Now().After(deadline) {
			require.Failf(t, "the edges never were as wanted", "edges %q, want %q", got, want)
		}
		runtime.Gosched()
	}
}

// Two processes, each with its own Dsync over the same nodes, take two
// locks in opposite orders. The nodes record who holds and who waits; the
// waiter whose holder has the largest name in the cycle gives up with
// ErrDeadlock, releases what it holds, and the other proceeds.
func ExampleWithHolder_acrossProcesses() {
	nodes := threeNodes() // in practice, rest.Clients of the same nodes
	ctx := context.Background()
	var procs []*dsync.Dsync
	for _, owner := range []string{"host1:100", "host2:200"} {
		ds, err := dsync.New(nodes, dsync.Config{Owner: owner, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond})
		if err != nil {
			log.Fatal(err)
		}
		defer ds.Close()
		procs = append(procs, ds)
	}
	results := make(chan string, 2)
	worker := func(ds *dsync.Dsync, holder, first, second string, started chan<- struct{}, go2 <-chan struct{}) {
		hctx := dsync.WithHolder(ctx, holder)
		m := dsync.NewDRWMutex(ds, first)
		if _, err := m.GetLock(hctx, dsync.Options{}); err != nil {
			log.Fatal(err)
		}
		close(started)
		<-go2 // both hold their first lock
		n := dsync.NewDRWMutex(ds, second)
		_, err := n.GetLock(hctx, dsync.Options{Timeout: time.Minute})
		switch {
		case errors.Is(err, dsync.ErrDeadlock):
			results <- holder + ": deadlock, giving up " + first
		case err != nil:
			results <- holder + ": " + err.Error()
		default:
			n.Unlock(ctx)
			results <- holder + ": got " + second
		}
		m.Unlock(ctx) // the victim releases what it holds
	}
	startedA, startedB, both := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go worker(procs[0], "worker-A", "a", "b", startedA, both)
	go worker(procs[1], "worker-B", "b", "a", startedB, both)
	<-startedA
	<-startedB
	close(both)
	fmt.Println(<-results)
	fmt.Println(<-results)
	// Output:
	// worker-B: deadlock, giving up b
	// worker-A: got b
}
