package locker

// indexed is what an index holds: a grant or a resource entry, which knows
// the 64-bit hash and the text of its key (a UID or a resource name).
type indexed interface {
	comparable
	indexKey() (uint64, string)
}

// index is a hash set of entries found by the hash and text of their keys:
// the part of a shard that maps UIDs to grants, or names to resources.
//
// It is open addressing with linear probing, and holds only a pointer and a
// one-byte tag per slot, at most three quarters full: about 16 bytes per
// entry on average, against about 47 for a Go map from the 64-bit hash to
// the pointer. With a million locks held, and an index of grants and one of
// resources, that is most of the difference between a table that fits in
// 300 bytes per lock and one that does not (see bench/memory_test.go). The
// tag, seven other bits of the hash, lets a probe skip slots without
// touching their entries. Deletion shifts the entries that follow back into
// the freed slot, so there are no tombstones and probe sequences stay short.
//
// Every hash in one shard has the same low bits (they picked the shard), so
// the index starts its probes from higher bits.
type index[E indexed] struct {
	slots []E
	tags  []uint8 // 0: empty; else tagOf the entry's hash
	used  int
}

// minIndexSize is the smallest non-empty index, in slots.
const minIndexSize = 8

func tagOf(h uint64) uint8 { return uint8(h>>57) + 1 } // 1..128

func (x *index[E]) home(h uint64) int { return int((h >> 8) & uint64(len(x.slots)-1)) }

// get returns the entry whose key hashes to h and is key, or the zero E.
func (x *index[E]) get(h uint64, key string) E {
	var none E
	if x.used == 0 {
		return none
	}
	mask, tag := len(x.slots)-1, tagOf(h)
	for i := x.home(h); ; i = (i + 1) & mask {
		switch x.tags[i] {
		case 0:
			return none
		case tag:
			e := x.slots[i]
			if eh, ek := e.indexKey(); eh == h && ek == key {
				return e
			}
		}
	}
}

// add inserts e, whose key hashes to h. The caller makes sure that no entry
// with the same key is present.
func (x *index[E]) add(h uint64, e E) {
	if (x.used+1)*4 > len(x.slots)*3 {
		x.resize(max(minIndexSize, 2*len(x.slots)))
	}
	x.place(h, e)
	x.used++
}

// place puts e in the first free slot of its probe sequence.
func (x *index[E]) place(h uint64, e E) {
	mask := len(x.slots) - 1
	i := x.home(h)
	for x.tags[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i], x.tags[i] = e, tagOf(h)
}

// remove deletes e, whose key hashes to h, if it is present.
func (x *index[E]) remove(h uint64, e E) {
	var none E
	if x.used == 0 {
		return
	}
	mask := len(x.slots) - 1
	i := x.home(h)
	for x.slots[i] != e {
		if x.tags[i] == 0 {
			return // absent
		}
		i = (i + 1) & mask
	}
	// Shift back every later entry of the run that may move into the hole:
	// one whose home is not cyclically within (hole, its slot].
	for j := (i + 1) & mask; x.tags[j] != 0; j = (j + 1) & mask {
		eh, _ := x.slots[j].indexKey()
		k := x.home(eh)
		if i <= j && i < k && k <= j || i > j && (i < k || k <= j) {
			continue // it would no longer be found from its home
		}
		x.slots[i], x.tags[i] = x.slots[j], x.tags[j]
		i = j
	}
	x.slots[i], x.tags[i] = none, 0
	x.used--
}

// shrink gives back what a surge took: it halves the slots while at most an
// eighth of them are used, and drops them if none are. The table calls it
// from its periodic sweep, not from remove: a shard whose entries come and
// go in waves (a batch of locks, then their unlocks) would otherwise grow and
// shrink its index on every wave.
func (x *index[E]) shrink() {
	if x.used == 0 {
		x.slots, x.tags = nil, nil
		return
	}
	n := len(x.slots)
	for n > minIndexSize && x.used*8 < n {
		n /= 2
	}
	if n < len(x.slots) {
		x.resize(n)
	}
}

// resize moves every entry into an index of n slots, a power of two.
func (x *index[E]) resize(n int) {
	old := x.slots
	x.slots, x.tags = make([]E, n), make([]uint8, n)
	var none E
	for _, e := range old {
		if e != none {
			h, _ := e.indexKey()
			x.place(h, e)
		}
	}
}

// len returns the number of entries.
func (x *index[E]) len() int { return x.used }

// each calls f for every entry, in no particular order. f must not change
// the index.
func (x *index[E]) each(f func(E)) {
	var none E
	for _, e := range x.slots {
		if e != none {
			f(e)
		}
	}
}
