package simulation

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
)

// AdaptiveOutcome is what an acquisition told its client's
// dsync.AdaptiveTimeout, as Options.Adaptive documents it.
type AdaptiveOutcome uint8

// Adaptive outcomes.
const (
	// AdaptiveUnreported: the acquisition failed in a way that says nothing
	// about how long the lock takes to get (ErrNoQuorum, ErrDeadlock, the
	// caller's ctx ending, ...), and is not reported.
	AdaptiveUnreported AdaptiveOutcome = iota
	// AdaptiveSuccess: granted, reported with the time it took.
	AdaptiveSuccess
	// AdaptiveTimedOut: its timeout passed while others held the lock (the
	// error wraps ErrTimeout and ErrLocked), reported as a timeout.
	AdaptiveTimedOut
)

func (o AdaptiveOutcome) String() string {
	switch o {
	case AdaptiveSuccess:
		return "success"
	case AdaptiveTimedOut:
		return "timed out"
	}
	return "unreported"
}

// AdaptiveSample is one acquisition of a client whose acquisitions take
// their timeout from its dsync.AdaptiveTimeout (Config.Adaptive). A client's
// acquisitions are made one at a time, and only they touch its
// AdaptiveTimeout, so Before is the timeout the acquisition used and After
// the timeout once its outcome was observed: they differ only if that
// outcome completed a window.
type AdaptiveSample struct {
	Client  int
	At      time.Time     // when the acquisition returned
	Took    time.Duration // from just before the call to just after its return, on the client's clock: at least what dsync measured
	Outcome AdaptiveOutcome
	Before  time.Duration // Timeout() just before the call
	After   time.Duration // Timeout() just after the return
}

// AdaptiveLog records the adaptive samples of a run. Safe for concurrent
// use.
type AdaptiveLog struct {
	mu      sync.Mutex // guards samples
	samples []AdaptiveSample
}

func (l *AdaptiveLog) add(s AdaptiveSample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples = append(l.samples, s)
}

// Samples returns a copy of the samples recorded so far, in the order
// they were recorded.
func (l *AdaptiveLog) Samples() []AdaptiveSample {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.samples)
}

// acquisition is one acquisition of a client under way: what it needs to
// record its sample when it returns.
type acquisition struct {
	cl     *Client
	opts   dsync.Options
	start  time.Time // on the client's clock, as dsync measures
	before time.Duration
}

// begin starts an acquisition of cl: its Options, with the client's
// AdaptiveTimeout if the run has one (Config.Adaptive) and otherwise
// Config.LockTimeout.
func (cl *Client) begin() acquisition {
	a := acquisition{cl: cl, start: cl.clk.Now(), opts: dsync.Options{Source: "simulation"}}
	if cl.adaptive == nil {
		a.opts.Timeout = cl.c.Cfg.LockTimeout
		return a
	}
	a.before = cl.adaptive.Timeout()
	if cl.c.fixedAdaptive {
		a.opts.Timeout = cl.c.Cfg.LockTimeout // tests: the timeout does not adapt
		return a
	}
	a.opts.Adaptive = cl.adaptive
	return a
}

// end records the acquisition's return with err. A client that crashed
// records nothing: its ctx was cancelled, so dsync reported nothing, and it
// makes no further acquisition.
func (a acquisition) end(err error) {
	cl := a.cl
	now := cl.c.Clock.Now()
	if err == nil {
		cl.granted.Store(now.UnixNano())
	} else {
		cl.failed.Store(now.UnixNano())
	}
	if cl.adaptive == nil || cl.Crashed() {
		return
	}
	s := AdaptiveSample{Client: cl.ID, At: now, Took: cl.clk.Since(a.start), Before: a.before, After: cl.adaptive.Timeout()}
	switch {
	case err == nil:
		s.Outcome = AdaptiveSuccess
	case errors.Is(err, dsync.ErrTimeout) && errors.Is(err, dsync.ErrLocked):
		s.Outcome = AdaptiveTimedOut
	}
	cl.c.Adaptive.add(s)
}

// ProbeWait is one operation of the liveness probe in a run with adaptive
// timeouts: an acquisition tried again each time it failed at its adaptive
// timeout, as a caller whose operation timed out tries it again, until it
// was granted or failed otherwise.
type ProbeWait struct {
	Client  int
	From    time.Time // the first call
	End     time.Time // the grant, or the return of the last call if none
	Granted bool
	Calls   int // acquisitions made: all but the last timed out
}

// probe runs try, one operation of the liveness probe that returns the
// error of its acquisition. Without adaptive timeouts it runs once. With
// them, a timeout may be shorter than the liveness bound, so an
// acquisition that timed out is tried again and the whole wait, from the
// first call to the grant, is recorded for Run to check against the bound:
// the bound is what a client that keeps asking waits, however it slices its
// asking into calls.
func (cl *Client) probe(try func() error) {
	c := cl.c
	if cl.adaptive == nil {
		try()
		return
	}
	w := ProbeWait{Client: cl.ID, From: c.Clock.Now()}
	for range 10_000 { // bounded: virtual time runs out long before
		err := try()
		w.Calls++
		if err == nil {
			w.End, w.Granted = time.Unix(0, cl.granted.Load()), true
			break
		}
		w.End = time.Unix(0, cl.failed.Load())
		if cl.Crashed() || !errors.Is(err, dsync.ErrTimeout) {
			break
		}
	}
	if cl.Crashed() {
		return // died waiting, as a crashed client's pending acquisition
	}
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	c.probes = append(c.probes, w)
}

// Probes returns the liveness probe's waits recorded so far (runs with
// adaptive timeouts only).
func (c *Cluster) Probes() []ProbeWait {
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	return slices.Clone(c.probes)
}

// AdaptiveWant is what a scenario requires of its adaptive timeouts beyond
// the rules every run must follow.
type AdaptiveWant struct {
	// Grow lists the clients whose timeout must rise during each span of
	// During, above what it was when the span began (unless it was at Max
	// already): spans in which they keep asking for a lock that another
	// holds past their timeout.
	Grow   []int
	During []Span
	// Settle requires every client that did not crash to end the run with
	// enough complete windows in a row without a timeout to bring its
	// timeout, from what it was when they began, down to Min (as
	// SettleWindows does from Max): the rules then put it at or below
	// max(Min, twice the longest acquisition of those windows), which is
	// checked.
	Settle bool
	// Crashed says which clients crashed; Settle does not apply to them.
	Crashed []bool
}

// Span is a stretch of a run's time.
type Span struct{ From, To time.Time }

// AdaptiveReport is what CheckAdaptive found.
type AdaptiveReport struct {
	Clients int // clients with samples; 0 when the run had no adaptive timeouts
	Config  dsync.AdaptiveConfig

	Samples, Successes, TimedOut, Unreported int
	Windows, Grown, Kept, Shrunk             int // complete windows, and what each did

	Peak   time.Duration // the highest timeout any client had
	Lowest time.Duration // the lowest
	// FaultPeak is the highest timeout a client of AdaptiveWant.Grow had
	// during a span of During.
	FaultPeak time.Duration
	// PerClient is each client's timeouts: its peak and its last.
	PerClient []AdaptiveClient

	OutOfBounds      int // samples with a timeout outside [Min, Max]
	WrongAdjustments int // windows (or outcomes within one) whose change breaks the rules
	NotGrown         int // spans of AdaptiveWant.During in which a client of Grow saw its timeout not rise
	NotSettled       int // clients of AdaptiveWant.Settle that did not come back down
	Examples         []string
}

// AdaptiveClient is one client's summary in an AdaptiveReport.
type AdaptiveClient struct {
	Client      int
	Peak, Final time.Duration
	// QuietWindows is the number of complete windows without a timeout at
	// the end of the run, and Longest the longest success among them.
	QuietWindows int
	Longest      time.Duration
}

// Violations counts what CheckAdaptive found wrong.
func (r AdaptiveReport) Violations() int {
	return r.OutOfBounds + r.WrongAdjustments + r.NotGrown + r.NotSettled
}

// SettleWindows is how many complete windows in a row without a timeout
// bring a timeout from Max down to Min or to twice the longest acquisition
// of those windows, by the rules of dsync.AdaptiveTimeout: each such window
// takes the timeout t to no more than max(Min, 2×longest, t − t/4), so k of
// them take t0 to no more than max(Min, 2×longest, t0 less a quarter k
// times).
func SettleWindows(cfg dsync.AdaptiveConfig) int { return settleWindows(cfg.Max, cfg) }

// settleWindows is SettleWindows from a timeout of from.
func settleWindows(from time.Duration, cfg dsync.AdaptiveConfig) int {
	n := 0
	for t := from; t > cfg.Min && t >= 4; t -= t / 4 { // below 4ns a quarter is nothing
		n++
	}
	return n
}

// CheckAdaptive checks the samples of a run with adaptive timeouts against
// the rules that dsync.AdaptiveTimeout documents, with cfg its configuration
// (defaults applied: AdaptiveTimeout.Config), per client, the client's
// outcomes split into windows of cfg.Window reported outcomes from its
// first:
//
//   - every timeout is within [Min, Max];
//   - the timeout changes only when an outcome completes a window;
//   - a window of which more than a third timed out grows it by a quarter
//     (at least 1ns), at most to Max: a timeout too short for the load
//     grows, and not by more;
//   - a window with some timeouts, a third or fewer, keeps it;
//   - a window without timeouts never grows it, takes at most a quarter
//     off, never goes below Min, and, if twice its longest success is below
//     the timeout (and the timeout above Min), shrinks it, to no more than
//     max(Min, 2×longest, t − t/4): a timeout longer than the load needs
//     comes back down. Took is measured around the call, so it is at least
//     what dsync measured, and the bound holds with it.
//
// want adds what a scenario requires: growth during its faults for some
// clients, and every live client settled at the end.
func CheckAdaptive(samples []AdaptiveSample, cfg dsync.AdaptiveConfig, want AdaptiveWant) AdaptiveReport {
	rep := AdaptiveReport{Config: cfg, Lowest: cfg.Max}
	example := func(format string, args ...any) {
		if len(rep.Examples) < 5 {
			rep.Examples = append(rep.Examples, fmt.Sprintf(format, args...))
		}
	}
	type state struct {
		outcomes, timedOut int
		longest            time.Duration
		// quiet, quietFrom and quietLongest: complete windows without a
		// timeout since the last with one, the timeout when the first of
		// them began, and their longest success.
		quiet                   int
		quietFrom, quietLongest time.Duration
		peak, last              time.Duration
	}
	states := map[int]*state{}
	var order []int
	for _, s := range samples {
		st := states[s.Client]
		if st == nil {
			st = &state{peak: cfg.Initial, last: cfg.Initial}
			states[s.Client] = st
			order = append(order, s.Client)
		}
		rep.Samples++
		for _, v := range []time.Duration{s.Before, s.After} {
			if v < cfg.Min || v > cfg.Max {
				rep.OutOfBounds++
				example("c%d timeout %v outside [%v, %v]", s.Client, v, cfg.Min, cfg.Max)
			}
			rep.Peak, rep.Lowest = max(rep.Peak, v), min(rep.Lowest, v)
			st.peak = max(st.peak, v)
		}
		st.last = s.After
		switch s.Outcome {
		case AdaptiveUnreported:
			rep.Unreported++
			if s.After != s.Before {
				rep.WrongAdjustments++
				example("c%d: an unreported outcome changed the timeout %v -> %v", s.Client, s.Before, s.After)
			}
			continue
		case AdaptiveSuccess:
			rep.Successes++
			st.longest = max(st.longest, s.Took)
		case AdaptiveTimedOut:
			rep.TimedOut++
			st.timedOut++
		}
		st.outcomes++
		if st.outcomes < cfg.Window {
			if s.After != s.Before {
				rep.WrongAdjustments++
				example("c%d: timeout changed %v -> %v at outcome %d of a window of %d", s.Client, s.Before, s.After, st.outcomes, cfg.Window)
			}
			continue
		}
		// The outcome completes a window.
		rep.Windows++
		cur, next := s.Before, s.After
		switch {
		case next > cur:
			rep.Grown++
		case next < cur:
			rep.Shrunk++
		default:
			rep.Kept++
		}
		switch {
		case st.timedOut*3 > st.outcomes:
			want := min(cur+max(cur/4, 1), cfg.Max)
			if next != want {
				rep.WrongAdjustments++
				example("c%d: %d of %d timed out, timeout %v -> %v; want %v (grown by a quarter, at most Max)", s.Client, st.timedOut, st.outcomes, cur, next, want)
			}
			st.quiet, st.quietLongest = 0, 0
		case st.timedOut > 0:
			if next != cur {
				rep.WrongAdjustments++
				example("c%d: %d of %d timed out, timeout %v -> %v; want it kept", s.Client, st.timedOut, st.outcomes, cur, next)
			}
			st.quiet, st.quietLongest = 0, 0
		default:
			floor := max(cfg.Min, cur-cur/4)
			ceiling := max(cfg.Min, 2*st.longest, cur-cur/4)
			switch {
			case next > cur:
				rep.WrongAdjustments++
				example("c%d: no timeout, longest %v, timeout %v -> %v; successes must not grow it", s.Client, st.longest, cur, next)
			case next < floor:
				rep.WrongAdjustments++
				example("c%d: no timeout, timeout %v -> %v; want at least %v (a quarter off at most, not below Min)", s.Client, cur, next, floor)
			case 2*st.longest < cur && cur > cfg.Min && next > ceiling:
				rep.WrongAdjustments++
				example("c%d: no timeout, longest %v, timeout %v -> %v; want at most %v (toward twice the longest)", s.Client, st.longest, cur, next, ceiling)
			}
			if st.quiet == 0 {
				st.quietFrom = cur
			}
			st.quiet++
			st.quietLongest = max(st.quietLongest, st.longest)
		}
		st.outcomes, st.timedOut, st.longest = 0, 0, 0
	}
	slices.Sort(order)
	for _, i := range want.Grow {
		for k, sp := range want.During {
			start, rose := cfg.Initial, false
			for _, s := range samples {
				switch {
				case s.Client != i || s.At.After(sp.To):
				case !s.At.After(sp.From):
					start = s.After
				default:
					rep.FaultPeak = max(rep.FaultPeak, s.After)
					rose = rose || s.After > start
				}
			}
			if !rose && start < cfg.Max {
				rep.NotGrown++
				example("c%d: timeout did not rise above %v during fault %d", i, start, k)
			}
		}
	}
	for _, i := range order {
		st := states[i]
		rep.PerClient = append(rep.PerClient, AdaptiveClient{Client: i, Peak: st.peak, Final: st.last, QuietWindows: st.quiet, Longest: st.quietLongest})
		if !want.Settle || (i < len(want.Crashed) && want.Crashed[i]) {
			continue
		}
		settle := settleWindows(st.quietFrom, cfg)
		if bound := max(cfg.Min, 2*st.quietLongest); st.quiet == 0 || st.quiet < settle || st.last > bound {
			rep.NotSettled++
			example("c%d: ended at %v after %d quiet windows from %v (longest %v); want %d or more, and at most %v",
				i, st.last, st.quiet, st.quietFrom, st.quietLongest, settle, bound)
		}
	}
	rep.Clients = len(order)
	if rep.Clients == 0 {
		rep.Lowest = 0
	}
	return rep
}

// adaptiveTimeouts makes one dsync.AdaptiveTimeout per client from cfg:
// one per process, as a process holds one per class of lock (the
// simulation's clients lock one class).
func adaptiveTimeouts(cfg dsync.AdaptiveConfig, clients int) ([]*dsync.AdaptiveTimeout, error) {
	out := make([]*dsync.AdaptiveTimeout, clients)
	for i := range out {
		a, err := dsync.NewAdaptiveTimeout(cfg)
		if err != nil {
			return nil, fmt.Errorf("simulation: Config.Adaptive: %w", err)
		}
		out[i] = a
	}
	return out, nil
}

// settleResource is the resource client i locks alone in Settle.
func settleResource(i int) string { return fmt.Sprintf("adaptive/c%d", i) }

// Settle runs, on every client still alive, (k+2)×Window acquisitions of a
// write lock on a resource of its own, where k is how many windows without
// a timeout bring the client's current timeout down to Min, each with a
// section of a hold time and a think time as in Workload: fast
// acquisitions, with no fault and no contention, that must bring every
// client's adaptive timeout back down (AdaptiveWant.Settle). The first
// window may hold outcomes from before, and its timeouts may grow the
// timeout once more, by a quarter, which one more window takes back; the
// others are Settle's alone. It reports whether all of it finished within
// cfg.MaxVirtual.
func (c *Cluster) Settle() bool {
	done := c.spawn(func() {
		var wg sync.WaitGroup
		for _, cl := range c.clients {
			if cl.Crashed() {
				continue
			}
			ops := (settleWindows(cl.adaptive.Timeout(), c.adaptiveCfg) + 2) * c.adaptiveCfg.Window
			wg.Go(func() {
				cfg := c.Cfg
				for range ops {
					if cl.Crashed() {
						return
					}
					clock.Sleep(cl.ctx, cl.clk, time.Duration(cl.rng.Int64N(int64(cfg.Think)+1)))
					h, err := cl.Acquire(settleResource(cl.ID), true)
					if err != nil {
						continue
					}
					cl.Section(h, cfg.Hold/2+time.Duration(cl.rng.Int64N(int64(cfg.Hold/2)+1)))
					h.Release()
				}
			})
		}
		wg.Wait()
	})
	return c.RunUntil(done, c.Cfg.MaxVirtual-c.Now())
}

// adaptiveSetup gives cfg adaptive timeouts unless it has some: Validity 2s
// unless set (as the random scenario), Initial Validity/4, Min Validity/20,
// Max 4×Validity (LockTimeout's default, which they replace), a window of 4
// outcomes, so that a fault of a validity or two, and the recovery after
// it, span several windows.
func adaptiveSetup(cfg *Config) {
	if cfg.Validity == 0 {
		cfg.Validity = 2 * time.Second
	}
	if cfg.Adaptive == nil {
		v := cfg.Validity
		cfg.Adaptive = &dsync.AdaptiveConfig{Initial: v / 4, Min: v / 20, Max: 4 * v, Window: 4}
	}
}
