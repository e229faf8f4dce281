package dsync

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	ds := &Dsync{cfg: Config{RetryMin: 250 * time.Millisecond, RetryMax: 5 * time.Second, Rand: rand.New(rand.NewPCG(1, 2))}}
	for attempt := range 60 {
		capped := min(250*time.Millisecond+time.Duration(attempt)*125*time.Millisecond, 5*time.Second)
		seen := map[time.Duration]bool{}
		for range 50 {
			d := ds.backoff(attempt)
			if d < capped/2 || d >= capped {
				t.Fatalf("attempt %d: wait %v outside [%v, %v)", attempt, d, capped/2, capped)
			}
			seen[d] = true
		}
		if len(seen) < 40 {
			t.Fatalf("attempt %d: only %d distinct waits in 50: not jittered", attempt, len(seen))
		}
	}
	if d := ds.backoff(1 << 30); d < 2500*time.Millisecond || d >= 5*time.Second {
		t.Fatalf("huge attempt: %v", d)
	}
	// A seeded source replays the same waits.
	a := &Dsync{cfg: Config{RetryMin: time.Second, RetryMax: time.Minute, Rand: rand.New(rand.NewPCG(7, 7))}}
	b := &Dsync{cfg: Config{RetryMin: time.Second, RetryMax: time.Minute, Rand: rand.New(rand.NewPCG(7, 7))}}
	for i := range 20 {
		if x, y := a.backoff(i), b.backoff(i); x != y {
			t.Fatalf("seeded waits differ at %d: %v %v", i, x, y)
		}
	}
}
