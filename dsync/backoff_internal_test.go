package dsync

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	ds := &Dsync{cfg: Config{RetryMin: 250 * time.Millisecond, RetryMax: 5 * time.Second, Rand: rand.New(rand.NewPCG(1, 2))}}
	for attempt := range 60 {
		capped := min(250*time.Millisecond+time.Duration(attempt)*125*time.Millisecond, 5*time.Second)
		seen := map[time.Duration]bool{}
		for range 50 {
			d := ds.backoff(attempt)
			require.GreaterOrEqual(t, d, capped/2, "attempt %d: wait %v outside [%v, %v)", attempt, d, capped/2, capped)
			require.Less(t, d, capped, "attempt %d: wait %v outside [%v, %v)", attempt, d, capped/2, capped)
			seen[d] = true
		}
		require.GreaterOrEqual(t, len(seen), 40, "attempt %d: only %d distinct waits in 50: not jittered", attempt, len(seen))
	}
	d := ds.backoff(1 << 30)
	require.GreaterOrEqual(t, d, 2500*time.Millisecond, "huge attempt: %v", d)
	require.Less(t, d, 5*time.Second, "huge attempt: %v", d)
	// A seeded source replays the same waits.
	a := &Dsync{cfg: Config{RetryMin: time.Second, RetryMax: time.Minute, Rand: rand.New(rand.NewPCG(7, 7))}}
	b := &Dsync{cfg: Config{RetryMin: time.Second, RetryMax: time.Minute, Rand: rand.New(rand.NewPCG(7, 7))}}
	for i := range 20 {
		x, y := a.backoff(i), b.backoff(i)
		require.Equal(t, x, y, "seeded waits differ at %d", i)
	}
}
