package simulation

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Flatness is what CheckFlat found of one measure of the process over the
// samples of a soak taken after its warm-up.
type Flatness struct {
	Name string // "held-rss", "goroutines", "fds" or "rss"
	// Checked is false for a measure that is reported, not checked: RSS as
	// found, which follows the runtime's scavenger (ProcStat.HeldRSS).
	Checked bool
	Samples int // samples after the warm-up
	// Median, Min and Max are over those samples.
	Median, Min, Max float64
	// MaxDeviation is the largest |x − Median| / Median among them, and At
	// the time of the sample that showed it.
	MaxDeviation float64
	At           time.Duration
	// Drift is the median of the last third of those samples over the
	// median of the first third, less one: a leak slower than the
	// tolerance over the run shows here first. It is reported, not
	// checked.
	Drift float64
	// Flat reports whether MaxDeviation is within the tolerance. A measure
	// that could not be measured is not flat and says why in Skipped.
	Flat    bool
	Skipped string
	// Unknown is set, with Skipped, for a measure the system does not
	// provide (file descriptors outside Linux): that is not a failure.
	Unknown bool
}

// Failed reports whether f fails the check: a checked measure that is not
// flat, or that had no sample after the warm-up.
func (f Flatness) Failed() bool { return f.Checked && !f.Flat && !f.Unknown }

func (f Flatness) String() string {
	if f.Skipped != "" {
		return fmt.Sprintf("%s: not checked (%s)", f.Name, f.Skipped)
	}
	verdict := "flat"
	switch {
	case !f.Checked:
		verdict = "reported, not checked"
	case !f.Flat:
		verdict = "NOT FLAT"
	}
	return fmt.Sprintf("%s: median %s, %s to %s over %d samples, max deviation %.1f%% at %v, drift %+.1f%%: %s",
		f.Name, f.format(f.Median), f.format(f.Min), f.format(f.Max), f.Samples, 100*f.MaxDeviation, f.At.Round(time.Second), 100*f.Drift, verdict)
}

// Range describes the measure's median and range, without a verdict.
func (f Flatness) Range() string {
	if f.Skipped != "" {
		return fmt.Sprintf("%s: %s", f.Name, f.Skipped)
	}
	return fmt.Sprintf("%s: median %s, %s to %s over %d samples, max deviation %.1f%% at %v",
		f.Name, f.format(f.Median), f.format(f.Min), f.format(f.Max), f.Samples, 100*f.MaxDeviation, f.At.Round(time.Second))
}

func (f Flatness) format(v float64) string {
	if strings.HasSuffix(f.Name, "rss") {
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return fmt.Sprintf("%.0f", v)
}

// CheckFlat checks that the process's resident set after a collection
// (ProcStat.HeldRSS), goroutines and open file descriptors stay within
// tolerance (0.1: ±10%) of their median over the samples taken at or
// after warmup, and reports RSS as found the same way, unchecked. File
// descriptors are not checked where they are not known (ProcStat.FDs <
// 0); RSS is the runtime's stand-in where the OS's is not known
// (ProcStat.RSSFromOS). A measure with no sample after the warm-up fails.
func CheckFlat(samples []SoakSample, warmup time.Duration, tolerance float64) []Flatness {
	var after []SoakSample
	for _, s := range samples {
		if s.At >= warmup {
			after = append(after, s)
		}
	}
	measures := []struct {
		name    string
		checked bool
		get     func(SoakSample) float64
	}{
		{"held-rss", true, func(s SoakSample) float64 { return float64(s.HeldRSS) }},
		{"goroutines", true, func(s SoakSample) float64 { return float64(s.Goroutines) }},
		{"fds", true, func(s SoakSample) float64 { return float64(s.FDs) }},
		{"rss", false, func(s SoakSample) float64 { return float64(s.RSS) }},
	}
	var out []Flatness
	for _, m := range measures {
		f := Flatness{Name: m.name, Checked: m.checked, Samples: len(after)}
		switch {
		case len(after) == 0:
			f.Skipped = fmt.Sprintf("no sample after the warm-up of %v", warmup)
		case m.name == "fds" && slices.ContainsFunc(after, func(s SoakSample) bool { return s.FDs < 0 }):
			f.Skipped, f.Unknown = "open file descriptors are not known on this system", true
		}
		if f.Skipped != "" {
			out = append(out, f)
			continue
		}
		vs := make([]float64, len(after))
		for i, s := range after {
			vs[i] = m.get(s)
		}
		f.Median, f.Min, f.Max = median(vs), slices.Min(vs), slices.Max(vs)
		for i, v := range vs {
			d := 0.0
			if f.Median != 0 {
				d = abs(v-f.Median) / f.Median
			} else if v != 0 {
				d = 1
			}
			if d > f.MaxDeviation || i == 0 {
				f.MaxDeviation, f.At = d, after[i].At
			}
		}
		if third := len(vs) / 3; third > 0 {
			if first := median(vs[:third]); first != 0 {
				f.Drift = median(vs[len(vs)-third:])/first - 1
			}
		}
		f.Flat = f.MaxDeviation <= tolerance
		out = append(out, f)
	}
	return out
}

// median returns the median of vs (the mean of the middle two for an even
// count), without changing vs.
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// RateCheck is what CheckRate found of the workload's throughput over the
// samples of a soak taken after its warm-up.
type RateCheck struct {
	Rate    float64 // the rate the phase was paced at (SoakPhase.Rate)
	Samples int     // samples after the warm-up
	// Median and Min are those samples' throughput (SoakSample.Throughput).
	Median, Min float64
	// Held reports whether Median is at least (1 − tolerance) × Rate: the
	// workload ran at the rate it was given. Skipped says why it could
	// not be checked, which fails.
	Held    bool
	Skipped string
}

// Failed reports whether r fails the check.
func (r RateCheck) Failed() bool { return !r.Held }

func (r RateCheck) String() string {
	if r.Skipped != "" {
		return fmt.Sprintf("throughput: not checked (%s)", r.Skipped)
	}
	verdict := "held"
	if !r.Held {
		verdict = "NOT HELD"
	}
	return fmt.Sprintf("throughput: median %.0f/s (%.0f%% of the rate of %.0f/s), least %.0f/s, over %d samples: %s",
		r.Median, 100*r.Median/r.Rate, r.Rate, r.Min, r.Samples, verdict)
}

// CheckRate checks that the workload kept the rate it was paced at: the
// median throughput of the samples taken at or after warmup is at least
// (1 − tolerance) × rate. Given settled samples (SettledSamples), it tells
// whether the soak ran at the rate it claims outside faults; a pacer only
// drops permits when every worker is busy, so a median below the rate
// means acquisitions took longer than the workers could absorb. A rate of
// zero (no pacing) or no sample after the warm-up is not checked, and
// fails.
func CheckRate(samples []SoakSample, warmup time.Duration, rate, tolerance float64) RateCheck {
	r := RateCheck{Rate: rate}
	var vs []float64
	for _, s := range samples {
		if s.At >= warmup {
			vs = append(vs, s.Throughput)
		}
	}
	r.Samples = len(vs)
	switch {
	case rate <= 0:
		r.Skipped = "the phase was not paced"
	case len(vs) == 0:
		r.Skipped = fmt.Sprintf("no sample after the warm-up of %v", warmup)
	default:
		r.Median, r.Min = median(vs), slices.Min(vs)
		r.Held = r.Median >= (1-tolerance)*rate
	}
	return r
}
