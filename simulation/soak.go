package simulation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// SoakConfig configures a Soak: the HTTP tier's cluster, the register
// workload and the fault schedule. The zero value of each field is a
// documented default; the durations are short (Validity 5s), so that
// refreshes, grace periods and expiries come around every few seconds.
type SoakConfig struct {
	// Nodes is how many nodes there are. If zero, 3.
	Nodes int
	// Clients is how many client processes there are: each is one
	// dsync.Dsync over rest clients of its own, one per node, each through
	// a fault-injecting proxy of its own. If zero, 4.
	Clients int
	// Workers is how many goroutines of each client run the register
	// workload, each with DRWMutexes of its own. Each worker, and each
	// client's long holder, is a client of the lock model, so
	// Clients×(Workers+1) must not exceed MaxClients. If zero, 4.
	Workers int
	// Resources is how many registers the workers share, each under the
	// lock of its name. If zero, 8.
	Resources int
	// ReadFraction is the share of the workers' acquisitions that take a
	// read lock and only read the register. If zero, 0.3; negative, none.
	ReadFraction float64
	// Hold is how long a worker holds its lock between the register's read
	// and its write: uniform in [0, Hold]. If zero, 1ms; negative, no wait.
	Hold time.Duration
	// LongHold is how long each client's long holder keeps the write lock
	// on a resource of its own (uncontended) before it writes and releases
	// it, to take it again at once: its refreshes, and its reclaims on
	// restarted nodes, span the faults. If zero, Validity; negative, no
	// long holders.
	LongHold time.Duration

	// Validity is the nodes' grant validity and the clients'
	// Config.Validity; the clients refresh every Validity/4, and a node
	// that restarts is in its grace period (the library's default,
	// locker.Config.QuietPeriod zero) for one Validity. If zero, 5s, not
	// the real-clock tier's 2s, at which a long holder lost its lock once
	// in 30 minutes, during a partition of one node from its client, on a
	// loaded machine. Our reading, not shown: a rest client that waits
	// past CallTimeout for one answer finds the node offline until its
	// next probe, a second later, and a loaded machine can make a healthy
	// node's answer that late; at 2s (refreshes every 500ms) such a second
	// on top of one real fault leaves too little of a lock's life.
	Validity time.Duration
	// CallTimeout bounds one call to one node (rest and dsync). If zero,
	// 500ms, not the real-clock tier's 250ms: a rest.Client reports a node
	// offline (and fails calls to it at once) only after a timeout of at
	// least 250ms, so with 250ms a cut-off node is never reported offline
	// and every call to it waits its whole timeout.
	CallTimeout time.Duration
	// RetryMin and RetryMax bound the clients' back-off. If zero, 10ms
	// and 100ms.
	RetryMin, RetryMax time.Duration
	// LockTimeout is every acquisition's Options.Timeout. If zero,
	// 4×Validity.
	LockTimeout time.Duration
	// MaxWait is the clients' dsync.Config.MaxWait: how long one attempt
	// of a contended acquisition waits in the nodes' queues. If zero,
	// dsync's default; negative, acquisitions do not wait on the nodes
	// and back off between attempts instead.
	MaxWait time.Duration

	// Faults are the kinds of fault the schedule cycles through, in order
	// (SoakFaultKinds names them). If empty, all of them.
	Faults []string
	// Outage is how long a node stays killed, or cut off, in each fault
	// of the schedule (soakfaults.go). If zero, 3s.
	Outage time.Duration
	// Settle is how long after the end of a fault (the heal, or the end of
	// a restarted node's grace period) a sample still counts as taken
	// during it (SoakSample.Settled is false): as long as the work a fault
	// leaves behind may last. The longest is a release that failed during
	// the fault, which dsync retries in the background for
	// Config.UnlockRetryFor (30s by default); the rest clients probe a node
	// they found offline every second, and the nodes' HTTP servers let the
	// workers of a burst go after 10 s idle. If zero, 30s.
	Settle time.Duration
	// FaultGap is the quiet time from the end of a fault to the start of
	// the next one. It must be at least Validity + LongHold + 2s, so that
	// no long hold meets two faults (see soakfaults.go). If zero, the
	// larger of that and Settle + 10s, so that every gap has 10 s of
	// settled samples.
	FaultGap time.Duration

	// CheckTimeout bounds porcupine's work on one window of one resource;
	// a window it cannot decide within it counts as undecided, a failure.
	// If zero, 10s.
	CheckTimeout time.Duration

	// Secret is the lock secret of every node and client: authentication
	// is always on. If empty, a fixed secret.
	Secret string
	// Seed draws the workers' choices, the clients' back-off, the proxies'
	// draws and the fault schedule's nodes and clients.
	Seed uint64
	// Logger receives what the nodes' HTTP servers, the clients' rest
	// clients and their dsync instances log. If nil, nothing is logged.
	Logger *slog.Logger
}

// soakSecret is the lock secret of a SoakConfig without one.
const soakSecret = "dsync-soak-secret-0123456789abcdef"

func (c SoakConfig) withDefaults() SoakConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(i *int, v int) {
		if *i == 0 {
			*i = v
		}
	}
	defInt(&c.Nodes, 3)
	defInt(&c.Clients, 4)
	defInt(&c.Workers, 4)
	defInt(&c.Resources, 8)
	if c.ReadFraction == 0 {
		c.ReadFraction = 0.3
	}
	def(&c.Hold, time.Millisecond)
	def(&c.Validity, 5*time.Second)
	def(&c.LongHold, c.Validity)
	def(&c.CallTimeout, 500*time.Millisecond)
	def(&c.RetryMin, 10*time.Millisecond)
	def(&c.RetryMax, 100*time.Millisecond)
	def(&c.LockTimeout, 4*c.Validity)
	def(&c.Outage, 3*time.Second)
	def(&c.Settle, 30*time.Second)
	def(&c.FaultGap, max(c.minFaultGap(), c.Settle+10*time.Second))
	if len(c.Faults) == 0 {
		c.Faults = SoakFaultKinds
	}
	def(&c.CheckTimeout, 10*time.Second)
	if c.Secret == "" {
		c.Secret = soakSecret
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

func (c SoakConfig) validate() error {
	switch {
	case c.Nodes < 1 || c.Clients < 1 || c.Workers < 1 || c.Resources < 1:
		return fmt.Errorf("simulation: soak of %d nodes, %d clients, %d workers, %d resources: each must be at least 1",
			c.Nodes, c.Clients, c.Workers, c.Resources)
	case c.Clients*(c.Workers+1) > MaxClients:
		return fmt.Errorf("simulation: soak of %d clients × (%d workers + 1 long holder), more than the model's %d",
			c.Clients, c.Workers, MaxClients)
	case c.ReadFraction > 1:
		return fmt.Errorf("simulation: ReadFraction %v above 1", c.ReadFraction)
	case c.Outage < 0 || c.Settle < 0:
		return errors.New("simulation: negative Outage or Settle")
	case c.FaultGap < c.minFaultGap():
		return fmt.Errorf("simulation: FaultGap %v below Validity + LongHold + 2s = %v: a long hold could meet two faults", c.FaultGap, c.minFaultGap())
	}
	for _, f := range c.Faults {
		if !slices.Contains(SoakFaultKinds, f) {
			return fmt.Errorf("simulation: no fault kind %q; have %s", f, strings.Join(SoakFaultKinds, ", "))
		}
	}
	return nil
}

// minFaultGap is the shortest FaultGap that keeps two faults out of one
// long hold (soakfaults.go).
func (c SoakConfig) minFaultGap() time.Duration {
	return c.Validity + max(c.LongHold, 0) + 2*time.Second
}

// Soak runs the real lock stack for a long time: nodes serving
// rest.Server with authentication on loopback over real locker tables,
// client processes (one dsync.Dsync each) whose every link to a node passes
// through a fault-injecting TCP proxy (HTTPNetwork), all in this process.
// Each Run drives the register workload, optionally at a fixed rate and
// under a schedule of node kills and partitions (soakfaults.go), samples
// the process (ReadProcStat) and checks every lock operation and every
// critical section.
//
// The workload: each client's workers take the read or write lock of one
// of Resources registers, read it, wait up to Hold, write what they read
// plus one if they hold the write lock and its context is live, and
// release it; each client's long holder does the same on a resource of its
// own, holding it for LongHold.
//
// The checks are those of the simulation (CheckLocks, porcupine against
// the read/write lock model; CheckRegister, lost updates and overlapping
// writers), made per resource in windows so that the soak's own memory
// does not grow with its length: before each sample (SoakPhase.SampleEvery)
// each of the workers' resources in turn (the long holders' on their own,
// as often) is drained (its gate, a sync.RWMutex that every operation on it holds for
// reading, is taken for writing, which waits for the operations under way
// and keeps new ones out), its history and register are swapped for fresh
// ones, and the old ones are checked and dropped. Nothing is held on a
// drained resource, so each window starts from a free lock and a register
// of zero, and the windows together check the whole run. One resource is
// drained at a time, and a worker that draws it takes the next one instead
// (enterAny); a long holder waits for its own resource's rotation, which
// waits for its hold to end.
type Soak struct {
	cfg     SoakConfig
	net     *HTTPNetwork
	clients []*dsync.Dsync
	workers []*soakWorker   // every client's workers, then every client's long holder
	res     []*soakResource // the workers' Resources, then one per long holder

	life context.Context // cancelled by Close; the operations' context
	stop context.CancelFunc

	running atomic.Bool // a Run is under way

	// counters of the Run under way: ops and errs since the last sample
	// (the sampler takes them), longHolds since the start
	ops, longHolds atomic.Int64
	errs           soakErrorCounters
	latMu          sync.Mutex      // guards lat
	lat            []time.Duration // successful acquisitions' latencies since the last sample

	checkMu sync.Mutex // guards check
	check   SoakCheck

	faultMu    sync.Mutex // guards faultNow, lastFault, faultEnded and faults
	faultNow   string     // the fault under way, "" if none
	lastFault  string     // the last fault that ended
	faultEnded time.Time  // when it ended (a heal, or a grace period's end)
	faults     map[string]int

	started time.Time  // when the Run under way started; set before any worker starts
	lossMu  sync.Mutex // guards losses
	losses  []string   // the Run's lost locks, described (at most maxLosses)
}

// soakWorker is one goroutine of the workload: a client of the lock
// model.
type soakWorker struct {
	id      int // the lock model's client
	client  int // its client process
	ds      *dsync.Dsync
	rng     *rand.Rand
	mutexes map[string]*dsync.DRWMutex // its own: a DRWMutex's RUnlock releases its most recent read lock, whoever took it
	long    *soakResource              // the long holder's resource; nil for a worker
}

// NewSoak starts the nodes, the proxies and the clients of cfg.
func NewSoak(cfg SoakConfig) (*Soak, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	net, err := NewHTTPNetwork(HTTPConfig{
		Nodes: cfg.Nodes, Clients: cfg.Clients, CallTimeout: cfg.CallTimeout, Seed: cfg.Seed,
		Secret: cfg.Secret, Logger: cfg.Logger,
		Node: locker.Config{Validity: cfg.Validity, WriterIntent: 2 * (cfg.RetryMax + 2*cfg.CallTimeout)},
	})
	if err != nil {
		return nil, err
	}
	s := &Soak{cfg: cfg, net: net, faults: map[string]int{}}
	s.life, s.stop = context.WithCancel(context.Background())
	for i := range cfg.Resources {
		s.res = append(s.res, &soakResource{name: resourceName(i), seg: newSoakSegment()})
	}
	for c := range cfg.Clients {
		ds, err := dsync.New(net.Lockers(c), dsync.Config{
			RefreshInterval: cfg.Validity / 4, Validity: cfg.Validity,
			CallTimeout: cfg.CallTimeout, RefreshCallTimeout: cfg.CallTimeout,
			RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, MaxWait: cfg.MaxWait,
			Owner: fmt.Sprintf("c%d", c), Logger: cfg.Logger,
			Rand: rand.New(rand.NewPCG(cfg.Seed, 1000+uint64(c))),
		})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("simulation: client %d: %w", c, err)
		}
		s.clients = append(s.clients, ds)
		for w := range cfg.Workers {
			id := c*cfg.Workers + w
			s.workers = append(s.workers, &soakWorker{id: id, client: c, ds: ds,
				rng: rand.New(rand.NewPCG(cfg.Seed, 2000+uint64(id))), mutexes: map[string]*dsync.DRWMutex{}})
		}
	}
	if cfg.LongHold > 0 {
		for c, ds := range s.clients {
			r := &soakResource{name: fmt.Sprintf("long/c%d", c), seg: newSoakSegment()}
			s.res = append(s.res, r)
			id := cfg.Clients*cfg.Workers + c
			s.workers = append(s.workers, &soakWorker{id: id, client: c, ds: ds, long: r,
				rng: rand.New(rand.NewPCG(cfg.Seed, 2000+uint64(id))), mutexes: map[string]*dsync.DRWMutex{}})
		}
	}
	return s, nil
}

// Config returns the soak's configuration with defaults applied.
func (s *Soak) Config() SoakConfig { return s.cfg }

// Close stops the network and the clients. Call it after the last Run has
// returned.
func (s *Soak) Close() {
	s.stop()
	s.net.Close()
	for _, ds := range s.clients {
		ds.Close()
	}
	s.net.CloseClients()
}

// SoakPhase is one Run of a Soak's workload.
type SoakPhase struct {
	// Duration is how long the workload runs; the operations under way
	// then finish. It must be positive.
	Duration time.Duration
	// Rate is how many acquisitions the workers start per second, in all.
	// Permits come at that pace; when every worker is busy (as during a
	// fault) a permit waits for one only within a burst of 50ms of them,
	// and the others are dropped, not owed. If zero, no pacing: every
	// worker starts its next acquisition as soon as it is done (the
	// workload's peak).
	Rate float64
	// Faults runs the fault schedule (soakfaults.go) during the phase.
	Faults bool
	// SampleEvery is how often the process and the workload are sampled,
	// every resource's window checked and dropped just before. If zero,
	// 10s.
	SampleEvery time.Duration
	// OnSample, if set, is called with each sample as it is taken, on the
	// sampler's goroutine.
	OnSample func(SoakSample)
}

// Run runs the workload for p.Duration, checks it, and returns what it
// measured. One Run at a time; it returns early if ctx ends or the Soak is
// closed.
func (s *Soak) Run(ctx context.Context, p SoakPhase) (*SoakResult, error) {
	if p.Duration <= 0 {
		return nil, fmt.Errorf("simulation: soak phase of %v", p.Duration)
	}
	if !s.running.CompareAndSwap(false, true) {
		return nil, errors.New("simulation: a soak Run is already under way")
	}
	defer s.running.Store(false)
	if p.SampleEvery <= 0 {
		p.SampleEvery = 10 * time.Second
	}
	s.reset()
	before := s.clientStats()
	start := time.Now()
	s.started = start
	phase, cancel := context.WithTimeout(ctx, p.Duration)
	defer cancel()
	phase, stopLife := mergeDone(phase, s.life)
	defer stopLife()

	var permits chan struct{}
	var bg sync.WaitGroup // pacer, faults, sampler, long holders' windows
	if p.Rate > 0 {
		permits = make(chan struct{}, max(1, int(p.Rate/20)))
		bg.Go(func() { pace(phase, p.Rate, permits) })
	}
	if p.Faults {
		bg.Go(func() { s.injectFaults(phase) })
	}
	res := &SoakResult{Phase: p}
	shared, long := s.res[:s.cfg.Resources], s.res[s.cfg.Resources:]
	bg.Go(func() {
		t := time.NewTicker(p.SampleEvery)
		defer t.Stop()
		last := start
		for {
			select {
			case <-phase.Done():
				return
			case <-t.C:
			}
			// The windows are checked and dropped before the sample, so
			// that the soak's own records are at their least, and no check
			// is under way, when it measures the process.
			s.rotateAll(shared)
			if phase.Err() != nil {
				// The phase ended while a rotation waited for operations
				// under way (up to LockTimeout each): the workers are
				// leaving, and a sample now would measure a process
				// without its workload. Run counts what is left.
				return
			}
			now := time.Now()
			smp := s.sample(now.Sub(start), now.Sub(last))
			last = now
			res.Samples = append(res.Samples, smp)
			if p.OnSample != nil {
				p.OnSample(smp)
			}
		}
	})
	// The long holders' windows, a hold every LongHold each, are checked on
	// their own: a rotation waits for a hold to end, which would hold the
	// samples back.
	bg.Go(func() {
		t := time.NewTicker(p.SampleEvery)
		defer t.Stop()
		for {
			select {
			case <-phase.Done():
				return
			case <-t.C:
				s.rotateAll(long)
			}
		}
	})

	var workers sync.WaitGroup
	for _, w := range s.workers {
		workers.Go(func() { s.work(phase, w, permits) })
	}
	workers.Wait()
	res.Elapsed = time.Since(start)
	bg.Wait()
	s.rotateAll(s.res)                                         // the last window of each resource
	res.Ops, res.LongHolds = s.ops.Swap(0), s.longHolds.Load() // Ops: since the last sample
	res.Errors = s.errs.take()
	for _, smp := range res.Samples {
		res.Ops += smp.Ops
		res.Errors.add(smp.Errors)
	}
	s.checkMu.Lock()
	res.Check = s.check
	s.checkMu.Unlock()
	s.faultMu.Lock()
	res.Faults = s.faults
	s.faultMu.Unlock()
	s.lossMu.Lock()
	res.Losses = s.losses
	s.lossMu.Unlock()
	after := s.clientStats()
	res.Reclaims, res.Reclaimed, res.RefreshRounds = after.Reclaims-before.Reclaims, after.Reclaimed-before.Reclaimed,
		after.RefreshRounds-before.RefreshRounds
	return res, nil
}

// reset clears the counters of the last Run.
func (s *Soak) reset() {
	s.ops.Store(0)
	s.longHolds.Store(0)
	s.errs.take()
	s.latMu.Lock()
	s.lat = s.lat[:0]
	s.latMu.Unlock()
	s.checkMu.Lock()
	s.check = SoakCheck{}
	s.checkMu.Unlock()
	s.faultMu.Lock()
	s.faults = map[string]int{}
	s.faultNow, s.lastFault, s.faultEnded = "", "", time.Time{}
	s.lossMu.Lock()
	s.losses = nil
	s.lossMu.Unlock()
	s.faultMu.Unlock()
}

// clientStats sums the clients' dsync.Stats.
func (s *Soak) clientStats() dsync.Stats {
	var sum dsync.Stats
	for _, ds := range s.clients {
		st := ds.Stats()
		sum.Reclaims += st.Reclaims
		sum.Reclaimed += st.Reclaimed
		sum.RefreshRounds += st.RefreshRounds
	}
	return sum
}

// mergeDone returns a context that ends when ctx or other does.
func mergeDone(ctx, other context.Context) (context.Context, context.CancelFunc) {
	merged, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(other, cancel)
	return merged, func() {
		stop()
		cancel()
	}
}

// pace sends permits on out at rate per second until ctx ends. A permit
// that finds out full is dropped: a burst of cap(out) waits for workers,
// no more.
func pace(ctx context.Context, rate float64, out chan<- struct{}) {
	const tick = 5 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	last, owed := time.Now(), 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			owed += rate * now.Sub(last).Seconds()
			last = now
			for ; owed >= 1; owed-- {
				select {
				case out <- struct{}{}:
				default: // every worker busy and the burst full: dropped
				}
			}
		}
	}
}

// work runs w's cycles until ctx ends, each one after a permit if permits
// is not nil. An operation under way when ctx ends is finished.
func (s *Soak) work(ctx context.Context, w *soakWorker, permits <-chan struct{}) {
	for ctx.Err() == nil {
		if w.long != nil {
			w.long.gate.RLock()
			err := s.cycle(w, w.long, true, s.cfg.LongHold)
			w.long.gate.RUnlock()
			if err == nil {
				s.longHolds.Add(1)
			} else {
				// Nothing left to wait for but the next attempt: back off a
				// little, so that a long holder refused during a fault does
				// not spin.
				sleepCtx(ctx, s.cfg.RetryMax)
			}
			continue
		}
		if permits != nil {
			select {
			case <-ctx.Done():
				return
			case <-permits:
			}
		}
		r := enterAny(s.res[:s.cfg.Resources], w.rng.IntN(s.cfg.Resources))
		write := s.cfg.ReadFraction < 0 || w.rng.Float64() >= s.cfg.ReadFraction
		var hold time.Duration
		if s.cfg.Hold > 0 {
			hold = time.Duration(w.rng.Int64N(int64(s.cfg.Hold) + 1))
		}
		err := s.cycle(w, r, write, hold)
		r.gate.RUnlock()
		if err == nil {
			s.ops.Add(1)
		}
	}
}

// cycle is one operation of w on r: acquire the lock (the write lock if
// write), enter the register's section, wait hold, write if the lock is
// held for writing and its context is live, release. Every step is
// recorded in r's current window, which cannot change meanwhile: the
// caller holds r's gate for reading. It returns the acquisition's error.
func (s *Soak) cycle(w *soakWorker, r *soakResource, write bool, hold time.Duration) error {
	seg := r.seg
	m := w.mutex(r.name)
	id := seg.hist.Invoke(w.id, r.name, OpAcquire, write)
	opts := dsync.Options{Timeout: s.cfg.LockTimeout}
	start := time.Now()
	var lockCtx context.Context
	var err error
	if write {
		lockCtx, err = m.GetLock(s.life, opts)
	} else {
		lockCtx, err = m.GetRLock(s.life, opts)
	}
	took := time.Since(start)
	if err != nil {
		seg.hist.Finish(id, Failed, err)
		if s.life.Err() == nil {
			s.errs.acquisition(err)
		}
		return err
	}
	seg.hist.Finish(id, OK, nil)
	s.latMu.Lock()
	s.lat = append(s.lat, took)
	s.latMu.Unlock()
	// Record the moment the holder is told its lock is lost, if it is,
	// before the release: nothing of this operation is recorded after it
	// returns and the gate is released.
	told := make(chan struct{})
	stopTold := context.AfterFunc(lockCtx, func() {
		defer close(told)
		if cause := context.Cause(lockCtx); errors.Is(cause, dsync.ErrLockLost) {
			seg.hist.Point(w.id, r.name, OpLost, write)
			s.errs.lost.Add(1)
			if w.long != nil {
				s.errs.longLost.Add(1)
			}
			s.recordLoss(w, r.name, start.Add(took), cause)
		}
	})
	sec := seg.reg.Enter(w.id, r.name, write)
	if hold > 0 {
		sleepCtx(s.life, hold)
	}
	seg.reg.Exit(sec, write && lockCtx.Err() == nil)
	if !stopTold() {
		<-told
	}
	rel := seg.hist.Invoke(w.id, r.name, OpRelease, write)
	if write {
		err = m.Unlock(context.Background())
	} else {
		err = m.RUnlock(context.Background())
	}
	// The holder stopped using the lock when it called Unlock: the release
	// is OK whatever the nodes answered.
	seg.hist.Finish(rel, OK, err)
	if s.life.Err() == nil {
		s.errs.release(err)
	}
	return nil
}

// maxLosses bounds the lost locks a Run describes.
const maxLosses = 20

// recordLoss describes a lock of w on name, granted at granted, that its
// holder was told is lost with cause: when, what fault was under way or
// had ended last, and what each node holds of name and whether w's client
// finds it online.
func (s *Soak) recordLoss(w *soakWorker, name string, granted time.Time, cause error) {
	now := time.Now()
	s.faultMu.Lock()
	fault := "during " + s.faultNow
	if s.faultNow == "" {
		fault = "no fault under way"
		if s.lastFault != "" {
			fault += fmt.Sprintf(", %s ended %v before", s.lastFault, now.Sub(s.faultEnded).Round(time.Millisecond))
		}
	}
	s.faultMu.Unlock()
	kind := "worker"
	if w.long != nil {
		kind = "long holder"
	}
	d := fmt.Sprintf("%s, c%d's %s (model client %d), lost at %v, %v after its grant, %s: %v; nodes: %s",
		name, w.client, kind, w.id, now.Sub(s.started).Round(time.Millisecond), now.Sub(granted).Round(time.Millisecond),
		fault, cause, s.net.describe(name, w.client))
	s.lossMu.Lock()
	defer s.lossMu.Unlock()
	if len(s.losses) < maxLosses {
		s.losses = append(s.losses, d)
	}
}

// mutex returns w's DRWMutex on name.
func (w *soakWorker) mutex(name string) *dsync.DRWMutex {
	m := w.mutexes[name]
	if m == nil {
		m = dsync.NewDRWMutex(w.ds, name)
		w.mutexes[name] = m
	}
	return m
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
