package dsync

import (
	"context"
	"fmt"

	"github.com/dsync-go/dsync/locker"
)

// Mode is a lock mode of multi-granularity locking (Gray, Lorie, Putzolu
// and Traiger, 1976). A lock on a container in an intention mode (IS, IX)
// announces shared or exclusive locks on what it contains, so that locks on
// different objects of one bucket go on in parallel while a lock on the
// whole bucket (S to list it, X to delete it) still excludes them. S is the
// read lock of GetRLock and X the write lock of GetLock: GetRLock conflicts
// with an IX exactly as GetMode(S) does.
//
// Two holders may hold one resource at once if their modes are compatible:
//
//	      IS   IX   S    SIX  X
//	IS    yes  yes  yes  yes  no
//	IX    yes  yes  no   no   no
//	S     yes  no   yes  no   no
//	SIX   yes  no   no   no   no
//	X     no   no   no   no   no
type Mode uint8

// The modes, as locker.Mode numbers them.
const (
	IS  Mode = iota + 1 // intention shared: S locks below
	IX                  // intention exclusive: X (or S) locks below
	S                   // shared: the read lock
	SIX                 // shared, and X locks below
	X                   // exclusive: the write lock
)

// String returns the mode's usual name: IS, IX, S, SIX or X.
func (m Mode) String() string { return locker.Mode(m).String() }

func (m Mode) valid() bool { return locker.Mode(m).Valid() }

// exclusive reports whether m keeps S out: its acquisition is a writer,
// whose refused attempts declare writer intent on the nodes.
func (m Mode) exclusive() bool { return m == IX || m == SIX || m == X }

// wire returns the mode as LockArgs carries it: zero for S and X, which
// the op (RLock, Lock) says by itself, so that nodes that predate modes
// see the classic locks unchanged.
func (m Mode) wire() locker.Mode {
	if m == S || m == X {
		return 0
	}
	return locker.Mode(m)
}

// compatible reports whether holds of modes a and b may hold one resource
// at once (see Mode).
func compatible(a, b Mode) bool { return locker.Compatible(locker.Mode(a), locker.Mode(b)) }

// modeQuorum returns how many of the n nodes must grant a lock of mode:
// the read quorum R = ceil(n/2) for IS and S, the write quorum
// W = floor(n/2)+1 for IX, SIX and X.
//
// Why every conflicting pair is kept apart. Two grants of one resource in
// conflicting modes can both be held only if their quorums share no node,
// since a node grants neither over the other (the table checks every
// holder's mode against the matrix). Quorums of sizes a and b out of n
// nodes always share one when a+b > n. Every conflicting pair has at least
// one mode of the write side, IX, SIX or X: the only pairs of two modes of
// the read side are IS–IS, IS–S and S–S, all compatible. So a conflicting
// pair needs at most R+W or W+W nodes, and R+W = ceil(n/2)+floor(n/2)+1 =
// n+1 > n. Pairs of the write side that are compatible (IX–IX) are allowed
// to meet, and do not mind. The read side cannot be made smaller: S–IX and
// IS–X conflict, and R+W > n is what keeps them apart.
func (ds *Dsync) modeQuorum(m Mode) int {
	if m == IS || m == S {
		return ds.ReadQuorum()
	}
	return ds.WriteQuorum()
}

// GetMode acquires a lock of mode on m's resources, retrying as GetLock
// does (see GetLock for opts, the context returned and its end): GetMode(X)
// is GetLock and GetMode(S) is GetRLock. IS and S are granted by a read
// quorum, IX, SIX and X by a write quorum (see Mode for what each allows
// beside it). Release it with ReleaseMode of the same mode. The lock is
// refreshed, reclaimed on restarted nodes and reported lost as the others
// are. A mode out of range is an error wrapping locker.ErrInvalidArgs.
func (m *DRWMutex) GetMode(ctx context.Context, mode Mode, opts Options) (context.Context, error) {
	return m.acquire(ctx, opts, mode)
}

// ReleaseMode releases the most recently acquired lock of mode: Unlock for
// X, RUnlock for S; see Unlock for what it returns. It is a run-time error
// (a panic) to release a mode that m does not hold.
func (m *DRWMutex) ReleaseMode(ctx context.Context, mode Mode) error {
	switch {
	case mode == X:
		return m.Unlock(ctx)
	case !mode.valid():
		panic(fmt.Sprintf("dsync: ReleaseMode of unknown mode %d", uint8(mode)))
	}
	return m.releaseRead(ctx, mode, "ReleaseMode")
}
