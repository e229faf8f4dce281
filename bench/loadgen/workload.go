package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Target is a lock service under load: ours through package dsync, or a peer
// (Redlock, etcd) in the bench/compare module.
type Target interface {
	// Name names the target in reports ("dsync", "redlock", ...).
	Name() string
	// NewSession returns a session for one worker. Sessions are used by one
	// goroutine at a time.
	NewSession() (Session, error)
}

// Session locks one resource at a time for one worker.
type Session interface {
	// Lock acquires resource, exclusively if write, else shared, waiting at
	// most timeout. It returns an error if the lock was not acquired.
	Lock(ctx context.Context, resource string, write bool, timeout time.Duration) error
	// Unlock releases what the last successful Lock acquired.
	Unlock(ctx context.Context) error
}

// A Session that also implements io.Closer is closed by Run when the run
// ends (an etcd session, for example, revokes its lease).

// Counters is implemented by targets that can count their traffic. Run reads
// it before and after the measured part of a run.
type Counters interface {
	// WireBytes is how many bytes the lock servers received and sent so far,
	// or -1 if the target sends nothing over a wire.
	WireBytes() int64
	// RefreshRequests is how many refresh requests were sent to each node so
	// far, in total over the nodes.
	RefreshRequests() int64
	// Nodes is how many lock servers there are.
	Nodes() int
	// RefreshInterval is how often held locks are refreshed.
	RefreshInterval() time.Duration
	// LockCalls is how many lock calls were sent to the nodes so far, in
	// total, and how many of them were refused or failed.
	LockCalls() (calls, refused, failed int64)
	// Requests is how many requests the clients sent to the nodes so far and
	// how many operations they carried, in total; both are -1 if the target
	// does not count them.
	Requests() (requests, ops int64)
}

// Workload describes the load. The zero value of each field means its
// documented default.
type Workload struct {
	// Concurrency is how many workers lock and unlock in a loop. If zero, 256.
	Concurrency int
	// Duration is how long the workers run. If zero, 10s.
	Duration time.Duration
	// Contention is the fraction (0..1) of operations on the hot set; the
	// others go to resources of the worker's own, which nobody else locks.
	Contention float64
	// Hot is the size of the hot set. If zero, 16.
	Hot int
	// Read is the fraction (0..1) of operations that take a read lock.
	Read float64
	// Timeout bounds one acquire. If zero, 5s.
	Timeout time.Duration
	// Hold is how many locks, on resources of their own, are acquired before
	// the run and held until it ends, so that refresh traffic can be measured.
	Hold int
	// Section is how long a worker holds each lock before it releases it
	// (its critical section, slept). If zero, it releases at once.
	Section time.Duration
	// Seed seeds the workers' choices of resource and mode.
	Seed uint64
}

func (w Workload) withDefaults() Workload {
	if w.Concurrency == 0 {
		w.Concurrency = 256
	}
	if w.Duration == 0 {
		w.Duration = 10 * time.Second
	}
	if w.Hot == 0 {
		w.Hot = 16
	}
	if w.Timeout == 0 {
		w.Timeout = 5 * time.Second
	}
	return w
}

// Validate reports the first field of w that cannot work.
func (w Workload) Validate() error {
	switch {
	case w.Concurrency < 0:
		return fmt.Errorf("loadgen: Concurrency %d is negative", w.Concurrency)
	case w.Duration < 0:
		return fmt.Errorf("loadgen: Duration %v is negative", w.Duration)
	case w.Contention < 0 || w.Contention > 1:
		return fmt.Errorf("loadgen: Contention %v is not in [0, 1]", w.Contention)
	case w.Read < 0 || w.Read > 1:
		return fmt.Errorf("loadgen: Read %v is not in [0, 1]", w.Read)
	case w.Hot < 0:
		return fmt.Errorf("loadgen: Hot %d is negative", w.Hot)
	case w.Hold < 0:
		return fmt.Errorf("loadgen: Hold %d is negative", w.Hold)
	case w.Section < 0:
		return fmt.Errorf("loadgen: Section %v is negative", w.Section)
	}
	return nil
}

// Result is what one run measured.
type Result struct {
	Target   string
	Nodes    int // lock servers; 0 if the target does not say
	Workload Workload

	Elapsed      time.Duration // from the start of the workers to the end of the last
	Pairs        uint64        // completed lock+unlock pairs
	LockErrors   uint64        // acquires that failed (timeouts, no quorum, ...)
	UnlockErrors uint64
	FirstError   string // the first error seen, for the report

	LocksPerSec float64
	Latency     Histogram // acquire latency of the completed pairs
	// Unfairness is how far the worker furthest from the mean count of
	// pairs per worker is from it, as a fraction of the mean: 0.25 means
	// every worker completed within ±25% of the mean. It is -1 with no
	// pairs.
	Unfairness float64

	CPUPerLock    time.Duration // user+sys CPU of this process per pair
	CPUCores      float64       // user+sys CPU of this process per second of the run
	AllocsPerLock float64       // heap allocations of this process per pair

	WireBytesPerLock float64 // -1 if the target does not count bytes
	// RefreshPerNodePerInterval is the refresh requests each node received
	// per refresh interval, on average; -1 if the target does not count them.
	RefreshPerNodePerInterval float64
	// NodeCallsPerLock is the lock calls sent to nodes per completed pair,
	// and NodeRefusals and NodeFailures how many of those calls were refused
	// or failed, in total; NodeCallsPerLock is -1 if not counted.
	NodeCallsPerLock           float64
	NodeRefusals, NodeFailures int64
	// OpsPerRequest is the node operations (lock, unlock, refresh) each
	// request to a node carried, on average: how well calls were batched.
	// It is -1 if the target does not count requests.
	OpsPerRequest float64
}

// worker is one worker's state, padded so that workers' counters do not
// share cache lines.
type worker struct {
	pairs   atomic.Uint64
	lockErr atomic.Uint64
	unlkErr atomic.Uint64
	hist    Histogram
	firstE  error
	_       [64]byte
}

// Run drives w against t and returns what it measured. While it runs it
// writes a line per second to progress (if not nil). It returns early, with
// what was measured so far, if ctx is done.
func Run(ctx context.Context, t Target, w Workload, progress io.Writer) (*Result, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	w = w.withDefaults()

	held, err := hold(ctx, t, w)
	defer func() {
		for _, s := range held {
			_ = s.Unlock(context.WithoutCancel(ctx))
			if c, ok := s.(io.Closer); ok {
				c.Close()
			}
		}
	}()
	if err != nil {
		return nil, err
	}

	sessions := make([]Session, w.Concurrency)
	defer func() {
		for _, s := range sessions {
			if c, ok := s.(io.Closer); ok {
				c.Close()
			}
		}
	}()
	for i := range sessions {
		if sessions[i], err = t.NewSession(); err != nil {
			return nil, fmt.Errorf("loadgen: session %d: %w", i, err)
		}
	}
	hot := make([]string, w.Hot)
	for i := range hot {
		hot[i] = "hot/" + strconv.Itoa(i)
	}
	workers := make([]worker, w.Concurrency)

	counters, _ := t.(Counters)
	var wire0, refresh0, calls0, refused0, failed0, req0, ops0 int64
	if counters != nil {
		wire0, refresh0 = counters.WireBytes(), counters.RefreshRequests()
		calls0, refused0, failed0 = counters.LockCalls()
		req0, ops0 = counters.Requests()
	}
	runtime.GC()
	var mem0, mem1 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	cpu0 := cpuTime()
	start := time.Now()

	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runWorker(ctx, &workers[i], sessions[i], i, w, hot, &stop)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	watch(ctx, workers, start, w.Duration, progress, &stop, done)

	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&mem1)

	r := &Result{Target: t.Name(), Workload: w, Elapsed: elapsed, WireBytesPerLock: -1, RefreshPerNodePerInterval: -1, NodeCallsPerLock: -1, OpsPerRequest: -1}
	r.CPUCores = cpu.Seconds() / elapsed.Seconds()
	r.Unfairness = unfairness(workers)
	for i := range workers {
		wk := &workers[i]
		r.Pairs += wk.pairs.Load()
		r.LockErrors += wk.lockErr.Load()
		r.UnlockErrors += wk.unlkErr.Load()
		r.Latency.Merge(&wk.hist)
		if wk.firstE != nil && r.FirstError == "" {
			r.FirstError = wk.firstE.Error()
		}
	}
	if r.Pairs > 0 {
		n := float64(r.Pairs)
		r.LocksPerSec = n / elapsed.Seconds()
		r.CPUPerLock = time.Duration(float64(cpu) / n)
		r.AllocsPerLock = float64(mem1.Mallocs-mem0.Mallocs) / n
	}
	if counters != nil {
		r.Nodes = counters.Nodes()
		if r.Pairs > 0 && wire0 >= 0 {
			r.WireBytesPerLock = float64(counters.WireBytes()-wire0) / float64(r.Pairs)
		}
		calls, refused, failed := counters.LockCalls()
		r.NodeRefusals, r.NodeFailures = refused-refused0, failed-failed0
		if r.Pairs > 0 {
			r.NodeCallsPerLock = float64(calls-calls0) / float64(r.Pairs)
		}
		if req, ops := counters.Requests(); req0 >= 0 && req > req0 {
			r.OpsPerRequest = float64(ops-ops0) / float64(req-req0)
		}
		if iv := counters.RefreshInterval(); iv > 0 && r.Nodes > 0 {
			intervals := elapsed.Seconds() / iv.Seconds()
			r.RefreshPerNodePerInterval = float64(counters.RefreshRequests()-refresh0) / float64(r.Nodes) / intervals
		}
	}
	return r, nil
}

// unfairness returns Result.Unfairness of workers.
func unfairness(workers []worker) float64 {
	var total uint64
	for i := range workers {
		total += workers[i].pairs.Load()
	}
	if total == 0 {
		return -1
	}
	mean := float64(total) / float64(len(workers))
	worst := 0.0
	for i := range workers {
		worst = max(worst, math.Abs(float64(workers[i].pairs.Load())-mean)/mean)
	}
	return worst
}

// hold acquires w.Hold locks before the run. It returns the sessions that
// hold them, also on error, so that the caller releases them.
func hold(ctx context.Context, t Target, w Workload) ([]Session, error) {
	var held []Session
	for i := range w.Hold {
		s, err := t.NewSession()
		if err != nil {
			return held, fmt.Errorf("loadgen: hold: %w", err)
		}
		if err := s.Lock(ctx, "held/"+strconv.Itoa(i), true, w.Timeout); err != nil {
			return held, fmt.Errorf("loadgen: hold lock %d: %w", i, err)
		}
		held = append(held, s)
	}
	return held, nil
}

// ownNames is how many resources of its own each worker cycles through.
const ownNames = 64

func runWorker(ctx context.Context, wk *worker, s Session, id int, w Workload, hot []string, stop *atomic.Bool) {
	rng := rand.New(rand.NewPCG(w.Seed, uint64(id)))
	own := make([]string, ownNames)
	for i := range own {
		own[i] = "w" + strconv.Itoa(id) + "/" + strconv.Itoa(i)
	}
	for n := 0; !stop.Load() && ctx.Err() == nil; n++ {
		name := own[n%ownNames]
		if w.Contention > 0 && rng.Float64() < w.Contention {
			name = hot[rng.IntN(len(hot))]
		}
		write := w.Read == 0 || rng.Float64() >= w.Read
		t0 := time.Now()
		if err := s.Lock(ctx, name, write, w.Timeout); err != nil {
			wk.lockErr.Add(1)
			if wk.firstE == nil && ctx.Err() == nil {
				wk.firstE = err
			}
			continue
		}
		wk.hist.Record(time.Since(t0))
		if w.Section > 0 {
			time.Sleep(w.Section)
		}
		if err := s.Unlock(ctx); err != nil {
			wk.unlkErr.Add(1)
			if wk.firstE == nil {
				wk.firstE = fmt.Errorf("unlock: %w", err)
			}
		}
		wk.pairs.Add(1)
	}
}

// watch prints a progress line a second until d has passed, then tells the
// workers to stop and waits for them.
func watch(ctx context.Context, workers []worker, start time.Time, d time.Duration, progress io.Writer, stop *atomic.Bool, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	var last uint64
	for {
		select {
		case <-tick.C:
			var pairs, errs uint64
			for i := range workers {
				pairs += workers[i].pairs.Load()
				errs += workers[i].lockErr.Load()
			}
			if progress != nil {
				fmt.Fprintf(progress, "  %5.1fs  %9d locks/s  %10d total  %6d errors\n",
					time.Since(start).Seconds(), pairs-last, pairs, errs)
			}
			last = pairs
		case <-end.C:
			stop.Store(true)
			<-done
			return
		case <-ctx.Done():
			stop.Store(true)
			<-done
			return
		case <-done:
			return
		}
	}
}
