package loadgen

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits buckets, so a recorded latency is known to within about 3%.
const subBits = 5

const (
	sub        = 1 << subBits
	numBuckets = 64 * sub
)

// Histogram counts latencies in log-linear buckets. Recording is a few
// instructions and allocates nothing, so every operation of a run is
// recorded, not a sample. The zero value is an empty histogram. It is not
// safe for concurrent use: each worker records into its own and Merge adds
// them up at the end.
type Histogram struct {
	counts [numBuckets]uint64
	total  uint64
	max    time.Duration
}

func bucketOf(v uint64) int {
	if v < 2*sub {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [sub, 2*sub)
	return e*sub + int(v>>e)
}

// lowerBound is the smallest value of bucket i.
func lowerBound(i int) uint64 {
	if i < 2*sub {
		return uint64(i)
	}
	e := i/sub - 1
	return uint64(i%sub+sub) << e
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.total++
	if d > h.max {
		h.max = d
	}
}

// Merge adds the counts of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// Count is how many latencies were recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest latency recorded.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the latency below which a fraction q (0..1) of the
// recorded ones lie: the middle of the bucket that holds it. It returns 0
// for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := lowerBound(i), lowerBound(i+1)
			return min(time.Duration(lo+(hi-lo)/2), h.max)
		}
	}
	return h.max
}

// CDFPoint is one point of a cumulative distribution: a fraction of the
// recorded latencies were at most Latency.
type CDFPoint struct {
	Latency  time.Duration
	Fraction float64
}

// CDF returns the cumulative distribution, one point per non-empty bucket
// (at the bucket's upper bound).
func (h *Histogram) CDF() []CDFPoint {
	var out []CDFPoint
	var seen uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		out = append(out, CDFPoint{
			Latency:  min(time.Duration(lowerBound(i+1)), h.max),
			Fraction: float64(seen) / float64(h.total),
		})
	}
	return out
}
