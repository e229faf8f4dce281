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
//
// A fenced register (NewFencedRegister) is storage that checks fencing
// tokens: it keeps, per resource, the largest token it has seen, on the read
// that opens a write section (EnterFenced) as on a write, and refuses a write
// whose token is below it. Refused writes change nothing and are recorded.
type Register struct {
	h *History // source of logical times shared with the lock history

	// checkTokens makes the register refuse stale tokens; false for plain
	// storage. Tests turn it off in a fenced run to show what it stops.
	checkTokens bool

	mu       sync.Mutex // guards the fields below
	values   map[string]int
	fences   map[string]uint64 // largest token seen per resource
	sections []Section
	held     []func() bool // per section: whether its writer still holds its lock; nil if unknown
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
	Wrote    bool  // whether a write section wrote Read+1 on exit (and the register accepted it)

	Token   uint64 // the fencing token a write section carried; 0 without one
	Refused bool   // a fenced register refused the write: a larger token had been seen on the resource
	// Optimistic marks an optimistic read (EnterOptimistic): made without a
	// lock, it read the register at Enter and again (Again) at Exit, then
	// validated its version; Validated reports that the validation answered
	// true.
	Optimistic bool
	Again      int
	Validated  bool

	// HeldAtRefusal reports, for a refused write, that the writer's lock
	// context was still live when the register refused it: the token order
	// disagreed with the lock order, which CheckRegister counts as a
	// violation.
	HeldAtRefusal bool
}

// NewRegister returns registers that all read zero, ordered with h. They
// check no token: the last writer wins.
func NewRegister(h *History) *Register {
	return &Register{h: h, values: map[string]int{}, fences: map[string]uint64{}}
}

// NewFencedRegister returns registers that all read zero, ordered with h,
// that refuse writes carrying a token below the largest they have seen.
func NewFencedRegister(h *History) *Register {
	r := NewRegister(h)
	r.checkTokens = true
	return r
}

// Enter starts a critical section of client on resource without a token: it
// reads the current value and returns a handle for Exit.
func (r *Register) Enter(client int, resource string, write bool) int {
	return r.enter(client, resource, write, 0, nil)
}

// EnterFenced starts a write section of client on resource that carries
// fencing token: it reads the current value, and a fenced register keeps
// token if it is the largest it has seen on resource. held, if not nil,
// reports whether the writer still holds its lock; Exit asks it when it
// refuses the write.
func (r *Register) EnterFenced(client int, resource string, token uint64, held func() bool) int {
	return r.enter(client, resource, true, token, held)
}

func (r *Register) enter(client int, resource string, write bool, token uint64, held func() bool) int {
	seq := r.h.Seq()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.checkTokens && token > r.fences[resource] {
		r.fences[resource] = token
	}
	r.sections = append(r.sections, Section{Client: client, Resource: resource, Write: write,
		Enter: seq, Exit: Infinity, Read: r.values[resource], Token: token})
	r.held = append(r.held, held)
	return len(r.sections) - 1
}

// Exit ends section id. If write is true (and the section is a write
// section) it stores the value read on entry plus one, as a read-modify-write
// would, whatever happened meanwhile; unless the register is fenced and has
// seen a larger token on the resource than the section's, in which case it
// refuses the write and records the refusal.
func (r *Register) Exit(id int, write bool) {
	seq := r.h.Seq()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.sections[id]
	s.Exit = seq
	if !write || !s.Write {
		return
	}
	if r.checkTokens && s.Token < r.fences[s.Resource] {
		s.Refused = true
		// Asked under r.mu, after the larger token was seen: a writer that
		// was rightly fenced off had been told it lost its lock by then.
		s.HeldAtRefusal = r.held[id] != nil && r.held[id]()
		return
	}
	s.Wrote = true
	r.values[s.Resource] = s.Read + 1
	if r.checkTokens {
		r.fences[s.Resource] = max(r.fences[s.Resource], s.Token)
	}
}

// EnterOptimistic starts an optimistic read of client on resource, made
// without a lock after a version was read: it reads the current value and
// returns a handle for ReadAgain and Validated.
func (r *Register) EnterOptimistic(client int, resource string) int {
	id := r.enter(client, resource, false, 0, nil)
	r.mu.Lock()
	r.sections[id].Optimistic = true
	r.mu.Unlock()
	return id
}

// ReadAgain ends the optimistic read id: it reads the value again, before
// the version is validated.
func (r *Register) ReadAgain(id int) {
	seq := r.h.Seq()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.sections[id]
	s.Exit, s.Again = seq, r.values[s.Resource]
}

// Validated records the outcome of the validation of the optimistic read
// id.
func (r *Register) Validated(id int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sections[id].Validated = ok
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
	Writes      int // completed increments: writes the register accepted
	LostUpdates int // accepted increments that the final values do not reflect
	Overlaps    int // pairs of sections on one resource that both wrote (were accepted) and overlapped
	// Refused counts writes a fenced register refused for a stale token:
	// storage doing its job, not a violation.
	Refused int
	// RefusedHeld counts refused writes whose writer still held its lock
	// (Section.HeldAtRefusal): a token smaller than an earlier holder's, or
	// two holders at once. A violation.
	RefusedHeld int
	// Optimistic counts optimistic reads, Validated those whose validation
	// answered true.
	Optimistic, Validated int
	// StaleReads counts validated optimistic reads during which a write was
	// accepted on their resource: their two reads differ, or a write section
	// ended between them. A violation.
	StaleReads int
	Examples   []string // a few overlaps, wrongful refusals and stale reads, described for a report
}

// Violations is the number of overlaps plus lost updates plus refusals of
// writers that still held their lock plus validated stale reads.
func (r RegisterReport) Violations() int {
	return r.LostUpdates + r.Overlaps + r.RefusedHeld + r.StaleReads
}

// CheckRegister checks the sections of a register workload and the final
// values: every completed increment must be reflected in the final value of
// its register (no lost update), and no two sections that wrote may overlap
// (no overlapping write holders). A section that did not write (a read, or a
// write abandoned because the lock was lost or the client crashed) touched
// storage only at its entry and is not an overlap here; conflicts of holders'
// beliefs are the lock checker's business (CheckLocks).
//
// "Wrote" means the register accepted the write: a write that a fenced
// register refused for a stale token changed nothing, so it is neither an
// increment that must show in the final value nor an overlap; it is counted
// in Refused. A refusal is a violation only if the refused writer still held
// its lock (RefusedHeld): then the tokens did not follow the order of the
// lock's holders.
//
// An optimistic read that validated must have seen no change: its two
// reads agree, and no write the register accepted on its resource came
// between them (StaleReads).
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
			if s.Refused {
				rep.Refused++
			}
			if s.HeldAtRefusal {
				rep.RefusedHeld++
				if len(rep.Examples) < 3 {
					rep.Examples = append(rep.Examples, fmt.Sprintf("%s: c%d's write with token %d refused at %d while it still held the lock",
						res, s.Client, s.Token, s.Exit))
				}
			}
		}
		rep.Writes += writes
		rep.LostUpdates += max(writes-final[res], 0)
		for _, o := range ss {
			if !o.Optimistic {
				continue
			}
			rep.Optimistic++
			if !o.Validated {
				continue
			}
			rep.Validated++
			stale := o.Again != o.Read
			for _, w := range ss {
				stale = stale || (w.Wrote && w.Exit > o.Enter && w.Exit < o.Exit)
			}
			if stale {
				rep.StaleReads++
				if len(rep.Examples) < 3 {
					rep.Examples = append(rep.Examples, fmt.Sprintf("%s: c%d's optimistic read in [%d,%s] validated, reading %d then %d",
						res, o.Client, o.Enter, seqString(o.Exit), o.Read, o.Again))
				}
			}
		}

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
