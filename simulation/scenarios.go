package simulation

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// resource is the one resource the scripted scenarios lock.
const resource = "bucket/object"

// spawn runs f on a cluster goroutine and returns a channel closed when f
// returns.
func (c *Cluster) spawn(f func()) <-chan struct{} {
	done := make(chan struct{})
	c.Go(func() {
		defer close(done)
		f()
	})
	return done
}

// await runs virtual time until done is closed, failing after limit.
func (c *Cluster) await(done <-chan struct{}, limit time.Duration, what string) error {
	if !c.RunUntil(done, limit) {
		return fmt.Errorf("%s: not done after %v of virtual time", what, limit)
	}
	return nil
}

// acquire makes client i acquire the resource and waits for the answer.
func (c *Cluster) acquire(i int, write bool) (*Hold, error) {
	var h *Hold
	var err error
	if werr := c.await(c.spawn(func() { h, err = c.Client(i).Acquire(resource, write) }), c.acquireLimit()+time.Minute, fmt.Sprintf("c%d acquire", i)); werr != nil {
		return nil, werr
	}
	if err != nil {
		return nil, fmt.Errorf("c%d acquire: %w", i, err)
	}
	return h, nil
}

// acquireLimit is the longest an acquisition may wait: Config.LockTimeout,
// or with adaptive timeouts their Max.
func (c *Cluster) acquireLimit() time.Duration {
	if c.Cfg.Adaptive != nil {
		return c.adaptiveCfg.Max
	}
	return c.Cfg.LockTimeout
}

// useAndRelease runs a critical section of d under h and releases it, on a
// cluster goroutine.
func (c *Cluster) useAndRelease(h *Hold, d time.Duration) <-chan struct{} {
	return c.spawn(func() {
		h.cl.Section(h, d)
		h.Release()
	})
}

// Scenarios returns the named scenarios, in the order reports list them;
// "random" and "semaphore-random" draw their faults within b.
func Scenarios(b Budget) []Scenario {
	return []Scenario{
		noQuorum(), nodesDownWhileHeld(), staleLockOfCrashedClient(), twoReadersCrash(),
		writerUnderReaders(), writerUnderReadersNoIntent(), writerUnderReadersQueued(), minorityPartition(), pausedPastExpiry(),
		pausedPastExpiryFenced(), stoppedPastExpiry(), stoppedPastExpiryFenced(), doubleGrantAfterRestart(), doubleGrantQuietPeriod(),
		restartAllWhileHeld(), rollingRestart(), driftWithinMargin(), driftPastMargin(), nodeStops(), Random(b), RandomClocks(b),
		Contention(b),
		semaphoreScenario(), SemaphoreRandom(b), leaseScenario(), LeaseRandom(b),
		leaseVerifyPastDeadline(),
		hierarchyScenario(), HierarchyRandom(b), modesScenario(), ModesRandom(b), deadlockScenario(), deadlockChain(), DeadlockRandom(b), barrierScenario(), BarrierRandom(b),
		BarrierRandomLive(b), barrierArrivalLost(),
		condScenario(), CondRandom(b), adaptiveScenario(), AdaptiveRandom(b),
		setsScenario(), growScenario("grow-old-change", LayoutOld, LayoutChange, LayoutChange),
		growScenario("grow-change-new", LayoutChange, LayoutNew, LayoutNew),
	}
}

// ScenarioByName returns the named scenario; "random" and
// "semaphore-random" draw their faults within b.
func ScenarioByName(name string, b Budget) (Scenario, bool) {
	for _, s := range Scenarios(b) {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

func atLeast(p *int, v int) { *p = max(*p, v) }

func noQuorum() Scenario {
	return Scenario{
		Name:    "no-quorum",
		Faults:  "2 of 3 nodes isolated for 5s, then healed",
		Expect:  Safe,
		Explain: "no acquisition succeeds while only 1 of 3 nodes answers; the waiting clients succeed after the heal",
		Setup:   func(cfg *Config) { cfg.Ops = min(cfg.Ops, 5) },
		Drive: func(c *Cluster) (time.Duration, error) {
			healAt := 5 * time.Second
			ok := c.RunWorkload([]Fault{
				{At: 0, Name: "isolate n1..", Do: func(c *Cluster) {
					for k := 1; k < c.Cfg.Nodes; k++ {
						c.Net.Isolate(k)
					}
				}},
				{At: healAt, Name: "heal", Do: func(c *Cluster) { c.Net.Heal() }},
			})
			for _, op := range c.History.Ops() {
				if op.Kind == OpAcquire && op.Outcome == OK && op.ReturnAt.Before(c.Start.Add(healAt)) {
					return healAt, fmt.Errorf("c%d acquired without a quorum", op.Client)
				}
			}
			if !ok {
				return healAt, fmt.Errorf("workload did not finish")
			}
			return healAt, nil
		},
	}
}

func nodesDownWhileHeld() Scenario {
	return Scenario{
		Name:    "nodes-down-while-held",
		Faults:  "n−W of 5 nodes crash while locks are held, restart empty 3s later",
		Expect:  Safe,
		Explain: "holders keep a quorum of refreshes; a restarted node's empty table is outvoted by the W nodes that still hold the lock",
		Setup: func(cfg *Config) {
			atLeast(&cfg.Nodes, 5)
			cfg.Hold = max(cfg.Hold, 500*time.Millisecond)
		},
		Drive: func(c *Cluster) (time.Duration, error) {
			down := c.Cfg.Nodes - (c.Cfg.Nodes/2 + 1)
			crash := func(c *Cluster) {
				for k := range down {
					c.Net.CrashNode(k)
				}
			}
			restart := func(c *Cluster) {
				for k := range down {
					c.Net.RestartNode(k)
				}
			}
			heal := 3300 * time.Millisecond
			if !c.RunWorkload([]Fault{{At: 300 * time.Millisecond, Name: "crash", Do: crash}, {At: heal, Name: "restart", Do: restart}}) {
				return heal, fmt.Errorf("workload did not finish")
			}
			return heal, nil
		},
	}
}

func staleLockOfCrashedClient() Scenario {
	return Scenario{
		Name:    "stale-lock-of-crashed-client",
		Faults:  "the write holder crashes; another client asks",
		Expect:  Safe,
		Explain: "the crashed holder's grant blocks others until it expires on the nodes (within Validity), then the lock is granted",
		Drive: func(c *Cluster) (time.Duration, error) {
			h0, err := c.acquire(0, true)
			if err != nil {
				return 0, err
			}
			crashAt := c.Now()
			c.CrashClient(0)
			h0.Release() // records that the dead process holds nothing
			h1, err := c.acquire(1, true)
			if err != nil {
				return crashAt, err
			}
			waited := c.Now() - crashAt
			if min := c.Cfg.Validity - c.Cfg.RefreshInterval; waited < min {
				return crashAt, fmt.Errorf("granted %v after the holder crashed, before its grant could expire (%v)", waited, min)
			}
			return crashAt, c.await(c.useAndRelease(h1, c.Cfg.Hold), time.Minute, "c1 section")
		},
	}
}

func twoReadersCrash() Scenario {
	return Scenario{
		Name:    "two-read-holders-crash",
		Faults:  "two read holders crash; a writer asks",
		Expect:  Safe,
		Explain: "both stale read grants block the writer until they expire, then it is granted",
		Drive: func(c *Cluster) (time.Duration, error) {
			var holds []*Hold
			for i := range 2 {
				h, err := c.acquire(i, false)
				if err != nil {
					return 0, err
				}
				holds = append(holds, h)
			}
			crashAt := c.Now()
			for i, h := range holds {
				c.CrashClient(i)
				h.Release()
			}
			h, err := c.acquire(2, true)
			if err != nil {
				return crashAt, err
			}
			if min := c.Cfg.Validity - c.Cfg.RefreshInterval; c.Now()-crashAt < min {
				return crashAt, fmt.Errorf("writer granted %v after the readers crashed, before their grants could expire", c.Now()-crashAt)
			}
			return crashAt, c.await(c.useAndRelease(h, c.Cfg.Hold), time.Minute, "writer section")
		},
	}
}

func writerUnderReaders() Scenario {
	s := writerUnderReadersNoIntent()
	s.Name = "writer-under-readers"
	s.Faults = "4 readers hold in turn without a gap; one writer asks"
	s.Expect = Safe
	s.Explain = "a refused writer leaves a writer intent on the nodes (locker.Config.WriterIntent) that refuses new readers, so the writer gets in once the current readers leave"
	s.Setup = func(cfg *Config) { atLeast(&cfg.Clients, 5) }
	return s
}

func writerUnderReadersQueued() Scenario {
	s := writerUnderReadersNoIntent()
	s.Name = "writer-under-readers-queued"
	s.Faults = "as writer-under-readers, with WriterIntent off on the nodes: only their queues hold the readers back"
	s.Expect = Safe
	s.Explain = "the writer waits in the nodes' queues, ahead of every reader that starts after it (LockArgs.Ticket): no younger reader takes the lock before it, so it gets in once the current readers leave"
	s.Setup = func(cfg *Config) {
		atLeast(&cfg.Clients, 5)
		cfg.WriterIntent = -1
	}
	return s
}

func writerUnderReadersNoIntent() Scenario {
	return Scenario{
		Name:    "writer-under-readers-no-intent",
		Faults:  "as writer-under-readers, with WriterIntent off on the nodes and clients that do not wait on them (MaxWait < 0)",
		Expect:  KnownStarvation,
		Explain: "safety holds, but nothing bounds the writer's wait: without writer intent or the nodes' queues, overlapping readers may keep it out for as long as they come",
		Setup: func(cfg *Config) {
			atLeast(&cfg.Clients, 5)
			cfg.WriterIntent = -1
			cfg.MaxWait = -1
		},
		Drive: func(c *Cluster) (time.Duration, error) {
			stop := make(chan struct{})
			readers := c.Cfg.Clients - 1
			for i := range readers {
				cl := c.Client(i)
				c.Go(func() {
					// Staggered starts: some reader holds at every instant.
					clock.Sleep(cl.ctx, cl.clk, time.Duration(i)*2*c.Cfg.Hold/time.Duration(readers))
					for range 10_000 {
						select {
						case <-stop:
							return
						default:
						}
						if cl.Crashed() {
							return
						}
						h, err := cl.Acquire(resource, false)
						if err != nil {
							continue
						}
						cl.Section(h, c.Cfg.Hold*2)
						h.Release()
					}
				})
			}
			c.Advance(2 * c.Cfg.Hold) // let the readers get going
			writer := c.Client(readers)
			done := c.spawn(func() {
				if h, err := writer.Acquire(resource, true); err == nil {
					writer.Section(h, c.Cfg.Hold)
					h.Release()
				}
			})
			// A starved writer times out and shows as a liveness failure.
			err := c.await(done, c.Cfg.LockTimeout+time.Minute, "writer")
			close(stop)
			c.Advance(c.Cfg.Hold * 4) // let the readers stop
			return 0, err
		},
	}
}

func minorityPartition() Scenario {
	return Scenario{
		Name:    "minority-partition",
		Faults:  "the write holder is cut off with 2 of 5 nodes; others ask",
		Expect:  Safe,
		Explain: "the cut-off holder's refreshes miss a quorum, so its lock context is cancelled at its validity deadline, before the majority's grants expire and another client is granted",
		Setup:   func(cfg *Config) { atLeast(&cfg.Nodes, 5) },
		Drive: func(c *Cluster) (time.Duration, error) {
			h0, err := c.acquire(0, true)
			if err != nil {
				return 0, err
			}
			held := c.useAndRelease(h0, 3*c.Cfg.Validity)
			for k := range c.Cfg.Nodes/2 + 1 {
				c.Net.Cut(0, k, Both)
			}
			h1, err := c.acquire(1, true)
			if err != nil {
				return 0, err
			}
			if h0.Ctx.Err() == nil {
				return 0, fmt.Errorf("c1 granted while c0's lock context is still live")
			}
			heal := c.Now()
			c.Net.Heal()
			if err := c.await(c.useAndRelease(h1, c.Cfg.Hold), time.Minute, "c1 section"); err != nil {
				return heal, err
			}
			return heal, c.await(held, 4*c.Cfg.Validity, "c0 section")
		},
	}
}

func pausedPastExpiry() Scenario {
	return Scenario{
		Name:   "paused-past-expiry",
		Faults: "the write holder pauses between its check and its write, past the validity",
		Expect: KnownStorageViolation,
		Explain: "the lock holds: the paused holder's lock context is cancelled at its validity deadline, before the second grant. " +
			"Storage does not: a frozen process cannot see that, and its write lands after the second holder's (no fencing token here; " +
			"paused-past-expiry-fenced is the same fault with tokens). " +
			"The pause freezes the client's messages and workload but not dsync's own timers; a stop-the-world pause also " +
			"delays the context's cancellation until the resume (stopped-past-expiry)",
		Drive: frozenWriter(false),
	}
}

func pausedPastExpiryFenced() Scenario {
	return Scenario{
		Name:   "paused-past-expiry-fenced",
		Faults: "as paused-past-expiry, with fencing tokens: writes carry DRWMutex.FencingToken, the register refuses stale ones",
		Expect: Safe,
		Explain: "each write holder asks for its token right after the grant; the second holder's token is larger than the paused " +
			"holder's, and the register sees it when the second holder reads, so the paused holder's late write is refused " +
			"instead of overwriting the second holder's increment: no lost update, no overlap among accepted writes",
		Setup: func(cfg *Config) { cfg.Fenced = true },
		Drive: frozenWriter(false),
	}
}

func stoppedPastExpiry() Scenario {
	return Scenario{
		Name: "stopped-past-expiry",
		Faults: "as paused-past-expiry, with the holder's whole process stopped (stop-the-world: its timers too, " +
			"its refresher's included), not only its traffic and workload",
		Expect: KnownLockViolation,
		Explain: "the holder's refresher is stopped with it, so its lock context is still live when the nodes expire its grant " +
			"and grant the second writer: porcupine flags the lock history (the documented paused holder, README.md Guarantees), " +
			"and the register the stale write that lands when it continues",
		SimulatedOnly: true,
		Drive:         frozenWriter(true),
	}
}

func stoppedPastExpiryFenced() Scenario {
	return Scenario{
		Name:   "stopped-past-expiry-fenced",
		Faults: "as stopped-past-expiry, with fencing tokens",
		Expect: KnownLockViolation,
		Explain: "the lock history is flagged as in stopped-past-expiry: a stopped holder cannot be told it lost its lock. " +
			"Storage that checks fencing tokens refuses its stale write: no lost update, no overlap, and the refusal " +
			"came after its refresher, which runs first when it continues, had cancelled its lock context",
		SimulatedOnly: true,
		Setup:         func(cfg *Config) { cfg.Fenced = true },
		Drive:         frozenWriter(true),
	}
}

// frozenWriter returns the Drive of the paused-past-expiry and
// stopped-past-expiry scenarios: c0 takes the write lock and is frozen
// between its check and its write, past the validity; c1 takes the lock
// meanwhile, writes and releases; then c0 resumes and writes. The freeze is
// a pause (Fabric.PauseClient: traffic and workload), or with stop a stop of
// the whole process (Cluster.StopClient). In a fenced run c0's write must be
// refused. After a stop the expectation is the lock violation, which says
// nothing of storage, so the Drive checks the register itself: with tokens
// it must show no violation, without them the stale write.
func frozenWriter(stop bool) func(c *Cluster) (time.Duration, error) {
	return func(c *Cluster) (time.Duration, error) {
		heal, err := frozenWrite(c, stop)
		if err != nil || !stop {
			return heal, err
		}
		rep := CheckRegister(c.Register.Sections(), c.Register.Values())
		switch {
		case c.Cfg.Fenced && rep.Violations() > 0:
			return heal, fmt.Errorf("with tokens, the register shows %d violations %v", rep.Violations(), rep.Examples)
		case !c.Cfg.Fenced && rep.LostUpdates == 0:
			return heal, fmt.Errorf("the register did not catch c0's stale write: %+v", rep)
		}
		return heal, nil
	}
}

func frozenWrite(c *Cluster, stop bool) (time.Duration, error) {
	h0, err := c.acquire(0, true)
	if err != nil {
		return 0, err
	}
	freeze, thaw := func() { c.Net.PauseClient(0) }, func() { c.Net.ResumeClient(0) }
	if stop {
		freeze, thaw = func() { c.StopClient(0) }, func() { c.ContinueClient(0) }
	}
	paused := make(chan struct{})
	var live bool
	done0 := c.spawn(func() {
		live = c.Client(0).PausedSection(h0, func() { freeze(); close(paused) })
		h0.Release()
	})
	if err := c.await(paused, time.Minute, "pause"); err != nil {
		return 0, err
	}
	h1, err := c.acquire(1, true)
	if err != nil {
		return 0, err
	}
	if err := c.await(c.useAndRelease(h1, c.Cfg.Hold), time.Minute, "c1 section"); err != nil {
		return 0, err
	}
	heal := c.Now()
	thaw()
	if err := c.await(done0, time.Minute, "c0 resumes"); err != nil {
		return heal, err
	}
	if !live {
		return heal, fmt.Errorf("c0's lock context was not live at its check")
	}
	if c.Cfg.Fenced {
		if h0.Token == 0 || h1.Token <= h0.Token {
			return heal, fmt.Errorf("fencing tokens: c0 %d, then c1 %d; want c1's larger", h0.Token, h1.Token)
		}
	}
	if c.Register.checkTokens {
		// The point of the scenario: the stale write reached the register
		// and was refused (an accepted one also shows as a lost update).
		for _, s := range c.Register.Sections() {
			if s.Client == 0 && !s.Refused {
				return heal, fmt.Errorf("c0's stale write with token %d was not refused (c1's token %d)", h0.Token, h1.Token)
			}
		}
	}
	return heal, nil
}

// doubleGrant restarts W of 3 nodes inside the validity while c0 holds the
// write lock, and lets c1 ask.
func doubleGrant(c *Cluster) (time.Duration, error) {
	c.Advance(c.Cfg.QuietPeriod) // the nodes have just started
	h0, err := c.acquire(0, true)
	if err != nil {
		return 0, err
	}
	held := c.useAndRelease(h0, c.Cfg.Validity/2)
	c.Advance(100 * time.Millisecond)
	w := c.Cfg.Nodes/2 + 1
	for k := range w {
		c.Net.RestartNode(k)
	}
	heal := c.Now()
	h1, err := c.acquire(1, true)
	if err != nil {
		return heal, err
	}
	if err := c.await(c.useAndRelease(h1, c.Cfg.Hold), time.Minute, "c1 section"); err != nil {
		return heal, err
	}
	return heal, c.await(held, 2*c.Cfg.Validity, "c0 section")
}

func doubleGrantAfterRestart() Scenario {
	return Scenario{
		Name:   "double-grant-restart",
		Faults: "W of 3 nodes restart empty inside the validity while a write lock is held; grace period turned off (negative control)",
		Expect: KnownLockViolation,
		Explain: "more than n−W of the holder's nodes forget its grant, so a second writer gathers a quorum " +
			"before the holder's next refresh finds the lock lost",
		Setup: func(cfg *Config) { cfg.QuietPeriod = locker.NoQuietPeriod },
		Drive: doubleGrant,
	}
}

func doubleGrantQuietPeriod() Scenario {
	return Scenario{
		Name:   "double-grant-quiet-period",
		Faults: "as double-grant-restart, with the nodes' default grace period (one Validity) from their first start on",
		Expect: Safe,
		Explain: "restarted nodes grant nothing new during their grace; the holder's refresher reclaims its grant there, " +
			"so it keeps the lock, and the second writer waits until it is released and the grace is over",
		Setup: func(cfg *Config) { cfg.QuietPeriod = cfg.withDefaults().Validity },
		Drive: doubleGrant,
	}
}

// driftEdge is the drift of driftWithinMargin: close to the bound
// (README.md, Guarantees), which ±1% reaches.
const driftEdge = 0.009

// driftSetup fixes the clock rates of the drift scenarios: the holder c0's
// clock runs at holder, every node's at nodes, the other clients' are drawn
// within drift.
func driftSetup(holder, nodes, drift float64) func(*Config) {
	return func(cfg *Config) {
		cfg.ClockDrift = drift
		cfg.ClientRates = []float64{holder}
		cfg.NodeRates = nil
		for range cfg.withDefaults().Nodes {
			cfg.NodeRates = append(cfg.NodeRates, nodes)
		}
		cfg.ReadFraction = -1
	}
}

func driftWithinMargin() Scenario {
	return Scenario{
		Name: "drift-within-margin",
		Faults: "clocks at the edge of the bound: the write holder c0's runs 0.9% slow, every node's 0.9% fast; c0 is cut off " +
			"from every node once granted and writes a hundredth of the validity before its own deadline; c1 asks once every " +
			"node's clock has run a validity since the grant, c2 from the cut on",
		Expect: Safe,
		Explain: "c0's refresher gives its lock up Validity/50 before the nodes expire it on their clocks, and 0.991/1.009 of " +
			"the validity is within that margin: c0's lock context is cancelled (at 9.889s of virtual time after its request) " +
			"before any node expires its grant (9.911s after the grant), so c0's write comes before, and its belief ends " +
			"before, the next grant",
		SimulatedOnly: true,
		Setup:         driftSetup(1-driftEdge, 1+driftEdge, driftEdge),
		Drive:         driftedHolder,
	}
}

func driftPastMargin() Scenario {
	return Scenario{
		Name:   "drift-past-margin",
		Faults: "as drift-within-margin, with c0's clock 5% slow and every other clock at rate 1",
		Expect: KnownLockViolation,
		Explain: "past the documented bound (README.md, Guarantees): c0's deadline, Validity less 2% on its clock, is 1.0316 " +
			"validities of virtual time, and the nodes expire its grant after one: c1 is granted while c0 still holds its lock " +
			"(porcupine flags it), and c0's check before its late write passes, so its write undoes c1's (the register flags it)",
		SimulatedOnly: true,
		Setup:         driftSetup(0.95, 1, 0),
		Drive: func(c *Cluster) (time.Duration, error) {
			heal, err := driftedHolder(c)
			if err != nil {
				return heal, err
			}
			if rep := CheckRegister(c.Register.Sections(), c.Register.Values()); rep.LostUpdates == 0 || rep.Overlaps == 0 {
				return heal, fmt.Errorf("the register did not catch c0's late write: %+v", rep)
			}
			return heal, nil
		},
	}
}

// driftedHolder is the Drive of the drift scenarios. c0 takes the write
// lock; all its links are cut at once, so that no refresh reaches a node;
// it works until a hundredth of the validity before its own deadline
// (Validity − Validity/50 after its request, on its clock), checks its lock
// context and writes. c2 asks for the lock from the cut on, with its
// back-off; c1 asks once every node's clock has run a validity since c0 was
// granted, which is when the nodes may first grant it all, and 10ms later
// on the virtual clock. c1 and c2 each write in a section of Hold. It fails
// if c0 did not write (its context was cancelled before its check: the
// scenario then tests nothing).
func driftedHolder(c *Cluster) (time.Duration, error) {
	cfg := c.Cfg
	c0 := c.Client(0)
	request := c0.Clock().Now() // the lock's validity counts from a request sent after it
	h0, err := c.acquire(0, true)
	if err != nil {
		return 0, err
	}
	granted := c.Clock.Now()
	for k := range cfg.Nodes {
		c.Net.Cut(0, k, Both)
	}
	heal := c.Now()
	write := request.Add(cfg.Validity - cfg.Validity/50 - cfg.Validity/100)
	held := c.spawn(func() {
		c0.Section(h0, write.Sub(c0.Clock().Now()))
		h0.Release()
	})
	ask := func(i int) <-chan struct{} {
		return c.spawn(func() {
			if h, err := c.Client(i).Acquire(resource, true); err == nil {
				c.Client(i).Section(h, cfg.Hold)
				h.Release()
			}
		})
	}
	asked2 := ask(2)
	slowest := c.NodeRate(0)
	for k := range cfg.Nodes {
		slowest = min(slowest, c.NodeRate(k))
	}
	expired := granted.Add(time.Duration(float64(cfg.Validity)/slowest) + 10*time.Millisecond)
	c.Advance(expired.Sub(c.Clock.Now()))
	asked1 := ask(1)
	for i, done := range []<-chan struct{}{held, asked1, asked2} {
		if err := c.await(done, c.acquireLimit()+time.Minute, fmt.Sprintf("c%d section", i)); err != nil {
			return heal, err
		}
	}
	c.Net.Heal()
	for _, sec := range c.Register.Sections() {
		if sec.Client == 0 && !sec.Wrote {
			return heal, fmt.Errorf("c0 did not write: its lock context was cancelled before its check at %v of its clock", write)
		}
	}
	return heal, nil
}

// nodeStopsPlan is the node-stops scenario's schedule: at At (in quarters
// of a validity), the nodes Nodes stop for For (in quarters).
var nodeStopsPlan = []struct {
	At, For int
	Nodes   []int
}{
	{1, 2, []int{0}},        // shorter than the validity
	{2, 6, []int{1}},        // longer: the grants it holds expire while it is stopped
	{4, 1, []int{2}},        // two of five stopped at once: a quorum still answers
	{10, 2, []int{0, 1, 2}}, // three of five: no quorum
	{14, 8, []int{3, 4}},    // two, longer than the validity ...
	{15, 1, []int{0}},       // ... and a third for a while
}

func nodeStops() Scenario {
	return Scenario{
		Name: "node-stops",
		Faults: "5 nodes; 3 clients contend for one lock, holding it from Validity/4 to Validity/2; nodes stop " +
			"(stop-the-world: no answer, their clocks run on) one, two or three at a time, for Validity/4 to 2×Validity",
		Expect: Safe,
		Explain: "a stopped node is one that does not answer: requests wait for it or their callers give up, and grants it " +
			"holds expire on its clock meanwhile, so that when it continues it is an up-to-date node, not an amnesic one; " +
			"holders keep a quorum of refreshes or lose their lock at their deadline, and no two are granted at once",
		SimulatedOnly: true,
		Setup: func(cfg *Config) {
			atLeast(&cfg.Nodes, 5)
			if cfg.Validity == 0 {
				cfg.Validity = 2 * time.Second
			}
			if cfg.Hold == 0 {
				cfg.Hold = cfg.Validity / 2
			}
		},
		Drive: func(c *Cluster) (time.Duration, error) {
			q := c.Cfg.Validity / 4
			var faults []Fault
			heal := time.Duration(0)
			for _, st := range nodeStopsPlan {
				for _, k := range st.Nodes {
					faults = append(faults,
						Fault{At: time.Duration(st.At) * q, Name: fmt.Sprintf("stop n%d", k), Do: func(c *Cluster) { c.StopNode(k) }},
						Fault{At: time.Duration(st.At+st.For) * q, Name: fmt.Sprintf("continue n%d", k), Do: func(c *Cluster) { c.ContinueNode(k) }})
				}
				heal = max(heal, time.Duration(st.At+st.For+1)*q)
			}
			faults = append(faults, Fault{At: heal, Name: "heal", Do: func(*Cluster) {}})
			slices.SortStableFunc(faults, func(a, b Fault) int { return cmpInt64(int64(a.At), int64(b.At)) })
			if !c.RunWorkload(faults) {
				return heal, fmt.Errorf("workload did not finish")
			}
			return heal, nil
		},
	}
}

// RandomClocks returns the random scenario (seeded faults within b) with
// every process on a clock of its own within ±0.9%, and stops of clients
// and nodes drawn within b (8 if b draws none).
func RandomClocks(b Budget) Scenario {
	s := Random(b)
	s.Name = "random-clocks"
	s.Faults = "as random, with every clock's rate drawn within ±0.9% and 8 stops (stop-the-world) of a client " +
		"(up to Validity/2) or a node (up to 2×Validity)"
	s.Explain = "within the clock-rate bound every holder's deadline comes before the nodes expire its grant; within the " +
		"stop budget no holder is stopped past its deadline, and a stopped node is one that does not answer"
	s.SimulatedOnly = true
	s.budget = func(_ Config, b Budget) Budget {
		if b.Stops == 0 {
			b.Stops = 8
		}
		return b
	}
	random := s.Setup
	s.Setup = func(cfg *Config) {
		random(cfg)
		if cfg.ClockDrift == 0 {
			cfg.ClockDrift = driftEdge
		}
	}
	s.Drive = func(c *Cluster) (time.Duration, error) {
		faults, heal := RandomFaults(c.Cfg, s.budget(c.Cfg, b))
		if !c.RunWorkload(faults) {
			return heal, fmt.Errorf("workload did not finish")
		}
		return heal, nil
	}
	return s
}

// Budget bounds the faults of a random schedule. The zero value of each
// field is a documented default.
type Budget struct {
	// Faults is how many faults the schedule draws. If zero, 6.
	Faults int
	// Window is how long faults last; everything heals at Window. If zero,
	// 3×Validity.
	Window time.Duration
	// MaxPause bounds a client pause (Fabric.PauseClient: traffic and
	// workload, not timers). If zero, 2×Validity: past expiry, which a
	// paused client survives because its refresher still cancels its lock
	// context at the deadline.
	MaxPause time.Duration
	// Amnesia is how many nodes may lose their table (crash and restart)
	// within any span of 2×Validity. If zero, n−W, the most the design
	// tolerates; more is the known double grant.
	Amnesia int
	// ClientCrashes is how many clients may crash. If zero, Clients−1;
	// negative, none.
	ClientCrashes int

	// Stops is how many stop-the-world pauses the schedule draws, after and
	// apart from the Faults (from a source of their own, so that the other
	// faults of a seed stay what they are without stops): each stops a
	// client (Cluster.StopClient) or a node (Cluster.StopNode), with even
	// odds. If zero, none. Stops need the simulated tier.
	Stops int
	// MaxClientStop bounds a client's stop. If zero, Validity/2, which keeps
	// every holder within what README.md (Guarantees) says a stopped holder
	// survives; past it, it is the paused holder that needs fencing
	// (stopped-past-expiry). The schedule keeps every client's stops a
	// Validity apart from each other and from its pauses, so that one
	// lock's hold meets at most one of them. In the register workload a
	// holder runs at most CallTimeout (its acquisition's attempt), two more
	// in a fenced run (its token's rounds), and Hold (its section) between
	// the request its validity counts from and its write: Validity/2 +
	// 3×CallTimeout + Hold, 1.65s at the random scenario's Validity 2s, is
	// well within its deadline, Validity − Validity/50 on its clock, 1.94s
	// of virtual time for a clock 1% fast. Holds that last longer (leases,
	// barrier memberships, the deadlock workload's first locks) live by
	// their refreshes, which faults can stop, and a stop then may outlast
	// their deadline: random-clocks runs the register workload only.
	MaxClientStop time.Duration
	// MaxNodeStop bounds a node's stop. If zero, 2×Validity: a stop may
	// outlast the grants the node holds, which expire meanwhile on its
	// clock. Nodes may be stopped any number at a time and for any time: a
	// stopped node is one that does not answer.
	MaxNodeStop time.Duration
}

// Random returns the scenario of seeded random faults within b, over the
// random workload. Every fault kind may appear: link cuts one or both ways,
// message loss, delay spikes, node isolation, node crash and restart, client
// pause and crash (at most Clients−1 clients crash).
func Random(b Budget) Scenario {
	return Scenario{
		Name:   "random",
		Faults: "seeded random cuts, drops, delays, isolation, node crash/restart, client pause/crash within the budget",
		Expect: Safe,
		Explain: "within the budget (at most n−W nodes lose their table per 2×Validity) every holder keeps a quorum or is told " +
			"it lost its lock before another is granted; careful clients check their lock context before each write",
		Setup: func(cfg *Config) {
			if cfg.Validity == 0 {
				cfg.Validity = 2 * time.Second
			}
			atLeast(&cfg.Resources, 2)
		},
		Drive: func(c *Cluster) (time.Duration, error) {
			faults, heal := RandomFaults(c.Cfg, b)
			if !c.RunWorkload(faults) {
				return heal, fmt.Errorf("workload did not finish")
			}
			return heal, nil
		},
	}
}

// semaphoreSetup makes cfg a semaphore workload: at least 4 clients sharing
// half as many permits.
func semaphoreSetup(cfg *Config) {
	atLeast(&cfg.Clients, 4)
	if cfg.Permits == 0 {
		cfg.Permits = cfg.Clients / 2
	}
}

func semaphoreScenario() Scenario {
	return Scenario{
		Name:   "semaphore",
		Faults: "none: 4 clients take permits of a dsync.Semaphore of 2, hold them, release them",
		Expect: Safe,
		Explain: "each permit is a quorum write lock: at most 2 holders at any instant, never two on one permit; " +
			"waiting clients get a permit within the liveness bound",
		Setup: semaphoreSetup,
		Drive: func(c *Cluster) (time.Duration, error) {
			if !c.RunWorkload(nil) {
				return 0, fmt.Errorf("workload did not finish")
			}
			return 0, nil
		},
	}
}

// SemaphoreRandom returns the random scenario (seeded faults within b) over
// the semaphore workload.
func SemaphoreRandom(b Budget) Scenario {
	s := Random(b)
	s.Name = "semaphore-random"
	s.Faults = "as random, over the semaphore workload (4 clients, 2 permits)"
	s.Explain = "each permit is a write lock that survives what the lock survives: a holder that loses its permit " +
		"sees its permit context cancelled before another is granted it, so at most 2 permits are in use at once"
	setup := s.Setup
	s.Setup = func(cfg *Config) {
		setup(cfg)
		semaphoreSetup(cfg)
	}
	return s
}

// noFaults is the Drive of the no-fault scenarios: the workload, then the
// liveness probe.
func noFaults(c *Cluster) (time.Duration, error) {
	if !c.RunWorkload(nil) {
		return 0, fmt.Errorf("workload did not finish")
	}
	return 0, nil
}

// randomOver returns the random scenario (seeded faults within b) over the
// workload that setup makes.
func randomOver(b Budget, name, faults, explain string, setup func(*Config)) Scenario {
	s := Random(b)
	s.Name, s.Faults, s.Explain = name, faults, explain
	random := s.Setup
	s.Setup = func(cfg *Config) {
		random(cfg)
		setup(cfg)
	}
	return s
}

func leaseScenario() Scenario {
	return Scenario{
		Name: "lease",
		Faults: "none: 3 clients take dsync.Lease write and read leases bounded by MaxHold or MaxRenewals, and write " +
			"the register in sections, each after Valid or Verify said the lease held",
		Expect: Safe,
		Explain: "a lease is a DRWMutex lock that releases itself at its deadline, after cancelling its context: " +
			"a holder that checks Valid or Verify before each write neither overlaps the next holder nor writes past the deadline",
		Setup: leaseSetup,
		Drive: noFaults,
	}
}

func leaseVerifyPastDeadline() Scenario {
	return Scenario{
		Name: "lease-verify-past-deadline",
		Faults: "c0's links are slow (80ms each way); c0 holds a lease with MaxHold 1s and calls Verify 50ms before " +
			"the deadline, then writes; c1 asks for the lock 90ms after the deadline",
		Expect: Safe,
		Explain: "the deadline passes while Verify waits for the nodes' answers, and the nodes, which answered before the " +
			"lease's release reached them, confirm it; Verify asks Valid again once the answers are in and fails with " +
			"ErrLeaseExpired, so c0 does not write. (Before that fix, which this scenario led to, Verify returned nil 110ms " +
			"past the deadline, and c0's write overlapped c1's and undid it in every run.)",
		Setup: leaseSetup,
		Drive: func(c *Cluster) (time.Duration, error) {
			for k := range c.Cfg.Nodes {
				c.Net.SetDelay(0, k, Both, 80*time.Millisecond, 0)
			}
			maxHold := time.Second
			var lh0 *LeaseHold
			var err error
			if werr := c.await(c.spawn(func() {
				lh0, err = c.Client(0).AcquireLease(resource, dsync.LeaseOptions{MaxHold: maxHold})
			}), time.Minute, "c0 lease"); werr != nil {
				return 0, werr
			}
			if err != nil {
				return 0, fmt.Errorf("c0 lease: %w", err)
			}
			deadline, _ := lh0.L.Deadline() // on c0's clock
			clk0 := c.Client(0).Clock()
			done0 := c.spawn(func() {
				lh0.Section(deadline.Sub(clk0.Now())-50*time.Millisecond, CheckVerifyAlone)
				lh0.Release()
			})
			done1 := c.spawn(func() {
				// c0's Verify reaches the nodes 30ms after the deadline,
				// its release 80ms after, the nodes' answers reach c0 110ms
				// after. The margins (50ms and more) are for the HTTP tier.
				clock.Sleep(context.Background(), clk0, deadline.Add(90*time.Millisecond).Sub(clk0.Now()))
				if lh1, err := c.Client(1).AcquireLease(resource, dsync.LeaseOptions{}); err == nil {
					lh1.Section(10*time.Millisecond, CheckValid)
					lh1.Release()
				}
			})
			if err := c.await(done0, time.Minute, "c0 section"); err != nil {
				return 0, err
			}
			heal := c.Now()
			c.Net.Heal()
			return heal, c.await(done1, time.Minute, "c1 section")
		},
	}
}

// LeaseRandom returns the random scenario over the lease workload.
func LeaseRandom(b Budget) Scenario {
	return randomOver(b, "lease-random", "as random, over the lease workload (MaxHold, MaxRenewals, Valid and Verify)",
		"a lease survives what its lock survives; a paused holder checks Valid or Verify after the pause, before it writes",
		leaseSetup)
}

// hierarchySetup makes cfg a hierarchy workload.
func hierarchySetup(cfg *Config) { cfg.Primitive = PrimitiveHierarchy }

func hierarchyScenario() Scenario {
	return Scenario{
		Name: "hierarchy",
		Faults: "none: 3 clients take random levels of global/bucket/object through one dsync.Hierarchy, read or write, " +
			"in one call or level by level",
		Expect: Safe,
		Explain: "each level is the DRWMutex lock it is (porcupine checks each resource); levels are taken in order, " +
			"so no deadlock: every waiting client is served within the liveness bound",
		Setup: hierarchySetup,
		Drive: noFaults,
	}
}

// HierarchyRandom returns the random scenario over the hierarchy workload.
func HierarchyRandom(b Budget) Scenario {
	return randomOver(b, "hierarchy-random", "as random, over the hierarchy workload",
		"each level survives what its lock survives; a loss of any level cancels the Held, whose holder then stops writing every level",
		hierarchySetup)
}

// modesSetup makes cfg a hierarchy workload that draws the modes of
// multi-granularity locking (Config.Modes).
func modesSetup(cfg *Config) {
	cfg.Primitive = PrimitiveHierarchy
	cfg.Modes = true
}

func modesScenario() Scenario {
	return Scenario{
		Name: "mgl",
		Faults: "none: 3 clients take global, bucket and object locks in the modes of multi-granularity locking " +
			"(IS, IX, S, SIX, X) through one dsync.Hierarchy, which takes the bucket's intention lock itself when it is left out",
		Expect: Safe,
		Explain: "every lock, intention locks included, is checked against Gray's matrix on its resource (porcupine); " +
			"a bucket's S, SIX or X covers its objects' registers, which writers of objects under IX must not overlap",
		Setup: modesSetup,
		Drive: noFaults,
	}
}

// ModesRandom returns the random scenario over the hierarchy workload with
// the modes of multi-granularity locking.
func ModesRandom(b Budget) Scenario {
	return randomOver(b, "mgl-random", "as random, over the hierarchy workload in the modes of multi-granularity locking",
		"each lock survives what its lock survives, in its mode: IS and S on a read quorum meet every IX, SIX and X on a write quorum",
		modesSetup)
}

// barrierSetup makes cfg a barrier workload.
func barrierSetup(cfg *Config) { cfg.Primitive = PrimitiveBarrier }

// spanWindow makes a workload of a fixed number of steps (the barrier's
// generations, the cond producer's items) think a quarter of the validity
// before each, so that its 20 to 40 steps span the random scenario's fault
// window (3×Validity) instead of ending before the first fault.
func spanWindow(cfg *Config) {
	if cfg.Think == 0 {
		cfg.Think = cfg.withDefaults().Validity / 4
	}
}

func barrierScenario() Scenario {
	return Scenario{
		Name:   "barrier",
		Faults: "none: 3 clients are the parties of one dsync.Barrier and pass 20 generations",
		Expect: Safe,
		Explain: "no party passes generation g before every party called Wait for g; every party passes every generation, " +
			"each Wait within the liveness bound",
		Setup: barrierSetup,
		Drive: func(c *Cluster) (time.Duration, error) {
			if !c.RunBarrier(nil) {
				return 0, fmt.Errorf("parties did not finish")
			}
			return 0, nil
		},
	}
}

// barrierArrivalLost is barrier-arrival-lost.
func barrierArrivalLost() Scenario {
	return Scenario{
		Name: "barrier-arrival-lost",
		Faults: "3 parties pass generation 0; c2 arrives at generation 1 while n2 is isolated (its arrival is granted by " +
			"n0 and n1 only); n2 heals; n0 restarts empty; c0 and c1 arrive a validity later. Never more than one node " +
			"down or cut off at a time",
		Expect: Safe,
		Explain: "after n0's restart only n1 holds c2's arrival: its refresher finds it lost (2 of 3 nodes say not held) " +
			"and lets it go. Barrier.Wait takes a lost arrival again, so the others see c2 arrive and every party passes " +
			"generation 1. (Before that fix, which this scenario led to, c2 kept waiting without arriving again and " +
			"every Wait of generation 1 failed at its timeout, in every run.)",
		Setup: func(cfg *Config) {
			barrierSetup(cfg)
			cfg.Ops = 2 // generations
			if cfg.Validity == 0 {
				cfg.Validity = 2 * time.Second
			}
		},
		Drive: func(c *Cluster) (time.Duration, error) {
			bs := make([]*dsync.Barrier, c.Cfg.Clients)
			for i := range bs {
				bs[i] = dsync.NewBarrier(c.Client(i).DS, barrierName, c.Cfg.Clients)
			}
			wait := func(i int) <-chan struct{} { return c.spawn(func() { c.Client(i).barrierWait(bs[i]) }) }
			// The parties join one after another, so that no two try the
			// same member slot at once: every slot is granted by all 3
			// nodes (two parties colliding on a slot can leave it granted
			// by 2, and then the restart below takes a membership too).
			var gen0 []<-chan struct{}
			for i := range bs {
				gen0 = append(gen0, wait(i))
				c.Advance(100 * time.Millisecond)
			}
			for i, done := range gen0 {
				if err := c.await(done, time.Minute, fmt.Sprintf("c%d generation 0", i)); err != nil {
					return 0, err
				}
			}
			last := c.Cfg.Clients - 1
			c.Net.Isolate(last)
			waits := []<-chan struct{}{wait(last)}
			c.Advance(time.Second)
			c.Net.Heal()
			c.Advance(time.Second)
			c.Net.CrashNode(0)
			c.Net.RestartNode(0)
			heal := c.Now()
			c.Advance(c.Cfg.Validity + time.Second)
			for i := range last {
				waits = append(waits, wait(i))
			}
			for _, done := range waits {
				if err := c.await(done, c.Cfg.LockTimeout+time.Minute, "generation 1"); err != nil {
					return heal, err
				}
			}
			closed := c.spawn(func() {
				for _, b := range bs {
					b.Close(context.Background())
				}
			})
			return heal, c.await(closed, time.Minute, "close")
		},
	}
}

// BarrierRandom returns the random scenario over the barrier workload.
func BarrierRandom(b Budget) Scenario {
	s := randomOver(b, "barrier-random", "as random, over the barrier workload (3 parties, 20 generations)",
		"never a pass before every party arrived. A crashed party cannot arrive, and a party paused past the validity "+
			"loses its membership and stops (Wait fails with ErrLockLost): the others' Waits then fail, never pass. "+
			"With no party out, every party passes every generation, each Wait within the liveness bound after the heal",
		func(cfg *Config) { barrierSetup(cfg); spanWindow(cfg) })
	s.Drive = barrierRandomDrive(b)
	return s
}

// barrierRandomDrive runs the barrier workload under the random faults of
// the run's seed within b.
func barrierRandomDrive(b Budget) func(c *Cluster) (time.Duration, error) {
	return func(c *Cluster) (time.Duration, error) {
		faults, heal := RandomFaults(c.Cfg, b)
		if !c.RunBarrier(faults) {
			return heal, fmt.Errorf("parties did not finish")
		}
		return heal, nil
	}
}

// BarrierRandomLive returns the random scenario over the barrier workload
// with a budget that keeps every party in: no client crashes, pauses of at
// most Validity/2. What liveness it checks is then checked in most runs.
func BarrierRandomLive(b Budget) Scenario {
	s := BarrierRandom(b)
	s.Name = "barrier-random-live"
	s.Faults = "as barrier-random, without client crashes and with pauses of at most Validity/2"
	s.budget = func(cfg Config, b Budget) Budget {
		b.ClientCrashes, b.MaxPause = -1, cfg.withDefaults().Validity/2
		return b
	}
	s.Drive = func(c *Cluster) (time.Duration, error) { return barrierRandomDrive(s.budget(c.Cfg, b))(c) }
	return s
}

// condSetup makes cfg a cond workload.
func condSetup(cfg *Config) { cfg.Primitive = PrimitiveCond }

func condScenario() Scenario {
	return Scenario{
		Name: "cond",
		Faults: "none: c0 produces 40 items under a dsync.Mutex, signalling a dsync.Cond (one time in four broadcasting); " +
			"2 consumers take 20 each, waiting on the Cond while the counter is zero",
		Expect: Safe,
		Explain: "a waiter registers before it unlocks, so a Signal after the increment finds it: no consumer waits " +
			"beyond the liveness bound while items are ready, and consumers that re-check under the mutex never take from empty",
		Setup: condSetup,
		Drive: func(c *Cluster) (time.Duration, error) {
			if !c.RunCond(nil) {
				return 0, fmt.Errorf("producer and consumers did not finish")
			}
			return 0, nil
		},
	}
}

// CondRandom returns the random scenario over the cond workload.
func CondRandom(b Budget) Scenario {
	s := randomOver(b, "cond-random", "as random, over the cond workload (1 producer, 2 consumers)",
		"the mutex survives what the lock survives; Signal fails (and is retried) rather than miss a waiter when too few "+
			"nodes answer; once faults stop no consumer waits beyond the liveness bound while items are ready",
		func(cfg *Config) { condSetup(cfg); spanWindow(cfg) })
	s.Drive = func(c *Cluster) (time.Duration, error) {
		faults, heal := RandomFaults(c.Cfg, b)
		if !c.RunCond(faults) {
			return heal, fmt.Errorf("producer and consumers did not finish")
		}
		return heal, nil
	}
	return s
}

// RandomFaults draws the fault schedule of cfg.Seed within b: a pure
// function of its arguments. The last fault, at the returned heal time,
// heals every link, restarts every node that is down and resumes every client.
func RandomFaults(cfg Config, b Budget) ([]Fault, time.Duration) {
	cfg = cfg.withDefaults()
	n := cfg.Nodes
	if b.Faults == 0 {
		b.Faults = 6
	}
	if b.Window == 0 {
		b.Window = 3 * cfg.Validity
	}
	if b.MaxPause == 0 {
		b.MaxPause = 2 * cfg.Validity
	}
	if b.Amnesia == 0 {
		b.Amnesia = n - (n/2 + 1)
	}
	if b.ClientCrashes == 0 {
		b.ClientCrashes = cfg.Clients - 1
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xfa17))
	var faults []Fault
	add := func(at time.Duration, name string, do func(*Cluster)) {
		faults = append(faults, Fault{At: at, Name: name, Do: do})
	}
	type span struct{ from, to time.Duration }
	var amnesic []span                    // each restart makes its node amnesic from crash to restart+2×Validity
	frozen := make([][]span, cfg.Clients) // each client's pauses and stops
	crashes := 0
	for range b.Faults {
		at := time.Duration(rng.Int64N(int64(b.Window)))
		rest := b.Window - at
		c, k := rng.IntN(cfg.Clients), rng.IntN(n)
		dirs := []Direction{ToNode, FromNode, Both}
		switch kind := rng.IntN(8); kind {
		case 0:
			d := dirs[rng.IntN(3)]
			add(at, fmt.Sprintf("cut c%d-n%d %d", c, k, d), func(cl *Cluster) { cl.Net.Cut(c, k, d) })
		case 1:
			p := 0.1 + 0.4*rng.Float64()
			add(at, fmt.Sprintf("drop n%d %.2f", k, p), func(cl *Cluster) { cl.Net.SetDrop(-1, k, Both, p) })
		case 2:
			d := time.Duration(rng.Int64N(int64(2 * cfg.CallTimeout)))
			add(at, fmt.Sprintf("delay n%d %v", k, d), func(cl *Cluster) { cl.Net.SetDelay(-1, k, Both, d, cfg.Jitter) })
		case 3:
			add(at, fmt.Sprintf("isolate n%d", k), func(cl *Cluster) { cl.Net.Isolate(k) })
		case 4:
			down := time.Duration(rng.Int64N(int64(rest) + 1))
			s := span{at, at + down + 2*cfg.Validity}
			overlap := 0
			for _, o := range amnesic {
				if o.from < s.to && s.from < o.to {
					overlap++
				}
			}
			if overlap >= b.Amnesia {
				continue // over the budget: the known double grant
			}
			amnesic = append(amnesic, s)
			add(at, fmt.Sprintf("crash n%d", k), func(cl *Cluster) { cl.Net.CrashNode(k) })
			add(at+down, fmt.Sprintf("restart n%d", k), func(cl *Cluster) {
				if !cl.Net.NodeUp(k) {
					cl.Net.RestartNode(k)
				}
			})
		case 5, 6:
			d := time.Duration(rng.Int64N(int64(min(b.MaxPause, rest)) + 1))
			frozen[c] = append(frozen[c], span{at, at + d})
			add(at, fmt.Sprintf("pause c%d %v", c, d), func(cl *Cluster) { cl.Net.PauseClient(c) })
			add(at+d, fmt.Sprintf("resume c%d", c), func(cl *Cluster) { cl.Net.ResumeClient(c) })
		case 7:
			if crashes >= b.ClientCrashes {
				continue
			}
			crashes++
			add(at, fmt.Sprintf("crash c%d", c), func(cl *Cluster) {
				if !cl.Client(c).Crashed() {
					cl.CrashClient(c)
				}
			})
		}
	}
	if b.Stops > 0 {
		if b.MaxClientStop == 0 {
			b.MaxClientStop = cfg.Validity / 2
		}
		if b.MaxNodeStop == 0 {
			b.MaxNodeStop = 2 * cfg.Validity
		}
		srng := rand.New(rand.NewPCG(cfg.Seed, 0x5709))
		for range b.Stops {
			at := time.Duration(srng.Int64N(int64(b.Window)))
			rest := b.Window - at
			if srng.IntN(2) == 0 {
				k := srng.IntN(n)
				d := time.Duration(srng.Int64N(int64(min(b.MaxNodeStop, rest)) + 1))
				add(at, fmt.Sprintf("stop n%d %v", k, d), func(cl *Cluster) { cl.StopNode(k) })
				add(at+d, fmt.Sprintf("continue n%d", k), func(cl *Cluster) { cl.ContinueNode(k) })
				continue
			}
			c := srng.IntN(cfg.Clients)
			d := time.Duration(srng.Int64N(int64(min(b.MaxClientStop, rest)) + 1))
			s := span{at, at + d}
			if slices.ContainsFunc(frozen[c], func(o span) bool { return o.from < s.to+cfg.Validity && s.from < o.to+cfg.Validity }) {
				continue // within a Validity of another pause or stop of c: one hold could meet both
			}
			frozen[c] = append(frozen[c], s)
			add(at, fmt.Sprintf("stop c%d %v", c, d), func(cl *Cluster) { cl.StopClient(c) })
			add(at+d, fmt.Sprintf("continue c%d", c), func(cl *Cluster) { cl.ContinueClient(c) })
		}
	}
	add(b.Window, "heal", func(cl *Cluster) {
		cl.Net.Heal()
		for k := range n {
			if !cl.Net.NodeUp(k) {
				cl.Net.RestartNode(k)
			}
			if cl.NodeStopped(k) {
				cl.ContinueNode(k)
			}
		}
		for i := range cfg.Clients {
			cl.Net.ResumeClient(i)
			if cl.ClientStopped(i) {
				cl.ContinueClient(i)
			}
		}
	})
	// A stable sort keeps a restart after its crash when both fall at once.
	slices.SortStableFunc(faults, func(a, b Fault) int { return cmpInt64(int64(a.At), int64(b.At)) })
	return faults, b.Window
}

func deadlockScenario() Scenario {
	return Scenario{
		Name: "deadlock",
		Faults: "none: 3 clients, each a holder (dsync.WithHolder), take 2 or 3 of 3 write locks one at a time in orders " +
			"that close cycles (AB/BA pairs, a ring of 3), hold them briefly, release them; a victim of ErrDeadlock " +
			"releases what it holds and retries",
		Expect: Safe,
		Explain: "the nodes record who waits for whom; a refused waiter reads their edges and, if it is the largest holder " +
			"of a cycle, fails with ErrDeadlock and releases: no cycle lasts, every waiting client is served within the " +
			"liveness bound, and every ErrDeadlock names a cycle of which its client is the largest holder",
		Setup: deadlockSetup(PrimitiveDeadlock),
		Drive: noFaults,
	}
}

func deadlockChain() Scenario {
	return Scenario{
		Name:   "deadlock-chain",
		Faults: "none: the deadlock workload with every client taking its resources in ascending order",
		Expect: Safe,
		Explain: "no cycle can close, so no acquisition may fail with ErrDeadlock (one would be a false positive); " +
			"waiting clients are served within the liveness bound",
		Setup: deadlockSetup(PrimitiveDeadlockChain),
		Drive: noFaults,
	}
}

// DeadlockRandom returns the random scenario over the deadlock workload.
func DeadlockRandom(b Budget) Scenario {
	return randomOver(b, "deadlock-random", "as random, over the deadlock workload (cycles across clients)",
		"faults may hide edges (a cycle is then found at a later retry, or resolved by Options.Timeout) but never "+
			"make a lock unsafe; once faults stop every cycle is found and broken, so every waiting client is served "+
			"within the liveness bound",
		deadlockSetup(PrimitiveDeadlock))
}

// adaptiveRounds is how many faults the adaptive scenario makes.
const adaptiveRounds = 3

func adaptiveScenario() Scenario {
	return Scenario{
		Name: "adaptive",
		Faults: "adaptive timeouts; 3 rounds: the write holder c0 is paused (rounds 1 and 3) or cut off from every node " +
			"(round 2) for 2×Validity while c1 and c2 keep asking; then the heal, and every client locks a resource of its own",
		Expect: Safe,
		Explain: "c1 and c2 time out while c0's grant lives on the nodes (until it expires, within a validity: 1.5 to 2 s, " +
			"ten or more of their timeouts once these have come down to Min), more than a " +
			"third of a window, so their timeouts grow during each fault, by a quarter per window; once faults stop, acquisitions " +
			"are fast, and after SettleWindows windows without a timeout every timeout is back at max(Min, 2×longest); the lock " +
			"stays safe and waiting clients are served within the liveness bound",
		Setup: func(cfg *Config) {
			adaptiveSetup(cfg)
			cfg.ReadFraction = -1 // writers only: every asker waits for the holder
		},
		Drive: adaptiveDrive,
	}
}

// adaptiveDrive runs the adaptive scenario: c1, c2, ... run the workload on
// its one resource while c0 takes its lock adaptiveRounds times and, holding
// it, is paused or cut off past the validity; then the probe and Settle.
func adaptiveDrive(c *Cluster) (time.Duration, error) {
	var grow []int
	for i := 1; i < c.Cfg.Clients; i++ {
		grow = append(grow, i)
	}
	stop := make(chan struct{})
	var askers []<-chan struct{}
	for _, i := range grow {
		cl := c.Client(i)
		askers = append(askers, c.spawn(func() { cl.Workload(stop) }))
	}
	out := 2 * c.Cfg.Validity
	var faults []Span
	defer func() { c.adaptiveWant = AdaptiveWant{Grow: grow, During: faults, Settle: true} }()
	for round := range adaptiveRounds {
		c.Advance(out) // the askers alone: their timeouts settle to the contention

		var h0 *Hold
		var err error
		asked := c.spawn(func() {
			for range 100 { // c0 asks as the others do: its adaptive timeout may pass first
				if h0, err = c.Client(0).Acquire(resourceName(0), true); !errors.Is(err, dsync.ErrTimeout) {
					return
				}
			}
		})
		if werr := c.await(asked, time.Hour, "c0 acquire"); werr != nil {
			return 0, werr
		}
		if err != nil {
			return 0, fmt.Errorf("round %d: c0 acquire: %w", round, err)
		}
		from := c.Clock.Now()
		var held <-chan struct{}
		if round%2 == 0 {
			held = c.useAndRelease(h0, c.Cfg.Hold)
			c.Net.PauseClient(0)
		} else {
			for k := range c.Cfg.Nodes {
				c.Net.Cut(0, k, Both)
			}
			held = c.useAndRelease(h0, out)
		}
		c.Advance(out)
		faults = append(faults, Span{from, c.Clock.Now()})
		c.Net.Heal()
		c.Net.ResumeClient(0)
		if err := c.await(held, time.Minute, fmt.Sprintf("round %d: c0 section", round)); err != nil {
			return c.Now(), err
		}
		if h0.Ctx.Err() == nil {
			return c.Now(), fmt.Errorf("round %d: c0's lock context still live after %v cut off or paused", round, out)
		}
	}
	heal := c.Now()
	close(stop)
	for _, done := range askers {
		if err := c.await(done, c.acquireLimit()+time.Minute, "askers"); err != nil {
			return heal, err
		}
	}
	if !c.Probe() {
		return heal, fmt.Errorf("liveness probe did not finish")
	}
	if !c.Settle() {
		return heal, fmt.Errorf("settle workload did not finish")
	}
	return heal, nil
}

// AdaptiveRandom returns the random scenario (seeded faults within b) with
// adaptive timeouts (adaptiveSetup), followed by Settle.
func AdaptiveRandom(b Budget) Scenario {
	s := Random(b)
	s.Name = "adaptive-random"
	s.Faults = "as random, every acquisition bounded by its client's adaptive timeout; then every client locks a resource of its own"
	s.Explain = "a timeout changes how long a client waits, not what the nodes grant: the lock is as safe as with a fixed " +
		"timeout, waiting clients (asking again when their timeout passes) are served within the liveness bound, every " +
		"timeout stays within [Min, Max] and follows the rules window by window, and comes back down once faults stop"
	random := s.Setup
	s.Setup = func(cfg *Config) {
		random(cfg)
		adaptiveSetup(cfg)
	}
	s.Drive = func(c *Cluster) (time.Duration, error) {
		c.adaptiveWant = AdaptiveWant{Settle: true}
		faults, heal := RandomFaults(c.Cfg, b)
		if !c.RunWorkload(faults) {
			return heal, fmt.Errorf("workload did not finish")
		}
		if !c.Settle() {
			return heal, fmt.Errorf("settle workload did not finish")
		}
		return heal, nil
	}
	return s
}
