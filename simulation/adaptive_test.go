package simulation

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
)

// TestCheckAdaptive feeds CheckAdaptive hand-made histories: one that
// follows the rules, and ones that break each of them, which it must
// report.
func TestCheckAdaptive(t *testing.T) {
	const ms = time.Millisecond
	cfg := dsync.AdaptiveConfig{Initial: 400 * ms, Min: 100 * ms, Max: 1000 * ms, Window: 3}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	ok := func(c, s int, took, before, after time.Duration) AdaptiveSample {
		return AdaptiveSample{Client: c, At: at(s), Took: took, Outcome: AdaptiveSuccess, Before: before, After: after}
	}
	timedOut := func(c, s int, before, after time.Duration) AdaptiveSample {
		return AdaptiveSample{Client: c, At: at(s), Took: before, Outcome: AdaptiveTimedOut, Before: before, After: after}
	}
	unreported := func(c, s int, before, after time.Duration) AdaptiveSample {
		return AdaptiveSample{Client: c, At: at(s), Outcome: AdaptiveUnreported, Before: before, After: after}
	}
	// good: c0 grows twice under timeouts (400 -> 500 -> 625), keeps once
	// (one of three timed out), then shrinks by a quarter per quiet window
	// (625 -> 468.75 -> 351.5625 -> 263.671875 -> 197.75390625 ->
	// 148.3154296875 -> 111.236572265625) down to Min, then stays there.
	var good []AdaptiveSample
	v := 400 * ms
	s := 0
	step := func(sm AdaptiveSample) { good = append(good, sm); s++ }
	for range 2 { // two windows of timeouts, while faults last (seconds 0..5)
		step(timedOut(0, s, v, v))
		step(unreported(0, s, v, v))
		step(timedOut(0, s, v, v))
		step(ok(0, s, 300*ms, v, v+v/4))
		v += v / 4
	}
	step(ok(0, s, 10*ms, v, v)) // one in three: kept
	step(timedOut(0, s, v, v))
	step(ok(0, s, 10*ms, v, v))
	for v > cfg.Min {
		next := max(v-v/4, cfg.Min)
		step(ok(0, s, 5*ms, v, v))
		step(ok(0, s, 20*ms, v, v))
		step(ok(0, s, 5*ms, v, next))
		v = next
	}
	for range 6 {
		step(ok(0, s, 5*ms, v, v))
	}
	faults := []Span{{at(-1), at(5)}}
	want := AdaptiveWant{Grow: []int{0}, During: faults, Settle: true}
	r := CheckAdaptive(good, cfg, want)
	const rules = "a history that follows the rules: %+v; want no violation, 2 windows grown, some kept and shrunk, 100ms..625ms"
	require.Zero(t, r.Violations(), rules, r)
	require.Equal(t, 2, r.Grown, rules, r)
	require.GreaterOrEqual(t, r.Kept, 1, rules, r)
	require.NotZero(t, r.Shrunk, rules, r)
	require.Equal(t, 625*ms, r.Peak, rules, r)
	require.Equal(t, cfg.Min, r.Lowest, rules, r)
	// 1000 750 562.5 421.875 316.40625 237.3046875 177.978515625 133.48388671875 100.112915039... 75.08
	assert.Equal(t, 9, SettleWindows(cfg), "SettleWindows(%+v)", cfg)

	edit := func(f func([]AdaptiveSample) []AdaptiveSample) []AdaptiveSample {
		return f(append([]AdaptiveSample(nil), good...))
	}
	for _, tc := range []struct {
		name    string
		samples []AdaptiveSample
		want    AdaptiveWant
		check   func(AdaptiveReport) bool
	}{
		{"above Max", edit(func(h []AdaptiveSample) []AdaptiveSample {
			h[7].After = 1001 * ms
			return h[:8]
		}), want, func(r AdaptiveReport) bool { return r.OutOfBounds > 0 }},
		{"below Min", append(edit(func(h []AdaptiveSample) []AdaptiveSample { return h }), ok(0, 99, 5*ms, 99*ms, 99*ms)),
			AdaptiveWant{}, func(r AdaptiveReport) bool { return r.OutOfBounds > 0 }},
		{"never grew: a window of timeouts kept", edit(func(h []AdaptiveSample) []AdaptiveSample {
			h[3].After = h[3].Before
			return h[:4]
		}), AdaptiveWant{}, func(r AdaptiveReport) bool { return r.WrongAdjustments > 0 }},
		{"grew too much", edit(func(h []AdaptiveSample) []AdaptiveSample {
			h[3].After = 2 * h[3].Before
			return h[:4]
		}), AdaptiveWant{}, func(r AdaptiveReport) bool { return r.WrongAdjustments > 0 }},
		{"never grew during the fault", edit(func(h []AdaptiveSample) []AdaptiveSample {
			h[0].Outcome, h[2].Outcome = AdaptiveSuccess, AdaptiveSuccess // the rules: keep
			h[3].After, h[4].Before, h[6].Before = h[3].Before, h[3].Before, h[3].Before
			return h[:4]
		}), AdaptiveWant{Grow: []int{0}, During: faults}, func(r AdaptiveReport) bool { return r.NotGrown > 0 && r.WrongAdjustments == 0 }},
		{"changed within a window", edit(func(h []AdaptiveSample) []AdaptiveSample {
			h[1].After = h[1].Before + ms
			return h[:2]
		}), AdaptiveWant{}, func(r AdaptiveReport) bool { return r.WrongAdjustments > 0 }},
		{"grew a window with one timeout in three", edit(func(h []AdaptiveSample) []AdaptiveSample {
			h[10].After = h[10].Before + h[10].Before/4
			return h[:11]
		}), AdaptiveWant{}, func(r AdaptiveReport) bool { return r.WrongAdjustments > 0 }},
		{"never shrank: a quiet window of fast acquisitions kept", edit(func(h []AdaptiveSample) []AdaptiveSample {
			h[13].After = h[13].Before
			return h[:14]
		}), AdaptiveWant{}, func(r AdaptiveReport) bool { return r.WrongAdjustments > 0 }},
		{"shrank by more than a quarter", edit(func(h []AdaptiveSample) []AdaptiveSample {
			h[13].After = h[13].Before / 2
			return h[:14]
		}), AdaptiveWant{}, func(r AdaptiveReport) bool { return r.WrongAdjustments > 0 }},
		{"successes grew it", edit(func(h []AdaptiveSample) []AdaptiveSample {
			h[13].After = h[13].Before + ms
			return h[:14]
		}), AdaptiveWant{}, func(r AdaptiveReport) bool { return r.WrongAdjustments > 0 }},
		{"an unreported outcome changed it", edit(func(h []AdaptiveSample) []AdaptiveSample {
			h[1].After = h[1].Before + h[1].Before/4
			return h[:2]
		}), AdaptiveWant{}, func(r AdaptiveReport) bool { return r.WrongAdjustments > 0 }},
		{"never came back down: too few quiet windows", edit(func(h []AdaptiveSample) []AdaptiveSample { return h[:20] }),
			AdaptiveWant{Settle: true}, func(r AdaptiveReport) bool { return r.NotSettled > 0 && r.WrongAdjustments == 0 }},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			r := CheckAdaptive(tc.samples, cfg, tc.want)
			assert.True(t, tc.check(r), "%+v: want it reported", r)
			assert.NotZero(t, r.Violations(), "%+v: want it reported", r)
		})
	}
	// A crashed client need not settle.
	r = CheckAdaptive(good[:20], cfg, AdaptiveWant{Settle: true, Crashed: []bool{true}})
	assert.Zero(t, r.Violations(), "a crashed client that did not settle: %+v; want no violation", r)
}

// TestAdaptiveRandom runs the random scenario with adaptive timeouts
// (adaptive-random) over a twentieth of TestRandom's seeds (25; 5 under the
// race detector): safe, live, every timeout within its bounds and its rules,
// and back down after the heal. A failing seed replays with
//
//	go test ./simulation -run 'TestAdaptiveRandom/seed=N$'
func TestAdaptiveRandom(t *testing.T) {
	var runs, grown, timedOut, successes int
	var peak time.Duration
	runSeeds(t, AdaptiveRandom(Budget{}), max(randomSeeds()/20, 1), func(t *testing.T, r *Result) {
		assert.NotZero(t, r.Adaptive.Clients, "adaptive report %+v: want outcomes", r.Adaptive)
		assert.NotZero(t, r.Adaptive.Successes, "adaptive report %+v: want outcomes", r.Adaptive)
		runs++
		grown += r.Adaptive.Grown
		timedOut += r.Adaptive.TimedOut
		successes += r.Adaptive.Successes
		peak = max(peak, r.Adaptive.Peak)
	})
	t.Logf("%d runs: %d successes, %d timed out, %d windows grown, highest timeout %v", runs, successes, timedOut, grown, peak)
}

// TestAdaptiveCheckerCatchesFixedTimeouts proves CheckAdaptive on a real
// run: the adaptive scenario with clients that pass LockTimeout instead of
// their AdaptiveTimeout (which then never changes) must fail: quiet windows
// of fast acquisitions that did not shrink it, and no growth during the
// faults (it settles, in a way: the fixed timeout outlasts the faults, and
// the quiet windows then include waits of seconds). The same seed with
// adaptive timeouts is safe (TestScenarios).
func TestAdaptiveCheckerCatchesFixedTimeouts(t *testing.T) {
	s := adaptiveScenario()
	fixed := s
	fixed.Drive = func(c *Cluster) (time.Duration, error) {
		c.fixedAdaptive = true
		return s.Drive(c)
	}
	r := runScenario(t, fixed, Config{Seed: 1})
	t.Log(r.Summary())
	a := r.Adaptive
	assert.NotZero(t, a.WrongAdjustments, "timeouts that do not adapt: %+v; want windows against the rules, no growth, and the run failed", a)
	assert.NotZero(t, a.NotGrown, "timeouts that do not adapt: %+v; want windows against the rules, no growth, and the run failed", a)
	assert.NotEmpty(t, r.Unexpected(), "timeouts that do not adapt: %+v; want windows against the rules, no growth, and the run failed", a)
}

// TestAdaptiveProbeCountsTheWholeWait proves that the liveness check holds
// with adaptive timeouts shorter than the bound: every node refuses every
// lock for a quiet period three times the liveness bound, and the probe's
// acquisitions, bounded by 500ms, each time out well within the bound. The
// probe asks again each time, and its whole wait is over the bound: the run
// must fail, as it does with the fixed timeout (one acquisition that waits
// past the bound).
func TestAdaptiveProbeCountsTheWholeWait(t *testing.T) {
	quiet := Scenario{
		Name:   "quiet-nodes",
		Faults: "every node in its restart quiet period for 3× the liveness bound",
		Expect: Safe,
		Setup: func(cfg *Config) {
			cfg.Validity = 2 * time.Second
			cfg.QuietPeriod = 3 * LivenessBound(*cfg)
		},
		Drive: func(c *Cluster) (time.Duration, error) {
			if !c.Probe() {
				return 0, nil
			}
			return 0, nil
		},
	}
	const ms = time.Millisecond
	for _, adaptive := range []*dsync.AdaptiveConfig{nil, {Initial: 500 * ms, Min: 500 * ms, Max: 500 * ms}} {
		r := runScenario(t, quiet, Config{Seed: 1, Adaptive: adaptive})
		t.Log(r.Summary())
		for _, n := range r.Notes {
			t.Log(n)
		}
		assert.Equal(t, 3, r.LivenessFailures, "adaptive %+v: liveness failures; want 3 (one per client's probe), and the run failed", adaptive)
		assert.NotEmpty(t, r.Unexpected(), "adaptive %+v: %d liveness failures; want 3 (one per client's probe), and the run failed", adaptive, r.LivenessFailures)
	}
}
