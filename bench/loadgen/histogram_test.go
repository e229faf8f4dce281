package loadgen

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBucketsAreContiguous(t *testing.T) {
	// The loop over 2^20 values checks with if and fails with require.Failf:
	// a require call per value (each a t.Helper) would take seconds.
	prev := -1
	for v := uint64(0); v < 1<<20; v++ {
		b := bucketOf(v)
		if b != prev && b != prev+1 {
			require.Failf(t, "buckets are not contiguous", "bucketOf(%d) = %d after %d", v, b, prev)
		}
		if lo := lowerBound(b); lo > v || lowerBound(b+1) <= v {
			require.Failf(t, "value outside its bucket", "value %d in bucket %d = [%d, %d)", v, b, lo, lowerBound(b+1))
		}
		prev = b
	}
	b := bucketOf(uint64(time.Hour))
	require.Less(t, b, numBuckets, "an hour falls in bucket %d of %d", b, numBuckets)
}

func TestQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		got := h.Quantile(tc.q)
		assert.InEpsilon(t, tc.want, got, 0.04, "Quantile(%v) = %v, want %v within 4%%", tc.q, got, tc.want)
	}
	var other Histogram
	other.Record(time.Second)
	h.Merge(&other)
	assert.Equal(t, uint64(1001), h.Count(), "after Merge: count")
	assert.Equal(t, time.Second, h.Max(), "after Merge: max")
	cdf := h.CDF()
	last := cdf[len(cdf)-1]
	assert.Equal(t, 1.0, last.Fraction, "last CDF point %+v", last)
	assert.Equal(t, time.Second, last.Latency, "last CDF point %+v", last)
}
