package rest

import (
	"time"
)

// replayCache remembers the MACs of accepted requests for as long as a replay
// of one could pass the verifier's window check, so that the verifier refuses
// the replay. It is not safe for concurrent use: the verifier's mutex guards it.
//
// Layout. Keys are filed by the request's own timestamp ts (the signed
// wall-clock nanoseconds of its header), not by arrival: the time axis is cut
// into epochs of g = ceil(window/16) nanoseconds (at least 1), and epoch
// e = floor(ts/g) lives in slot e mod replaySlots of a ring. A slot holds a
// set of 64-bit keys (the first 8 bytes of the MAC), the newest epoch filed
// in it and the monotonic time of its last insertion. A lookup and an insert
// touch only slot(ts); live traffic is stamped close to the node's now, so
// that is one of the last few slots, whose set is small and cache-hot, where
// one map of every MAC in the window would be megabytes of cold lines.
//
// Ring size. Without clock steps, a slot of epoch e takes its last key no
// later than (e+1)g + window (the last moment such a ts passes the window
// check) and is reclaimed by 2×window after that (rule below), while the
// newest epoch in use is floor((now+window)/g). So at any time the live epochs
// lie within 4×window + 2g of each other: at most 4×16 + 3 = 67 epochs, as
// window/g <= 16. replaySlots = 128 > 67 slots means a slot is never needed
// by two live epochs, and leaves room for a forward clock step of about
// 4×window without two epochs meeting. If they do meet (a larger step), the
// slot keeps both epochs' keys in one set (see insert): nothing is forgotten
// and nothing is refused for it; the slot just lives as long as its newest
// epoch requires.
//
// Retention. A slot is reclaimed (its keys forgotten) only when both
//
//	(a) every ts it can hold is older than now - window - g on the node's wall
//	    clock (its newest epoch e has (e+2)g <= now - window), so that no
//	    replay of its keys can pass |now - ts| <= window any more; and
//	(b) its last insertion was more than 2×window ago on the monotonic clock,
//	    so that a step back of the node's wall clock does not reopen replays
//	    within 2×window of their acceptance.
//
// Without clock steps a key is thus kept about 2×window + g after its slot's
// last insertion (b binds; a holds window earlier), so memory follows the
// live rate: about rate × 2×window keys. Reclaiming is eager and amortized
// O(1): a cursor walks the ring in epoch order, one slot at a time, and waits
// at the first slot that (b) still protects. A slot that is skipped because
// it was filled after a backward wall-clock step is reclaimed on a later turn
// of the cursor (at most replaySlots epochs later), or by the sweep that runs
// when the cache is full. A reclaimed set is cleared and kept for reuse (at
// most replaySpares of them); others are dropped to the garbage collector.
//
// Capacity. At most capacity keys are remembered at once, in all slots
// together; a request past that is refused with errReplayFull, never
// accepted unremembered. Sets are open-addressed tables of at most 3/4 load,
// 11 to 21 bytes a key.
//
// Collisions. Two genuine requests in one slot whose MACs share their first 8
// bytes look like a replay, and the second is refused (as a replay: never
// accepted). The odds for a request are about n/2^64 for the n keys in its
// slot; a key of 0 is filed as 1, doubling the odds for those two values.
// Keys are MAC output, which a sender without the secret cannot choose, so
// they are used as their own hash.
type replayCache struct {
	window   time.Duration
	g        int64 // epoch width in nanoseconds
	capacity int   // most keys at once
	n        int   // keys at present, in all slots

	// next is the reclaiming cursor: epochs before it have been considered.
	// It only grows.
	next   int64
	slots  [replaySlots]replaySlot
	spares [][]uint64 // cleared tables for reuse, at most replaySpares
}

const (
	// replaySlots is the size of the ring; a power of two. See replayCache.
	replaySlots = 128
	// replaySpares bounds the cleared tables kept for reuse.
	replaySpares = 2
	// replayMinTable is the size of a slot's first table.
	replayMinTable = 64
)

// replaySlot is one slot of the ring.
type replaySlot struct {
	keys  []uint64      // open-addressed table, len a power of two or 0; 0 = empty cell
	n     int           // keys in the table
	epoch int64         // newest epoch filed here; meaningful when n > 0
	last  time.Duration // monotonic time of the last insertion
}

// newReplayCache returns an empty cache for a window (> 0) and a capacity
// (> 0).
func newReplayCache(window time.Duration, capacity int) *replayCache {
	return &replayCache{
		window:   window,
		g:        max(1, (int64(window)+15)/16),
		capacity: capacity,
		next:     minEpoch,
	}
}

// minEpoch starts the cursor: below any epoch it could be asked to reach.
const minEpoch = -1 << 62

// insert remembers key (the first 8 bytes of a MAC), of a request stamped ts,
// at the node's time now: wall, its wall clock in nanoseconds since the Unix
// epoch, and mono, its monotonic clock (any fixed origin). It returns
// errAuthReplay if key is remembered for ts's slot, errReplayFull if the
// cache holds capacity keys that may not be forgotten yet, and nil once key
// is remembered.
//
// wall may step either way. mono may lag a little behind an earlier call's
// (the verifier reads the clock before it takes its lock); a slot's last
// insertion is the latest mono it was given.
func (c *replayCache) insert(ts int64, key uint64, wall int64, mono time.Duration) error {
	if key == 0 {
		key = 1
	}
	c.reclaimOld(wall, mono)
	e := floorDiv(ts, c.g)
	s := &c.slots[e&(replaySlots-1)]
	if s.n > 0 && s.contains(key) {
		return errAuthReplay
	}
	if c.n >= c.capacity {
		c.sweep(wall, mono)
		if c.n >= c.capacity {
			return errReplayFull
		}
	}
	if s.n == 0 {
		s.epoch = e
	} else if e > s.epoch {
		// Two epochs meet in one slot (after a clock step, or for a ts far
		// from now): keep the keys of both, and the slot until the newer
		// one may go.
		s.epoch = e
	}
	s.add(key, c)
	s.last = max(s.last, mono)
	c.n++
	return nil
}

// len returns the number of keys remembered.
func (c *replayCache) len() int { return c.n }

// reclaimableBefore returns the newest epoch that rule (a) lets go at wall
// time wall: every ts of epoch e < now - window - g iff (e+2)g <= now - window.
func (c *replayCache) reclaimableBefore(wall int64) int64 {
	return floorDiv(wall-int64(c.window), c.g) - 2
}

// mayReclaim reports whether rules (a) and (b) let s go.
func (c *replayCache) mayReclaim(s *replaySlot, newest int64, mono time.Duration) bool {
	return s.n > 0 && s.epoch <= newest && mono-s.last > 2*c.window
}

// reclaimOld moves the cursor over the epochs that rule (a) lets go,
// reclaiming their slots, and stops at the first slot that rule (b) still
// protects. Amortized O(1): the cursor only moves forward, and at most
// replaySlots steps per call.
func (c *replayCache) reclaimOld(wall int64, mono time.Duration) {
	newest := c.reclaimableBefore(wall)
	if newest-c.next >= replaySlots {
		c.next = newest - replaySlots + 1 // a clock step forward: one turn visits every slot
	}
	for ; c.next <= newest; c.next++ {
		s := &c.slots[c.next&(replaySlots-1)]
		if s.n == 0 {
			continue
		}
		if !c.mayReclaim(s, newest, mono) {
			// (b) protects it (or (a), for a slot given a ts far ahead of
			// the wall clock). Without clock steps, the slots after it took
			// their last keys later, so (b) protects them too; after a step,
			// a later turn of the cursor or a sweep reclaims them.
			return
		}
		c.reclaim(s)
	}
}

// sweep reclaims every slot that may go. It runs only when the cache is full,
// to catch slots the cursor has not reached (after a wall-clock step).
func (c *replayCache) sweep(wall int64, mono time.Duration) {
	newest := c.reclaimableBefore(wall)
	for i := range c.slots {
		if s := &c.slots[i]; c.mayReclaim(s, newest, mono) {
			c.reclaim(s)
		}
	}
}

// reclaim forgets the keys of s and keeps its table for reuse if there is
// room among the spares.
func (c *replayCache) reclaim(s *replaySlot) {
	c.n -= s.n
	if len(c.spares) < replaySpares {
		clear(s.keys)
		c.spares = append(c.spares, s.keys)
	}
	*s = replaySlot{}
}

// contains reports whether key (non-zero) is in s.
func (s *replaySlot) contains(key uint64) bool {
	mask := uint64(len(s.keys) - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		switch s.keys[i] {
		case key:
			return true
		case 0:
			return false
		}
	}
}

// add puts key (non-zero, not in s) into s, growing its table to keep the
// load at most 3/4.
func (s *replaySlot) add(key uint64, c *replayCache) {
	if s.keys == nil {
		if k := len(c.spares); k > 0 {
			s.keys, c.spares = c.spares[k-1], c.spares[:k-1]
		} else {
			s.keys = make([]uint64, replayMinTable)
		}
	}
	if 4*(s.n+1) > 3*len(s.keys) {
		old := s.keys
		s.keys = make([]uint64, 2*len(old))
		for _, k := range old {
			if k != 0 {
				s.put(k)
			}
		}
	}
	s.put(key)
	s.n++
}

// put stores key in the first empty cell of its probe sequence.
func (s *replaySlot) put(key uint64) {
	mask := uint64(len(s.keys) - 1)
	i := key & mask
	for s.keys[i] != 0 {
		i = (i + 1) & mask
	}
	s.keys[i] = key
}

// floorDiv returns floor(a/b) for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
