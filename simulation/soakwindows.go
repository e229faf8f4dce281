package simulation

import (
	"fmt"
	"strings"
	"sync"

	"github.com/dsync-go/dsync/clock"
)

// The soak checks its history in windows, per resource, so that its own
// memory does not grow with its length (see Soak).

// SoakCheck is what the checks of a Run's windows found.
type SoakCheck struct {
	Windows int // windows checked, one resource each
	Ops     int // lock operations porcupine checked
	// NotLinearizable counts windows whose lock history porcupine found
	// not linearizable: two clients believed they held conflicting locks
	// at once. Undecided counts those it could not decide within
	// CheckTimeout. Both fail the run.
	NotLinearizable, Undecided int
	// Register sums CheckRegister's reports of every window.
	Register RegisterReport
	// Examples describes a few windows that failed.
	Examples []string
}

// Violations is the number of failures the checks found: windows not
// linearizable or undecided, lost updates and overlapping writers.
func (c SoakCheck) Violations() int {
	return c.NotLinearizable + c.Undecided + c.Register.Violations()
}

// soakResource is one register and its lock, checked in windows.
type soakResource struct {
	name string
	gate sync.RWMutex // held for reading by each operation, for writing by a rotation
	seg  soakSegment  // the current window's records; replaced under gate's write lock
}

// soakSegment is one resource's records of one window.
type soakSegment struct {
	hist *History
	reg  *Register
}

func newSoakSegment() soakSegment {
	h := NewHistory(clock.Real())
	return soakSegment{hist: h, reg: NewRegister(h)}
}

// enterAny takes, for an operation, the gate of res[i] for reading, or,
// while res[i] is drained for a rotation, that of the next resource after
// it that is not, and returns the resource entered. A worker thus does not
// wait for a rotation, which waits for the slowest operation under way on
// its resource (up to LockTimeout during a fault): if workers waited, one
// slow operation would stop them all, one after another as each drew the
// resource. Rotations take one resource at a time, so only if every gate
// is taken does enterAny wait, for res[i].
func enterAny(res []*soakResource, i int) *soakResource {
	for k := range res {
		r := res[(i+k)%len(res)]
		if r.gate.TryRLock() { // fails only while a rotation holds or waits for the gate
			return r
		}
	}
	res[i].gate.RLock()
	return res[i]
}

// rotateAll rotates each of res, one after another.
func (s *Soak) rotateAll(res []*soakResource) {
	for _, r := range res {
		s.rotate(r)
	}
}

// rotate drains r, gives it a fresh window, and checks the old one.
func (s *Soak) rotate(r *soakResource) {
	r.gate.Lock()
	old := r.seg
	r.seg = newSoakSegment()
	r.gate.Unlock()
	s.checkSegment(r.name, old)
}

// checkSegment checks one window of one resource and adds what it found
// to the Run's check.
func (s *Soak) checkSegment(name string, seg soakSegment) {
	ops := seg.hist.Ops()
	if len(ops) == 0 {
		return
	}
	lin := CheckLocks(ops, s.cfg.CheckTimeout)
	reg := CheckRegister(seg.reg.Sections(), seg.reg.Values())
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	c := &s.check
	c.Windows++
	c.Ops += lin.Ops
	example := func(format string, args ...any) {
		if len(c.Examples) < 5 {
			c.Examples = append(c.Examples, fmt.Sprintf(format, args...))
		}
	}
	switch {
	case lin.Unknown:
		c.Undecided++
		example("%s: porcupine did not decide a window of %d operations within %v", name, lin.Ops, s.cfg.CheckTimeout)
	case !lin.Ok:
		c.NotLinearizable++
		example("%s: a window of %d operations is not linearizable: %s", name, lin.Ops, describeOps(ops, 40))
	}
	c.Register.Writes += reg.Writes
	c.Register.LostUpdates += reg.LostUpdates
	c.Register.Overlaps += reg.Overlaps
	for _, e := range reg.Examples {
		example("%s", e)
	}
}

// describeOps lists up to n of ops, for a report.
func describeOps(ops []Op, n int) string {
	var b strings.Builder
	for i, op := range ops {
		if i == n {
			fmt.Fprintf(&b, " … (%d more)", len(ops)-n)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(op.String())
	}
	return b.String()
}
