package locker

import (
	"context"
	"fmt"
)

// Versioner is implemented by lockers that tell what they know of the
// write grants of given resources: an optional capability, found by type
// assertion. Package dsync's DRWMutex.ReadVersion and Validate need it for
// optimistic reads: a reader asks a quorum of nodes before and after it
// reads, without a lock, and learns whether a writer was granted any of the
// resources in between.
//
// Version is safe for concurrent use, changes nothing, and grants nothing.
// It reads the fence counter first, then each resource under its shard's
// lock (several resources are not read at one instant), so that every
// write grant the node makes is either seen by the reply (in Writes, and in
// WriteHeld while it lives) or made after the counter was read, with a
// fence above Counter. Writes never understates: a node that no longer
// remembers a resource exactly reports a bound above its last write. It
// fails with ErrInvalidArgs for no resources, more than the table's
// MaxResources, or a name that is empty or too long, and, like the other
// calls, with ErrClosed, ErrBusy or a transport error.
type Versioner interface {
	Version(ctx context.Context, args VersionArgs) (VersionReply, error)
}

var _ Versioner = (*Local)(nil)

// Version reports, for each resource of args, the fence of its last write
// grant and whether a writer holds it now; see Versioner.
func (l *Local) Version(ctx context.Context, args VersionArgs) (VersionReply, error) {
	if l.closed.Load() {
		return VersionReply{}, ErrClosed
	}
	if err := l.checkNames("version", args.Resources); err != nil {
		return VersionReply{}, err
	}
	if err := ctx.Err(); err != nil {
		return VersionReply{}, fmt.Errorf("locker: version: %w", err)
	}
	n := len(args.Resources)
	// The counter is read before any resource: a grant that took a fence
	// at most Counter took it under the lock of its resources' shards, and
	// had set itself as their writer before it let go of them, so the reads
	// below see it (see remember).
	reply := VersionReply{
		Incarnation: l.incarnation,
		Counter:     l.fence.Load(),
		Writes:      make([]uint64, n),
		WriteHeld:   make([]bool, n),
	}
	now := l.now()
	reply.Grace = l.graceLeft(now)
	for i, name := range args.Resources {
		h := l.hash(name)
		s := &l.shards[l.shardOf(h)]
		if !s.lock(l.maxWaiters) {
			return VersionReply{}, fmt.Errorf("%w: version %q", ErrBusy, name)
		}
		last := s.writes.last(h)
		if r := s.resource(h, name); r != nil && r.writer != nil {
			last = max(last, r.writer.fence)
			reply.WriteHeld[i] = !l.expired(r.writer, now)
		}
		reply.Writes[i] = last
		s.mu.Unlock()
	}
	return reply, nil
}

// writeSlots is how many write grants released each shard remembers
// exactly (see writeMemory): a power of two.
const writeSlots = 128

// writeMemory remembers, for one shard, the fences of the write grants
// released from its resources, so that Version can tell the last write of
// a resource whose entry is gone (an entry is dropped as soon as nothing
// holds it). The fence of a grant that still holds its entry is in the
// entry (resource.writer): a grant's last act before it leaves is to be
// remembered here (shard.release), so every write grant the table made is
// always in one of the two places. The memory is kept beside the entries,
// rather than in them, so that an entry stays at 48 bytes.
//
// It is bounded: a direct-mapped table of writeSlots slots, picked by the
// high bits of the name's 64-bit hash (the low bits picked the shard). A
// slot keeps the hash and fence of the last write released on a name that
// maps there, and a floor: the largest fence of the writes it forgot to make
// room. A name answers its slot's fence if the slot holds its hash, else
// the floor. Both only err upwards, towards "changed": two names of one
// hash share a slot's fence, which only grows (fences of one table only
// grow); and a name whose fence was evicted answers a floor at least that
// fence. A write on another name of the same slot costs a reader its exact
// answer, and the eviction of that write raises the floor: a reader of a
// resource written long ago is told of a change only when two writes on
// names of its slot came between its reads.
type writeMemory struct {
	slots *[writeSlots]writeSlot // nil until the shard's first write is released
}

type writeSlot struct {
	hash  uint64 // of the name whose write is remembered; meaningful if fence > 0
	fence uint64 // of that write; 0 for none (fences start above 0)
	floor uint64 // the largest fence evicted from the slot
}

func slotOf(h uint64) int { return int(h >> 40 & (writeSlots - 1)) }

// remember records a write grant of fence, released from the name of hash
// h; the shard's mu must be held.
func (m *writeMemory) remember(h, fence uint64) {
	if m.slots == nil {
		m.slots = new([writeSlots]writeSlot)
	}
	s := &m.slots[slotOf(h)]
	if s.fence != 0 && s.hash != h {
		s.floor = max(s.floor, s.fence)
		s.fence = 0
	}
	s.hash, s.fence = h, max(s.fence, fence)
}

// last returns a bound at least the fence of every write grant released
// from the name of hash h; the shard's mu must be held.
func (m *writeMemory) last(h uint64) uint64 {
	if m.slots == nil {
		return 0
	}
	s := &m.slots[slotOf(h)]
	if s.fence != 0 && s.hash == h {
		return s.fence // the name's writes evicted before are older: smaller
	}
	return s.floor
}
