package dsync_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// outcome is one acquisition's outcome as an AdaptiveTimeout observes it.
type outcome struct {
	took     time.Duration
	timedOut bool
}

// window returns n outcomes of which the first late timed out and the rest
// succeeded, each in took.
func window(n, late int, took time.Duration) []outcome {
	w := make([]outcome, n)
	for i := range w {
		w[i] = outcome{took: took, timedOut: i < late}
	}
	return w
}

// successes returns one successful outcome per duration.
func successes(took ...time.Duration) []outcome {
	w := make([]outcome, len(took))
	for i, d := range took {
		w[i] = outcome{took: d}
	}
	return w
}

func newAdaptive(t *testing.T, cfg dsync.AdaptiveConfig) *dsync.AdaptiveTimeout {
	t.Helper()
	a, err := dsync.NewAdaptiveTimeout(cfg)
	require.NoError(t, err)
	return a
}

// ms returns a duration of f milliseconds, for exact expectations such as
// 2373.046875 ms.
func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestAdaptiveRules(t *testing.T) {
	const s = time.Second
	base := dsync.AdaptiveConfig{Initial: 10 * s, Min: s, Max: 20 * s, Window: 4}
	for _, tc := range []struct {
		name    string
		cfg     dsync.AdaptiveConfig
		windows [][]outcome
		want    []time.Duration // the timeout after each window
	}{{
		name:    "more than a third timed out: grow by a quarter up to Max",
		cfg:     base,
		windows: [][]outcome{window(4, 2, s), window(4, 4, s), window(4, 3, s), window(4, 2, s), window(4, 4, s)},
		want:    []time.Duration{12500 * time.Millisecond, 15625 * time.Millisecond, ms(19531.25), 20 * s, 20 * s},
	}, {
		name:    "a third or fewer timed out: keep",
		cfg:     dsync.AdaptiveConfig{Initial: 10 * s, Min: s, Max: 20 * s, Window: 6},
		windows: [][]outcome{window(6, 2, time.Millisecond), window(6, 1, time.Hour), window(6, 3, s)},
		want:    []time.Duration{10 * s, 10 * s, 12500 * time.Millisecond},
	}, {
		name:    "none timed out: shrink toward twice the longest, a quarter at most per window",
		cfg:     base,
		windows: slicesRepeat(successes(100*time.Millisecond, s, 300*time.Millisecond, 0), 7),
		want:    []time.Duration{7500 * time.Millisecond, 5625 * time.Millisecond, ms(4218.75), ms(3164.0625), ms(2373.046875), 2 * s, 2 * s},
	}, {
		name:    "shrink to twice the longest when it is within a step",
		cfg:     base,
		windows: [][]outcome{successes(4*s, 0, 0, 0), successes(4*s, 0, 0, 0), successes(3*s, 0, 0, 0)},
		want:    []time.Duration{8 * s, 8 * s, 6 * s},
	}, {
		name:    "successes never grow it",
		cfg:     base,
		windows: [][]outcome{successes(6*s, 0, 0, 0), successes(time.Hour, 0, 0, 0)},
		want:    []time.Duration{10 * s, 10 * s},
	}, {
		name:    "never below Min",
		cfg:     dsync.AdaptiveConfig{Initial: 10 * s, Min: 5 * s, Max: 20 * s, Window: 4},
		windows: slicesRepeat(window(4, 0, time.Millisecond), 4),
		want:    []time.Duration{7500 * time.Millisecond, 5625 * time.Millisecond, 5 * s, 5 * s},
	}, {
		name:    "a negative took counts as zero",
		cfg:     dsync.AdaptiveConfig{Initial: 10 * s, Min: time.Millisecond, Max: 20 * s, Window: 1},
		windows: [][]outcome{successes(-time.Hour)},
		want:    []time.Duration{7500 * time.Millisecond},
	}, {
		name: "each window is counted afresh",
		cfg:  base,
		windows: [][]outcome{
			window(4, 3, time.Millisecond), // grows
			window(4, 0, time.Millisecond), // shrinks: the timeouts before are not counted again
			window(4, 1, time.Millisecond), // keeps
			successes(s, 0, 0, 0),          // the longest success of the window before is not counted again
		},
		want: []time.Duration{12500 * time.Millisecond, 9375 * time.Millisecond, 9375 * time.Millisecond, ms(7031.25)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAdaptive(t, tc.cfg)
			require.Equal(t, tc.cfg.Initial, a.Timeout(), "initial timeout")
			for i, w := range tc.windows {
				before := a.Timeout()
				for j, o := range w {
					if j > 0 {
						require.Equal(t, before, a.Timeout(), "window %d: timeout changed after %d of %d outcomes", i, j, len(w))
					}
					a.Observe(o.took, o.timedOut)
				}
				require.Equal(t, tc.want[i], a.Timeout(), "after window %d: timeout (all: %v)", i, tc.want)
			}
		})
	}
}

func slicesRepeat(w []outcome, n int) [][]outcome {
	ws := make([][]outcome, n)
	for i := range ws {
		ws[i] = w
	}
	return ws
}

// TestAdaptiveConcurrentObserve: outcomes observed from many goroutines at
// once are counted exactly once, in windows of exactly Window: the timeout
// ends where the same outcomes observed one by one take it, while readers
// see it move only one way and stay within [Min, Max].
func TestAdaptiveConcurrentObserve(t *testing.T) {
	const goroutines, each = 8, 100 // 800 outcomes: 50 windows of 16
	for _, tc := range []struct {
		name     string
		cfg      dsync.AdaptiveConfig
		timedOut bool
	}{
		{"timeouts", dsync.AdaptiveConfig{Initial: time.Millisecond, Min: time.Millisecond, Max: 24 * time.Hour}, true},
		{"fast successes", dsync.AdaptiveConfig{Initial: 24 * time.Hour, Min: time.Nanosecond, Max: 24 * time.Hour}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := newAdaptive(t, tc.cfg)
			for range goroutines * each {
				want.Observe(0, tc.timedOut)
			}
			a := newAdaptive(t, tc.cfg)
			cfg := a.Config()
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range goroutines {
				wg.Go(func() {
					<-start
					for range each {
						a.Observe(0, tc.timedOut)
					}
				})
			}
			stop := make(chan struct{})
			readErr := make(chan error, 1)
			go func() {
				prev := a.Timeout()
				for {
					select {
					case <-stop:
						readErr <- nil
						return
					default:
					}
					d := a.Timeout()
					if d < cfg.Min || d > cfg.Max || (tc.timedOut && d < prev) || (!tc.timedOut && d > prev) {
						readErr <- fmt.Errorf("read %v after %v (Min %v, Max %v)", d, prev, cfg.Min, cfg.Max)
						return
					}
					prev = d
				}
			}()
			close(start)
			wg.Wait()
			close(stop)
			require.NoError(t, <-readErr)
			require.Equal(t, want.Timeout(), a.Timeout(), "after %d concurrent outcomes, want as when observed one by one", goroutines*each)
			require.NotEqual(t, tc.cfg.Initial, want.Timeout(), "the reference ended at a bound: it cannot tell a miscount")
			require.NotEqual(t, tc.cfg.Min, want.Timeout(), "the reference ended at a bound: it cannot tell a miscount")
			require.NotEqual(t, tc.cfg.Max, want.Timeout(), "the reference ended at a bound: it cannot tell a miscount")
		})
	}
}

func TestAdaptiveConfig(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		cfg  dsync.AdaptiveConfig
		want dsync.AdaptiveConfig
	}{
		{dsync.AdaptiveConfig{}, dsync.AdaptiveConfig{Initial: 30 * s, Min: s, Max: 5 * time.Minute, Window: 16}},
		{dsync.AdaptiveConfig{Initial: 10 * time.Minute}, dsync.AdaptiveConfig{Initial: 10 * time.Minute, Min: s, Max: 10 * time.Minute, Window: 16}},
		{dsync.AdaptiveConfig{Initial: 100 * time.Millisecond}, dsync.AdaptiveConfig{Initial: 100 * time.Millisecond, Min: 100 * time.Millisecond, Max: 5 * time.Minute, Window: 16}},
		{dsync.AdaptiveConfig{Min: time.Minute}, dsync.AdaptiveConfig{Initial: time.Minute, Min: time.Minute, Max: 5 * time.Minute, Window: 16}},
		{dsync.AdaptiveConfig{Max: 10 * s}, dsync.AdaptiveConfig{Initial: 10 * s, Min: s, Max: 10 * s, Window: 16}},
		{dsync.AdaptiveConfig{Initial: 2 * s, Min: 2 * s, Max: 2 * s, Window: 1}, dsync.AdaptiveConfig{Initial: 2 * s, Min: 2 * s, Max: 2 * s, Window: 1}},
	} {
		a, err := dsync.NewAdaptiveTimeout(tc.cfg)
		if !assert.NoError(t, err, "%+v", tc.cfg) {
			continue
		}
		assert.Equal(t, tc.want, a.Config(), "%+v: config", tc.cfg)
		assert.Equal(t, tc.want.Initial, a.Timeout(), "%+v: timeout", tc.cfg)
	}
	for _, tc := range []struct {
		cfg  dsync.AdaptiveConfig
		want string
	}{
		{dsync.AdaptiveConfig{Initial: -s}, "AdaptiveConfig.Initial -1s is negative"},
		{dsync.AdaptiveConfig{Min: -s}, "AdaptiveConfig.Min -1s is negative"},
		{dsync.AdaptiveConfig{Max: -s}, "AdaptiveConfig.Max -1s is negative"},
		{dsync.AdaptiveConfig{Window: -1}, "AdaptiveConfig.Window -1 is negative"},
		{dsync.AdaptiveConfig{Min: 2 * time.Minute, Max: time.Minute}, "AdaptiveConfig.Min 2m0s is above Max 1m0s"},
		{dsync.AdaptiveConfig{Initial: s, Min: 2 * s}, "AdaptiveConfig.Initial 1s is outside [Min 2s, Max 5m0s]"},
		{dsync.AdaptiveConfig{Initial: time.Hour, Max: time.Minute}, "AdaptiveConfig.Initial 1h0m0s is outside [Min 1s, Max 1m0s]"},
	} {
		_, err := dsync.NewAdaptiveTimeout(tc.cfg)
		if !assert.Error(t, err, "%+v: accepted", tc.cfg) {
			continue
		}
		assert.ErrorIs(t, err, locker.ErrInvalidArgs, "%+v: want an error wrapping locker.ErrInvalidArgs that says %q", tc.cfg, tc.want)
		assert.ErrorContains(t, err, "dsync: "+tc.want, "%+v: want an error wrapping locker.ErrInvalidArgs that says %q", tc.cfg, tc.want)
	}
}

// sleepClock is a fake clock that reports on sleeps every timer shorter
// than a second made on it. Over lockers that answer at once (in-memory
// tables that are locker.Submitters) and with a RetryMax of a second, those
// are the acquisitions' back-off sleeps: the refresher's timers, and the
// timeouts of Held.Lock in these tests, are longer.
type sleepClock struct {
	*clock.Fake
	sleeps chan time.Duration
}

func (c *sleepClock) NewTimer(d time.Duration) clock.Timer {
	t := c.Fake.NewTimer(d)
	if d > 0 && d < time.Second {
		c.sleeps <- d
	}
	return t
}

// drive advances the clock past every sleep reported until done delivers,
// calling after (if not nil) after each advance, and returns what done
// delivered. Nothing moves the clock but drive: an acquisition's time is
// the sum of its sleeps.
func drive[T any](c *sleepClock, done <-chan T, after func()) T {
	for {
		select {
		case v := <-done:
			return v
		case d := <-c.sleeps:
			c.Advance(d)
			if after != nil {
				after()
			}
		}
	}
}

// switchNode is an in-memory table that can be switched down: it then
// fails every call submitted, before sending it.
type switchNode struct {
	*locker.Local
	down atomic.Bool
}

func (n *switchNode) Submit(ctx context.Context, op locker.Op, a *locker.LockArgs, timeout time.Duration, sink locker.Sink, tag int) {
	if n.down.Load() {
		sink.Done(tag, locker.Reply{}, fmt.Errorf("%s: %w (%w)", n, locker.ErrOffline, locker.ErrNotSent))
		return
	}
	n.Local.Submit(ctx, op, a, timeout, sink, tag)
}

// adaptiveCluster is three switchable tables and a Dsync over them, on a
// sleepClock; retries wait between 50 ms and a second.
type adaptiveCluster struct {
	clk   *sleepClock
	nodes []*switchNode
	ds    *dsync.Dsync
}

func newAdaptiveCluster(t *testing.T) *adaptiveCluster {
	t.Helper()
	c := &adaptiveCluster{clk: &sleepClock{Fake: clock.NewFake(time.Unix(1_700_000_000, 0)), sleeps: make(chan time.Duration, 64)}}
	var ls []locker.NetLocker
	for range 3 {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: time.Hour, Clock: c.clk, SweepInterval: -1})
		t.Cleanup(func() { tbl.Close() })
		n := &switchNode{Local: tbl}
		c.nodes = append(c.nodes, n)
		ls = append(ls, n)
	}
	ds, err := dsync.New(ls, dsync.Config{
		Validity: time.Hour, Clock: c.clk, Owner: "adaptive",
		RetryMin: 100 * time.Millisecond, RetryMax: time.Second,
		// Acquisitions back off rather than wait on the tables: an
		// acquisition's time is then the sum of its sleeps, which drive
		// passes (waiting on the tables is tested in waiting_test.go).
		MaxWait: -1,
	})
	require.NoError(t, err)
	t.Cleanup(func() { ds.Close() })
	c.ds = ds
	return c
}

// hold write-locks resource on every table for another client, and returns
// the function that releases it.
func (c *adaptiveCluster) hold(t *testing.T, resource string) (release func()) {
	t.Helper()
	ctx := context.Background()
	args := locker.LockArgs{UID: "other-holder", Resources: []string{resource}, Owner: "other", Source: "test", Quorum: 2}
	for _, n := range c.nodes {
		r, err := n.Local.Lock(ctx, args)
		require.NoError(t, err, "holding %q: %+v", resource, r)
		require.True(t, r.OK, "holding %q: %+v", resource, r)
	}
	return func() {
		for _, n := range c.nodes {
			r, err := n.Local.Unlock(ctx, args)
			assert.NoError(t, err, "releasing %q: %+v", resource, r)
			assert.True(t, r.OK, "releasing %q: %+v", resource, r)
		}
	}
}

// acquirer is one way to acquire through Options: it waits for resource
// while another client holds it, and returns what releases it.
type acquirer struct {
	name     string
	resource string
	acquire  func(ctx context.Context, ds *dsync.Dsync, opts dsync.Options) (release func(), err error)
}

var acquirers = []acquirer{
	{"GetLock", "obj", func(ctx context.Context, ds *dsync.Dsync, opts dsync.Options) (func(), error) {
		m := dsync.NewDRWMutex(ds, "obj")
		_, err := m.GetLock(ctx, opts)
		return func() { m.Unlock(ctx) }, err
	}},
	{"GetRLock", "obj", func(ctx context.Context, ds *dsync.Dsync, opts dsync.Options) (func(), error) {
		m := dsync.NewDRWMutex(ds, "obj")
		_, err := m.GetRLock(ctx, opts)
		return func() { m.RUnlock(ctx) }, err
	}},
	{"Semaphore.Acquire", "sem/permit/0", func(ctx context.Context, ds *dsync.Dsync, opts dsync.Options) (func(), error) {
		p, err := dsync.NewSemaphore(ds, "sem", 1).Acquire(ctx, opts)
		if err != nil {
			return nil, err
		}
		return func() { p.Release(ctx) }, nil
	}},
	{"Hierarchy.Lock", "obj", func(ctx context.Context, ds *dsync.Dsync, opts dsync.Options) (func(), error) {
		h, err := dsync.NewHierarchy("bucket", "object")
		if err != nil {
			return nil, err
		}
		held, err := h.Lock(ctx, ds, opts, dsync.LevelLock{Level: "bucket", Name: "b", Read: true}, dsync.LevelLock{Level: "object", Name: "obj"})
		if err != nil {
			return nil, err
		}
		return func() { held.Release(ctx) }, nil
	}},
	{"AcquireLease", "obj", func(ctx context.Context, ds *dsync.Dsync, opts dsync.Options) (func(), error) {
		l, err := dsync.AcquireLease(ctx, ds, "obj", dsync.LeaseOptions{Options: opts})
		if err != nil {
			return nil, err
		}
		return func() { l.Release(ctx) }, nil
	}},
}

// start runs acq in the background and returns where its error arrives; a
// granted acquisition is released at once.
func (c *adaptiveCluster) start(ctx context.Context, acq acquirer, opts dsync.Options) <-chan error {
	done := make(chan error, 1)
	go func() {
		release, err := acq.acquire(ctx, c.ds, opts)
		if err == nil {
			release()
		}
		done <- err
	}()
	return done
}

// TestAdaptiveGrowsUnderContention: acquisitions of a lock that another
// client holds wait for the adaptive timeout, time out, and so make it grow,
// up to Max, window by window.
func TestAdaptiveGrowsUnderContention(t *testing.T) {
	for _, acq := range acquirers {
		t.Run(acq.name, func(t *testing.T) {
			c := newAdaptiveCluster(t)
			a := newAdaptive(t, dsync.AdaptiveConfig{Initial: 2 * time.Second, Min: time.Second, Max: 3 * time.Second, Window: 2})
			c.hold(t, acq.resource)
			for i, want := range []time.Duration{2 * time.Second, 2500 * time.Millisecond, 2500 * time.Millisecond, 3 * time.Second} {
				limit, t0 := a.Timeout(), c.clk.Now()
				err := drive(c.clk, c.start(context.Background(), acq, dsync.Options{Adaptive: a}), nil)
				require.ErrorIs(t, err, dsync.ErrTimeout, "acquisition %d: want ErrTimeout wrapping ErrLocked", i)
				require.ErrorIs(t, err, dsync.ErrLocked, "acquisition %d: want ErrTimeout wrapping ErrLocked", i)
				// Held.Lock's timeout is a context on the fake clock, which
				// another goroutine cancels: the acquisition may sleep past
				// it before it notices. The others give up at their deadline.
				took := c.clk.Since(t0)
				require.GreaterOrEqual(t, took, limit, "acquisition %d gave up after %v, want the adaptive timeout %v (plus at most a back-off)", i, took, limit)
				if acq.name != "Hierarchy.Lock" {
					require.Less(t, took, limit+time.Second, "acquisition %d gave up after %v, want the adaptive timeout %v (plus at most a back-off)", i, took, limit)
				}
				require.Equal(t, want, a.Timeout(), "after %d timed-out acquisitions: timeout", i+1)
			}
		})
	}
}

// TestAdaptiveObservesTheTimeTaken: a successful acquisition reports how
// long it took on the Dsync's clock. With a window of one, Initial 40 s and
// an acquisition of 17 to 19 s, the timeout becomes exactly twice that.
func TestAdaptiveObservesTheTimeTaken(t *testing.T) {
	for _, acq := range acquirers {
		t.Run(acq.name, func(t *testing.T) {
			c := newAdaptiveCluster(t)
			a := newAdaptive(t, dsync.AdaptiveConfig{Initial: 40 * time.Second, Min: time.Second, Max: time.Minute, Window: 1})
			release := c.hold(t, acq.resource)
			t0 := c.clk.Now()
			released := false
			err := drive(c.clk, c.start(context.Background(), acq, dsync.Options{Adaptive: a}), func() {
				if !released && c.clk.Since(t0) >= 17*time.Second {
					release()
					released = true
				}
			})
			require.NoError(t, err)
			took := c.clk.Since(t0)
			// Released at the first wake from 17 s on, under a second past
			// it; an attempt already under way is refused and sleeps once
			// more, under a second.
			require.GreaterOrEqual(t, took, 17*time.Second, "the acquisition took %v, want 17 to 19 s", took)
			require.Less(t, took, 19*time.Second, "the acquisition took %v, want 17 to 19 s", took)
			require.Equal(t, 2*took, a.Timeout(), "timeout after a success in %v", took)
		})
	}
}

// TestAdaptiveTimeoutWins: with both set, Options.Timeout bounds the
// acquisition and the AdaptiveTimeout is not told.
func TestAdaptiveTimeoutWins(t *testing.T) {
	for _, acq := range acquirers {
		t.Run(acq.name, func(t *testing.T) {
			c := newAdaptiveCluster(t)
			a := newAdaptive(t, dsync.AdaptiveConfig{Initial: 40 * time.Second, Min: time.Second, Max: time.Minute, Window: 1})
			release := c.hold(t, acq.resource)
			t0 := c.clk.Now()
			err := drive(c.clk, c.start(context.Background(), acq, dsync.Options{Timeout: 1500 * time.Millisecond, Adaptive: a}), nil)
			took := c.clk.Since(t0)
			require.ErrorIs(t, err, dsync.ErrTimeout, "after %v, want ErrTimeout after Options.Timeout, 1.5 s", took)
			require.Less(t, took, 20*time.Second, "after %v: %v, want ErrTimeout after Options.Timeout, 1.5 s", took, err)
			release()
			require.NoError(t, drive(c.clk, c.start(context.Background(), acq, dsync.Options{Timeout: 2 * time.Second, Adaptive: a}), nil))
			require.Equal(t, 40*time.Second, a.Timeout(), "the AdaptiveTimeout was told")
		})
	}
}

// TestAdaptiveIgnoresOtherFailures: failures that say nothing about how long
// the lock takes to get are not observed. With a window of one and Min below
// Initial, any outcome observed would change the timeout.
func TestAdaptiveIgnoresOtherFailures(t *testing.T) {
	const initial = 2 * time.Second
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, c *adaptiveCluster, opts dsync.Options) error
		want error
	}{{
		name: "caller's ctx cancelled",
		run: func(t *testing.T, c *adaptiveCluster, opts dsync.Options) error {
			c.hold(t, "obj")
			ctx, cancel := context.WithCancel(context.Background())
			done := c.start(ctx, acquirers[0], opts)
			c.clk.Advance(<-c.clk.sleeps) // refused once: waiting
			cancel()
			return drive(c.clk, done, nil)
		},
		want: context.Canceled,
	}, {
		name: "caller's ctx deadline",
		run: func(t *testing.T, c *adaptiveCluster, opts dsync.Options) error {
			c.hold(t, "obj")
			// As a deadline on the clock ends it, but at a known point: a
			// clock.WithTimeout is cancelled from another goroutine, which
			// the acquisition may not see before its own timeout passes.
			ctx, cancel := context.WithCancelCause(context.Background())
			done := c.start(ctx, acquirers[0], opts)
			c.clk.Advance(<-c.clk.sleeps)
			cancel(context.DeadlineExceeded)
			return drive(c.clk, done, nil)
		},
		want: context.DeadlineExceeded,
	}, {
		name: "no quorum: nodes down until the timeout",
		run: func(t *testing.T, c *adaptiveCluster, opts dsync.Options) error {
			c.nodes[0].down.Store(true)
			c.nodes[1].down.Store(true)
			err := drive(c.clk, c.start(context.Background(), acquirers[0], opts), nil)
			assert.ErrorIs(t, err, dsync.ErrTimeout, "want ErrTimeout without ErrLocked")
			assert.NotErrorIs(t, err, dsync.ErrLocked, "want ErrTimeout without ErrLocked")
			return err
		},
		want: dsync.ErrNoQuorum,
	}, {
		name: "invalid names",
		run: func(t *testing.T, c *adaptiveCluster, opts dsync.Options) error {
			_, err := dsync.NewDRWMutex(c.ds, "").GetLock(context.Background(), opts)
			return err
		},
		want: locker.ErrInvalidArgs,
	}, {
		name: "closed",
		run: func(t *testing.T, c *adaptiveCluster, opts dsync.Options) error {
			c.ds.Close()
			_, err := dsync.NewDRWMutex(c.ds, "obj").GetLock(context.Background(), opts)
			return err
		},
		want: dsync.ErrClosed,
	}, {
		name: "deadlock",
		run: func(t *testing.T, c *adaptiveCluster, opts dsync.Options) error {
			ctx := context.Background()
			ctxA, ctxB := dsync.WithHolder(ctx, "A"), dsync.WithHolder(ctx, "B")
			ma, mb := dsync.NewDRWMutex(c.ds, "a"), dsync.NewDRWMutex(c.ds, "b")
			_, err := ma.GetLock(ctxA, dsync.Options{})
			require.NoError(t, err)
			_, err = mb.GetLock(ctxB, dsync.Options{})
			require.NoError(t, err)
			aDone := make(chan error, 1)
			go func() { // A waits for b, held by B
				m := dsync.NewDRWMutex(c.ds, "b")
				_, err := m.GetLock(ctxA, dsync.Options{})
				if err == nil {
					m.Unlock(ctx)
				}
				aDone <- err
			}()
			c.clk.Advance(<-c.clk.sleeps) // A was refused: waiting
			bDone := make(chan error, 1)
			go func() { // B, the cycle's largest holder, closes it
				_, err := dsync.NewDRWMutex(c.ds, "a").GetLock(ctxB, opts)
				bDone <- err
			}()
			err = drive(c.clk, bDone, nil)
			mb.Unlock(ctx) // the victim lets go
			assert.NoError(t, drive(c.clk, aDone, nil), "A")
			ma.Unlock(ctx)
			return err
		},
		want: dsync.ErrDeadlock,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newAdaptiveCluster(t)
			a := newAdaptive(t, dsync.AdaptiveConfig{Initial: initial, Min: time.Second, Max: time.Minute, Window: 1})
			require.ErrorIs(t, tc.run(t, c, dsync.Options{Adaptive: a}), tc.want)
			require.Equal(t, initial, a.Timeout(), "the failure was observed")
		})
	}
}

// TestAdaptiveAllocatesNothing: Timeout and Observe, which acquisitions
// call, allocate nothing, also when a window completes.
func TestAdaptiveAllocatesNothing(t *testing.T) {
	a := newAdaptive(t, dsync.AdaptiveConfig{Window: 2})
	var sink time.Duration
	n := testing.AllocsPerRun(100, func() {
		sink += a.Timeout()
		a.Observe(time.Millisecond, false)
		a.Observe(time.Hour, true)
	})
	require.Zero(t, n, "allocations per Timeout and two Observes")
	require.NotZero(t, sink, "no timeout read")
}
