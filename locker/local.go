package locker

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Local is one node's lock table in memory. It implements NetLocker, and
// the optional Lister, Querier, Fencer, Versioner, WaitReporter and
// Submitter. All
// methods are safe for concurrent use.
//
// Local copies every string it keeps past a call (it is an ArgCopier):
// callers may reuse the memory of their arguments' strings once a call
// returns. The strings it returns (List, Query) are copies too.
//
// The table is split into shards, each under its own mutex, so that a surge
// on some resources does not queue every caller behind one lock; how many
// callers may wait for one shard is bounded by Config.MaxWaiters.
type Local struct {
	cfg         Config
	name        string
	clock       Clock
	epoch       time.Time                     // the table's zero of time; grant times are offsets from it
	since       func(time.Time) time.Duration // the clock's Since, or Now().Sub
	seed        maphash.Seed
	quietUntil  int64  // end of the quiet period, in nanoseconds since epoch
	incarnation uint64 // this run of the table (BootInfo.Incarnation): a reclaim must name it; VersionReply names it
	intentTTL   int64  // Config.WriterIntent in nanoseconds; <= 0 when off
	maxWaiters  int32
	holdCap     int // the most resources the grants of one shard may hold: Config.MaxGrants over the shards
	tombCap     int // the most tombstones one shard may keep: Config.MaxTombstones over the shards

	fence  atomic.Uint64 // last fence issued
	queued atomic.Int64  // waiters queued (see queue.go)
	closed atomic.Bool

	closeOnce sync.Once
	stop      chan struct{} // closed by Close to end the sweep loop
	swept     chan struct{} // closed when the sweep loop has ended

	shards    []shard // Config.Shards of them
	shardMask uint64  // len(shards) - 1

	waitTable waitTable // the holders that wait, for WaitReporter

	boot     *boot // the boot record in Config.StateDir; nil without one
	bootInfo BootInfo
	closeErr error // of writing the boot record at Close
}

// tableSeq numbers the tables of the process, for their names.
var tableSeq atomic.Uint64

// Compile-time checks that Local is a full locker.
var (
	_ NetLocker = (*Local)(nil)
	_ Lister    = (*Local)(nil)
	_ Submitter = (*Local)(nil)
)

// New returns an empty table configured by cfg and, unless
// cfg.SweepInterval is negative, starts the goroutine that reclaims expired
// grants; Close stops it. It panics if cfg.Validate reports an error, or if
// cfg.StateDir is set: use Open for configuration that comes from users, and
// for a table with a boot record.
//
// The table starts in its restart grace period (Config.QuietPeriod: one
// Validity by default), refusing new locks, unless cfg turns it off.
func New(cfg Config) *Local {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	if cfg.StateDir != "" {
		panic("locker: New with Config.StateDir set; use Open, which reports errors of the boot record")
	}
	return newLocal(cfg, nil)
}

// newLocal makes the table of New and Open; b is its boot record, or nil
// without a StateDir.
func newLocal(cfg Config, b *boot) *Local {
	cfg = cfg.withDefaults()
	l := &Local{
		cfg:        cfg,
		clock:      cfg.Clock,
		seed:       maphash.MakeSeed(),
		maxWaiters: int32(min(cfg.MaxWaiters, 1<<30)),
		stop:       make(chan struct{}),
		swept:      make(chan struct{}),
	}
	l.name = fmt.Sprintf("local-%d", tableSeq.Add(1))
	l.epoch = l.clock.Now()
	l.since = func(t time.Time) time.Duration { return l.clock.Now().Sub(t) }
	if c, ok := l.clock.(interface{ Since(time.Time) time.Duration }); ok {
		l.since = c.Since
	}
	l.boot = b
	l.incarnation = newIncarnation()
	if b != nil {
		l.quietUntil = int64(b.grace)
		l.bootInfo = BootInfo{ID: b.rec.ID, FirstStart: b.first, Boots: b.rec.Boots, Grace: b.grace, Reason: b.reason}
	} else {
		l.quietUntil = int64(max(cfg.QuietPeriod, 0))
		l.bootInfo = BootInfo{ID: newNodeID(), FirstStart: true, Boots: 1, Grace: time.Duration(l.quietUntil), Reason: "no state directory: a grace period on every start"}
		if cfg.QuietPeriod < 0 {
			l.bootInfo.Reason = "grace period turned off (Config.QuietPeriod negative)"
		}
	}
	l.bootInfo.Incarnation = l.incarnation
	l.intentTTL = int64(cfg.WriterIntent)
	// Fences start at the wall-clock time in nanoseconds, so that a node that
	// restarts normally issues fences above those of its previous run.
	l.fence.Store(uint64(max(l.epoch.UnixNano(), 0)))
	l.shards = make([]shard, cfg.Shards)
	l.shardMask = uint64(cfg.Shards - 1)
	l.holdCap = ceilDiv(cfg.MaxGrants, cfg.Shards)
	l.tombCap = ceilDiv(cfg.MaxTombstones, cfg.Shards)
	for i := range l.shards {
		l.shards[i].init()
	}
	if cfg.SweepInterval > 0 {
		go l.sweepLoop(cfg.SweepInterval)
	} else {
		close(l.swept)
	}
	return l
}

// Validity returns how long a grant lives here without a refresh.
func (l *Local) Validity() time.Duration { return l.cfg.Validity }

// String returns the table's name: "local-" and a number unique in the
// process.
func (l *Local) String() string { return l.name }

// IsOnline reports whether the table is open.
func (l *Local) IsOnline() bool { return !l.closed.Load() }

// Close stops the sweep goroutine. Calls after Close fail with ErrClosed.
// With a StateDir, Close records in the boot record whether the table still
// held a live grant, so that the next start knows whether it needs a grace
// period; it returns the error of that write. Otherwise it returns nil.
func (l *Local) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		close(l.stop)
		l.closeWaiters()
		if l.boot != nil {
			// Every lock call checks closed under its shards' locks before
			// it grants: once each shard has been taken here, none grants.
			for i := range l.shards {
				l.shards[i].mu.Lock()
				l.shards[i].mu.Unlock() //nolint:staticcheck // an empty critical section: a barrier
			}
			l.boot.rec.Running = l.liveGrants() > 0
			l.closeErr = l.boot.write()
		}
	})
	<-l.swept
	return l.closeErr
}

// liveGrants counts the grants that have not expired.
func (l *Local) liveGrants() int {
	now := l.now()
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for g := s.lru.tail; g != nil && !l.expired(g, now); g = g.prev {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

// now returns the time on the table's clock, in nanoseconds since the table
// was made. It uses the clock's Since if it has one: the real clock's reads
// only the monotonic clock, which costs half as much as Now.
func (l *Local) now() int64 { return int64(l.since(l.epoch)) }

func (l *Local) expired(g *grant, now int64) bool {
	return now-g.refreshed.Load() >= int64(l.cfg.Validity)
}

// hash returns the hash of a UID or resource name. Its low bits pick the
// shard; the whole is the key in the shard's maps.
func (l *Local) hash(name string) uint64 { return maphash.String(l.seed, name) }

func (l *Local) shardOf(h uint64) uint16 { return uint16(h & l.shardMask) }

// hashes appends to dst the hash of every name.
func (l *Local) hashes(dst []uint64, names []string) []uint64 {
	for _, n := range names {
		dst = append(dst, l.hash(n))
	}
	return dst
}

// shardSet appends to dst the sorted, distinct shards of the UID hash uh and
// the resource hashes rh.
func (l *Local) shardSet(dst []uint16, uh uint64, rh []uint64) []uint16 {
	dst = append(dst, l.shardOf(uh))
	for _, h := range rh {
		dst = append(dst, l.shardOf(h))
	}
	if len(dst) == 2 { // the common case: one resource
		if dst[0] > dst[1] {
			dst[0], dst[1] = dst[1], dst[0]
		} else if dst[0] == dst[1] {
			dst = dst[:1]
		}
		return dst
	}
	slices.Sort(dst)
	return slices.Compact(dst)
}

// lockShards locks the shards in idx, which must be sorted. If limit is
// positive and a shard has that many waiters, it unlocks what it took and
// returns false.
func (l *Local) lockShards(idx []uint16, limit int32) bool {
	for i, s := range idx {
		if !l.shards[s].lock(limit) {
			l.unlockShards(idx[:i])
			return false
		}
	}
	return true
}

func (l *Local) unlockShards(idx []uint16) {
	for _, s := range idx {
		l.shards[s].mu.Unlock()
	}
}

// check validates the lock arguments.
func (l *Local) check(op string, args *LockArgs) error {
	if err := l.checkUID(op, args.UID); err != nil {
		return err
	}
	if err := l.checkNames(op, args.Resources); err != nil {
		return err
	}
	if err := l.checkLabels(op, args); err != nil {
		return err
	}
	n := len(args.Resources)
	if n > 1 {
		sorted := args.Resources
		if !slices.IsSorted(sorted) {
			sorted = slices.Sorted(slices.Values(args.Resources))
		}
		for i := 1; i < n; i++ {
			if sorted[i] == sorted[i-1] {
				return fmt.Errorf("%w: %s: resource %q named twice", ErrInvalidArgs, op, sorted[i])
			}
		}
	}
	return nil
}

// Submit makes op at once, on the caller's goroutine, and hands the answer
// to sink before it returns. The table never makes a call wait longer than
// its shard lock, so timeout has nothing to bound. See Submitter.
//
// A lock with args.Wait waits on the table (see queue.go) for at most the
// smaller of args.Wait and timeout: Submit returns at once, and the answer
// comes when the request is granted or refused; a sink that is a QueueSink
// hears first that it is queued.
func (l *Local) Submit(ctx context.Context, op Op, args *LockArgs, timeout time.Duration, sink Sink, tag int) {
	if err := ctx.Err(); err != nil {
		sink.Done(tag, Reply{}, fmt.Errorf("locker: %s: %w (%w)", op, err, ErrNotSent))
		return
	}
	if (op == OpLock || op == OpRLock) && args.Wait > 0 {
		a := *args
		if timeout > 0 {
			a.Wait = min(a.Wait, timeout)
		}
		hooks := WaitHooks{Done: func(r Reply, err error) { sink.Done(tag, r, err) }}
		if qs, ok := sink.(QueueSink); ok {
			hooks.Queued = func(r Reply) { qs.Queued(tag, r.Ahead) }
		}
		if ws, ok := sink.(WoundSink); ok {
			hooks.Wounded = func(ahead uint64) { ws.Wounded(tag, ahead) }
		}
		r, err := l.acquire(ctx, &a, op == OpLock, &waitMode{hooks: hooks})
		if err != nil || r.Reason != ReasonQueued {
			sink.Done(tag, r, err)
		}
		return
	}
	r, err := op.Call(ctx, l, *args)
	sink.Done(tag, r, err)
}

// Lock grants a write lock on all of args.Resources to args.UID, or on none.
// With args.Wait, a request that must wait is queued, and Lock returns when
// it is granted or refused, or ctx ends (see queue.go). See NetLocker.
func (l *Local) Lock(ctx context.Context, args LockArgs) (Reply, error) {
	return l.lockBlocking(ctx, &args, true)
}

// RLock grants a read lock on all of args.Resources to args.UID, or on none.
// See Lock and NetLocker.
func (l *Local) RLock(ctx context.Context, args LockArgs) (Reply, error) {
	return l.lockBlocking(ctx, &args, false)
}

// lockBlocking is Lock or RLock: it waits for a queued request's outcome,
// or for ctx to end (the request is then withdrawn, and a grant that came
// at that moment released).
func (l *Local) lockBlocking(ctx context.Context, args *LockArgs, write bool) (Reply, error) {
	if args.Wait <= 0 {
		return l.acquire(ctx, args, write, nil)
	}
	type outcome struct {
		r   Reply
		err error
	}
	done := make(chan outcome, 1)
	r, err := l.acquire(ctx, args, write, &waitMode{hooks: WaitHooks{Done: func(r Reply, err error) { done <- outcome{r, err} }}})
	if err != nil || r.Reason != ReasonQueued {
		return r, err
	}
	select {
	case o := <-done:
		return o.r, o.err
	case <-ctx.Done():
		uh := l.hash(args.UID)
		if !l.withdraw(uh, args.UID) {
			if o := <-done; o.err == nil && o.r.OK { // granted as ctx ended
				l.remove(uh, args.UID, nil, false, func(g *grant) bool { return (g.mode == ModeX) == write })
			}
		}
		return Reply{}, fmt.Errorf("locker: %s: %w", map[bool]string{true: "lock", false: "rlock"}[write], ctx.Err())
	}
}

// acquire grants a lock, or refuses it, or, if wm asks it to and the
// request must wait, queues it (see queue.go). A hand-off (wm.self) is a
// queued waiter trying again.
func (l *Local) acquire(ctx context.Context, args *LockArgs, write bool, wm *waitMode) (Reply, error) {
	op := "rlock"
	if write {
		op = "lock"
	}
	var self *waiter
	if wm != nil {
		self = wm.self
	}
	if err := l.check(op, args); err != nil {
		return Reply{}, err
	}
	mode, err := lockMode(op, write, args.Mode)
	if err != nil {
		return Reply{}, err
	}
	if l.closed.Load() {
		return Reply{}, ErrClosed
	}
	if args.Reclaim && args.Incarnation != l.incarnation {
		// Asked for by an answer of another run of the table (or sent
		// without one): the grant it re-asserts may have been given to
		// another since, by a run whose grants this grace does not protect.
		return Reply{Reason: ReasonStaleReclaim}, nil
	}
	now, checkCtx := l.timeIn(ctx)
	if now < l.quietUntil && !args.Reclaim {
		return Reply{Reason: ReasonQuiet, Grace: time.Duration(l.quietUntil - now)}, nil
	}
	var hbuf [8]uint64
	var ibuf [8]uint16
	uh := l.hash(args.UID)
	rh := l.hashes(hbuf[:0], args.Resources)
	idx := l.shardSet(ibuf[:0], uh, rh)
	us := &l.shards[l.shardOf(uh)]

	reclaimed := false // expired grants were removed to make room (see the caps below)
	for attempt := 0; ; attempt++ {
		if !l.lockShards(idx, l.maxWaiters) {
			return Reply{}, fmt.Errorf("%w: %s %q", ErrBusy, op, args.Resources[0])
		}
		// The caller may have given up while we waited: granting now would
		// leave a lock nobody will release. (Most calls of a Burst skip
		// this: see Burst.)
		if checkCtx || attempt > 0 {
			if err := ctx.Err(); err != nil {
				l.unlockShards(idx)
				return Reply{}, fmt.Errorf("locker: %s: %w", op, err)
			}
		}
		if l.closed.Load() { // checked again under the shards: see Close
			l.unlockShards(idx)
			return Reply{}, ErrClosed
		}
		if self != nil && self.done {
			l.unlockShards(idx) // granted, refused or withdrawn meanwhile
			return Reply{Reason: ReasonReleased}, nil
		}
		if self == nil && us.waiting != nil {
			if w := us.queuedOf(uh, args.UID); w != nil {
				// A repeated request of a queued waiter (its client retried
				// after a lost reply): still queued.
				l.unlockShards(idx)
				if w.mode != mode {
					return Reply{Reason: ReasonUIDInUse}, nil
				}
				return Reply{Reason: ReasonQueued}, nil
			}
		}
		if g := us.grant(uh, args.UID); g != nil {
			reply := Reply{Reason: ReasonUIDInUse}
			if g.tombstone {
				reply.Reason = ReasonReleased
			} else if g.mode == mode && g.holds(args.Resources) && !l.expired(g, now) {
				// A repeated request (a client retrying after a lost reply)
				// gets the grant it already has.
				reply = Reply{OK: true, Fence: g.fence, Validity: l.cfg.Validity}
				g.refreshed.Store(now)
				us.lru.unlink(g)
				us.lru.pushBack(g)
			}
			l.unlockShards(idx)
			return reply, nil
		}

		var stale []grantRef // holders in the way that have expired
		conflict, waiting, queued := false, false, false
		var ahead uint64 // the lowest ticket in the way (Reply.Ahead)
		var rbuf [8]*resource
		held := rbuf[:0]                         // the entries of args.Resources; nil where there is none yet
		need := len(args.UID) + len(args.Holder) // bytes of the strings a grant would copy
		for i, name := range args.Resources {
			r := l.shards[l.shardOf(rh[i])].resource(rh[i], name)
			held = append(held, r)
			if r == nil {
				need += len(name)
				continue
			}
			if r.writer != nil {
				stale, conflict, ahead = l.classify(r.writer, now, stale, conflict, ahead)
			}
			if rl := r.readers; rl != nil && len(rl.grants) > 0 && (mode.exclusive() || rl.strong > 0) {
				// Every reader is compatible with S and IS but IX and SIX:
				// a shared request looks at them one by one only if there
				// are any.
				for _, g := range rl.grants {
					if !Compatible(mode, g.mode) {
						stale, conflict, ahead = l.classify(g, now, stale, conflict, ahead)
					}
				}
			}
			if r.heldBackByIntent(mode, args.Ticket, now) {
				// A writer's intent holds back the younger shared requests
				// (S, IS) it conflicts with; writers (IX, SIX, X) compete
				// as ever.
				waiting = true
			}
			if r.queue != nil && !args.Reclaim {
				// No taking a resource before an older waiter in the way.
				in, a := r.queue.inTheWay(self, args.Ticket, args.UID, mode)
				queued = queued || in
				ahead = lowestTicket(ahead, a)
			}
		}
		if len(stale) > 0 && attempt == 0 {
			// Remove the expired holders (that needs their own shards) and
			// look again.
			l.unlockShards(idx)
			l.removeExpired(stale)
			continue
		}
		if args.Reclaim {
			waiting = false // a reclaimed grant was held before the intent: it is not a new reader
		}
		if conflict || len(stale) > 0 || queued || waiting {
			if self != nil {
				l.unlockShards(idx) // a hand-off that must wait still: it stays queued
				return Reply{Reason: ReasonConflict, Ahead: ahead}, nil
			}
			if wm != nil && wm.hooks.Done != nil && args.Wait > 0 && !args.Reclaim && l.queued.Load() < int64(l.cfg.MaxQueued) {
				w := l.enqueue(args, write, mode, uh, rh, held, now, wm.hooks)
				reply := Reply{Reason: ReasonQueued, Ahead: ahead}
				if wm.hooks.Queued != nil {
					wm.hooks.Queued(reply)
				}
				wounded := l.youngerHolders(args.Ticket, mode, held, now)
				l.unlockShards(idx)
				l.armTimer(w, now)
				l.wound(wounded, args.Ticket)
				if args.Holder != "" && !args.NoIntent {
					l.recordWait(args, mode, now) // see WaitReporter
				}
				return reply, nil
			}
		}
		if conflict || len(stale) > 0 || queued {
			if mode.exclusive() && l.intentTTL > 0 && !args.NoIntent && !args.Reclaim && conflict {
				l.declareIntent(args.Resources, rh, uh, mode, args.Ticket, now)
			}
			l.unlockShards(idx)
			if args.Holder != "" && !args.NoIntent && !args.Reclaim {
				l.recordWait(args, mode, now) // see WaitReporter
			}
			return Reply{Reason: ReasonConflict, Ahead: ahead}, nil
		}
		if waiting {
			l.unlockShards(idx)
			return Reply{Reason: ReasonWriterWaiting}, nil
		}

		// The caps: what the grants of the UID's shard hold (see
		// Config.MaxGrants), and the fence counter (MaxFence).
		if us.holds+len(held) > l.holdCap {
			if !reclaimed {
				// Expired grants not yet swept count until they are gone:
				// remove enough of them, if there are, and look again.
				if stale := l.expiredGrants(us, now, us.holds+len(held)-l.holdCap); len(stale) > 0 {
					reclaimed = true
					l.unlockShards(idx)
					l.removeExpired(stale)
					continue
				}
			}
			us.refused++
			l.unlockShards(idx)
			return Reply{}, fmt.Errorf("%w: %s %q: the node holds as many grants as it may (MaxGrants %d, at most %d resources held in each of its %d shards)",
				ErrFull, op, args.Resources[0], l.cfg.MaxGrants, l.holdCap, len(l.shards))
		}
		fence := l.fence.Add(1)
		if fence > MaxFence {
			// Undone, so that the counter settles at MaxFence: every
			// later grant is refused too, and no fence wraps around.
			l.fence.Add(^uint64(0))
			l.unlockShards(idx)
			return Reply{}, fmt.Errorf("%w: %s %q: the node's fence counter has reached %d (MaxFence)", ErrFenceExhausted, op, args.Resources[0], uint64(MaxFence))
		}

		// The grant copies its UID, and the names of the entries it creates,
		// into one buffer (see copyargs.go).
		g := us.newGrant()
		buf := g.buffer(need)
		g.uid, buf = keep(buf, args.UID)
		_, buf = keep(buf, args.Holder) // right after the uid: see grant.holder
		g.holderLen = uint16(len(args.Holder))
		g.origin = us.intern(args.Owner, args.Source)
		g.mode, g.quorum = mode, int16(min(max(args.Quorum, 0), math.MaxInt16))
		g.public = args.PublicUID
		g.ticket = args.Ticket
		g.fence = fence
		g.granted = now
		g.refreshed.Store(now)
		for i, r := range held {
			if r == nil {
				var name string
				name, buf = keep(buf, args.Resources[i])
				r = l.shards[l.shardOf(rh[i])].newResource(rh[i], name)
				held[i] = r
			}
			if mode == ModeX {
				r.writer = g
				if r.readers != nil {
					r.readers.clearIntent() // the writer it was kept for came
				}
			} else {
				r.addReader(g)
				if rl := r.readers; mode.exclusive() && rl.intent != 0 && (rl.intentBy == uh || rl.intentMode == mode) {
					// The writer it was kept for came (another attempt of
					// it has another UID), or one like it.
					rl.clearIntent()
				}
			}
		}
		g.setHeld(held)
		us.putGrant(uh, g)
		us.lru.pushBack(g)
		us.holds += len(held)
		us.numGrants++
		if wm != nil {
			hook := wm.hooks.Wounded
			if self != nil {
				hook = self.hooks.Wounded
			}
			if hook != nil && args.Ticket != 0 {
				us.addWound(g, hook)
			}
		}
		reply := Reply{OK: true, Fence: g.fence, Validity: l.cfg.Validity} // g may be recycled once unlocked
		if self != nil {
			l.dequeueLocked(self) // its other queues lose a waiter, but nothing was freed
		}
		l.unlockShards(idx)
		if args.Holder != "" {
			l.endWait(args.Holder, nil) // a sequential holder granted is no longer waiting
		}
		return reply, nil
	}
}

// declareIntent records, on every resource that readers hold, that a
// writer, a request of mode (ModeIX, ModeSIX or ModeX) whose UID hashes to
// uh, was refused at now and holds new readers that conflict with it back
// for the intent's duration; the resources' shards must be locked.
func (l *Local) declareIntent(resources []string, rh []uint64, uh uint64, mode Mode, ticket uint64, now int64) {
	for i, name := range resources {
		r := l.shards[l.shardOf(rh[i])].resource(rh[i], name)
		if r != nil && r.writer == nil && len(r.readerGrants()) > 0 {
			rl := r.readers
			rl.intent, rl.intentBy, rl.intentMode, rl.intentTicket = now+l.intentTTL, uh, mode, ticket
		}
	}
}

// withdrawIntent ends the intent on args.Resources that the refused write
// lock of args.UID, whose hash is uh, declared or last renewed; an intent
// renewed since by another writer stays. An entry kept only for the intent
// is dropped.
func (l *Local) withdrawIntent(args *LockArgs, uh uint64) {
	var hbuf [8]uint64
	var ibuf [8]uint16
	rh := l.hashes(hbuf[:0], args.Resources)
	idx := l.shardSet(ibuf[:0], uh, rh)
	l.lockShards(idx, 0)
	for i, name := range args.Resources {
		r := l.shards[l.shardOf(rh[i])].resource(rh[i], name)
		if r != nil && r.readers != nil && r.readers.intent != 0 && r.readers.intentBy == uh {
			r.readers.clearIntent()
			if r.empty() { // kept only for the intent
				l.shards[l.shardOf(rh[i])].drop(rh[i], r)
			}
		}
	}
	l.unlockShards(idx)
}

// grantRef names a grant to be touched later without the shards locked in
// between. It holds the hash of the grant's UID, read while the grant is
// known live, and not the UID itself: the table hands out none of its own
// strings (see copyargs.go). Before the grant is touched, under the UID's
// shard, it is checked to still be there under that hash. (Tombstones are
// never referred to so: they touch only their own shard, and are dropped
// under its lock.)
type grantRef struct {
	hash uint64
	g    *grant
}

// refOf returns a reference to g; a shard that g's fields may be read under
// must be locked.
func refOf(g *grant) grantRef { return grantRef{g.hash, g} }

// live reports whether g is still in s, its UID's shard, under the hash h;
// s.mu must be held. g's fields may be read there even if g was freed
// meanwhile: a grant is only ever recycled within its shard.
func (s *shard) live(h uint64, g *grant) bool {
	return g.hash == h && s.grant(h, g.uid) == g
}

// find returns the grant of uid, whose hash is h, or, if want is not nil,
// want if it is still live under h; else nil. s is the shard of h and s.mu
// must be held.
func (s *shard) find(h uint64, uid string, want *grant) *grant {
	if want == nil {
		return s.grant(h, uid)
	}
	if s.live(h, want) {
		return want
	}
	return nil
}

// classify notes holder g of a resource in the way of a new lock: as stale if
// it has expired, else as a conflict, whose ticket may be the lowest in the
// way. The resource's shard must be locked.
func (l *Local) classify(g *grant, now int64, stale []grantRef, conflict bool, ahead uint64) ([]grantRef, bool, uint64) {
	if l.expired(g, now) {
		return append(stale, refOf(g)), conflict, ahead
	}
	return stale, true, lowestTicket(ahead, g.ticket)
}

// Unlock releases the write lock of args.UID. See NetLocker.
func (l *Local) Unlock(ctx context.Context, args LockArgs) (Reply, error) {
	return l.unlock("unlock", &args, true)
}

// RUnlock releases the read lock of args.UID, or its lock of another mode
// than ModeX (see LockArgs.Mode). See NetLocker.
func (l *Local) RUnlock(ctx context.Context, args LockArgs) (Reply, error) {
	return l.unlock("runlock", &args, false)
}

func (l *Local) unlock(op string, args *LockArgs, write bool) (Reply, error) {
	if err := l.checkUID(op, args.UID); err != nil {
		return Reply{}, err
	}
	withdraw := len(args.Resources) > 0 && (write || args.Mode.exclusive())
	if withdraw {
		if err := l.check(op, args); err != nil {
			return Reply{}, err
		}
	}
	if l.closed.Load() {
		return Reply{}, ErrClosed
	}
	uh := l.hash(args.UID)
	if l.queued.Load() > 0 && l.withdraw(uh, args.UID) {
		// A waiter whose client gave up: it leaves the queues (and is told
		// so), and a tombstone refuses its request if it comes again.
		s := &l.shards[l.shardOf(uh)]
		s.mu.Lock()
		if s.grant(uh, args.UID) == nil {
			l.bury(s, uh, args.UID)
		}
		s.mu.Unlock()
		return Reply{Grace: l.graceLeft(l.now())}, nil
	}
	ok := l.remove(uh, args.UID, nil, true, func(g *grant) bool { return (g.mode == ModeX) == write })
	if ok {
		return Reply{OK: true}, nil
	}
	if withdraw && l.intentTTL > 0 {
		l.withdrawIntent(args, uh)
	}
	return Reply{Grace: l.graceLeft(l.now())}, nil
}

// graceLeft returns how much of the restart grace period is left at now,
// or zero once it is over.
func (l *Local) graceLeft(now int64) time.Duration {
	return time.Duration(max(l.quietUntil-now, 0))
}

// Grace returns how much of the table's restart grace period is left (see
// Config.QuietPeriod): zero once it is over, or if there is none.
func (l *Local) Grace() time.Duration { return l.graceLeft(l.now()) }

// remove deletes a grant from every shard that refers to it, if the grant
// exists and keep(grant) is true: the grant of uid, whose hash is uh, or, if
// want is not nil, want itself, if it is still the grant of a UID whose hash
// is uh. keep runs with every shard of the grant locked. If there is no grant
// and bury is true, it leaves a tombstone so that a lock request for uid
// still on its way is refused when it comes. It reports whether a grant was
// removed.
func (l *Local) remove(uh uint64, uid string, want *grant, bury bool, keep func(*grant) bool) bool {
	ui := l.shardOf(uh)
	us := &l.shards[ui]
	us.mu.Lock()
	g := us.find(uh, uid, want)
	if g == nil {
		if bury {
			l.bury(us, uh, uid)
		}
		us.mu.Unlock()
		return false
	}
	if g.tombstone {
		us.mu.Unlock()
		return false
	}
	var rbuf [8]*resource
	var hbuf [8]uint64
	var ibuf [8]uint16
	held := g.held(rbuf[:0]) // g's fields are stable while us is locked
	rh := hbuf[:0]
	for _, r := range held {
		rh = append(rh, r.hash)
	}
	idx := l.shardSet(ibuf[:0], uh, rh)
	if idx[0] == ui {
		// The UID's shard comes first in lock order: take the others too.
		for _, s := range idx[1:] {
			l.shards[s].mu.Lock()
		}
	} else {
		// Start again in lock order, then make sure the grant is the same.
		us.mu.Unlock()
		l.lockShards(idx, 0)
		if us.find(uh, uid, want) != g {
			l.unlockShards(idx)
			return false
		}
	}
	if !keep(g) {
		l.unlockShards(idx)
		return false
	}
	var serve []resourceKey // freed resources that requests wait for
	for _, r := range held {
		if r.queue != nil {
			serve = append(serve, resourceKey{r.hash, strings.Clone(r.name)})
		}
		l.shards[l.shardOf(r.hash)].release(r, g, l.now)
	}
	us.dropGrant(uh, g)
	us.lru.unlink(g)
	us.holds -= len(held)
	us.numGrants--
	us.freeGrant(g)
	l.unlockShards(idx)
	if serve != nil {
		l.serve(serve) // hand the resources to their next waiters
	}
	return true
}

// bury records a tombstone for uid, which has no grant; s is uid's shard and
// s.mu must be held. The tombstone keeps a copy of uid. A shard that keeps
// as many tombstones as it may (Config.MaxTombstones) evicts its oldest.
func (l *Local) bury(s *shard, uh uint64, uid string) {
	if s.numTombs >= l.tombCap && s.tombs.head != nil {
		s.dropTomb(s.tombs.head)
		s.evicted++
	}
	g := s.newGrant()
	g.uid, _ = keep(g.buffer(len(uid)), uid)
	g.tombstone = true
	now := l.now()
	g.granted = now
	g.refreshed.Store(now)
	s.putGrant(uh, g)
	s.tombs.pushBack(g)
	s.numTombs++
}

// expiredGrants returns references to the grants of s, least recently
// refreshed first, that have expired at now, enough of them to hold need
// resources between them if there are; s.mu must be held.
func (l *Local) expiredGrants(s *shard, now int64, need int) []grantRef {
	var stale []grantRef
	for g := s.lru.head; g != nil && need > 0 && l.expired(g, now); g = g.next {
		stale = append(stale, refOf(g))
		need -= g.numHeld()
	}
	return stale
}

// removeExpired removes the grants of refs that are still there and still
// expired. It returns how many it removed.
func (l *Local) removeExpired(refs []grantRef) int {
	n := 0
	for _, ref := range refs {
		if l.remove(ref.hash, "", ref.g, false, func(g *grant) bool { return l.expired(g, l.now()) }) {
			n++
		}
	}
	return n
}

// Refresh extends the validity of each of args.UIDs that this table holds.
// A grant that has already expired is removed and reported as not held: once
// a grant has outlived its validity another client may have been granted the
// resource, so it cannot be revived. See NetLocker.
func (l *Local) Refresh(ctx context.Context, args RefreshArgs) (RefreshReply, error) {
	if l.closed.Load() {
		return RefreshReply{}, ErrClosed
	}
	for _, uid := range args.UIDs { // refused whole, before anything is hashed
		if err := l.checkUIDLen("refresh", uid); err != nil {
			return RefreshReply{}, err
		}
	}
	status := make([]RefreshStatus, len(args.UIDs))
	var stale []grantRef
	now := l.now()
	for i, uid := range args.UIDs {
		status[i] = RefreshNotHeld
		uh := l.hash(uid)
		s := &l.shards[l.shardOf(uh)]
		s.mu.Lock()
		if g := s.grant(uh, uid); g != nil && !g.tombstone {
			if l.expired(g, now) {
				stale = append(stale, refOf(g))
			} else {
				g.refreshed.Store(now)
				s.lru.unlink(g)
				s.lru.pushBack(g)
				status[i] = RefreshRefreshed
			}
		}
		s.mu.Unlock()
	}
	l.removeExpired(stale)
	reply := RefreshReply{Status: status, Validity: l.cfg.Validity, Grace: l.graceLeft(now)}
	if reply.Grace > 0 {
		reply.Incarnation = l.incarnation // for the reclaims this answer asks for
	}
	return reply, nil
}

// ForceUnlock removes the grant of args.UID if it is set, else every holder of
// args.Resources, whatever their kind. See NetLocker.
func (l *Local) ForceUnlock(ctx context.Context, args LockArgs) (Reply, error) {
	if l.closed.Load() {
		return Reply{}, ErrClosed
	}
	if args.UID != "" {
		if err := l.checkUIDLen("force-unlock", args.UID); err != nil {
			return Reply{}, err
		}
		return Reply{OK: l.remove(l.hash(args.UID), args.UID, nil, false, func(*grant) bool { return true })}, nil
	}
	if len(args.Resources) == 0 {
		return Reply{}, fmt.Errorf("%w: force-unlock: neither uid nor resources", ErrInvalidArgs)
	}
	if err := l.checkNames("force-unlock", args.Resources); err != nil {
		return Reply{}, err
	}
	var holders []grantRef
	for _, name := range args.Resources {
		h := l.hash(name)
		s := &l.shards[l.shardOf(h)]
		s.mu.Lock()
		if r := s.resource(h, name); r != nil {
			if r.writer != nil {
				holders = append(holders, refOf(r.writer))
			}
			for _, g := range r.readerGrants() {
				holders = append(holders, refOf(g))
			}
		}
		s.mu.Unlock()
	}
	removed := false
	for _, ref := range holders {
		if l.remove(ref.hash, "", ref.g, false, func(*grant) bool { return true }) {
			removed = true
		}
	}
	return Reply{OK: removed}, nil
}

// Expire removes every grant not refreshed within the validity and returns
// how many it removed. The sweep goroutine calls it; tests that drive a fake
// clock call it directly. Its cost is proportional to the number of shards
// and of distinct client call sites, plus the number of grants removed: it
// never scans valid grants.
func (l *Local) Expire() int {
	now := l.now()
	l.sweepWaits(now)
	var stale []grantRef
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.forgetOrigins()
		s.sweepIntents(now, l.hash)
		s.resources.shrink()
		s.grants.shrink()
		for g := s.lru.head; g != nil && l.expired(g, now); g = g.next {
			stale = append(stale, refOf(g))
		}
		for g := s.tombs.head; g != nil && l.expired(g, now); g = s.tombs.head {
			s.dropTomb(g) // it touches only its own shard
		}
		s.mu.Unlock()
	}
	return l.removeExpired(stale)
}

func (l *Local) sweepLoop(every time.Duration) {
	defer close(l.swept)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.Expire()
		}
	}
}

// Stats counts what the table holds, and what its caps refused.
type Stats struct {
	Grants     int    // acquisitions (UIDs) held, expired or not yet reclaimed
	Resources  int    // distinct resources locked
	Held       int    // resources held by the grants, a grant on k counting k: what Config.MaxGrants bounds
	Tombstones int    // UIDs released before their lock arrived, kept for one validity or until evicted
	Refused    uint64 // locks refused with ErrFull since the table started (Config.MaxGrants)
	Evicted    uint64 // tombstones evicted since the table started (Config.MaxTombstones)
	Queued     int    // lock requests waiting on the table (LockArgs.Wait)
}

// Stats returns the table's current counts. It locks each shard in turn,
// reading a few counters under each: cheap enough for metrics, but the
// counts of different shards are not read at one instant.
func (l *Local) Stats() Stats {
	var st Stats
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		st.Grants += s.numGrants
		st.Resources += s.resources.len()
		st.Held += s.holds
		st.Tombstones += s.numTombs
		st.Refused += s.refused
		st.Evicted += s.evicted
		s.mu.Unlock()
	}
	st.Queued = int(l.queued.Load())
	return st
}
