package simulation

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/dsync"
)

// SoakSample is what a Soak measured at one instant of a Run, and over the
// interval since the sample before.
type SoakSample struct {
	At time.Duration // since the Run started
	ProcStat
	Ops        int64         // worker cycles (acquire, section, release) completed in the interval
	Throughput float64       // Ops per second of the interval
	P50, P99   time.Duration // latency of the interval's successful acquisitions (workers and long holders)
	Errors     SoakErrors    // in the interval
	Fault      string        // the fault under way when the sample was taken, "" if none
	// Settled reports that no fault was under way, nor had ended within
	// SoakConfig.Settle, when the sample was taken: what the process holds
	// then is what faults leave behind for good. Every sample of a Run
	// without faults is settled.
	Settled bool
}

// SettledSamples returns the samples of samples that are Settled.
func SettledSamples(samples []SoakSample) []SoakSample {
	var out []SoakSample
	for _, s := range samples {
		if s.Settled {
			out = append(out, s)
		}
	}
	return out
}

// SoakErrors counts what went wrong, by kind. Acquisition errors are
// classified by the first of dsync's sentinels they match, in the order of
// the fields.
type SoakErrors struct {
	Timeout    int64 // acquisitions that ended with dsync.ErrTimeout
	Restarting int64 // with dsync.ErrRestarting: too many nodes in their grace period
	NoQuorum   int64 // with dsync.ErrNoQuorum: too many nodes unreachable
	Acquire    int64 // with another error
	// Lost counts held locks whose context the refresher cancelled with
	// dsync.ErrLockLost; LongLost, those of them held by long holders.
	Lost, LongLost int64
	UnlockLost     int64 // Unlocks that returned dsync.ErrLockLost
	UnlockPending  int64 // Unlocks that returned dsync.ErrUnlockPending
	Unlock         int64 // Unlocks that returned another error
}

// Total is the sum of every count but LongLost (which Lost includes).
func (e SoakErrors) Total() int64 {
	return e.Timeout + e.Restarting + e.NoQuorum + e.Acquire + e.Lost + e.UnlockLost + e.UnlockPending + e.Unlock
}

// String lists the counts that are not zero, "none" if all are.
func (e SoakErrors) String() string {
	var parts []string
	for _, f := range e.fields() {
		if *f.v != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", f.name, *f.v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// SoakErrorNames are the names String and the CSV give the fields of
// SoakErrors, in order.
var SoakErrorNames = SoakErrors{}.names()

func (e SoakErrors) names() []string {
	var out []string
	for _, f := range e.fields() {
		out = append(out, f.name)
	}
	return out
}

// Values returns the counts in the order of SoakErrorNames.
func (e SoakErrors) Values() []int64 {
	var out []int64
	for _, f := range e.fields() {
		out = append(out, *f.v)
	}
	return out
}

func (e *SoakErrors) fields() []struct {
	name string
	v    *int64
} {
	return []struct {
		name string
		v    *int64
	}{
		{"timeout", &e.Timeout}, {"restarting", &e.Restarting}, {"no-quorum", &e.NoQuorum}, {"acquire", &e.Acquire},
		{"lost", &e.Lost}, {"long-lost", &e.LongLost},
		{"unlock-lost", &e.UnlockLost}, {"unlock-pending", &e.UnlockPending}, {"unlock", &e.Unlock},
	}
}

// soakErrorCounters is SoakErrors, counted concurrently.
type soakErrorCounters struct {
	timeout, restarting, noQuorum, acquire, lost, longLost, unlockLost, unlockPending, unlock atomic.Int64
}

// take returns the counts and resets them.
func (c *soakErrorCounters) take() SoakErrors {
	return SoakErrors{
		Timeout: c.timeout.Swap(0), Restarting: c.restarting.Swap(0), NoQuorum: c.noQuorum.Swap(0), Acquire: c.acquire.Swap(0),
		Lost: c.lost.Swap(0), LongLost: c.longLost.Swap(0),
		UnlockLost: c.unlockLost.Swap(0), UnlockPending: c.unlockPending.Swap(0), Unlock: c.unlock.Swap(0),
	}
}

func (c *soakErrorCounters) acquisition(err error) {
	switch {
	case errors.Is(err, dsync.ErrTimeout):
		c.timeout.Add(1)
	case errors.Is(err, dsync.ErrRestarting):
		c.restarting.Add(1)
	case errors.Is(err, dsync.ErrNoQuorum):
		c.noQuorum.Add(1)
	default:
		c.acquire.Add(1)
	}
}

func (c *soakErrorCounters) release(err error) {
	switch {
	case err == nil:
	case errors.Is(err, dsync.ErrLockLost):
		c.unlockLost.Add(1)
	case errors.Is(err, dsync.ErrUnlockPending):
		c.unlockPending.Add(1)
	default:
		c.unlock.Add(1)
	}
}

// add adds e's counts to a's.
func (a *SoakErrors) add(e SoakErrors) {
	af, ef := a.fields(), e.fields()
	for i := range af {
		*af[i].v += *ef[i].v
	}
}

// SoakResult is what one Run measured and checked.
type SoakResult struct {
	Phase   SoakPhase
	Elapsed time.Duration // from the start until the last operation finished
	// Ops is how many worker cycles completed; LongHolds, how many long
	// holds did.
	Ops, LongHolds int64
	Samples        []SoakSample
	Errors         SoakErrors // over the whole Run
	Check          SoakCheck
	// Faults counts the faults injected, by kind (soakfaults.go).
	Faults map[string]int
	// Losses describes the locks lost during the Run (the first 20): when,
	// after what fault, and what the nodes held then (HTTPNetwork.describe).
	Losses []string
	// Reclaims and Reclaimed are the clients' reclaims on restarted nodes
	// during the Run (dsync.Stats), sent and granted; RefreshRounds, their
	// refresh rounds.
	Reclaims, Reclaimed, RefreshRounds uint64
}

// Throughput is the worker cycles completed per second over the Run.
func (r *SoakResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Failures describes what contradicts the soak's expectations: a
// violation found by the checks, or a long holder's lock lost. A long
// holder's resource is its own, and the schedule lets at most one fault of
// at most n−W nodes touch a long hold (soakfaults.go), so its refreshes
// and reclaims must keep it. (A worker's lock may be lost: one granted by
// exactly a quorum, while another client held a third node's grant for a
// moment, is lost if one of those nodes fails while it is held. That is
// the design, told to the holder in time; it is counted, not failed.)
func (r *SoakResult) Failures() []string {
	var out []string
	if v := r.Check.Violations(); v > 0 {
		out = append(out, fmt.Sprintf("%d violations: %d windows not linearizable, %d undecided, %d lost updates, %d overlapping writers",
			v, r.Check.NotLinearizable, r.Check.Undecided, r.Check.Register.LostUpdates, r.Check.Register.Overlaps))
		out = append(out, r.Check.Examples...)
	}
	if n := r.Errors.LongLost; n > 0 {
		out = append(out, fmt.Sprintf("%d long holds lost", n))
		for _, l := range r.Losses {
			if strings.Contains(l, "long holder") {
				out = append(out, l)
			}
		}
	}
	return out
}

// sample takes one SoakSample: the process now, and the workload's
// counters since the last sample, over interval.
func (s *Soak) sample(at, interval time.Duration) SoakSample {
	smp := SoakSample{At: at, ProcStat: ReadProcStat(), Ops: s.ops.Swap(0), Errors: s.errs.take()}
	if interval > 0 {
		smp.Throughput = float64(smp.Ops) / interval.Seconds()
	}
	s.latMu.Lock()
	smp.P50, smp.P99 = Percentile(s.lat, 50), Percentile(s.lat, 99)
	s.lat = s.lat[:0]
	s.latMu.Unlock()
	smp.Settled, smp.Fault = s.settled()
	return smp
}
