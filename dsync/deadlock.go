package dsync

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// holderKey is the context key of WithHolder.
type holderKey struct{}

// WithHolder returns a copy of ctx that names the holder of the locks
// acquired with it, for deadlock detection within this process and across
// processes.
//
// A holder is one sequential actor, such as a goroutine or a request: it does
// not release a lock while it waits for another, and waits for one
// acquisition at a time. Every acquisition through a Dsync with a context
// that names a holder (GetLock, GetRLock, TryLock, TryRLock, Mutex,
// Hierarchy, and Semaphore permits) is recorded in two places: in the
// Dsync's wait-for graph (which of its holders holds which resources in which
// mode, and which waits for which), and on the nodes, which keep the holder's
// name across processes (the Dsync's Config.Owner, a slash and id) with each
// grant, and record a holder refused because of a conflict as waiting for
// the resources (locker.WaitReporter).
//
// When an acquisition is refused because others hold its resources, before
// it waits again, it looks for a cycle of holders through its own: A waits
// for a lock of B and B for one of A, or a longer chain, or a holder waits for
// a lock it holds itself (locks are not reentrant). It looks first in the
// Dsync's graph, then in the edges the nodes report (one more round of calls,
// made only on this contended path; see deadlock_nodes.go for which edges
// count). The victim of a cycle is its holder with the largest name across
// processes (within one Dsync, the largest id). The victim's acquisition
// fails with an error wrapping ErrDeadlock that names the cycle; the others
// keep waiting. Every process that sees the cycle agrees on the victim, so one
// acquisition per cycle fails, at the victim's first retry after the cycle
// closed. The victim's caller must then release what its holder holds, so
// that the others get their locks, and should wait before it tries again:
// at least Config.RetryMax plus twice Config.CallTimeout, the others' longest
// back-off and attempt. The nodes keep no queue, so a victim that retries at
// once can close the same cycle again, and, being its largest holder, lose
// again (the simulation's deadlock workload saw one lose 10 rounds in a
// row that way).
//
// What this cannot see: locks taken without a holder; waits that no node
// records: a TryLock, a Semaphore's waits (waiting for any one of n permits
// is not waiting for one holder; its permits are recorded as held), a read
// refused because a writer waits (locker.ReasonWriterWaiting); and nodes that
// do not implement locker.WaitReporter or do not answer. Detection across
// processes is best effort: it may miss a cycle, which Options.Timeout then
// resolves, or, rarely, report one that a holder was just leaving; it never
// affects the safety of a lock. Config.Owner must name each process uniquely
// (its default, "hostname:pid", does): two processes with the same Owner and
// holder ids look like one holder. Within the process, a hold is forgotten
// when its lock context ends, which includes the end of the ctx it was
// acquired with; on the nodes, when the grant is released or expires.
//
// Memory: a node keeps one record per distinct (Owner, call site, holder)
// in use, shared by all its grants. Holders that hold many locks each cost
// next to nothing; a holder per lock (a request id, say) makes each lock
// cost the node about 570 bytes instead of 252 (bench's
// BenchmarkMemoryPerHeldLockWithHolder).
func WithHolder(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, holderKey{}, id)
}

// holderFrom returns the holder named by ctx.
func holderFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(holderKey{}).(string)
	return id, ok
}

// withHolderOf returns ctx carrying the holder of from, if from names one.
func withHolderOf(ctx, from context.Context) context.Context {
	if id, ok := holderFrom(from); ok {
		return WithHolder(ctx, id)
	}
	return ctx
}

// graphs holds the wait-for graph of every Dsync that has holders, in one
// registry so that Dsync needs no field for it. Only acquisitions that name
// a holder use it.
var graphs = struct {
	mu sync.Mutex // guards m and every graph in it
	m  map[*Dsync]*waitGraph
}{m: make(map[*Dsync]*waitGraph)}

// waitGraph is what the holders of one Dsync hold and wait for.
type waitGraph struct {
	holds map[string]map[context.Context]graphHold // resource -> lock context -> hold
	waits map[string][]*graphWait                  // holder -> its waits
}

type graphHold struct {
	holder string
	mode   Mode
}

// graphWait is one waiting acquisition. Its methods are safe on a nil
// graphWait (an acquisition without a holder) and do nothing.
type graphWait struct {
	ds         *Dsync
	holder     string // as given to WithHolder
	global     string // its name across processes, ds.holderName(holder)
	names      []string
	mode       Mode
	registered bool // in the graph; guarded by graphs.mu
	refused    bool // an attempt was refused: the nodes may record the wait (used by the acquiring goroutine only)
}

// graphOf returns the graph of ds (of its root: the sets of a Dsync made by
// NewSets share one), creating it; graphs.mu must be held.
func graphOf(ds *Dsync) *waitGraph {
	g := graphs.m[ds.top()]
	if g == nil {
		g = &waitGraph{holds: make(map[string]map[context.Context]graphHold), waits: make(map[string][]*graphWait)}
		graphs.m[ds.top()] = g
	}
	return g
}

// dropIfEmpty forgets ds's graph once nothing is in it; graphs.mu must be
// held.
func dropIfEmpty(ds *Dsync, g *waitGraph) {
	if len(g.holds) == 0 && len(g.waits) == 0 {
		delete(graphs.m, ds.top())
	}
}

// holderName returns the name across processes of the holder id of this
// Dsync: its Owner, a slash and id (locker.LockArgs.Holder).
func (ds *Dsync) holderName(id string) string { return ds.cfg.Owner + "/" + id }

// trackHold records a granted lock for the holder id until lockCtx ends.
func (ds *Dsync) trackHold(id string, names []string, mode Mode, lockCtx context.Context) {
	graphs.mu.Lock()
	g := graphOf(ds)
	for _, r := range names {
		if g.holds[r] == nil {
			g.holds[r] = make(map[context.Context]graphHold)
		}
		g.holds[r][lockCtx] = graphHold{holder: id, mode: mode}
	}
	graphs.mu.Unlock()
	context.AfterFunc(lockCtx, func() {
		graphs.mu.Lock()
		defer graphs.mu.Unlock()
		g := graphs.m[ds.top()]
		if g == nil {
			return
		}
		for _, r := range names {
			delete(g.holds[r], lockCtx)
			if len(g.holds[r]) == 0 {
				delete(g.holds, r)
			}
		}
		dropIfEmpty(ds, g)
	})
}

// waitFor returns the wait of an acquisition of names, or nil if ctx names no
// holder. The wait enters the graph at its first check.
func (ds *Dsync) waitFor(ctx context.Context, names []string, mode Mode) *graphWait {
	id, ok := holderFrom(ctx)
	if !ok {
		return nil
	}
	return &graphWait{ds: ds, holder: id, global: ds.holderName(id), names: names, mode: mode}
}

// check is called when the acquisition was refused and is about to wait. It
// enters the wait into the graph, or keeps it there, unless the wait is in a
// cycle of which its holder is the victim (see cycleThrough): then it leaves
// the graph and check returns an error wrapping ErrDeadlock.
func (w *graphWait) check() error {
	if w == nil {
		return nil
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	g := graphOf(w.ds)
	if cycle := g.cycleThrough(w); cycle != "" {
		w.leave(g)
		return fmt.Errorf("%w: %s", ErrDeadlock, cycle)
	}
	if !w.registered {
		w.registered = true
		g.waits[w.holder] = append(g.waits[w.holder], w)
	}
	return nil
}

// checkDeadlock is the acquisition's deadlock check after a refused
// attempt (acquire.go), before it asks again: it looks for a cycle through
// its wait in the Dsync's graph (check), and, if the attempt was refused
// because others hold the lock (locked), in the edges the nodes report
// (checkNodes, deadlock_nodes.go). It returns an error wrapping ErrDeadlock
// if the acquisition's holder is the victim of a cycle, and nil at once if
// ctx names no holder.
func (a *acquisition) checkDeadlock(locked bool) error {
	if err := a.waiting.check(); err != nil {
		return fmt.Errorf("dsync: lock %v: %w", a.m.names, err)
	}
	if locked {
		// Held by others: look for a deadlock across processes too.
		if err := a.waiting.checkNodes(a.ctx, a.left(a.ds.cfg.CallTimeout)); err != nil {
			return fmt.Errorf("dsync: lock %v: %w", a.m.names, err)
		}
	}
	return nil
}

// done takes the wait out of the graph, and out of the nodes' records if
// they may have it: the acquisition ended.
func (w *graphWait) done() {
	if w == nil {
		return
	}
	if w.refused {
		w.withdraw()
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	if g := graphs.m[w.ds.top()]; g != nil {
		w.leave(g)
	}
}

// leave takes w out of g; graphs.mu must be held.
func (w *graphWait) leave(g *waitGraph) {
	if w.registered {
		w.registered = false
		ws := slices.DeleteFunc(g.waits[w.holder], func(x *graphWait) bool { return x == w })
		if len(ws) == 0 {
			delete(g.waits, w.holder)
		} else {
			g.waits[w.holder] = ws
		}
	}
	dropIfEmpty(w.ds, g)
}

// edge is one step of a cycle: from waits for a lock on resource held by to.
type edge struct {
	from, resource, to string
}

// blockers returns the holders w waits for, one edge each, in a fixed order:
// those holding a resource of w in a mode that conflicts with w's.
func (g *waitGraph) blockers(w *graphWait) []edge {
	var out []edge
	seen := make(map[string]bool)
	for _, r := range w.names {
		var hs []string
		for lockCtx, h := range g.holds[r] {
			// A released or lost hold leaves the graph from an AfterFunc,
			// a moment later; its context is done at once.
			if lockCtx.Err() == nil && !compatible(w.mode, h.mode) && !seen[h.holder] {
				seen[h.holder] = true
				hs = append(hs, h.holder)
			}
		}
		slices.Sort(hs)
		for _, h := range hs {
			out = append(out, edge{w.holder, r, h})
		}
	}
	return out
}

// cycleThrough returns a cycle of waits through w of which w's holder is the
// victim, described, or "" if there is none; graphs.mu must be held.
//
// The victim of a cycle is its largest holder (by name across processes, the
// order of the ids within one Dsync): so the search follows only holders
// smaller than w's. Every process that sees the cycle agrees on its victim,
// and only the victim's acquisition fails: the others keep waiting, and get
// their locks once the victim's caller releases what it holds. The victim
// need not be the acquisition that closed the cycle; it finds the cycle at
// its next retry.
func (g *waitGraph) cycleThrough(w *graphWait) string {
	visited := make(map[string]bool)
	var path []edge
	var search func(from []edge) bool
	search = func(from []edge) bool {
		for _, e := range from {
			if e.to > w.holder {
				continue // that holder, not w's, is the victim of cycles through it
			}
			path = append(path, e)
			if e.to == w.holder {
				return true
			}
			if !visited[e.to] {
				visited[e.to] = true
				for _, next := range g.waits[e.to] {
					if next != w && search(g.blockers(next)) {
						return true
					}
				}
			}
			path = path[:len(path)-1]
		}
		return false
	}
	if !search(g.blockers(w)) {
		return ""
	}
	parts := make([]string, len(path))
	for i, e := range path {
		parts[i] = fmt.Sprintf("%q waits for %q held by %q", e.from, e.resource, e.to)
	}
	return strings.Join(parts, ", ")
}
