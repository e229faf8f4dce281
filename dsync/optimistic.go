package dsync

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Optimistic reads: a reader takes no lock. It reads a Version of the
// mutex's resources from the nodes (ReadVersion), reads the data, and asks
// the nodes again (Validate) whether a writer was granted any of the
// resources in between, or holds one. If none was, what it read is what a
// reader holding the read lock over that span would have read.
//
// What each node tells (locker.Versioner): its incarnation (drawn when its
// table is made); its fence counter, read first (every grant takes the next
// fence, so a grant the node makes after the read has a fence above it);
// per resource, a bound at least the fence of the last write grant it made
// on it in this incarnation (exact while the grant holds the entry, then
// kept in a bounded memory that only ever errs upwards); and whether a live
// write grant holds it now. A node in its restart grace period vouches for
// nothing: it may have forgotten a grant that a writer still holds.
//
// ReadVersion keeps, per node that answered (and vouches), its incarnation
// and counter; and it marks the Version dirty if any node saw a writer
// holding a resource. Validate asks every node again; S is the set of nodes
// that vouched both times. A node of S tells of a change if its incarnation
// differs, or a resource's write fence is above the counter ReadVersion read
// there, or a writer holds one now. Validate answers true only if the
// Version is not dirty, no node of S tells of a change, and S has at least
// n−W+1 nodes (W = n/2+1, the write quorum; n−W+1 is the read quorum
// ceil(n/2)); with fewer, and no change seen, it cannot decide: ErrNoQuorum.
//
// Why true is never wrong. Let a writer hold the write lock at some moment t
// between ReadVersion's return and Validate's start. While a client holds a
// write lock, at least W nodes hold live grants of it (a grant lives on its
// node at least as long as its holder relies on it: the node counts its
// validity from when it received the request, the client from before it
// sent it; a node that restarts forgets grants, but then either has another
// incarnation or is in its grace period, refusing new locks, for a whole
// validity; with the grace period turned off, neither the lock nor this
// argument survives a restart). S has n−W+1 nodes, so it shares a node j with those W. j's
// grant g was live at t. Either j made g before ReadVersion read j's
// counter: then g existed, live, when ReadVersion read the resource there
// after it (a grant is never revived once removed, and expired grants are
// removed, not refreshed), so j answered WriteHeld and the Version is dirty.
// Or j made g after that read: g's fence is above the counter ReadVersion
// kept for j, and when Validate reads j (after t, so after g was made) the
// resource's write fence is at least g's (in the entry, or in the memory,
// which never answers less) unless j restarted, which changes its
// incarnation. Either way Validate answers false. A node that ReadVersion
// read before the writer's grant reached it, or while a write grant was
// on its way, is covered by the same two cases; a write grant that never
// made a quorum is a change seen, or not, but never a wrong true.
//
// Validate may answer false when nothing changed: a write grant that never
// reached a quorum, a node's memory that overflowed, a node that restarted.
// It never answers true when a writer may have run in between.

// Version is what DRWMutex.ReadVersion learned of the write grants of a
// mutex's resources: pass it to Validate of the same DRWMutex. The zero
// Version is not one.
type Version struct {
	m     *DRWMutex
	nodes []nodeVersion // one per locker of m's Dsync
	dirty bool          // a node saw a writer holding a resource
	parts []Version     // of a DRWMutex with parts (sets.go): each part's
}

// nodeVersion is what one node answered to ReadVersion.
type nodeVersion struct {
	known       bool // the node answered, and vouched (not in its grace period)
	incarnation uint64
	counter     uint64
}

// ReadVersion reads the version of m's resources from the nodes: every
// node is asked at once, each call bounded by Config.CallTimeout, and at
// least a read quorum must answer (an error wrapping ErrNoQuorum if fewer
// do, or ctx's error if it ended). It needs every locker to be a
// locker.Versioner (ErrVersionUnsupported otherwise; the in-memory table
// and the HTTP client of package rest are). It holds no lock and leaves
// nothing on the nodes.
//
// A Version read while a writer holds a resource is valid for nothing:
// Validate answers false.
func (m *DRWMutex) ReadVersion(ctx context.Context) (Version, error) {
	if m.err != nil {
		return Version{}, m.err
	}
	if m.parts != nil {
		return m.readVersionParts(ctx)
	}
	answers, errs, err := m.versions(ctx)
	if err != nil {
		return Version{}, err
	}
	v := Version{m: m, nodes: make([]nodeVersion, len(answers))}
	known := 0
	for i, r := range answers {
		switch {
		case r == nil:
			continue
		case r.Grace > 0:
			errs = append(errs, fmt.Errorf("%s: in its restart grace period (%v left): it may have forgotten a writer", m.ds.lockers[i], r.Grace))
			continue
		}
		v.nodes[i] = nodeVersion{known: true, incarnation: r.Incarnation, counter: r.Counter}
		known++
		if slices.Contains(r.WriteHeld, true) {
			v.dirty = true
		}
	}
	if need := m.ds.ReadQuorum(); known < need {
		if ctx.Err() != nil {
			return Version{}, fmt.Errorf("dsync: read version %v: %w", m.names, context.Cause(ctx))
		}
		return Version{}, fmt.Errorf("dsync: read version %v: %w: %d of %d nodes answered, %d needed: %w", m.names, ErrNoQuorum, known, len(answers), need, errs)
	}
	return v, nil
}

// Validate reports whether no writer was granted any of m's resources since
// v was read (by m.ReadVersion), and none holds one now: if true, what the
// caller read between the two calls is what it would have read holding the
// read lock. It asks every node at once, each call bounded by
// Config.CallTimeout. False means a writer came, or may have: a node
// restarted, or forgot too much to be sure; read again. When too few of the
// nodes that answered ReadVersion answer again for an answer either way, it
// returns an error wrapping ErrNoQuorum (or ctx's error if it ended), never
// true. It holds no lock and leaves nothing on the nodes.
//
// It is a run-time error (a panic) to validate a Version that m's
// ReadVersion did not return.
func (m *DRWMutex) Validate(ctx context.Context, v Version) (bool, error) {
	if v.m != m {
		panic("dsync: Validate of a Version that this DRWMutex's ReadVersion did not return")
	}
	if m.parts != nil {
		return m.validateParts(ctx, v)
	}
	if v.dirty {
		return false, nil
	}
	answers, errs, err := m.versions(ctx)
	if err != nil {
		return false, err
	}
	same := 0 // the nodes of S
	for i, r := range answers {
		was := v.nodes[i]
		if r == nil || !was.known {
			continue
		}
		if r.Incarnation != was.incarnation {
			return false, nil // it restarted: what it knew of the writes is gone
		}
		if r.Grace > 0 { // cannot be, in one incarnation; and vouches for nothing
			errs = append(errs, fmt.Errorf("%s: in its restart grace period", m.ds.lockers[i]))
			continue
		}
		if slices.Contains(r.WriteHeld, true) || slices.ContainsFunc(r.Writes, func(w uint64) bool { return w > was.counter }) {
			return false, nil
		}
		same++
	}
	if need := m.ds.ReadQuorum(); same < need {
		if ctx.Err() != nil {
			return false, fmt.Errorf("dsync: validate %v: %w", m.names, context.Cause(ctx))
		}
		return false, fmt.Errorf("dsync: validate %v: %w: %d of the nodes that answered ReadVersion answered again, %d needed: %w", m.names, ErrNoQuorum, same, need, errs)
	}
	return true, nil
}

// versions asks every node at once for the version of m's resources, each
// call bounded by CallTimeout. answers[i] is node i's reply, or nil if it
// did not answer, or answered nonsense; errs says why. It fails only if a
// locker is not a locker.Versioner.
func (m *DRWMutex) versions(ctx context.Context) (answers []*locker.VersionReply, errs nodeErrors, err error) {
	ds := m.ds
	vs := make([]locker.Versioner, len(ds.lockers))
	for i, l := range ds.lockers {
		v, ok := l.(locker.Versioner)
		if !ok {
			return nil, nil, fmt.Errorf("dsync: version %v: %w: %s", m.names, ErrVersionUnsupported, l)
		}
		vs[i] = v
	}
	callCtx, cancel := clock.WithTimeout(ctx, ds.clk(), ds.cfg.CallTimeout)
	defer cancel()
	type result struct {
		node  int
		reply locker.VersionReply
		err   error
	}
	ch := make(chan result, len(vs))
	for i, v := range vs {
		go func() {
			r, err := v.Version(callCtx, locker.VersionArgs{Resources: m.names})
			if err == nil && (len(r.Writes) != len(m.names) || len(r.WriteHeld) != len(m.names)) {
				err = fmt.Errorf("%w: %d write fences and %d holds answer a version of %d resources", locker.ErrInvalidArgs, len(r.Writes), len(r.WriteHeld), len(m.names))
			}
			ch <- result{i, r, err}
		}()
	}
	answers = make([]*locker.VersionReply, len(vs))
	for range vs {
		r := <-ch
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ds.lockers[r.node], r.err))
			continue
		}
		answers[r.node] = &r.reply
	}
	return answers, errs, nil
}

// ReadOptimistic runs read without a lock, validated: up to attempts times
// it reads a Version (ReadVersion), calls read, and returns read's result
// if Validate then answers true. An attempt whose Version a writer held is
// not read, and a failed attempt is followed by a pause (the back-off of
// the lock's retries). Then, or at once if the nodes cannot answer versions
// (no quorum, a locker that is not a locker.Versioner), it falls back to
// the read lock: GetRLock with opts, read under the lock's context,
// RUnlock.
//
// read must only read, and must tolerate seeing a write half done: an
// attempt that overlapped a writer is thrown away, whatever read returned
// (an error from read is returned only from a validated attempt, or from
// the one under the lock). ReadOptimistic returns read's error, the error
// of GetRLock, ctx's error if it ended, or an error wrapping ErrLockLost if
// the read lock was lost before RUnlock: then the read may have overlapped
// a writer's.
func (m *DRWMutex) ReadOptimistic(ctx context.Context, attempts int, opts Options, read func(context.Context) error) error {
	for attempt := range attempts {
		if attempt > 0 && !clock.Sleep(ctx, m.ds.clk(), m.ds.backoff(attempt-1)) {
			return fmt.Errorf("dsync: optimistic read %v: %w", m.names, context.Cause(ctx))
		}
		v, err := m.ReadVersion(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			break // the lock decides
		}
		if v.dirty {
			continue
		}
		readErr := read(ctx)
		ok, err := m.Validate(ctx, v)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			break
		}
		if ok {
			return readErr
		}
	}
	lockCtx, err := m.GetRLock(ctx, opts)
	if err != nil {
		return err
	}
	readErr := read(lockCtx)
	if err := m.RUnlock(context.WithoutCancel(ctx)); errors.Is(err, ErrLockLost) {
		return errors.Join(readErr, err)
	}
	return readErr
}
