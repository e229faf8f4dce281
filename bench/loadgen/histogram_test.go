package loadgen

import (
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v++ {
		b := bucketOf(v)
		if b != prev && b != prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d", v, b, prev)
		}
		if lo := lowerBound(b); lo > v || lowerBound(b+1) <= v {
			t.Fatalf("value %d in bucket %d = [%d, %d)", v, b, lo, lowerBound(b+1))
		}
		prev = b
	}
	if b := bucketOf(uint64(time.Hour)); b >= numBuckets {
		t.Fatalf("an hour falls in bucket %d of %d", b, numBuckets)
	}
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
		if diff := float64(got-tc.want) / float64(tc.want); diff < -0.04 || diff > 0.04 {
			t.Errorf("Quantile(%v) = %v, want %v within 4%%", tc.q, got, tc.want)
		}
	}
	var other Histogram
	other.Record(time.Second)
	h.Merge(&other)
	if h.Count() != 1001 || h.Max() != time.Second {
		t.Errorf("after Merge: count %d max %v", h.Count(), h.Max())
	}
	cdf := h.CDF()
	if last := cdf[len(cdf)-1]; last.Fraction != 1 || last.Latency != time.Second {
		t.Errorf("last CDF point %+v", last)
	}
}
