package locker

import "strings"

// Wounds: how an older waiter makes a younger partial holder yield.
//
// Nodes grant a free resource to whoever asks first, so two acquisitions
// can split the nodes between them: each holds some, too few for its
// quorum, and waits on the others' nodes for the other to release. Queues
// alone never end that: each waits for the other. The older one (lower
// LockArgs.Ticket) must win, as it would on every node if all its requests
// had arrived first: so when a waiting request is queued behind a younger
// holder's grant, the node tells that holder (WaitHooks.Wounded). A
// holder still short of its quorum then releases what it holds and asks
// again with the same ticket (it yields, as in wound–wait); the freed
// resources go to the older waiter, which queues ahead of it everywhere.
// A holder that has its quorum ignores the wound: the older one waits for
// its release, as for any holder. A grant is wounded at most once: one
// wound is all a holder needs to decide.
//
// Only grants of requests that asked to wait, with a ticket and a
// Wounded hook, can be wounded; their hooks are kept in the shard of
// their UID until the grant is freed.

// woundHook is the Wounded hook of a grant, kept in the shard of its UID.
type woundHook struct {
	uid string // the grant's own uid: valid while the grant lives
	fn  func(ahead uint64)
}

// woundRef names a grant to wound, outside the table's locks: it may be
// released (and its hook dropped) before the wound is delivered.
type woundRef struct {
	hash uint64 // of uid
	uid  string // a copy
}

// addWound keeps fn as the Wounded hook of g, which the shard holds; s.mu
// must be held.
func (s *shard) addWound(g *grant, fn func(uint64)) {
	if s.wounds == nil {
		s.wounds = make(map[uint64][]woundHook)
	}
	s.wounds[g.hash] = append(s.wounds[g.hash], woundHook{g.uid, fn})
}

// takeWound removes and returns the hook of the grant of uid (hash h), or
// nil if it has none; s.mu must be held.
func (s *shard) takeWound(h uint64, uid string) func(uint64) {
	hooks := s.wounds[h]
	for i, wh := range hooks {
		if wh.uid == uid {
			fn := wh.fn
			hooks[i] = hooks[len(hooks)-1]
			hooks[len(hooks)-1] = woundHook{}
			if hooks = hooks[:len(hooks)-1]; len(hooks) == 0 {
				delete(s.wounds, h)
			} else {
				s.wounds[h] = hooks
			}
			return fn
		}
	}
	return nil
}

// youngerHolders returns the live grants on held (the entries of a request
// with ticket, of mode, that was just queued; nil where none) that are in
// its way and younger than it; the shards of held are locked.
func (l *Local) youngerHolders(ticket uint64, mode Mode, held []*resource, now int64) []woundRef {
	if ticket == 0 {
		return nil
	}
	var refs []woundRef
	add := func(g *grant) {
		// Whether it has a hook is known in the shard of its UID, which
		// may not be locked: wound looks.
		if g.ticket > ticket && !l.expired(g, now) {
			refs = append(refs, woundRef{g.hash, strings.Clone(g.uid)})
		}
	}
	for _, r := range held {
		if r == nil {
			continue
		}
		if r.writer != nil {
			add(r.writer)
		}
		for _, g := range r.readerGrants() {
			if !Compatible(mode, g.mode) {
				add(g)
			}
		}
	}
	return refs
}

// wound delivers the wounds of refs, from a request with ticket; no shard
// may be locked.
func (l *Local) wound(refs []woundRef, ticket uint64) {
	for _, ref := range refs {
		s := &l.shards[l.shardOf(ref.hash)]
		s.mu.Lock()
		fn := s.takeWound(ref.hash, ref.uid)
		s.mu.Unlock()
		if fn != nil {
			fn(ticket)
		}
	}
}
