package dsync

import (
	"context"
	"errors"
	"time"

	"github.com/dsync-go/dsync/refresher"
)

// Observer hears what a Dsync does, for metrics: every acquisition as it
// ends, every held lock lost, every refresh round. Package dsyncprom
// implements it for Prometheus. Its methods are called on the goroutine
// where the event happens (an acquisition's caller, the refresher's
// goroutine): they must be fast, safe for concurrent use, and must not
// block or call back into the Dsync. With Config.Observer nil nothing is
// told and nothing is measured for it.
type Observer interface {
	// Acquired is told of an acquisition when it ends: its kind, its
	// outcome, and how long it took on the Dsync's clock. An acquisition
	// of several resources, or a Hierarchy's level, is one acquisition; a
	// TryLock is one too.
	Acquired(kind AcquireKind, outcome Outcome, took time.Duration)
	// Lost is told of a held lock that was lost, and why: its context is
	// cancelled with ErrLockLost at the same time, or, for LossAtRelease,
	// its Unlock returns it.
	Lost(cause LossCause)
	// RefreshRound is told of every refresh round of the held locks: how
	// long it took, from sending its requests to applying their answers,
	// and how many locks it refreshed.
	RefreshRound(took time.Duration, locks int)
}

// AcquireKind is what an acquisition asked for.
type AcquireKind uint8

const (
	KindWrite  AcquireKind = iota // GetLock, Mutex, TryLock
	KindRead                      // GetRLock, TryRLock
	KindPermit                    // Semaphore.Acquire
)

// String returns the kind's name, as metrics label it: "write", "read"
// or "permit".
func (k AcquireKind) String() string {
	switch k {
	case KindWrite:
		return "write"
	case KindRead:
		return "read"
	case KindPermit:
		return "permit"
	}
	return "unknown"
}

// Outcome is how an acquisition ended.
type Outcome uint8

const (
	OutcomeAcquired  Outcome = iota // granted
	OutcomeRefused                  // a TryLock found it held
	OutcomeTimeout                  // its timeout passed (ErrTimeout)
	OutcomeCancelled                // its caller's ctx ended
	OutcomeNoQuorum                 // too few nodes answered (ErrNoQuorum)
	OutcomeDeadlock                 // ErrDeadlock
	OutcomeError                    // anything else: ErrClosed, invalid names, a node's ErrInvalidArgs
)

// String returns the outcome's name, as metrics label it: "acquired",
// "refused", "timeout", "cancelled", "no_quorum", "deadlock" or "error".
func (o Outcome) String() string {
	switch o {
	case OutcomeAcquired:
		return "acquired"
	case OutcomeRefused:
		return "refused"
	case OutcomeTimeout:
		return "timeout"
	case OutcomeCancelled:
		return "cancelled"
	case OutcomeNoQuorum:
		return "no_quorum"
	case OutcomeDeadlock:
		return "deadlock"
	case OutcomeError:
		return "error"
	}
	return "unknown"
}

// outcomeOf classifies the end of an acquisition with ctx that returned err.
func outcomeOf(ctx context.Context, err error) Outcome {
	switch {
	case err == nil:
		return OutcomeAcquired
	case errors.Is(err, ErrTimeout):
		return OutcomeTimeout
	case ctx.Err() != nil:
		return OutcomeCancelled
	case errors.Is(err, ErrDeadlock):
		return OutcomeDeadlock
	case errors.Is(err, ErrNoQuorum):
		return OutcomeNoQuorum
	}
	return OutcomeError
}

// LossCause is why a held lock was lost.
type LossCause uint8

const (
	LossNotHeld   LossCause = iota // more than n−quorum nodes said they no longer hold it
	LossExpired                    // no refresh reached a quorum before its deadline
	LossStopped                    // the Dsync was closed while it was held
	LossAtRelease                  // found at Unlock: too few nodes still held it
)

// String returns the cause's name, as metrics label it: "not_held",
// "expired", "stopped" or "at_release".
func (c LossCause) String() string {
	switch c {
	case LossNotHeld:
		return "not_held"
	case LossExpired:
		return "expired"
	case LossStopped:
		return "stopped"
	case LossAtRelease:
		return "at_release"
	}
	return "unknown"
}

// lossCauseOf classifies the refresher's reason for a loss.
func lossCauseOf(err error) LossCause {
	switch {
	case errors.Is(err, refresher.ErrExpired):
		return LossExpired
	case errors.Is(err, refresher.ErrStopped):
		return LossStopped
	}
	return LossNotHeld
}

// observeAcquired tells ds's Observer, if any, of an acquisition of kind
// that started at start (on ds's clock) and ended with outcome.
func (ds *Dsync) observeAcquired(kind AcquireKind, outcome Outcome, start time.Time) {
	if o := ds.cfg.Observer; o != nil {
		o.Acquired(kind, outcome, ds.clk().Since(start))
	}
}

// observeLost tells ds's Observer, if any, of a lost lock.
func (ds *Dsync) observeLost(cause LossCause) {
	if o := ds.cfg.Observer; o != nil {
		o.Lost(cause)
	}
}

// kindOf returns the kind of a lock acquisition: KindWrite if write,
// otherwise KindRead.
func kindOf(write bool) AcquireKind {
	if write {
		return KindWrite
	}
	return KindRead
}

// observe tells ds's Observer, if any, of the acquisition a as it ends with
// err (acquire.go).
func (a *acquisition) observe(err error) {
	if a.ds.cfg.Observer != nil {
		a.ds.observeAcquired(kindOf(a.mode == X), outcomeOf(a.ctx, err), a.start)
	}
}
