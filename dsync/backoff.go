package dsync

import (
	"math/rand/v2"
	"time"
)

// backoff returns the wait before retry number attempt (from 0): drawn from
// [cap/2, cap) with cap = RetryMin + attempt*RetryMin/2, at most RetryMax.
func (ds *Dsync) backoff(attempt int) time.Duration {
	lo, hi := int64(ds.cfg.RetryMin), int64(ds.cfg.RetryMax)
	capped := min(lo+int64(attempt)*(lo/2), hi)
	if attempt > 1<<20 {
		capped = hi
	}
	return time.Duration(ds.jitter(capped/2, capped))
}

// jitter returns a uniformly random duration in [lo, hi).
func (ds *Dsync) jitter(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	if ds.cfg.Rand == nil {
		return lo + rand.Int64N(hi-lo)
	}
	mu := &ds.top().randMu // the sets of a Dsync made by NewSets share its Rand
	mu.Lock()
	defer mu.Unlock()
	return lo + ds.cfg.Rand.Int64N(hi-lo)
}
