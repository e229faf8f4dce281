package locker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// WaitReporter is implemented by lockers that record which holders wait for
// which resources, and tell who holds them: the wait-for edges that package
// dsync follows to find deadlocks across processes. It is an optional
// capability, found by type assertion; without it a locker takes no part in
// detection, and locks work as before.
//
// A holder is named by LockArgs.Holder. A node keeps a grant's holder with
// the grant. A Lock or RLock refused because of a conflicting grant
// (ReasonConflict), whose args name a holder and do not set NoIntent, records
// that the holder waits for args.Resources, in args' mode, until
// Config.WaitExpiry after the refusal; each refusal renews it. A holder is
// one sequential actor, so it has at most one wait per node: a later refusal
// replaces it, and a grant to the holder, or a withdrawal (WaitsArgs.Withdraw),
// ends it.
//
// Waits, with WaitsArgs.Withdraw empty, returns one WaitEdge for every
// recorded wait that has not expired, every resource of it, and every live
// grant of that resource to a named holder whose mode conflicts with the
// wait's (see Compatible: a write conflicts with everything), at most
// MaxWaitEdges of them. Each resource is read atomically, but the edges are
// not read at one instant. A grant without a holder is not reported: no
// cycle can be followed through it. Waits behind a writer's intent
// (ReasonWriterWaiting) are not recorded. It changes no lock.
//
// Waits is safe for concurrent use. It fails, like the other calls, with
// ErrClosed, ErrBusy or a transport error, and with ErrInvalidArgs for a
// withdrawal that names more than the table's MaxResources resources.
type WaitReporter interface {
	Waits(ctx context.Context, args WaitsArgs) (WaitsReply, error)
}

// MaxWaitEdges bounds the edges one Waits reply holds (WaitsReply.Truncated
// reports that a node had more).
const MaxWaitEdges = 10000

var _ WaitReporter = (*Local)(nil)

// waitTable is what a Local records of the holders that wait: the holder
// named by a refused acquisition, and what it waits for.
type waitTable struct {
	mu    sync.Mutex // guards waits
	waits map[string]*wait
}

// wait is one holder's recorded wait. Its strings are the table's own.
type wait struct {
	resources []string
	mode      Mode
	until     int64 // nanoseconds since the table's epoch
}

// recordWait notes that args.Holder waits for args.Resources, refused at
// now; the strings of args are copied.
func (l *Local) recordWait(args *LockArgs, mode Mode, now int64) {
	if l.cfg.WaitExpiry <= 0 {
		return
	}
	t := &l.waitTable
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.waits[args.Holder]
	if w != nil && w.mode == mode && slices.Equal(w.resources, args.Resources) {
		w.until = now + int64(l.cfg.WaitExpiry)
		return
	}
	if t.waits == nil {
		t.waits = make(map[string]*wait)
	}
	rs := make([]string, len(args.Resources))
	for i, r := range args.Resources {
		rs[i] = strings.Clone(r)
	}
	t.waits[strings.Clone(args.Holder)] = &wait{resources: rs, mode: mode, until: now + int64(l.cfg.WaitExpiry)}
}

// endWait forgets holder's wait: for resources, or whatever it waits for if
// resources is nil.
func (l *Local) endWait(holder string, resources []string) {
	t := &l.waitTable
	t.mu.Lock()
	defer t.mu.Unlock()
	if w := t.waits[holder]; w != nil && (resources == nil || slices.Equal(w.resources, resources)) {
		delete(t.waits, holder)
	}
}

// sweepWaits forgets the waits that have expired at now.
func (l *Local) sweepWaits(now int64) {
	t := &l.waitTable
	t.mu.Lock()
	defer t.mu.Unlock()
	for h, w := range t.waits {
		if now >= w.until {
			delete(t.waits, h)
		}
	}
}

// Waits returns the wait-for edges the table sees, or withdraws a wait; see
// WaitReporter.
func (l *Local) Waits(ctx context.Context, args WaitsArgs) (WaitsReply, error) {
	if l.closed.Load() {
		return WaitsReply{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return WaitsReply{}, fmt.Errorf("locker: waits: %w", err)
	}
	if args.Withdraw != "" {
		if err := l.checkLabel("waits", "holder", args.Withdraw); err != nil {
			return WaitsReply{}, err
		}
		if len(args.Resources) > 0 {
			if err := l.checkNames("waits", args.Resources); err != nil {
				return WaitsReply{}, err
			}
		}
		var rs []string // nil: whatever the holder waits for
		if len(args.Resources) > 0 {
			rs = args.Resources
		}
		l.endWait(args.Withdraw, rs)
		return WaitsReply{}, nil
	}

	// Take the waits that are in force, then read who holds their
	// resources, one resource at a time under its shard's lock.
	type waiting struct {
		holder string
		*wait
	}
	now := l.now()
	var ws []waiting
	t := &l.waitTable
	t.mu.Lock()
	for h, w := range t.waits {
		if now >= w.until {
			delete(t.waits, h)
			continue
		}
		ws = append(ws, waiting{h, w}) // a wait is replaced, never changed, but for until
	}
	t.mu.Unlock()
	slices.SortFunc(ws, func(a, b waiting) int { return strings.Compare(a.holder, b.holder) })

	var reply WaitsReply
	for _, w := range ws {
		for _, name := range w.resources {
			h := l.hash(name)
			s := &l.shards[l.shardOf(h)]
			if !s.lock(l.maxWaiters) {
				return WaitsReply{}, fmt.Errorf("%w: waits %q", ErrBusy, name)
			}
			if r := s.resource(h, name); r != nil {
				add := func(g *grant) {
					if g.tombstone || g.holderLen == 0 || l.expired(g, now) || Compatible(w.mode, g.mode) {
						return
					}
					if len(reply.Edges) == MaxWaitEdges {
						reply.Truncated = true
						return
					}
					// The grant's buffer, which holds its UID and holder, may
					// be reused once the grant is gone. The UID itself, a
					// capability, is told by its tag.
					reply.Edges = append(reply.Edges, WaitEdge{
						Waiter: w.holder, Resource: name, Holder: strings.Clone(g.holder()),
						Tag: UIDTag(g.uid), Quorum: int(g.quorum),
					})
				}
				if r.writer != nil {
					add(r.writer)
				}
				for _, g := range r.readerGrants() {
					add(g)
				}
			}
			s.mu.Unlock()
		}
	}
	return reply, nil
}
