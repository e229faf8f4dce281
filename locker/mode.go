package locker

import "fmt"

// compat[m] has bit n set if mode m is compatible with mode n: the matrix
// of Mode's documentation.
var compat = [...]uint8{
	ModeIS:  1<<ModeIS | 1<<ModeIX | 1<<ModeS | 1<<ModeSIX,
	ModeIX:  1<<ModeIS | 1<<ModeIX,
	ModeS:   1<<ModeIS | 1<<ModeS,
	ModeSIX: 1 << ModeIS,
	ModeX:   0,
}

// Compatible reports whether grants of modes a and b may hold one resource
// at once. The matrix is symmetric; a mode out of range is compatible with
// nothing.
func Compatible(a, b Mode) bool {
	return int(a) < len(compat) && int(b) < len(compat) && compat[a]&(1<<b) != 0
}

// String returns the mode's usual name: IS, IX, S, SIX or X.
func (m Mode) String() string {
	switch m {
	case 0:
		return "default"
	case ModeIS:
		return "IS"
	case ModeIX:
		return "IX"
	case ModeS:
		return "S"
	case ModeSIX:
		return "SIX"
	case ModeX:
		return "X"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Valid reports whether m is one of the five modes.
func (m Mode) Valid() bool { return m >= ModeIS && m <= ModeX }

// exclusive reports whether a grant of m keeps shared lockers (S) out: a
// request of it refused because of them is a writer, whose intent holds new
// ones back (Config.WriterIntent).
func (m Mode) exclusive() bool { return m == ModeIX || m == ModeSIX || m == ModeX }

// strong reports whether a grant of m, held in a resource's reader list,
// may conflict with a request for S or IS: the readers a shared request
// must look at one by one (readerList.strong counts them).
func (m Mode) strong() bool { return m == ModeIX || m == ModeSIX }

// lockMode returns the mode a Lock (write) or RLock asks for with args'
// Mode: the op's own if zero. A Lock may ask only for ModeX, and an RLock
// for any other.
func lockMode(op string, write bool, m Mode) (Mode, error) {
	switch {
	case m == 0 && write:
		return ModeX, nil
	case m == 0:
		return ModeS, nil
	case !m.Valid():
		return 0, fmt.Errorf("%w: %s: unknown mode %d", ErrInvalidArgs, op, uint8(m))
	case write != (m == ModeX):
		return 0, fmt.Errorf("%w: %s: mode %v (Lock takes X only, RLock every other mode)", ErrInvalidArgs, op, m)
	}
	return m, nil
}
