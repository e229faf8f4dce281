package simulation

import (
	"fmt"
	"slices"
	"sync"
)

// Register is the protected resource of the register workload: one integer
// per resource name, which clients read, hold, and overwrite with the value
// they read plus one, believing they hold the write lock. Like plain storage
// it checks nothing and the last writer wins, so two writers that overlap
// lose an update. It records every critical section for CheckRegister. Safe
// for concurrent use.
type Register struct {
	h *History // source of logical times shared with the lock history

	mu       sync.Mutex // guards the fields below
	values   map[string]int
	sections []Section
}

// Section is one critical section of one client on one resource, placed in
// the history's logical order.
type Section struct {
	Client   int
	Resource string
	Write    bool
	Enter    int64 // logical time of the read
	Exit     int64 // logical time of the write, or of leaving without one; Infinity while inside
	Read     int   // value read on entry
	Wrote    bool  // whether a write section wrote Read+1 on exit
}

// NewRegister returns registers that all read zero, ordered with h.
func NewRegister(h *History) *Register {
	return &Register{h: h, values: map[string]int{}}
}

// Enter starts a critical section of client on resource: it reads the
// current value and returns a handle for Exit.
func (r *Register) Enter(client int, resource string, write bool) int {
	seq := r.h.Seq()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sections = append(r.sections, Section{Client: client, Resource: resource, Write: write,
		Enter: seq, Exit: Infinity, Read: r.values[resource]})
	return len(r.sections) - 1
}

// Exit ends section id. If write is true (and the section is a write
// section) it stores the value read on entry plus one, as a read-modify-write
// would, whatever happened meanwhile.
func (r *Register) Exit(id int, write bool) {
	seq := r.h.Seq()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.sections[id]
	s.Exit = seq
	if write && s.Write {
		s.Wrote = true
		r.values[s.Resource] = s.Read + 1
	}
}

// Values returns the current value of every register written.
func (r *Register) Values() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.values))
	for k, v := range r.values {
		out[k] = v
	}
	return out
}

// Sections returns a copy of the recorded sections in entry order.
func (r *Register) Sections() []Section {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sections)
}

// RegisterReport is what CheckRegister found.
type RegisterReport struct {
	Writes      int      // completed increments
	LostUpdates int      // increments that the final values do not reflect
	Overlaps    int      // pairs of sections on one resource that both wrote and overlapped
	Examples    []string // a few overlaps, described for a report
}

// Violations is the number of overlaps plus lost updates.
func (r RegisterReport) Violations() int { return r.LostUpdates + r.Overlaps }

// CheckRegister checks the sections of a register workload and the final
// values: every completed increment must be reflected in the final value of
// its register (no lost update), and no two sections that wrote may overlap
// (no overlapping write holders). A section that did not write (a read, or a
// write abandoned because the lock was lost or the client crashed) touched
// storage only at its entry and is not an overlap here; conflicts of holders'
// beliefs are the lock checker's business (CheckLocks).
func CheckRegister(sections []Section, final map[string]int) RegisterReport {
	var rep RegisterReport
	byRes := map[string][]Section{}
	for _, s := range sections {
		byRes[s.Resource] = append(byRes[s.Resource], s)
	}
	names := make([]string, 0, len(byRes))
	for r := range byRes {
		names = append(names, r)
	}
	slices.Sort(names)
	for _, res := range names {
		ss := byRes[res]
		writes := 0
		for _, s := range ss {
			if s.Wrote {
				writes++
			}
		}
		rep.Writes += writes
		rep.LostUpdates += max(writes-final[res], 0)

		slices.SortFunc(ss, func(a, b Section) int { return cmpInt64(a.Enter, b.Enter) })
		for i, a := range ss {
			for _, b := range ss[i+1:] {
				if b.Enter >= a.Exit {
					break // sorted by entry: no later section overlaps a either
				}
				if a.Wrote && b.Wrote && a.Client != b.Client {
					rep.Overlaps++
					if len(rep.Examples) < 3 {
						rep.Examples = append(rep.Examples, fmt.Sprintf("%s: c%d (write %v) in [%d,%s] and c%d (write %v) entered at %d",
							res, a.Client, a.Write, a.Enter, seqString(a.Exit), b.Client, b.Write, b.Enter))
					}
				}
			}
		}
	}
	return rep
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func seqString(s int64) string {
	if s == Infinity {
		return "…"
	}
	return fmt.Sprint(s)
}
