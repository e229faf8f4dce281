package simulation

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
)

// RoundOutcome is how one round of the deadlock workload ended.
type RoundOutcome uint8

// Round outcomes.
const (
	// RoundDone: every lock of the round was granted, used and released.
	RoundDone RoundOutcome = iota
	// RoundDeadlock: an acquisition failed with ErrDeadlock; the client
	// released what it held.
	RoundDeadlock
	// RoundTimeout: an acquisition failed at its Options.Timeout.
	RoundTimeout
	// RoundFailed: an acquisition failed otherwise (the client crashed, or
	// the lock was closed).
	RoundFailed
)

func (o RoundOutcome) String() string {
	switch o {
	case RoundDone:
		return "done"
	case RoundDeadlock:
		return "deadlock"
	case RoundTimeout:
		return "timeout"
	case RoundFailed:
		return "failed"
	}
	return "?"
}

// Round is one attempt of a deadlock-workload client at taking its
// resources in order.
type Round struct {
	Client  int
	Order   []string // the resources, in the order the client takes them
	Outcome RoundOutcome
	Err     string // the error that ended the round, if any
	Probe   bool   // a round of the liveness probe, after the heal
	Crashed bool   // the client crashed during the round
}

// RoundLog records the deadlock workload's rounds, for CheckDeadlocks. Safe
// for concurrent use.
type RoundLog struct {
	mu     sync.Mutex // guards rounds
	rounds []Round
}

// NewRoundLog returns an empty log.
func NewRoundLog() *RoundLog { return &RoundLog{} }

func (l *RoundLog) add(r Round) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rounds = append(l.rounds, r)
}

// Rounds returns a copy of the rounds recorded so far, in the order they
// ended.
func (l *RoundLog) Rounds() []Round {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.rounds)
}

// DeadlockReport is what CheckDeadlocks found.
type DeadlockReport struct {
	Rounds    int // rounds recorded; 0 when the run had no deadlock workload
	Completed int
	Deadlocks int // rounds ended by ErrDeadlock
	Timeouts  int // rounds ended by Options.Timeout
	Failed    int // rounds ended otherwise
	// FalseVictims counts ErrDeadlocks in a workload where no cycle can
	// close (the chain): every one is a false positive.
	FalseVictims int
	// WrongVictims counts ErrDeadlocks whose cycle, as the error names it,
	// does not go through the client's holder or has a holder larger than
	// it: the documented victim of a cycle is its largest holder.
	WrongVictims int
	// Unfinished counts live clients whose last round of the liveness
	// probe did not complete: a deadlock survived the heal.
	Unfinished int
	Examples   []string
}

// Violations counts what CheckDeadlocks found wrong.
func (r DeadlockReport) Violations() int { return r.FalseVictims + r.WrongVictims + r.Unfinished }

// holderID is the id client i's rounds give dsync.WithHolder; the nodes see
// it after the client's Owner ("c<i>") and a slash.
func holderID(i int) string { return fmt.Sprintf("c%d", i) }

// quoted finds the names in an ErrDeadlock's description of a cycle:
// `"W" waits for "R" held by "H"`, joined by commas.
var quoted = regexp.MustCompile(`"([^"]*)"`)

// CheckDeadlocks checks the deadlock workload's rounds: in a chain workload
// (chain true: every client takes its resources in one global order, so no
// cycle can close) no round may end in ErrDeadlock; in any workload an
// ErrDeadlock must name a cycle across processes through the client's own
// holder ("c<i>/c<i>") of which it is the largest holder; and every client
// that ran the liveness probe and did not crash must have completed its
// last probe round.
func CheckDeadlocks(rounds []Round, chain bool) DeadlockReport {
	rep := DeadlockReport{Rounds: len(rounds)}
	example := func(format string, args ...any) {
		if len(rep.Examples) < 3 {
			rep.Examples = append(rep.Examples, fmt.Sprintf(format, args...))
		}
	}
	lastProbe := make(map[int]Round)
	for _, r := range rounds {
		if r.Probe {
			lastProbe[r.Client] = r
		}
		switch r.Outcome {
		case RoundDone:
			rep.Completed++
		case RoundTimeout:
			rep.Timeouts++
		case RoundFailed:
			rep.Failed++
		case RoundDeadlock:
			rep.Deadlocks++
			if chain {
				rep.FalseVictims++
				example("c%d taking %v in the global order failed with ErrDeadlock: %s", r.Client, r.Order, r.Err)
			}
			if why := wrongVictim(r); why != "" {
				rep.WrongVictims++
				example("c%d: %s: %s", r.Client, why, r.Err)
			}
		}
	}
	for _, c := range slices.Sorted(func(yield func(int) bool) {
		for c := range lastProbe {
			if !yield(c) {
				return
			}
		}
	}) {
		if r := lastProbe[c]; r.Outcome != RoundDone && !r.Crashed {
			rep.Unfinished++
			example("c%d's last probe round after the heal ended %v: %s", c, r.Outcome, r.Err)
		}
	}
	return rep
}

// wrongVictim returns why r's ErrDeadlock does not name a cycle of which
// r's client is the victim, or "".
func wrongVictim(r Round) string {
	_, cycle, ok := strings.Cut(r.Err, "across processes: ")
	if !ok {
		return "no cycle across processes named"
	}
	names := quoted.FindAllStringSubmatch(cycle, -1)
	if len(names) == 0 || len(names)%3 != 0 {
		return "cycle not understood"
	}
	self := holderID(r.Client) + "/" + holderID(r.Client)
	var holders []string
	for i, m := range names {
		if i%3 != 1 { // waiter, resource, holder
			holders = append(holders, m[1])
		}
	}
	if !slices.Contains(holders, self) {
		return fmt.Sprintf("the cycle does not go through %s", self)
	}
	if m := slices.Max(holders); m != self {
		return fmt.Sprintf("%s is in the cycle, larger than the victim %s", m, self)
	}
	return ""
}

// deadlockOrder draws the resources of client cl's next round: two or
// three of them, as pairs (even clients take 0, 1[, 2], odd ones the
// reverse: AB/BA) or as a ring (client i starts at resource i: with three
// clients, a 3-cycle). In the chain workload the same resources are taken in
// ascending order, so no cycle can close.
func (cl *Client) deadlockOrder() []string {
	cfg := cl.c.Cfg
	n := 2 + cl.rng.IntN(2)
	idx := make([]int, 0, n)
	if cl.rng.IntN(2) == 0 {
		for k := range n {
			idx = append(idx, k)
		}
		if cl.ID%2 == 1 {
			slices.Reverse(idx)
		}
	} else {
		for k := range n {
			idx = append(idx, (cl.ID+k)%cfg.Resources)
		}
	}
	if cfg.Primitive == PrimitiveDeadlockChain && !cl.c.unorderedChain {
		slices.Sort(idx)
	}
	order := make([]string, n)
	for k, i := range idx {
		order[k] = resourceName(i)
	}
	return order
}

// deadlockRound takes order's write locks one at a time as the client's
// holder, each followed by a section of the register of Hold/2 to Hold
// while it keeps the ones before, until one fails; then releases every lock
// it holds, last first, and records the round.
func (cl *Client) deadlockRound(order []string, probe bool) RoundOutcome {
	c := cl.c
	ctx := cl.ctx
	if !c.anonymous {
		ctx = dsync.WithHolder(ctx, holderID(cl.ID))
	}
	r := Round{Client: cl.ID, Order: order, Probe: probe}
	var held []*Hold
	for _, res := range order {
		h, err := cl.acquire(ctx, res, true)
		if err != nil {
			r.Err = err.Error()
			switch {
			case errors.Is(err, dsync.ErrDeadlock):
				r.Outcome = RoundDeadlock
			case errors.Is(err, dsync.ErrTimeout):
				r.Outcome = RoundTimeout
			default:
				r.Outcome = RoundFailed
			}
			break
		}
		held = append(held, h)
		cl.Section(h, c.Cfg.Hold/2+time.Duration(cl.rng.Int64N(int64(c.Cfg.Hold/2)+1)))
	}
	for _, h := range slices.Backward(held) {
		h.Release()
	}
	r.Crashed = cl.Crashed()
	c.Rounds.add(r)
	return r.Outcome
}

// maxDeadlockRetries bounds how often one round is retried after
// ErrDeadlock.
const maxDeadlockRetries = 10

// deadlockOp is one operation of the deadlock workload: a round, retried in
// the same order while it ends in ErrDeadlock (the victim released what it
// held, as the documentation tells callers to do; the others of its cycle
// then get their locks).
//
// The victim waits a retry of the others (RetryMax + 2×CallTimeout, as in
// LivenessBound) and up to a hold before it tries again. With a pause of up
// to a hold only, shorter than the others' back-off, the victim took its
// first lock again before the client it had blocked retried, closed the same
// cycle and lost again: in the first runs of the deadlock scenario, c2 (the
// largest holder, the victim of every cycle) lost its probe round ten times
// in a row.
func (cl *Client) deadlockOp(probe bool) {
	cfg := cl.c.Cfg
	order := cl.deadlockOrder()
	for range maxDeadlockRetries {
		if cl.deadlockRound(order, probe) != RoundDeadlock || cl.Crashed() {
			return
		}
		clock.Sleep(cl.ctx, cl.clk, cfg.RetryMax+2*cfg.CallTimeout+time.Duration(cl.rng.Int64N(int64(cfg.Hold)+1)))
	}
}

// deadlockSetup makes cfg a deadlock workload of primitive p (cycles or the
// chain): at least 3 resources, writes only.
func deadlockSetup(p Primitive) func(*Config) {
	return func(cfg *Config) {
		cfg.Primitive = p
		atLeast(&cfg.Resources, 3)
	}
}
