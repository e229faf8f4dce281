package dsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Defaults for the zero values of AdaptiveConfig.
const (
	DefaultAdaptiveInitial = 30 * time.Second
	DefaultAdaptiveMin     = time.Second
	DefaultAdaptiveMax     = 5 * time.Minute
	DefaultAdaptiveWindow  = 16
)

// AdaptiveConfig configures an AdaptiveTimeout. The zero value of every
// field is a documented default; NewAdaptiveTimeout validates the whole once.
type AdaptiveConfig struct {
	// Initial is the timeout before any outcome is observed. If zero,
	// DefaultAdaptiveInitial (30 s), raised to Min or lowered to Max if
	// those are set and it lies outside them.
	Initial time.Duration

	// Min is the floor: shrinking never goes below it. If zero, the smaller
	// of DefaultAdaptiveMin (1 s) and Initial.
	Min time.Duration

	// Max is the ceiling: growing never goes above it. If zero, the larger
	// of DefaultAdaptiveMax (5 min) and Initial.
	Max time.Duration

	// Window is how many outcomes are observed between two adjustments. If
	// zero, DefaultAdaptiveWindow (16).
	Window int
}

// withDefaults returns c with its zero fields set; c has no negative field.
func (c AdaptiveConfig) withDefaults() AdaptiveConfig {
	if c.Initial == 0 {
		c.Initial = max(DefaultAdaptiveInitial, c.Min)
		if c.Max > 0 {
			c.Initial = min(c.Initial, c.Max)
		}
	}
	if c.Min == 0 {
		c.Min = min(DefaultAdaptiveMin, c.Initial)
	}
	if c.Max == 0 {
		c.Max = max(DefaultAdaptiveMax, c.Initial)
	}
	if c.Window == 0 {
		c.Window = DefaultAdaptiveWindow
	}
	return c
}

// validate checks c: every field as given must not be negative, and with
// defaults applied, Min <= Initial <= Max.
func (c AdaptiveConfig) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Initial", c.Initial}, {"Min", c.Min}, {"Max", c.Max}} {
		if d.v < 0 {
			return fmt.Errorf("%w: dsync: AdaptiveConfig.%s %v is negative", locker.ErrInvalidArgs, d.name, d.v)
		}
	}
	if c.Window < 0 {
		return fmt.Errorf("%w: dsync: AdaptiveConfig.Window %d is negative", locker.ErrInvalidArgs, c.Window)
	}
	d := c.withDefaults()
	if d.Min > d.Max {
		return fmt.Errorf("%w: dsync: AdaptiveConfig.Min %v is above Max %v", locker.ErrInvalidArgs, d.Min, d.Max)
	}
	if d.Initial < d.Min || d.Initial > d.Max {
		return fmt.Errorf("%w: dsync: AdaptiveConfig.Initial %v is outside [Min %v, Max %v]", locker.ErrInvalidArgs, d.Initial, d.Min, d.Max)
	}
	return nil
}

// AdaptiveTimeout is an acquisition timeout that follows how long
// acquisitions of one class of lock take: create one per class (object
// writes, object reads, bucket metadata, ...), share it among every
// acquisition of that class in the process, and pass it as
// Options.Adaptive. Those acquisitions then wait at most Timeout(), and
// report their outcomes to Observe; see Options.Adaptive for which outcomes
// are reported.
//
// A fixed timeout is either too short for a busy system, which then fails
// operations that would have succeeded, or too long for a stuck lock, which
// then holds every caller for as long. An AdaptiveTimeout starts at Initial
// and, after every Window outcomes (16 by default), applies the first of
// these rules that matches:
//
//   - more than a third of the window timed out: grow by a quarter (×1.25),
//     at most to Max. A third is many more timeouts than bad luck gives a
//     timeout that fits the load, and a quarter per window doubles the
//     timeout in three windows (48 acquisitions by default) without letting
//     one bad window make callers wait far longer than needed;
//   - some timed out, a third or fewer: keep. Those may be locks that stay
//     held however long one waits (a stuck or crashed holder), which a
//     longer timeout would not cure;
//   - none timed out: shrink toward twice the longest acquisition of the
//     window, by at most a quarter (×0.75), and never below Min. Twice the
//     longest leaves room for a load that doubles before the next window can
//     grow the timeout again; the quarter bounds how much one quiet window
//     can take away, so a timeout that just grew under contention is not
//     undone by the few fast acquisitions that follow it (halving takes
//     three windows). A timeout already below twice the longest is kept:
//     successes never grow it.
//
// Every outcome belongs to exactly one window and every window is applied
// once, whatever the number of goroutines that call Observe. The timeout is
// kept per process: it is learnt anew when a process starts, and each
// process learns its own. Rules are applied per window of outcomes, not of
// time, so a class locked rarely adapts slowly.
//
// An AdaptiveTimeout is safe for concurrent use. Timeout costs one atomic
// load; Observe takes a mutex for a few instructions (an acquisition makes
// at least one round of calls to the nodes, which costs far more).
type AdaptiveTimeout struct {
	cfg     AdaptiveConfig
	timeout atomic.Int64 // the current timeout in nanoseconds; written under mu, read without it

	mu       sync.Mutex    // guards the window below, and serialises writes of timeout
	outcomes int           // observed in the current window, < cfg.Window
	timedOut int           // of outcomes, those that timed out
	longest  time.Duration // the longest success of the current window
}

// NewAdaptiveTimeout returns an adaptive timeout configured by cfg, starting
// at cfg.Initial. An invalid cfg (a negative field, Min above Max, or
// Initial outside them) is an error wrapping locker.ErrInvalidArgs.
func NewAdaptiveTimeout(cfg AdaptiveConfig) (*AdaptiveTimeout, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &AdaptiveTimeout{cfg: cfg.withDefaults()}
	a.timeout.Store(int64(a.cfg.Initial))
	return a, nil
}

// Config returns the configuration of a, with defaults applied.
func (a *AdaptiveTimeout) Config() AdaptiveConfig { return a.cfg }

// Timeout returns the current timeout, between Min and Max. It is lock-free
// and allocates nothing.
func (a *AdaptiveTimeout) Timeout() time.Duration { return time.Duration(a.timeout.Load()) }

// Observe records the outcome of one acquisition: it took took, and failed
// because its timeout passed if timedOut. took counts only for successes (a
// negative took counts as zero). The outcome that completes a window
// adjusts the timeout by the rules of AdaptiveTimeout and starts the next
// window. Acquisitions that take Options.Adaptive call Observe themselves;
// call it directly only for waits of your own that Timeout bounds.
func (a *AdaptiveTimeout) Observe(took time.Duration, timedOut bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.outcomes++
	if timedOut {
		a.timedOut++
	} else if took > a.longest {
		a.longest = took
	}
	if a.outcomes < a.cfg.Window {
		return
	}
	a.timeout.Store(int64(a.next(time.Duration(a.timeout.Load()))))
	a.outcomes, a.timedOut, a.longest = 0, 0, 0
}

// next returns the timeout that follows cur after the complete window now
// recorded; a.mu must be held.
func (a *AdaptiveTimeout) next(cur time.Duration) time.Duration {
	lo, hi := a.cfg.Min, a.cfg.Max
	switch {
	case a.timedOut*3 > a.outcomes: // more than a third
		step := max(cur/4, 1)
		if step >= hi-cur {
			return hi
		}
		return cur + step
	case a.timedOut > 0:
		return cur
	}
	target := hi
	if a.longest < hi/2 {
		target = 2 * a.longest
	}
	if target >= cur {
		return cur
	}
	return max(target, cur-cur/4, lo)
}

// bound returns the timeout of an acquisition under o and the
// AdaptiveTimeout to report its outcome to: a positive Timeout wins, and
// Adaptive is then ignored; otherwise Adaptive's current timeout if it is
// set; otherwise none (zero).
func (o *Options) bound() (time.Duration, *AdaptiveTimeout) {
	if o.Timeout > 0 || o.Adaptive == nil {
		return o.Timeout, nil
	}
	return o.Adaptive.Timeout(), o.Adaptive
}

// adaptiveRun reports one acquisition's outcome to its AdaptiveTimeout. Its
// zero value, for an acquisition without one, does nothing and reads no
// clock.
type adaptiveRun struct {
	a     *AdaptiveTimeout
	clk   clock.Clock
	start time.Time // when the acquisition began, on clk
}

// done reports an acquisition that ended with err under the caller's ctx:
// a success (err nil) with the time it took on the Dsync's clock, or a
// timeout if err says the acquisition's own timeout passed (ErrTimeout,
// with ctx still live) while the lock was held by others (ErrLocked).
// Other failures say nothing about how long the lock takes to get and are
// not reported.
func (r *adaptiveRun) done(ctx context.Context, err error) {
	if r.a == nil {
		return
	}
	switch {
	case err == nil:
		r.a.Observe(r.clk.Since(r.start), false)
	case ctx.Err() == nil && errors.Is(err, ErrTimeout) && errors.Is(err, ErrLocked):
		r.a.Observe(r.clk.Since(r.start), true)
	}
}
