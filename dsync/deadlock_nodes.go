package dsync

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Deadlock detection across processes.
//
// The nodes are the only state the processes share, so they hold the
// wait-for graph: a lock request that names a holder (locker.LockArgs.Holder,
// the Dsync's Owner, a slash and the id given to WithHolder) leaves the
// holder's name with the grant, and one refused because of a conflict
// records on that node that the holder waits for the resources, until the
// node's locker.Config.WaitExpiry passes without another refusal, a grant to
// the holder, or a withdrawal. A waiter that was refused, before it waits
// again, reads the edges of every node that reports them
// (locker.WaitReporter) and follows them from its own holder.
//
// Which edges count. A node reports "W waits for R held by H under the grant
// tagged u with quorum q" where it both refused W because of a grant and
// holds H's grant, whose UID's tag (locker.UIDTag) is u: the same on every
// node, so that the reports of one grant can be counted. A grant is real only on a quorum, and a refused attempt is sent
// to every node, so every node that holds a real grant in W's way refuses W
// and reports the edge: an edge counts when at least q nodes report it. A
// grant left on a minority (a failed attempt being released, a lock lost or
// released whose release has not reached every node yet) does not make an
// edge, and cannot make a false cycle.
//
// What remains. False negatives: nodes that are down or slow to answer (each
// read is bounded by Config.CallTimeout) may leave an edge below its quorum;
// a holder's wait is recorded only where a conflicting grant refused it, so a
// wait behind a writer's intent (locker.ReasonWriterWaiting), a Semaphore or
// a TryLock is not an edge; a lock without a holder ends every path; and a
// cycle that closes while the waiters read is found at their next retry.
// Detection then falls back on Options.Timeout. False positives: edges are
// read from the nodes one at a time, not at one instant, so a cycle can be
// pieced together from an edge that ended while the others were read; and a
// holder that gave up a wait whose withdrawal has not reached the nodes yet
// (it is withdrawn in the background, and expires after WaitExpiry) still
// looks as if it waited. Both need a holder to be taking and giving up locks
// around the read, and two holders with the same name across processes (an
// Owner shared by two processes) look like one. A false positive fails one
// acquisition with ErrDeadlock; it never affects the safety of a lock, nor
// does anything else here: detection only decides whether to keep waiting.
//
// Resolution. The victim of a cycle is its largest holder by name. Every
// waiter in the cycle that reads it agrees, so exactly one acquisition fails
// with ErrDeadlock, the victim's, at its next check after the cycle closed;
// the others keep waiting. The caller of the victim releases what it holds.

// waitReporters returns the lockers of ds that report waits, by index; nil
// where a locker does not.
func (ds *Dsync) waitReporters() (rs []locker.WaitReporter, some bool) {
	rs = make([]locker.WaitReporter, len(ds.lockers))
	for i, l := range ds.lockers {
		if wr, ok := l.(locker.WaitReporter); ok {
			rs[i], some = wr, true
		}
	}
	return rs, some
}

// checkNodes is called when the acquisition was refused because others hold
// its resources, after check. It reads the wait-for edges of every node that
// reports them, each call bounded by timeout, and returns an error wrapping
// ErrDeadlock that names the cycle if w's holder is the victim of a cycle
// through it. Nodes that fail to answer are skipped.
func (w *graphWait) checkNodes(ctx context.Context, timeout time.Duration) error {
	if w == nil {
		return nil
	}
	w.refused = true
	if timeout <= 0 {
		return nil
	}
	ds := w.ds
	reporters, some := ds.waitReporters()
	if !some {
		return nil
	}
	callCtx, cancel := clock.WithTimeout(ctx, ds.clk(), timeout)
	defer cancel()
	answers := make(chan []locker.WaitEdge, len(reporters))
	asked := 0
	for _, wr := range reporters {
		if wr == nil {
			continue
		}
		asked++
		go func() {
			r, err := wr.Waits(callCtx, locker.WaitsArgs{})
			if err != nil {
				answers <- nil
				return
			}
			answers <- r.Edges
		}()
	}
	reports := make([][]locker.WaitEdge, 0, asked)
	for range asked {
		reports = append(reports, <-answers)
	}
	if cycle := nodeCycle(w.global, reports); cycle != "" {
		return fmt.Errorf("%w: %s", ErrDeadlock, cycle)
	}
	return nil
}

// nodeCycle counts the edges that the nodes reported, one slice per node,
// keeps those that at least their holder's quorum of nodes reported, and
// returns a cycle through holder of which holder is the victim (its largest
// holder), described, or "" if there is none.
func nodeCycle(holder string, reports [][]locker.WaitEdge) string {
	type key struct{ waiter, resource, holder, tag string }
	count := make(map[key]int)
	quorum := make(map[key]int)
	for _, edges := range reports {
		seen := make(map[key]bool, len(edges))
		for _, e := range edges {
			k := key{e.Waiter, e.Resource, e.Holder, e.Tag}
			if seen[k] {
				continue // a node counts once
			}
			seen[k] = true
			count[k]++
			quorum[k] = max(quorum[k], e.Quorum, 1)
		}
	}
	out := make(map[string][]edge) // waiter -> its counted edges
	for k, n := range count {
		if n < quorum[k] {
			continue
		}
		e := edge{k.waiter, k.resource, k.holder}
		if !slices.Contains(out[k.waiter], e) { // one edge per resource and holder, whatever the grants
			out[k.waiter] = append(out[k.waiter], e)
		}
	}
	for _, es := range out {
		slices.SortFunc(es, func(a, b edge) int {
			if c := strings.Compare(a.resource, b.resource); c != 0 {
				return c
			}
			return strings.Compare(a.to, b.to)
		})
	}
	// Search from holder through holders smaller than it only: a cycle
	// found is one of which holder is the largest, the victim.
	visited := make(map[string]bool)
	var path []edge
	var search func(from string) bool
	search = func(from string) bool {
		for _, e := range out[from] {
			if e.to > holder {
				continue
			}
			path = append(path, e)
			if e.to == holder {
				return true
			}
			if !visited[e.to] {
				visited[e.to] = true
				if search(e.to) {
					return true
				}
			}
			path = path[:len(path)-1]
		}
		return false
	}
	if !search(holder) {
		return ""
	}
	parts := make([]string, len(path))
	for i, e := range path {
		parts[i] = fmt.Sprintf("%q waits for %q held by %q", e.from, e.resource, e.to)
	}
	return "across processes: " + strings.Join(parts, ", ")
}

// withdraw asks every node that reports waits, in the background, to forget
// the wait of w: its acquisition ended. A node that misses it forgets the
// wait after its locker.Config.WaitExpiry.
func (w *graphWait) withdraw() {
	ds := w.ds
	reporters, some := ds.waitReporters()
	if !some {
		return
	}
	args := locker.WaitsArgs{Withdraw: w.global, Resources: w.names}
	ds.goBackground(func(bg context.Context) {
		// Made even if Close has begun, which waits for it, as the first
		// round of a release is (see releaseOn).
		ctx, cancel := clock.WithTimeout(context.WithoutCancel(bg), ds.clk(), ds.cfg.CallTimeout)
		defer cancel()
		var wg sync.WaitGroup
		for _, wr := range reporters {
			if wr != nil {
				wg.Go(func() { wr.Waits(ctx, args) })
			}
		}
		wg.Wait()
	})
}
