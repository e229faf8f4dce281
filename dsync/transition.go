package dsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dsync-go/dsync/locker"
)

// Growing a cluster of lock sets without stopping its clients. A layout
// (the sets of NewSets) cannot change under held locks: a new number of
// sets moves most resources to another set, and a client of the old layout
// and one of the new would lock such a resource on different nodes, both
// successfully. NewTransition is the bridge: its client locks each
// resource on the union of its set in the old layout (A) and its set in
// the new one (B), with a quorum that contains a quorum of A and a quorum
// of B. So it excludes the clients of the old layout (they meet in A) and
// those of the new (they meet in B), and a deployment changes layout by
// rolling its clients through it:
//
//  1. every client uses the old layout (NewSets(old));
//  2. roll the clients, one by one, to NewTransition(old, new): old and
//     transition clients exclude each other;
//  3. once no old client is left, and one validity has passed since the
//     last one stopped (its locks are released or have expired), roll the
//     clients to NewSets(new): transition and new clients exclude each
//     other.
//
// Old and new clients must never run at once; package layout and the
// nodes' fingerprints enforce it (layout.Transition, rest.ClientConfig.Layout):
// nodes are restarted with the transition's fingerprint before step 2 and
// with the new layout's before step 3, and a client refuses nodes of a
// layout it cannot share resources with.

// maxTransitionSets bounds the sets of a transition: one per pair of an
// old and a new set, each a Dsync of its own.
const maxTransitionSets = 1 << 14

// quorumGroup is one layout's set within a set of a transition: its
// nodes, as indexes of the transition set's lockers. A lock on the
// transition set is held by a write (read) quorum of the group as long as
// it is held by the set's own quorum (NewTransition chooses it so).
type quorumGroup struct {
	nodes []int
}

// NewTransition returns a quorum client for the time a deployment changes
// from the lock sets from to the lock sets to (each as NewSets takes
// them; the two may differ in number and size of sets, and share nodes).
// A resource is locked on the union U of its set A under from and its set
// B under to, SetIndex(name, len(from)) and SetIndex(name, len(to)), with
// a write quorum of |U| − min(|A|−W(A), |B|−W(B)) nodes of U (W a set's
// write quorum, floor(n/2)+1) and a read quorum of |U| − min(|A|−R(A),
// |B|−R(B)) (R = ceil(n/2)): whatever nodes of U grant it, they include a
// quorum of A and one of B. Its locks therefore exclude those of
// NewSets(from) and of NewSets(to) clients, and each other's. When A and B
// are the same nodes, U is that set and its quorums are the usual ones.
//
// The price of the transition: a lock is sent to the nodes of both sets,
// and tolerates as many of them down as the more fragile of the two
// tolerates. Every primitive works on it as on a Dsync made by NewSets. A
// lock on names of several of its sets never waits while it holds a part
// (takeWithoutHoldAndWait), so transition, old and new clients cannot
// deadlock with each other. The steps of a layout change, and what
// enforces their order, are at the top of this file and in the module's
// docs/sets.md ("Growing"). The caller keeps ownership of the lockers.
func NewTransition(from, to [][]locker.NetLocker, cfg Config) (*Dsync, error) {
	if len(from) == 0 || len(to) == 0 {
		return nil, errors.New("dsync: a transition needs lock sets to change from and to")
	}
	if len(from)*len(to) > maxTransitionSets {
		return nil, fmt.Errorf("dsync: a transition from %d to %d sets unites %d pairs of sets, more than %d", len(from), len(to), len(from)*len(to), maxTransitionSets)
	}
	var nodes setNodes
	old, err := nodes.add("old ", from)
	if err != nil {
		return nil, err
	}
	next, err := nodes.add("new ", to)
	if err != nil {
		return nil, err
	}
	// One set per distinct union: pairs of the same nodes share it.
	type union struct {
		nodes         []int // node indexes: A's, then B's not in A
		groups        []quorumGroup
		writeQ, readQ int
	}
	var unions []union
	byKey := make(map[string]int)
	pairs := make([]int, len(old)*len(next)) // pair a*len(next)+b -> its union
	for a, A := range old {
		for b, B := range next {
			u := union{nodes: slices.Clone(A)}
			for _, k := range B {
				if !slices.Contains(u.nodes, k) {
					u.nodes = append(u.nodes, k)
				}
			}
			if len(u.nodes) != len(A) || len(A) != len(B) {
				// Not the same nodes: quorums that contain one of each set.
				at := func(set []int) quorumGroup {
					g := quorumGroup{}
					for _, k := range set {
						g.nodes = append(g.nodes, slices.Index(u.nodes, k))
					}
					return g
				}
				u.groups = []quorumGroup{at(A), at(B)}
				n := len(u.nodes)
				u.writeQ = n - min(len(A)-(len(A)/2+1), len(B)-(len(B)/2+1))
				u.readQ = n - min(len(A)-(len(A)+1)/2, len(B)-(len(B)+1)/2)
			}
			key := unionKey(u.nodes, u.groups)
			i, ok := byKey[key]
			if !ok {
				i = len(unions)
				byKey[key] = i
				unions = append(unions, u)
			}
			pairs[a*len(next)+b] = i
		}
	}
	sets := make([][]int, len(unions))
	for i, u := range unions {
		sets[i] = u.nodes
	}
	root, err := newSetsRoot(nodes.all, sets, cfg)
	if err != nil {
		return nil, err
	}
	for i, u := range unions {
		c := root.sets[i]
		c.groups, c.writeQ, c.readQ = u.groups, u.writeQ, u.readQ
	}
	nOld, nNew := len(old), len(next)
	root.place = func(name string) int { return pairs[SetIndex(name, nOld)*nNew+SetIndex(name, nNew)] }
	return root, nil
}

// unionKey names a union of nodes with its groups, to share one set
// between the pairs of sets that make the same union: its nodes, then each
// group's, as sorted lists of node indexes, the groups in sorted order.
func unionKey(nodes []int, groups []quorumGroup) string {
	sorted := func(ks []int) string { return fmt.Sprint(slices.Sorted(slices.Values(ks))) }
	var gs []string
	for _, g := range groups {
		ks := make([]int, len(g.nodes))
		for i, j := range g.nodes {
			ks[i] = nodes[j]
		}
		gs = append(gs, sorted(ks))
	}
	slices.Sort(gs)
	return sorted(nodes) + strings.Join(gs, "")
}

// seesEveryRead reports whether the nodes that answered a query
// (answers[i] != nil for ds's locker i) meet every read quorum of a lock
// on ds: n−R+1 of them, and on a set of a transition, as many of each of
// its layouts' sets too (a read lock of an old or new client is held by a
// read quorum of that set only). If not, short says how many answered and
// how many were needed, for an error.
func (ds *Dsync) seesEveryRead(answers []*locker.QueryReply) (short string, ok bool) {
	n, answered := len(ds.lockers), 0
	for _, a := range answers {
		if a != nil {
			answered++
		}
	}
	if need := n - ds.ReadQuorum() + 1; answered < need {
		return fmt.Sprintf("%d of %d nodes answered, %d needed", answered, n, need), false
	}
	for _, g := range ds.groups {
		got := 0
		for _, i := range g.nodes {
			if answers[i] != nil {
				got++
			}
		}
		if need := len(g.nodes) - (len(g.nodes)+1)/2 + 1; got < need {
			return fmt.Sprintf("%d of the %d nodes of one layout's set answered, %d needed", got, len(g.nodes), need), false
		}
	}
	return "", true
}

// takeWithoutHoldAndWait acquires every part of m, a lock across sets of a
// transition, into holds, and never waits while it holds a part: it waits
// (take) for one part while holding none, then tries each other part once;
// if one is refused, it releases what it holds and starts again by waiting
// for the refused part. On failure it returns the error, holds released by
// the caller.
//
// Why not the ascending order of sets that NewSets's locks take. That order
// cannot deadlock among clients of one layout, because a client's part on
// a set covers all its names there, and a node's queue holds back younger
// requests for the names of a queued part: a part waits, and holds back,
// only within its own set. A transition's sets are pairs of an old set and
// a new one: the names of one old set fall into several of them, so a
// transition client's parts cut an old client's part (and a new client's)
// into pieces, and a transition client holding one piece while queued for
// another could wait for an old client queued for both. A client that
// never waits while it holds is in no cycle of waits; the old and new
// clients keep their order, and a transition client's queued part holds
// back only names of one old set and one new set, below which those
// clients hold (see acquireParts). Every part, and every new start, has
// the ticket of the lock's first (opts.ticket), so that it ages in the
// nodes' queues as any acquisition does and is not starved by younger
// ones. The price: under contention a transition client may release what
// it took and wait again.
func (m *DRWMutex) takeWithoutHoldAndWait(ctx context.Context, mode Mode, opts Options, holds []*hold, take func(i int) error) error {
	first := 0 // the part to wait for, holding nothing
	for {
		if err := take(first); err != nil {
			return err
		}
		refused := -1
		for i, p := range m.parts {
			if i == first {
				continue
			}
			ok, lockCtx, err := p.tryTicket(ctx, mode, opts.ticket, opts.Source)
			if err != nil && !errors.Is(err, ErrNoQuorum) {
				return fmt.Errorf("dsync: lock %v: %w", m.names, err)
			}
			if !ok {
				refused = i // refused, or too few nodes answered: wait for it
				break
			}
			holds[i] = p.takeHold(lockCtx)
		}
		if refused < 0 {
			return nil
		}
		// What it took goes back (a release a node has not confirmed goes
		// on in the background): nothing of the lock was used.
		_ = m.releaseHolds(context.WithoutCancel(ctx), holds)
		clear(holds)
		first = refused
	}
}
