package locker

import (
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// maxFree bounds each shard's free lists, so that memory taken by a surge of
// grants is given back once the surge is over.
const maxFree = 1024

// A shard holds the resources whose names hash to it and the grants whose
// UIDs hash to it. An operation locks every shard it touches, always in
// ascending index order, so that operations on several shards cannot deadlock.
type shard struct {
	mu sync.Mutex // guards everything below but waiters

	// waiters counts calls blocked on mu; it bounds the pile-up under a surge.
	waiters atomic.Int32

	// Both indexes find entries by the 64-bit hash of the name or UID that
	// also picked the shard, so that an operation hashes each string once.
	resources index[*resource] // by name: the resources whose names hash here, with their holders
	grants    index[*grant]    // by UID: the grants whose UIDs hash here

	// lru links this shard's grants from least to most recently refreshed,
	// so that a sweep stops at the first grant still valid: expiry never scans
	// the whole table.
	lru grantList

	// tombs links this shard's tombstones from oldest to newest (they are
	// never refreshed): the sweep stops at the first one still valid, and
	// the cap of Config.MaxTombstones evicts the first.
	tombs grantList

	// Counts of what the shard holds, for the caps of Config.MaxGrants and
	// MaxTombstones and for Stats. Plain integers under mu: counting adds
	// no shared memory to the lock path.
	holds     int    // resources held by this shard's grants, expired or not: a grant on k counts k
	numGrants int    // this shard's grants, expired or not, but not its tombstones
	numTombs  int    // this shard's tombstones
	refused   uint64 // locks refused because holds was at the shard's cap
	evicted   uint64 // tombstones evicted at the shard's cap

	// wounds are the Wounded hooks of this shard's grants that have one,
	// by UID hash (see wound.go); nil if none ever had.
	wounds map[uint64][]woundHook

	freeGrants    *grant      // recycled grants, linked by next
	numFreeGrants int         // length of freeGrants
	freeResources []*resource // recycled resources

	// origins interns the (owner, source) pairs of this shard's grants:
	// every grant of one call site of one client process shares one, so a
	// grant keeps a pointer instead of two strings of its own.
	origins    map[origin]*originRef
	lastOrigin *originRef // the most recently used, checked first

	// intents lists resources kept, empty, for a writer's intent; the sweep
	// deletes them once the intent has lapsed.
	intents []*resource

	// writes remembers the fences of the write grants released from this
	// shard's resources (see version.go).
	writes writeMemory

	// waiting finds the queued waiters by the hash of their UIDs (see
	// queue.go); nil while none has been queued here.
	waiting map[uint64][]*waiter

	_ [64]byte // keeps neighbouring shards' hot fields on separate cache lines
}

// A resource is one locked name: one writer or any number of readers. It is
// kept to 48 bytes: readers live out of line, since most locks are writes.
type resource struct {
	name    string
	hash    uint64 // of name
	writer  *grant
	readers *readerList // nil until the resource first has readers
	queue   *waitQueue  // the requests waiting for it, oldest first; nil if none (see queue.go)
}

func (r *resource) indexKey() (uint64, string) { return r.hash, r.name }

// readerList is the read side of a resource: its holders, and the intent of
// a writer that readers refused (a writer is only ever held back by readers,
// so the intent lives here too).
type readerList struct {
	grants []*grant
	intent int64 // until when a refused writer holds new readers back; 0 if none
	// intentBy is the hash of the UID of the refused write lock that last
	// declared or renewed the intent: an Unlock of that UID naming the
	// resource withdraws it (the writer gave up).
	intentBy uint64
	listed   bool // the resource is on its shard's intents list
	// intentMode is the mode of the refused request that declared the
	// intent (ModeIX, ModeSIX or ModeX): it holds back the requests it
	// conflicts with.
	intentMode Mode
	// intentTicket is the ticket (LockArgs.Ticket) of the acquisition whose
	// refused request declared or renewed the intent, 0 if it had none. A
	// shared request with an older ticket is not held back (see
	// heldBackByIntent): the queues serve it first anyway, and holding it
	// back would keep it, at the head of a queue, from ever being served.
	intentTicket uint64
	// strong counts the grants of ModeIX and ModeSIX among grants: only
	// they may be in the way of a request for S or IS, which need not look
	// at the others.
	strong int32
}

// clearIntent ends the intent, if there is one.
func (rl *readerList) clearIntent() {
	rl.intent, rl.intentBy, rl.intentMode, rl.intentTicket = 0, 0, 0, 0
}

// heldBackByIntent reports whether a request of mode with ticket is held
// back at now by a writer's intent on r: a shared request (S, IS) that
// conflicts with the intent's mode, unless its ticket is older than the
// intent's. An older ticket passes because the queues order by ticket: the
// writer, when it waits here, waits behind it, and a request held back
// while older than every writer in its way would be served by nobody, at
// the head of its queue, until its wait ran out.
func (r *resource) heldBackByIntent(mode Mode, ticket uint64, now int64) bool {
	rl := r.readers
	if mode.exclusive() || rl == nil || now >= rl.intent || Compatible(mode, rl.intentMode) {
		return false
	}
	return ticket == 0 || rl.intentTicket == 0 || ticket >= rl.intentTicket
}

// readerGrants returns the read holders.
func (r *resource) readerGrants() []*grant {
	if r.readers == nil {
		return nil
	}
	return r.readers.grants
}

func (r *resource) addReader(g *grant) {
	if r.readers == nil {
		r.readers = new(readerList)
	}
	r.readers.grants = append(r.readers.grants, g)
	if g.mode.strong() {
		r.readers.strong++
	}
}

func (r *resource) empty() bool {
	return r.writer == nil && len(r.readerGrants()) == 0 && r.queue == nil
}

// origin is who asked for a grant: the client process and its call site.
// The holder a request names across processes (LockArgs.Holder) is kept by
// the grant itself (grant.holder): it is usually one of its own per lock,
// and an origin of its own per grant cost a lock 320 bytes more.
type origin struct{ owner, source string }

// originRef is an interned origin and the number of grants that use it.
type originRef struct {
	origin
	refs int
}

// A grant is one acquisition (one UID) on this node. It lives in the shard of
// its UID and is referenced from the resource entries it holds. Its fields
// other than refreshed are written only while the UID's shard and every
// resource's shard are locked, and read with at least one of them locked.
//
// It is kept to 96 bytes, a size class of the Go allocator: a node holding a
// million locks holds a million of these.
type grant struct {
	uid    string
	origin *originRef // nil for tombstones

	// res is the resource entry the grant holds, the first of them for a
	// lock on several, whose others are in more (nil for one resource).
	// Holding an entry keeps it in its shard's index, so the pointers stay
	// valid for as long as the grant lives.
	res  *resource
	more *[]*resource

	// quorum is LockArgs.Quorum, clamped to 0..math.MaxInt16.
	quorum int16

	// holderLen is the length of the holder the request named, whose bytes
	// follow the uid's in the grant's buffer (see holder); 0 for none.
	holderLen uint16

	// mode is the grant's Mode: ModeX for a write lock, which holds
	// resource.writer, any other for one on the reader list.
	mode Mode

	// public is LockArgs.PublicUID: Query tells the UID.
	public bool

	// tombstone marks a UID released before it was granted here: an unlock
	// that overtook its own lock request. The tombstone refuses that lock when
	// it arrives and lives, like a grant, until it expires.
	tombstone bool

	// bufCap is the capacity of the byte buffer that holds uid, at its
	// start, and the names of the resource entries the grant created; 0 if
	// the grant may not keep the buffer once free (see copyargs.go). A free
	// grant keeps the buffer, whole, as its uid. It is at most
	// maxSpareBuffer.
	bufCap uint8

	fence   uint64
	ticket  uint64 // LockArgs.Ticket: for requests in its way to compare (Reply.Ahead)
	granted int64  // nanoseconds since the table's epoch

	// refreshed is when the grant was last granted or refreshed, in
	// nanoseconds since the table's epoch. It is atomic so that a lock call
	// can see that a conflicting holder expired without locking its shard.
	refreshed atomic.Int64

	prev, next *grant // lru links; next also links the free list
	hash       uint64 // of uid
}

func (g *grant) indexKey() (uint64, string) { return g.hash, g.uid }

// holder returns the holder the grant's request named (LockArgs.Holder), or
// "". It is a view of the grant's buffer, valid while the grant lives and
// its shard is locked: hand out a copy.
func (g *grant) holder() string {
	if g.holderLen == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(g.uid)), len(g.uid))), int(g.holderLen))
}

// held appends the resource entries g holds to dst, in the order of the
// lock request, and returns the result.
func (g *grant) held(dst []*resource) []*resource {
	if g.res == nil {
		return dst // a tombstone
	}
	dst = append(dst, g.res)
	if g.more != nil {
		dst = append(dst, *g.more...)
	}
	return dst
}

// numHeld returns how many resources g holds (none for a tombstone).
func (g *grant) numHeld() int {
	switch {
	case g.res == nil:
		return 0
	case g.more == nil:
		return 1
	}
	return 1 + len(*g.more)
}

// holds reports whether g holds exactly names, in that order.
func (g *grant) holds(names []string) bool {
	var buf [8]*resource
	held := g.held(buf[:0])
	if len(held) != len(names) {
		return false
	}
	for i, r := range held {
		if r.name != names[i] {
			return false
		}
	}
	return true
}

// setHeld records the entries g holds, in the order of the lock request.
func (g *grant) setHeld(held []*resource) {
	g.res = held[0]
	if len(held) > 1 {
		more := slices.Clone(held[1:])
		g.more = &more
	}
}

func (s *shard) init() {
	s.origins = make(map[origin]*originRef)
}

// intern returns the shared origin of (owner, source) with one more
// reference; s.mu must be held. A new origin copies the strings.
func (s *shard) intern(owner, source string) *originRef {
	o := s.lastOrigin
	if o == nil || o.owner != owner || o.source != source {
		o = s.origins[origin{owner, source}]
		if o == nil {
			o = new(originRef)
			o.owner, o.source = cloneTwo(owner, source)
			s.origins[o.origin] = o
		}
		s.lastOrigin = o
	}
	o.refs++
	return o
}

// unintern drops a reference to o; s.mu must be held. An origin without
// references stays until the next sweep, so that a client locking and
// unlocking in turn does not allocate it again each time.
func (s *shard) unintern(o *originRef) { o.refs-- }

// forgetOrigins drops the origins no grant uses; s.mu must be held.
func (s *shard) forgetOrigins() {
	for k, o := range s.origins {
		if o.refs == 0 {
			delete(s.origins, k)
		}
	}
	if s.lastOrigin != nil && s.lastOrigin.refs == 0 {
		s.lastOrigin = nil
	}
}

// grant returns the grant of uid, whose hash is h, or nil; s.mu must be held.
func (s *shard) grant(h uint64, uid string) *grant { return s.grants.get(h, uid) }

// putGrant adds g, whose UID hashes to h and has no grant yet; s.mu must be
// held.
func (s *shard) putGrant(h uint64, g *grant) {
	g.hash = h
	s.grants.add(h, g)
}

// dropGrant removes g, whose UID hashes to h; s.mu must be held.
func (s *shard) dropGrant(h uint64, g *grant) { s.grants.remove(h, g) }

// dropTomb removes and recycles the tombstone g; s.mu must be held.
func (s *shard) dropTomb(g *grant) {
	s.dropGrant(g.hash, g)
	s.tombs.unlink(g)
	s.numTombs--
	s.freeGrant(g)
}

// resource returns the entry of name, whose hash is h, or nil; s.mu must be
// held.
func (s *shard) resource(h uint64, name string) *resource { return s.resources.get(h, name) }

// lock takes s.mu, counting the caller as a waiter while it blocks. If limit
// is positive and that many callers already wait, it returns false at once
// without the lock.
func (s *shard) lock(limit int32) bool {
	if s.mu.TryLock() {
		return true
	}
	if n := s.waiters.Add(1); limit > 0 && n > limit {
		s.waiters.Add(-1)
		return false
	}
	s.mu.Lock()
	s.waiters.Add(-1)
	return true
}

// newGrant returns a zeroed grant, recycled if possible; s.mu must be held.
// A recycled grant may still have its previous life's byte buffer, in uid,
// for its buffer method.
func (s *shard) newGrant() *grant {
	g := s.freeGrants
	if g == nil {
		return new(grant)
	}
	s.freeGrants = g.next
	s.numFreeGrants--
	g.next = nil
	return g
}

// freeGrant recycles g, which must be out of every map and list and
// released from its resources, whose shards must still be locked; s.mu must
// be held. g keeps its byte buffer if no live entry uses it.
func (s *shard) freeGrant(g *grant) {
	if len(s.wounds) > 0 {
		s.takeWound(g.hash, g.uid)
	}
	if g.origin != nil {
		s.unintern(g.origin)
	}
	if s.numFreeGrants >= maxFree {
		*g = grant{}
		return
	}
	spare := g.spareBuffer()
	*g = grant{}
	g.uid, g.bufCap = spare, uint8(len(spare))
	g.next = s.freeGrants
	s.freeGrants = g
	s.numFreeGrants++
}

// newResource creates the entry of name, whose hash is h and which has no
// entry; s.mu must be held. The entry keeps name: it must be the table's own
// string.
func (s *shard) newResource(h uint64, name string) *resource {
	var r *resource
	if n := len(s.freeResources); n > 0 {
		r = s.freeResources[n-1]
		s.freeResources = s.freeResources[:n-1]
	} else {
		r = new(resource)
	}
	r.name, r.hash = name, h
	s.resources.add(h, r)
	return r
}

// release removes g from r, an entry of this shard, deleting the entry once
// it is empty, unless a writer's intent, still in force, must outlive its
// readers; s.mu must be held. now is called only in that rare case: reading
// the clock is a good part of an unlock's cost.
func (s *shard) release(r *resource, g *grant, now func() int64) {
	if r.writer == g {
		r.writer = nil
		s.writes.remember(r.hash, g.fence)
	} else if rs := r.readerGrants(); len(rs) > 0 {
		if i := slices.Index(rs, g); i >= 0 {
			last := len(rs) - 1
			rs[i] = rs[last]
			rs[last] = nil
			r.readers.grants = rs[:last]
			if g.mode.strong() {
				r.readers.strong--
			}
		}
	}
	if !r.empty() {
		return
	}
	if rl := r.readers; rl != nil && rl.intent != 0 && now() < rl.intent {
		// The readers are gone but the writer has not come back yet: keep
		// the intent, or a new reader could slip in first.
		if !rl.listed {
			rl.listed = true
			s.intents = append(s.intents, r)
		}
		return
	}
	s.drop(r.hash, r)
}

// drop deletes the entry r, whose name hashes to h; s.mu must be held.
func (s *shard) drop(h uint64, r *resource) {
	s.resources.remove(h, r)
	r.name, r.hash = "", 0
	if r.readers != nil {
		if r.readers.listed {
			return // the intents list still refers to it; the sweep recycles it
		}
		r.readers.clearIntent()
	}
	s.recycle(r)
}

// recycle keeps the emptied, unlinked entry r for reuse; s.mu must be held.
func (s *shard) recycle(r *resource) {
	if len(s.freeResources) < maxFree {
		if r.readers != nil && cap(r.readers.grants) > 8 {
			r.readers = nil // do not keep a surge's large slices
		}
		s.freeResources = append(s.freeResources, r)
	}
}

// sweepIntents deletes the entries kept for intents that have lapsed at
// now; s.mu must be held. hash returns the hash of a resource name.
func (s *shard) sweepIntents(now int64, hash func(string) uint64) {
	kept := s.intents[:0]
	for _, r := range s.intents {
		rl := r.readers
		switch {
		case r.name == "": // dropped since it was listed
			rl.listed, rl.intent = false, 0
			s.recycle(r)
		case !r.empty(): // in use again; listed anew when it empties
			rl.listed = false
		case now >= rl.intent:
			rl.listed = false
			s.drop(r.hash, r)
		default:
			kept = append(kept, r)
		}
	}
	clear(s.intents[len(kept):])
	s.intents = kept
}

// grantList is a doubly linked list of grants, through their prev and next
// fields: a shard's grants in order of refresh, or its tombstones in order
// of burial. A grant is on at most one list.
type grantList struct {
	head, tail *grant
}

// pushBack appends g to l; the shard's mu must be held.
func (l *grantList) pushBack(g *grant) {
	g.prev, g.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = g
	} else {
		l.head = g
	}
	l.tail = g
}

// unlink removes g from l; the shard's mu must be held.
func (l *grantList) unlink(g *grant) {
	if g.prev != nil {
		g.prev.next = g.next
	} else {
		l.head = g.next
	}
	if g.next != nil {
		g.next.prev = g.prev
	} else {
		l.tail = g.prev
	}
	g.prev, g.next = nil, nil
}
