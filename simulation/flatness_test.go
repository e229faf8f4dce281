package simulation

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// samplesOf returns one sample every 10 s with the given held RSS (MiB),
// goroutines and file descriptors.
func samplesOf(rss []float64, goroutines, fds []int) []SoakSample {
	var out []SoakSample
	for i := range rss {
		out = append(out, SoakSample{At: time.Duration(i+1) * 10 * time.Second, Settled: true,
			ProcStat: ProcStat{RSS: uint64(2 * rss[i] * (1 << 20)), HeldRSS: uint64(rss[i] * (1 << 20)), RSSFromOS: true,
				Goroutines: goroutines[i], FDs: fds[i]}})
	}
	return out
}

func byName(fs []Flatness) map[string]Flatness {
	out := map[string]Flatness{}
	for _, f := range fs {
		out[f.Name] = f
	}
	return out
}

// TestCheckFlat checks the flatness check: within ±tolerance of the median
// after the warm-up passes, a leak fails and says where, the warm-up is
// left out, RSS as found is reported and never fails.
func TestCheckFlat(t *testing.T) {
	t.Run("flat", func(t *testing.T) {
		s := samplesOf([]float64{10, 30, 31, 29, 30, 32, 30}, []int{50, 100, 104, 98, 101, 100, 96}, []int{20, 72, 72, 72, 72, 72, 72})
		fs := byName(CheckFlat(s, 20*time.Second, 0.10)) // the first sample is the warm-up's
		for _, name := range []string{"held-rss", "goroutines", "fds"} {
			f := fs[name]
			assert.True(t, f.Flat, name)
			assert.False(t, f.Failed(), name)
			assert.True(t, f.Checked, name)
			assert.Equal(t, 6, f.Samples, name)
		}
		assert.InDelta(t, 30.0*(1<<20), fs["held-rss"].Median, 1)
		assert.InDelta(t, 2.0/30, fs["held-rss"].MaxDeviation, 1e-9, "32 MiB against a median of 30")
		assert.Equal(t, 60*time.Second, fs["held-rss"].At)
		assert.InDelta(t, 0.04, fs["goroutines"].MaxDeviation, 1e-9)
		assert.False(t, fs["rss"].Checked)
		assert.False(t, fs["rss"].Failed())
	})
	t.Run("goroutine leak", func(t *testing.T) {
		g := []int{100, 100, 102, 104, 106, 108, 110, 112, 114, 116, 118, 120, 122}
		s := samplesOf(make([]float64, len(g)), g, make([]int, len(g)))
		for i := range s {
			s[i].HeldRSS, s[i].FDs = 30<<20, 72
		}
		f := byName(CheckFlat(s, 0, 0.10))["goroutines"]
		assert.False(t, f.Flat)
		assert.True(t, f.Failed())
		assert.InDelta(t, (122.0-110)/110, f.MaxDeviation, 1e-9)
		assert.Equal(t, 130*time.Second, f.At)
		assert.InDelta(t, 119.0/101-1, f.Drift, 1e-9, "median of the last 4 (a third) over that of the first 4")
		assert.Contains(t, f.String(), "NOT FLAT")
	})
	t.Run("warm-up past every sample", func(t *testing.T) {
		s := samplesOf([]float64{30}, []int{100}, []int{72})
		f := byName(CheckFlat(s, time.Minute, 0.10))["held-rss"]
		assert.True(t, f.Failed())
		assert.Contains(t, f.Skipped, "no sample after the warm-up")
	})
	t.Run("file descriptors unknown", func(t *testing.T) {
		s := samplesOf([]float64{30, 30}, []int{100, 100}, []int{-1, -1})
		f := byName(CheckFlat(s, 0, 0.10))["fds"]
		assert.True(t, f.Unknown)
		assert.False(t, f.Failed())
	})
}

// TestReadProcStat checks that the process's own measures are read.
func TestReadProcStat(t *testing.T) {
	st := ReadProcStat()
	require.Positive(t, st.RSS)
	assert.Positive(t, st.HeldRSS)
	assert.Positive(t, st.HeapInuse)
	assert.Positive(t, st.Goroutines)
	if st.RSSFromOS { // Linux
		assert.Positive(t, st.FDs, "stdin, stdout and stderr at least")
	}
}

// TestCheckRate checks the throughput check: a median within the tolerance
// below the rate holds, one further below does not, the warm-up is left
// out, and a phase without pacing or samples is not checked.
func TestCheckRate(t *testing.T) {
	at := func(tput ...float64) []SoakSample {
		var out []SoakSample
		for i, v := range tput {
			out = append(out, SoakSample{At: time.Duration(i+1) * 10 * time.Second, Throughput: v})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		samples []SoakSample
		rate    float64
		held    bool
		median  float64
		skipped string
	}{
		{"at the rate", at(0, 300, 298, 301, 295), 300, true, 299, ""},
		{"a fault's dip does not move the median", at(0, 300, 40, 299, 300, 298), 300, true, 299, ""},
		{"within the tolerance", at(0, 275, 272, 280), 300, true, 275, ""},
		{"below it", at(0, 250, 240, 300), 300, false, 250, ""},
		{"not paced", at(0, 300), 0, false, 0, "not paced"},
		{"only the warm-up", at(300), 300, false, 0, "no sample after the warm-up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckRate(tc.samples, 20*time.Second, tc.rate, 0.10) // the first sample is the warm-up's
			assert.Equal(t, tc.held, r.Held)
			assert.Equal(t, !tc.held, r.Failed())
			assert.InDelta(t, tc.median, r.Median, 1e-9)
			if tc.skipped != "" {
				assert.Contains(t, r.Skipped, tc.skipped)
				assert.Contains(t, r.String(), "not checked")
				return
			}
			assert.Empty(t, r.Skipped)
			assert.Equal(t, len(tc.samples)-1, r.Samples)
			if !tc.held {
				assert.Contains(t, r.String(), "NOT HELD")
			}
		})
	}
}
