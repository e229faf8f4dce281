package locker

import (
	"slices"
	"strings"
	"unsafe"
)

// ArgCopier is implemented by lockers that copy every string of their
// arguments that they keep past the call, so that a caller may pass strings
// that alias memory it reuses once the call returns: a server that decodes a
// request in place, with strings that point into the request's buffer. It is
// an optional capability, found by type assertion; CopiesArgs reports whether
// it holds, so that a wrapper can turn it off. Local is one.
//
// A wrapper that embeds an ArgCopier and keeps arguments itself (sends a UID
// on a channel, records requests) must override CopiesArgs to return false,
// or copy what it keeps: otherwise the promoted method promises what the
// wrapper breaks.
type ArgCopier interface {
	// CopiesArgs reports whether the locker copies every argument string it
	// keeps past a call. It returns the same answer every time.
	CopiesArgs() bool
}

var _ ArgCopier = (*Local)(nil)

// CopiesArgs reports true: the table copies every string it keeps (the UID
// of a grant or a tombstone, the holder a lock names, the name of a resource
// it starts to hold, the owner and source of a new origin), and keeps none
// of the caller's. See
// ArgCopier.
func (l *Local) CopiesArgs() bool { return true }

// How the table owns its strings.
//
// A new grant copies its UID, then the holder its request names (right
// after the UID: grant.holder finds it there), and the names of the
// resource entries it creates, into one byte buffer of its own: one allocation per grant, which
// is no larger than the strings a decoder would have allocated one by one.
// The strings are views of the buffer (unsafe.String).
//
// The buffer outlives the grant when it can: a free grant keeps it, whole,
// in its uid, and the next grant made from that free grant writes its own
// strings into it, so that a steady stream of lock and unlock allocates
// nothing. Writing into memory that strings point to is sound only if no
// string of the buffer is still in use, so:
//   - the table hands out none of its own strings: List and Query return
//     copies, and a grantRef names a grant by its hash, not by its UID;
//   - a grant keeps its buffer only if every resource entry that it created
//     has been dropped (a name of the buffer is used by no live entry), see
//     spareBuffer;
//   - a buffer is written only while the shard of the grant that owns it is
//     locked, as are all the grant's fields.
//
// A live entry's name may keep the buffer of the grant that created it
// alive after that grant is gone (the entry passed to other holders): that
// costs the buffer's bytes until the entry is dropped, never more than one
// buffer per entry.

// maxSpareBuffer bounds the buffer that a free grant keeps for the next one:
// room for a UUID and a name of about 90 bytes. Larger ones are left to the
// garbage collector, so that a shard's free list holds at most maxFree times
// this many bytes of buffers.
const maxSpareBuffer = 128

// buffer returns an empty byte buffer with room for n bytes, for g's strings:
// the one g kept from its previous life if it is large enough, else a new
// one, which g records as its own if it may keep it once free. g's uid must
// be set from the buffer before the shard is unlocked.
func (g *grant) buffer(n int) []byte {
	if spare := g.uid; len(spare) >= n && len(spare) > 0 {
		g.uid = ""
		return unsafe.Slice(unsafe.StringData(spare), len(spare))[:0]
	}
	b := slices.Grow([]byte(nil), n) // rounded up to the allocation's size class
	g.uid, g.bufCap = "", 0
	if cap(b) <= maxSpareBuffer {
		g.bufCap = uint8(cap(b))
	}
	return b
}

// keep copies s into buf, which must have room for it, and returns the copy,
// a view of buf, and buf extended by it.
func keep(buf []byte, s string) (string, []byte) {
	if s == "" {
		return "", buf
	}
	n := len(buf)
	if cap(buf)-n < len(s) {
		panic("locker: internal error: a grant's buffer is too small")
	}
	buf = append(buf, s...)
	return unsafe.String(&buf[n], len(s)), buf
}

// spareBuffer returns g's whole byte buffer, as a string, if g may keep it
// once free: if g owns a buffer (its uid starts it) and no live resource
// entry's name points into it. Otherwise it returns "". The shards of g's
// resources must be locked, and g released from them (an entry that g alone
// held has been dropped, and its name cleared).
func (g *grant) spareBuffer() string {
	if g.bufCap == 0 || g.uid == "" {
		return ""
	}
	base := unsafe.StringData(g.uid)
	lo := uintptr(unsafe.Pointer(base))
	hi := lo + uintptr(g.bufCap)
	inside := func(r *resource) bool {
		if r.name == "" {
			return false
		}
		p := uintptr(unsafe.Pointer(unsafe.StringData(r.name)))
		return lo <= p && p < hi
	}
	if g.res != nil && inside(g.res) {
		return ""
	}
	if g.more != nil {
		for _, r := range *g.more {
			if inside(r) {
				return ""
			}
		}
	}
	return unsafe.String(base, int(g.bufCap))
}

// cloneTwo returns copies of a and b that share one allocation.
func cloneTwo(a, b string) (string, string) {
	if a == "" {
		return "", strings.Clone(b)
	}
	if b == "" {
		return strings.Clone(a), ""
	}
	var sb strings.Builder
	sb.Grow(len(a) + len(b))
	sb.WriteString(a)
	sb.WriteString(b)
	s := sb.String()
	return s[:len(a)], s[len(a):]
}
