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
// acquired with it, for deadlock detection within this process.
//
// A holder is one sequential actor, such as a goroutine or a request: it does
// not release a lock while it waits for another. Every acquisition through a
// Dsync with a context that names a holder (GetLock, GetRLock, TryLock,
// TryRLock, Mutex, Hierarchy, and Semaphore permits) is recorded in the
// Dsync's wait-for graph: which holder holds which resources in which mode,
// and which holder waits for which. When an acquisition is refused, and
// waiting would close a cycle (A waits for a lock of B, B for one of A, or a
// longer chain, or a holder for a lock it holds itself: locks are not
// reentrant), it fails at once with an error wrapping ErrDeadlock that names
// the cycle, instead of waiting. Only the acquisition that closes the cycle
// fails; the others keep waiting, and get their locks once its holder
// releases what it holds. A cycle closed later by a grant to another holder
// is found by the next retry of a waiter in it.
//
// What this cannot see: locks taken without a holder, or through another
// Dsync, and every lock of another process. A deadlock across processes
// goes undetected; prevent it with a Hierarchy (every holder takes its locks
// in one order), or resolve it with Options.Timeout (a holder that gives up
// releases what it holds). A Semaphore's waits are not recorded (waiting for
// any one of n permits is not waiting for one holder), but its permits are
// recorded as held. A hold is forgotten when its lock context ends, which
// includes the end of the ctx it was acquired with.
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
	write  bool
}

// graphWait is one waiting acquisition. Its methods are safe on a nil
// graphWait (an acquisition without a holder) and do nothing.
type graphWait struct {
	ds         *Dsync
	holder     string
	names      []string
	write      bool
	registered bool // in the graph; guarded by graphs.mu
}

// graph returns ds's graph, creating it; graphs.mu must be held.
func graphOf(ds *Dsync) *waitGraph {
	g := graphs.m[ds]
	if g == nil {
		g = &waitGraph{holds: make(map[string]map[context.Context]graphHold), waits: make(map[string][]*graphWait)}
		graphs.m[ds] = g
	}
	return g
}

// dropIfEmpty forgets ds's graph once nothing is in it; graphs.mu must be
// held.
func dropIfEmpty(ds *Dsync, g *waitGraph) {
	if len(g.holds) == 0 && len(g.waits) == 0 {
		delete(graphs.m, ds)
	}
}

// trackHold records a granted lock for the holder named by ctx, if any, until
// lockCtx ends.
func (ds *Dsync) trackHold(ctx context.Context, names []string, write bool, lockCtx context.Context) {
	id, ok := holderFrom(ctx)
	if !ok {
		return
	}
	graphs.mu.Lock()
	g := graphOf(ds)
	for _, r := range names {
		if g.holds[r] == nil {
			g.holds[r] = make(map[context.Context]graphHold)
		}
		g.holds[r][lockCtx] = graphHold{holder: id, write: write}
	}
	graphs.mu.Unlock()
	context.AfterFunc(lockCtx, func() {
		graphs.mu.Lock()
		defer graphs.mu.Unlock()
		g := graphs.m[ds]
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
func (ds *Dsync) waitFor(ctx context.Context, names []string, write bool) *graphWait {
	id, ok := holderFrom(ctx)
	if !ok {
		return nil
	}
	return &graphWait{ds: ds, holder: id, names: names, write: write}
}

// check is called when the acquisition was refused and is about to wait. It
// enters the wait into the graph, or keeps it there, unless waiting closes a
// cycle: then it leaves the graph and check returns an error wrapping
// ErrDeadlock.
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

// done takes the wait out of the graph: the acquisition ended.
func (w *graphWait) done() {
	if w == nil {
		return
	}
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	if g := graphs.m[w.ds]; g != nil {
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
			if lockCtx.Err() == nil && (w.write || h.write) && !seen[h.holder] {
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

// cycleThrough returns the cycle that w's waiting would close, described, or
// "" if there is none; graphs.mu must be held.
func (g *waitGraph) cycleThrough(w *graphWait) string {
	visited := make(map[string]bool)
	var path []edge
	var search func(from []edge) bool
	search = func(from []edge) bool {
		for _, e := range from {
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
