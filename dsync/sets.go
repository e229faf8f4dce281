package dsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/refresher"
)

// Lock sets: a client of many nodes does not lock every resource on every
// node. NewSets takes the nodes as sets (MinIO's erasure sets: fixed groups
// of usually 4 to 16), and each resource lives on one set, chosen by
// SetIndex, with a quorum of that set: a lock costs the same calls on 64
// nodes in 16 sets of 4 as on 4 nodes.
//
// Every primitive works on a set as on a Dsync made by New over its nodes.
// A primitive that uses resources of its own beside its name (Semaphore's
// permits, Barrier's and Cond's) keeps them all in the set of its name: a
// Semaphore, Barrier, Cond or Lease lives wholly on one set. A DRWMutex
// (and so a Hierarchy level) whose names fall into several sets is locked
// set by set, see acquireParts.
//
// Quorums and faults are per set. A set of n nodes tolerates what n nodes
// tolerate alone: a write lock needs floor(n/2)+1 of them, a read lock
// ceil(n/2). A lock on one set does not care about nodes of the others; a
// lock across sets needs every one of its sets. So with sets of 4, any one
// node of every set may be down at once (a quarter of the cluster), but two
// nodes of one set stop the write locks of that set's resources, and a read
// lock there still needs two of the four.

// SetIndex returns the set of name among n sets (n > 0): the 64-bit FNV-1a
// hash of the bytes of name, modulo n. The hash is part of the contract:
// it does not change between versions, so that clients built apart agree,
// and tools can compute it (FNV-1a: offset basis 14695981039346656037,
// prime 1099511628211, one XOR then multiply per byte).
func SetIndex(name string, n int) int {
	h := uint64(fnvOffset64)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= fnvPrime64
	}
	return int(h % uint64(n))
}

// The constants of 64-bit FNV-1a (hash/fnv's, inlined: SetIndex runs on
// every NewDRWMutex of a Dsync of sets, and allocates nothing).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// setNode names one set a node serves, and the node's index in it.
type setNode struct{ set, index int }

// NewSets returns a quorum client over lock sets: sets[i] are the lockers
// of set i, one per node. Each resource belongs to the set SetIndex(name,
// len(sets)), and is locked with a quorum of that set's nodes; every
// primitive works on the Dsync returned as on one made by New (see the
// package documentation for what sets change). A lock on names in several
// sets is all-or-nothing, and cannot deadlock with another: it takes its
// sets one after the other in ascending order (see acquireParts).
//
// Every set must have the same number of lockers. A node may serve several
// sets: a locker whose String is the same in several sets is one node to
// the refresher, which sends each node one request per interval for the
// locks of every set it serves. Within a set, the rules of New hold (no nil
// locker, none twice). One set is New(sets[0], cfg).
//
// The sets, their order and their members are the layout: every client of
// a resource must use the same one, or two clients may lock it on
// different sets and both get it. Package layout reads a layout from
// configuration and checks it against the nodes' (layout.Check); package
// cluster and the commands use it.
//
// The caller keeps ownership of the lockers: Close does not close them.
func NewSets(sets [][]locker.NetLocker, cfg Config) (*Dsync, error) {
	if len(sets) == 0 {
		return nil, errors.New("dsync: no lock sets")
	}
	if len(sets) == 1 {
		return New(sets[0], cfg)
	}
	var nodes setNodes
	members, err := nodes.add("", sets)
	if err != nil {
		return nil, err
	}
	return newSetsRoot(nodes.all, members, cfg)
}

// setNodes gathers the distinct nodes of lock sets: a locker whose String
// is the same in several sets is one node.
type setNodes struct {
	all   []locker.NetLocker
	index map[string]int // String -> index in all
}

// add checks sets (each as New checks its lockers, and all of one size),
// adds their nodes, and returns each set's members as indexes in n.all;
// which ("old ", "new " or "") names the sets in errors.
func (n *setNodes) add(which string, sets [][]locker.NetLocker) ([][]int, error) {
	if n.index == nil {
		n.index = make(map[string]int)
	}
	members := make([][]int, len(sets))
	for s, set := range sets {
		if err := checkLockers(set); err != nil {
			return nil, fmt.Errorf("%w (%sset %d)", err, which, s)
		}
		if len(set) != len(sets[0]) {
			return nil, fmt.Errorf("dsync: %sset %d has %d lockers and set 0 has %d: every set must be the same size", which, s, len(set), len(sets[0]))
		}
		for _, l := range set {
			k, ok := n.index[l.String()]
			if !ok {
				k = len(n.all)
				n.index[l.String()] = k
				n.all = append(n.all, l)
			}
			members[s] = append(members[s], k)
		}
	}
	return members, nil
}

// newSetsRoot returns the root of sets over the distinct nodes all, set s
// being the nodes members[s] (indexes in all), with one refresher for all.
func newSetsRoot(all []locker.NetLocker, members [][]int, cfg Config) (*Dsync, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	root := newDsync(all, cfg)
	root.sets = make([]*Dsync, len(members))
	root.nodeSets = make([][]setNode, len(all))
	for s, ks := range members {
		set := make([]locker.NetLocker, len(ks))
		for i, k := range ks {
			set[i] = all[k]
		}
		c := newDsync(set, cfg)
		c.root = root
		c.refNodes = ks
		root.sets[s] = c
		for i, k := range ks {
			root.nodeSets[k] = append(root.nodeSets[k], setNode{s, i})
		}
	}
	ref, err := refresher.New(all, refresher.Config{
		Interval:    cfg.RefreshInterval,
		CallTimeout: cfg.RefreshCallTimeout,
		Validity:    cfg.Validity,
		Clock:       cfg.Clock,
		OnValidity:  root.observeSetValidity,
		OnRound:     root.countRound,
	})
	if err != nil {
		return nil, fmt.Errorf("dsync: %w", err)
	}
	root.refresher = ref
	for _, c := range root.sets {
		c.refresher = ref
	}
	return root, nil
}

// Sets returns the number of lock sets: 1 for a Dsync made by New.
func (ds *Dsync) Sets() int {
	if ds.sets == nil {
		return 1
	}
	return len(ds.sets)
}

// top returns the Dsync the application made: ds.root, or ds itself if it
// has no root (a Dsync built by hand in a test).
func (ds *Dsync) top() *Dsync {
	if ds.root == nil {
		return ds
	}
	return ds.root
}

// setFor returns the Dsync that locks name: ds, unless ds was made by
// NewSets, then the set of name.
func (ds *Dsync) setFor(name string) *Dsync {
	if ds.sets == nil {
		return ds
	}
	return ds.sets[ds.setIndex(name)]
}

// setIndex returns the set of name on the root of sets ds: SetIndex, or
// the placement of a transition (transition.go).
func (ds *Dsync) setIndex(name string) int {
	if ds.place != nil {
		return ds.place(name)
	}
	return SetIndex(name, len(ds.sets))
}

// refNode returns the refresher's index of ds's locker i.
func (ds *Dsync) refNode(i int) int {
	if ds.refNodes == nil {
		return i
	}
	return ds.refNodes[i]
}

// refHeld returns held, indexed by ds's lockers, indexed by the
// refresher's nodes.
func (ds *Dsync) refHeld(held []bool) []bool {
	if ds.refNodes == nil {
		return held
	}
	out := make([]bool, len(ds.root.lockers))
	for i, h := range held {
		out[ds.refNodes[i]] = h
	}
	return out
}

// observeSetValidity records, on the root of sets, the validity node k
// reported to the refresher, for the root and every set k serves.
func (ds *Dsync) observeSetValidity(k int, v time.Duration) {
	ds.validity.observe(k, v)
	for _, sn := range ds.nodeSets[k] {
		ds.sets[sn.set].validity.observe(sn.index, v)
	}
}

// setDisagreements returns the validity disagreements the sets of ds saw.
func (ds *Dsync) setDisagreements() uint64 {
	var n uint64
	for _, s := range ds.sets {
		n += s.validity.disagreements.Load()
	}
	return n
}

// newSetsMutex returns the DRWMutex of names (sorted, distinct, valid)
// through ds, made by NewSets: a DRWMutex of the one set they fall into,
// or one whose parts are those of each set, in ascending order of sets.
func newSetsMutex(ds *Dsync, names []string) *DRWMutex {
	first := ds.setIndex(names[0])
	var idx []int // the set of each name, once one differs from the first
	for i := 1; i < len(names); i++ {
		if s := ds.setIndex(names[i]); s != first || idx != nil {
			if idx == nil {
				idx = make([]int, len(names))
				for j := range i {
					idx[j] = first
				}
			}
			idx[i] = s
		}
	}
	if idx == nil {
		return &DRWMutex{ds: ds.sets[first], names: names}
	}
	m := &DRWMutex{ds: ds, names: names}
	order := slices.Compact(slices.Sorted(slices.Values(idx))) // ascending: the order every lock takes them in
	for _, s := range order {
		part := &DRWMutex{ds: ds.sets[s]}
		for i, name := range names {
			if idx[i] == s {
				part.names = append(part.names, name) // sorted, as names are
			}
		}
		m.parts = append(m.parts, part)
	}
	return m
}

// acquireParts acquires a lock of mode on every part of m, one set after
// the other in ascending order of sets, each as one DRWMutex on its set
// does, within what is left of the timeout; if one fails, the parts already
// held are released and the acquisition fails with its error. The lock is
// all-or-nothing: it is held once every part is.
//
// Why sets one after the other, and why it cannot deadlock. Each part is
// all-or-nothing on its set (one round of calls to the set's nodes, which
// may queue it). An acquisition holds parts of lower sets only while it
// waits for a part of a higher set, never the other way round: the sets
// are one global order, the same in every client, like a lock hierarchy.
// If A waits for B, B holds in the set A waits on, a set above every set A
// holds in; for a cycle the set waited on would have to rise all the way
// round and come back lower. Locking every part in one round would cost one
// round trip instead of one per set, but a part waiting in one set's queues
// while its other part holds in another set is a hold-and-wait across sets
// with no order: two such locks in opposite name orders could each hold
// one set and wait for the other. Cross-set locks are the exception in a
// sharded layout, so the rule that is simple to prove wins.
//
// Options.Timeout (or Adaptive's timeout) bounds the whole; Adaptive hears
// one outcome; the Observer hears of each part (one acquisition per set).
func (m *DRWMutex) acquireParts(ctx context.Context, opts Options, mode Mode, try bool) (bool, context.Context, error) {
	ds := m.ds
	if ds.closed.Load() {
		return false, nil, ErrClosed
	}
	clk := ds.clk()
	start := clk.Now()
	var timeout time.Duration
	var run adaptiveRun
	if !try {
		var adaptive *AdaptiveTimeout
		timeout, adaptive = opts.bound()
		run = adaptiveRun{a: adaptive, clk: clk, start: start}
	}
	partOpts := Options{Source: opts.Source}
	holds := make([]*hold, len(m.parts)) // of each part, once held
	fail := func(err error) (bool, context.Context, error) {
		m.releaseHolds(context.WithoutCancel(ctx), holds)
		run.done(ctx, err)
		return false, nil, err
	}
	// take acquires part i, waiting on its nodes if need be.
	take := func(i int) error {
		if timeout > 0 {
			partOpts.Timeout = timeout - clk.Since(start)
			if partOpts.Timeout <= 0 {
				return fmt.Errorf("dsync: lock %v: %w (set %d of %d taken)", m.names, ErrTimeout, i, len(m.parts))
			}
		}
		lockCtx, err := m.parts[i].acquire(ctx, partOpts, mode)
		if err != nil {
			return fmt.Errorf("dsync: lock %v: %w", m.names, err)
		}
		holds[i] = m.parts[i].takeHold(lockCtx)
		return nil
	}
	if ds.place != nil {
		partOpts.ticket = ds.ticket(start) // one place in the queues for every part, kept through restarts
	}
	for {
		switch {
		case try:
			for i, p := range m.parts {
				ok, lockCtx, err := p.tryTicket(ctx, mode, 0, opts.Source)
				if err != nil {
					return fail(fmt.Errorf("dsync: lock %v: %w", m.names, err))
				}
				if !ok {
					m.releaseHolds(context.WithoutCancel(ctx), holds)
					return false, nil, nil
				}
				holds[i] = p.takeHold(lockCtx)
			}
		case ds.place != nil:
			if err := m.takeWithoutHoldAndWait(ctx, mode, partOpts, holds, take); err != nil {
				return fail(err)
			}
		default:
			for i := range m.parts {
				if err := take(i); err != nil {
					return fail(err)
				}
			}
		}
		// A part taken first may have been lost (its refreshes failed)
		// while a later one was waited for: the lock is held only if every
		// part still is at once. If not, what is held goes back and the
		// parts are taken again (TryLock reports the lock not taken).
		if !slices.ContainsFunc(holds, func(h *hold) bool { return h.ctx.Err() != nil }) {
			break
		}
		m.releaseHolds(context.WithoutCancel(ctx), holds)
		clear(holds)
		if try {
			return false, nil, nil
		}
	}
	h := &hold{write: mode == X, mode: mode, parts: holds}
	h.ctx, h.cancel = context.WithCancelCause(ctx)
	for _, ph := range holds {
		h.fence = max(h.fence, ph.fence)
		context.AfterFunc(ph.ctx, func() { h.cancel(context.Cause(ph.ctx)) })
	}
	for _, ph := range holds {
		if ph.ctx.Err() != nil { // lost since the check above: told now, not after the return
			h.cancel(context.Cause(ph.ctx))
		}
	}
	m.mu.Lock()
	if h.write {
		m.write = h
	} else {
		m.reads = append(m.reads, h)
	}
	m.mu.Unlock()
	run.done(ctx, nil)
	return true, h.ctx, nil
}

// takeHold takes the hold of lockCtx, just acquired, out of m: the
// DRWMutex of several sets whose part m is owns it from now on.
func (m *DRWMutex) takeHold(lockCtx context.Context) *hold {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.write != nil && m.write.ctx == lockCtx {
		h := m.write
		m.write = nil
		return h
	}
	for i, h := range m.reads {
		if h.ctx == lockCtx {
			m.reads = append(m.reads[:i], m.reads[i+1:]...)
			return h
		}
	}
	panic("dsync: a part's hold is missing")
}

// releaseHolds releases holds, holds[i] of m.parts[i] (none if nil), at
// once, and returns their errors joined.
func (m *DRWMutex) releaseHolds(ctx context.Context, holds []*hold) error {
	last := -1 // the last hold, released on the caller's goroutine
	for i, h := range holds {
		if h != nil {
			last = i
		}
	}
	if last < 0 {
		return nil
	}
	errs := make([]error, len(holds))
	var wg sync.WaitGroup
	for i, h := range holds[:last] {
		if h != nil {
			wg.Go(func() { errs[i] = m.parts[i].release(ctx, h) })
		}
	}
	errs[last] = m.parts[last].release(ctx, holds[last])
	wg.Wait()
	if slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
		return errors.Join(errs...)
	}
	return nil
}

// releaseParts releases h, a hold of m's parts; see Unlock.
func (m *DRWMutex) releaseParts(ctx context.Context, h *hold) error {
	h.cancel(context.Canceled)
	if err := m.releaseHolds(ctx, h.parts); err != nil {
		return fmt.Errorf("dsync: unlock %v: %w", m.names, err)
	}
	return nil
}

// fencingTokenParts returns a fencing token for h, the write hold of m's
// parts: each part's token (FencingToken on its set), then the largest, T,
// raised on a write quorum of every set whose token was smaller, then the
// validity of every part checked again. A later holder of any of the
// resources reads a counter of T at least on its set (its read quorum
// meets the raise's), so its token is larger.
func (m *DRWMutex) fencingTokenParts(ctx context.Context, h *hold) (uint64, error) {
	tokens := make([]uint64, len(m.parts))
	var top uint64
	for i, p := range m.parts {
		t, err := p.fencingToken(ctx, h.parts[i])
		if err != nil {
			return 0, fmt.Errorf("dsync: fencing token %v: %w", m.names, err)
		}
		tokens[i] = t
		top = max(top, t)
	}
	for i, p := range m.parts {
		if tokens[i] == top {
			continue
		}
		fencers, err := p.fencers()
		if err != nil {
			return 0, err
		}
		if _, err := p.ds.raiseFences(ctx, fencers, top, p.ds.WriteQuorum()); err != nil {
			return 0, fmt.Errorf("dsync: fencing token %v: %w", m.names, err)
		}
	}
	for i, p := range m.parts {
		if err := p.stillHeld(h.parts[i]); err != nil {
			return 0, fmt.Errorf("dsync: fencing token %v: %w", m.names, err)
		}
	}
	return top, nil
}

// readVersionParts reads the Version of every part of m.
func (m *DRWMutex) readVersionParts(ctx context.Context) (Version, error) {
	v := Version{m: m, parts: make([]Version, len(m.parts))}
	for i, p := range m.parts {
		pv, err := p.ReadVersion(ctx)
		if err != nil {
			return Version{}, err
		}
		v.parts[i] = pv
		v.dirty = v.dirty || pv.dirty
	}
	return v, nil
}

// validateParts validates v, read by readVersionParts: true if every part
// validates.
func (m *DRWMutex) validateParts(ctx context.Context, v Version) (bool, error) {
	if v.dirty {
		return false, nil
	}
	for i, p := range m.parts {
		ok, err := p.Validate(ctx, v.parts[i])
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}
