package rest

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
)

// nodeTime is a node's two clocks, which the tests move together (advance)
// or apart (stepWall), as an NTP correction moves the wall clock but not the
// monotonic one. clock.Fake cannot do this: a time.Time's monotonic reading
// cannot be set apart from its wall reading, so the tests give the cache
// both readings directly, as the verifier does.
type nodeTime struct {
	wall int64         // nanoseconds since the Unix epoch
	mono time.Duration // since the node started
}

func (n *nodeTime) advance(d time.Duration)  { n.wall += int64(d); n.mono += d }
func (n *nodeTime) stepWall(d time.Duration) { n.wall += int64(d) }

// testWindow has an epoch width of exactly one second.
const testWindow = 16 * time.Second

const testG = int64(time.Second)

// newTestCache returns a cache of testWindow and its node time, which starts
// on an epoch boundary.
func newTestCache(t *testing.T, capacity int) (*replayCache, *nodeTime) {
	c := newReplayCache(testWindow, capacity)
	require.Equal(t, testG, c.g, "epoch width")
	return c, &nodeTime{wall: epoch.UnixNano(), mono: time.Hour}
}

// keys returns n distinct random non-zero keys.
func keys(seed uint64, n int) []uint64 {
	r := rand.New(rand.NewPCG(seed, 1))
	ks := make([]uint64, n)
	for i := range ks {
		ks[i] = r.Uint64() | 1
	}
	return ks
}

func (c *replayCache) insertAt(ts int64, key uint64, n *nodeTime) error {
	return c.insert(ts, key, n.wall, n.mono)
}

func TestReplayCacheRefusesReplays(t *testing.T) {
	c, now := newTestCache(t, 1<<20)
	// Timestamps out of order anywhere in the window, so keys land in every
	// live slot, interleaved.
	const n = 20_000
	ks := keys(1, n)
	r := rand.New(rand.NewPCG(2, 2))
	ts := make([]int64, n)
	// The 20,000-step loops here check with plain ifs, failing with
	// require.Failf: require's Helper calls on every step would slow them.
	for i, k := range ks {
		ts[i] = now.wall + r.Int64N(2*int64(testWindow)+1) - int64(testWindow)
		if err := c.insertAt(ts[i], k, now); err != nil {
			require.Failf(t, "insert", "insert %d: %v", i, err)
		}
		now.advance(time.Microsecond)
	}
	require.Equal(t, n, c.len(), "len")
	// Every replay is refused, in another order, while time passes.
	for _, i := range r.Perm(n) {
		if err := c.insertAt(ts[i], ks[i], now); !errors.Is(err, errAuthReplay) {
			require.Failf(t, "replay not refused", "replay of %d (ts %+d ns from its insertion) = %v, want errAuthReplay", i, ts[i]-now.wall, err)
		}
		now.advance(time.Microsecond)
	}
	require.Equal(t, n, c.len(), "len after replays")
	// The same key with a timestamp in another slot is another request.
	require.NoError(t, c.insertAt(ts[0]+5*testG, ks[0], now), "same key, other slot")
}

// TestReplayCacheRetention walks the clocks to just before, then just after,
// the moment each reclaim rule stops protecting a key.
func TestReplayCacheRetention(t *testing.T) {
	const w = int64(testWindow)
	t.Run("monotonic rule binds", func(t *testing.T) {
		// A request stamped now: rule (a) lets go after w + 2g, rule (b)
		// only 2w after its insertion.
		c, now := newTestCache(t, 100)
		ts := now.wall
		require.NoError(t, c.insertAt(ts, 7, now))
		now.advance(2 * testWindow)
		require.ErrorIs(t, c.insertAt(ts, 7, now), errAuthReplay, "2w after insertion: want errAuthReplay")
		now.advance(1)
		require.NoError(t, c.insertAt(ts, 7, now), "2w + 1ns after insertion: want the key forgotten")
	})
	t.Run("wall rule binds", func(t *testing.T) {
		// A request stamped at the future edge of the window: rule (b) lets
		// go 2w after insertion, rule (a) only when every ts of its epoch
		// e is older than now - w - g: (e+2)g <= now - w.
		c, now := newTestCache(t, 100)
		ts := now.wall + w
		require.NoError(t, c.insertAt(ts, 7, now))
		e := ts / testG
		edge := (e+2)*testG + w // the first wall time at which (a) holds
		now.advance(time.Duration(edge - 1 - now.wall))
		require.ErrorIs(t, c.insertAt(ts, 7, now), errAuthReplay, "1ns before rule (a) holds: want errAuthReplay")
		now.advance(1)
		require.NoError(t, c.insertAt(ts, 7, now), "when rule (a) holds: want the key forgotten")
	})
	t.Run("later insertions extend the slot", func(t *testing.T) {
		c, now := newTestCache(t, 100)
		ts := now.wall
		require.NoError(t, c.insertAt(ts, 7, now))
		now.advance(testWindow)
		require.NoError(t, c.insertAt(ts+1, 8, now)) // same epoch, inserted w later
		now.advance(2 * testWindow)
		require.ErrorIs(t, c.insertAt(ts, 7, now), errAuthReplay, "2w after the slot's last insertion: want errAuthReplay")
		now.advance(1)
		require.NoError(t, c.insertAt(ts, 7, now), "after both rules: want the key forgotten")
	})
}

// TestReplayCacheWallStepBack: a MAC whose timestamp is old on the wall clock
// is kept for 2w of monotonic time, so that a step back of the wall clock,
// which brings its timestamp into the window again, does not let its replay
// in.
func TestReplayCacheWallStepBack(t *testing.T) {
	c, now := newTestCache(t, 100)
	ts := now.wall
	require.NoError(t, c.insertAt(ts, 7, now))
	// 1.5w later rule (a) holds; another request drives the reclaimer.
	now.advance(3 * testWindow / 2)
	require.NoError(t, c.insertAt(now.wall, 8, now))
	// The wall clock steps back 1.5w: ts is inside the window again.
	now.stepWall(-3 * testWindow / 2)
	require.ErrorIs(t, c.insertAt(ts, 7, now), errAuthReplay, "replay after the wall clock stepped back: want errAuthReplay")
	// Past 2w after its insertion it stays while ts may pass the window
	// check on the stepped-back wall clock.
	now.advance(testWindow/2 + 1)
	require.ErrorIs(t, c.insertAt(ts, 7, now), errAuthReplay, "replay 2w + 1ns after insertion, ts in the window: want errAuthReplay")
	edge := (ts/testG+2)*testG + int64(testWindow) // rule (a) holds from here
	now.advance(time.Duration(edge - now.wall))
	require.NoError(t, c.insertAt(ts, 7, now), "after both rules: want the key forgotten")
}

// TestReplayCacheSlotShared: after a large clock step, two epochs meet in one
// slot. Nothing is refused for it, and the older epoch's keys are kept as
// long as the newer one's.
func TestReplayCacheSlotShared(t *testing.T) {
	c, now := newTestCache(t, 100)
	ts := now.wall
	require.NoError(t, c.insertAt(ts, 7, now))
	span := time.Duration(replaySlots * testG)
	now.advance(time.Second)
	now.stepWall(span) // epoch e+replaySlots now falls in the same slot as e
	ts2 := ts + int64(span)
	require.NoError(t, c.insertAt(ts2, 8, now), "insert into a slot that holds another live epoch")
	require.Equal(t, 2, c.len(), "len")
	now.stepWall(-span) // and back: ts may pass the window check again
	require.ErrorIs(t, c.insertAt(ts, 7, now), errAuthReplay, "replay of the older epoch's key: want errAuthReplay")
	require.ErrorIs(t, c.insertAt(ts2, 8, now), errAuthReplay, "replay of the newer epoch's key: want errAuthReplay")
	// The slot goes only when rule (a) holds for the newer epoch.
	now.advance(3 * testWindow)
	now.stepWall(span)
	edge := (ts2/testG+2)*testG + int64(testWindow)
	now.stepWall(time.Duration(edge - 1 - now.wall))
	require.ErrorIs(t, c.insertAt(ts, 7, now), errAuthReplay, "1ns before rule (a) holds for the newer epoch: want errAuthReplay")
	now.stepWall(1)
	require.NoError(t, c.insertAt(ts, 7, now), "after both rules")
	require.Equal(t, 1, c.len(), "len after both rules")
}

// TestReplayCacheMemoryFollowsRate: under steady traffic the cache holds
// about rate × 2w keys, and none once traffic has stopped for 2w + 2g.
func TestReplayCacheMemoryFollowsRate(t *testing.T) {
	c, now := newTestCache(t, 1<<20)
	const rate = 1000 // per second
	const step = time.Second / rate
	ks := keys(3, 100*rate)
	most := 0
	for i, k := range ks { // 100 s, six times 2w
		ts := now.wall - int64(time.Duration(i%50)*time.Millisecond) // up to 50 ms in flight
		// 100,000 steps: a plain if, not require's Helper calls on each.
		if err := c.insertAt(ts, k, now); err != nil {
			require.Failf(t, "insert", "insert %d: %v", i, err)
		}
		most = max(most, c.len())
		now.advance(step)
	}
	lo, hi := rate*int(2*testWindow/time.Second), rate*int((2*testWindow+2*time.Second)/time.Second)
	require.GreaterOrEqual(t, most, lo, "at most %d keys held at %d/s, want within [%d, %d] (rate × 2w, + 2g)", most, rate, lo, hi)
	require.LessOrEqual(t, most, hi, "at most %d keys held at %d/s, want within [%d, %d] (rate × 2w, + 2g)", most, rate, lo, hi)
	now.advance(2*testWindow + time.Duration(2*testG))
	c.reclaimOld(now.wall, now.mono)
	require.Zero(t, c.len(), "keys held 2w + 2g after the traffic stopped")
	tables := len(c.spares)
	for i := range c.slots {
		if c.slots[i].keys != nil {
			tables++
		}
	}
	require.LessOrEqual(t, tables, replaySpares, "tables kept with no keys")
}

func TestReplayCacheCapacity(t *testing.T) {
	const capacity = 100
	c, now := newTestCache(t, capacity)
	ks := keys(4, capacity+1)
	for i, k := range ks[:capacity] {
		require.NoError(t, c.insertAt(now.wall+int64(i), k, now), "insert %d", i)
	}
	require.ErrorIs(t, c.insertAt(now.wall, ks[capacity], now), errReplayFull, "insert into a full cache: want errReplayFull")
	require.ErrorIs(t, c.insertAt(now.wall+3, ks[3], now), errAuthReplay, "replay into a full cache: want errAuthReplay")
	// Still full just before the keys may go, free just after.
	now.advance(2 * testWindow)
	require.ErrorIs(t, c.insertAt(now.wall, ks[capacity], now), errReplayFull, "insert 2w later: want errReplayFull")
	now.advance(1)
	require.NoError(t, c.insertAt(now.wall, ks[capacity], now), "insert after the keys may go")
	require.Equal(t, 1, c.len(), "len after the keys may go")
}

// TestReplayCacheFullSweep: slots filled after a backward wall-clock step lie
// behind the reclaiming cursor; when the cache is full they are swept.
func TestReplayCacheFullSweep(t *testing.T) {
	const capacity = 10
	c, now := newTestCache(t, capacity)
	ks := keys(5, capacity+1)
	c.reclaimOld(now.wall, now.mono) // the cursor starts at the true time
	now.stepWall(-10 * testWindow)
	for i, k := range ks[:capacity] {
		require.NoError(t, c.insertAt(now.wall+int64(i), k, now))
	}
	now.stepWall(10 * testWindow) // back to the truth: the cursor is past those slots
	now.advance(3 * testWindow)
	require.NoError(t, c.insertAt(now.wall, ks[capacity], now), "insert into a cache full of keys that may go")
	require.Equal(t, 1, c.len(), "len after an insert into a cache full of keys that may go")
}

// TestReplayCacheFullKeepsWindow: when the cache is full, the sweep does not
// take a slot whose timestamps may still pass the window check, even when its
// last insertion is more than 2w ago.
func TestReplayCacheFullKeepsWindow(t *testing.T) {
	const capacity = 10
	c, now := newTestCache(t, capacity)
	ks := keys(6, capacity+1)
	ts := now.wall + int64(testWindow) // the future edge of the window
	for i, k := range ks[:capacity] {
		require.NoError(t, c.insertAt(ts+int64(i), k, now))
	}
	edge := (ts/testG+2)*testG + int64(testWindow)  // rule (a) holds from here
	now.advance(time.Duration(edge - 1 - now.wall)) // rule (b) holds
	require.ErrorIs(t, c.insertAt(now.wall, ks[capacity], now), errReplayFull, "insert 1ns before rule (a) lets the full slot go: want errReplayFull")
	now.advance(1)
	require.NoError(t, c.insertAt(now.wall, ks[capacity], now), "insert when both rules hold")
	require.Equal(t, 1, c.len(), "len after an insert when both rules hold")
}

// TestVerifierReplayCache runs the cache behind the verifier with a fake
// clock: replays are refused until 2w after acceptance, and a request reads
// the clock once.
func TestVerifierReplayCache(t *testing.T) {
	clk := clock.NewFake(epoch)
	const w = 10 * time.Second
	secret := strings.Repeat("s", MinSecretLen)
	v := newVerifier(secret, "", "node", 7, clk, w, 3)
	k := newAuthKey(secret)
	req := func(ts time.Time, body string) []byte {
		return k.appendAuth(nil, []byte("POST"), []byte(PathLock), &signed{role: roleLock, node: "node", incarnation: 7, ts: ts.UnixNano()}, []byte(body))
	}
	verify := func(auth []byte, body string) error {
		if _, err := v.checkHeader([]byte("POST"), []byte(PathLock), auth); err != nil {
			return err
		}
		return v.checkBody(auth, []byte(body))
	}
	a := req(clk.Now(), "a")
	reads := clk.Reads()
	require.NoError(t, verify(a, "a"))
	require.Equal(t, int64(2), clk.Reads()-reads, "clock reads of a request: want one for the window, one for the replay cache")
	for i, body := range []string{"b", "c"} {
		require.NoError(t, verify(req(clk.Now().Add(time.Duration(i+1)), body), body))
	}
	require.ErrorIs(t, verify(a, "a"), errAuthReplay, "replay: want errAuthReplay")
	require.ErrorIs(t, verify(req(clk.Now().Add(4), "d"), "d"), errReplayFull, "fourth request with capacity 3: want errReplayFull")
	clk.Advance(w)
	require.ErrorIs(t, verify(a, "a"), errAuthReplay, "replay w later, at the window's edge: want errAuthReplay")
	clk.Advance(w + 1)
	require.NoError(t, verify(req(clk.Now(), "d"), "d"), "request after the cache emptied")
	require.Equal(t, 1, v.seen.len(), "keys the cache holds")
}

// generationCache is the replay cache this package had before replayCache:
// two maps of 16-byte keys, each kept at least 2w, rotated by clear. It is
// kept here only to compare the two in BenchmarkReplayCache.
type generationCache struct {
	window    time.Duration
	cur, prev map[[16]byte]struct{}
	curStart  time.Duration
	capacity  int
}

func (c *generationCache) insert(key [16]byte, mono time.Duration) error {
	if _, seen := c.cur[key]; seen {
		return errAuthReplay
	}
	if _, seen := c.prev[key]; seen {
		return errAuthReplay
	}
	if mono-c.curStart >= 2*c.window {
		clear(c.prev)
		c.prev, c.cur = c.cur, c.prev
		c.curStart = mono
	}
	if len(c.cur) >= c.capacity {
		return errReplayFull
	}
	c.cur[key] = struct{}{}
	return nil
}

// BenchmarkReplayCache inserts fresh MACs at a steady rate that keeps about
// 500,000 of them live (16,667 a second with the default window of 15 s),
// stamped up to 1 ms before the node's now, as live traffic is. One op is one
// insert, timed without the verifier's mutex; the MACs are drawn with
// splitmix64 (a few ns) so that the caches' own costs dominate.
func BenchmarkReplayCache(b *testing.B) {
	const live = 500_000
	step := 2 * DefaultReplayWindow / live // time between requests
	warm := live + live/10                 // past the first reclaims or rotation
	b.Run("slots", func(b *testing.B) {
		c := newReplayCache(DefaultReplayWindow, DefaultReplayCacheSize)
		now := nodeTime{wall: epoch.UnixNano(), mono: time.Hour}
		var i uint64
		insert := func() {
			i++
			key, lag := splitmix64(i), splitmix64(^i)
			ts := now.wall - int64(lag%uint64(time.Millisecond))
			if err := c.insert(ts, key, now.wall, now.mono); err != nil {
				b.Fatal(err)
			}
			now.advance(step)
		}
		for range warm {
			insert()
		}
		b.ReportAllocs()
		for b.Loop() {
			insert()
		}
		b.ReportMetric(float64(c.len()), "keys")
	})
	b.Run("generations", func(b *testing.B) {
		c := &generationCache{window: DefaultReplayWindow, cur: map[[16]byte]struct{}{}, prev: map[[16]byte]struct{}{}, capacity: 1 << 20}
		var mono time.Duration
		var i uint64
		insert := func() {
			i++
			var key [16]byte
			binary.LittleEndian.PutUint64(key[:8], splitmix64(i))
			binary.LittleEndian.PutUint64(key[8:], splitmix64(^i))
			if err := c.insert(key, mono); err != nil {
				b.Fatal(err)
			}
			mono += step
		}
		for range warm {
			insert()
		}
		b.ReportAllocs()
		for b.Loop() {
			insert()
		}
		b.ReportMetric(float64(len(c.cur)+len(c.prev)), "keys")
	})
}

// splitmix64 returns a well-mixed 64-bit value for x (SplitMix64's finalizer).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
