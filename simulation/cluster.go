package simulation

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// Config describes one simulated run: the cluster, the clients' dsync
// settings and the workload. The zero value of each field is a documented
// default; the defaults make a run of a few virtual minutes.
type Config struct {
	// Nodes is how many node tables there are. If zero, 3.
	Nodes int
	// Clients is how many dsync clients there are, at most MaxClients. If
	// zero, 3.
	Clients int
	// Resources is how many distinct resources the workload locks. If zero, 1.
	Resources int

	// Validity is the nodes' grant validity and the clients' Config.Validity.
	// If zero, 10s.
	Validity time.Duration
	// RefreshInterval is the clients' refresh interval. If zero, Validity/4.
	RefreshInterval time.Duration
	// QuietPeriod is the nodes' restart grace period (locker.Config): zero
	// means the library's default, one Validity after every restart, with
	// reclaims; negative, none. A node's first start has none unless it is
	// positive (see FirstStart).
	QuietPeriod time.Duration
	// WriterIntent is the nodes' locker.Config.WriterIntent. If zero,
	// 2×(RetryMax + 2×CallTimeout): twice the longest gap between two
	// requests of a writer that keeps retrying (its back-off, after an
	// attempt that waits for every answer and then releases its grants, each
	// bounded by CallTimeout), so that a live writer keeps its intent. The
	// library's default (locker.DefaultWriterIntent, 10s) is sized the same
	// way for its default clients, which back off up to 5s; these back off
	// up to 500ms, and with it a writer that crashed while it waited would
	// hold readers back for five times the random scenario's Validity.
	// Negative turns it off.
	WriterIntent time.Duration
	// WaitExpiry is the nodes' locker.Config.WaitExpiry: how long a refused
	// acquisition that names a holder stays recorded as waiting, for
	// deadlock detection. If zero, 2×(RetryMax + 3×CallTimeout): twice the
	// longest gap between two refusals of a holder that keeps waiting (its
	// back-off, its attempt and the release of that attempt's grants, and
	// its read of the nodes' edges, each bounded by CallTimeout), so that a
	// live waiter keeps its wait recorded, sized like WriterIntent and for
	// the same reason (the library's 10s default is for clients that back
	// off up to 5s). It decides only how long the wait of a waiter that
	// gave up or crashed can still make an edge; no grant depends on it, so
	// it is not part of LivenessBound. Negative records no waits.
	WaitExpiry time.Duration
	// CallTimeout bounds one client call to one node. If zero, 200ms.
	CallTimeout time.Duration
	// RetryMin and RetryMax bound the clients' acquire back-off. If zero,
	// 20ms and 500ms.
	RetryMin, RetryMax time.Duration
	// MaxWait is the clients' dsync.Config.MaxWait: how long one attempt
	// waits in the nodes' queues. If zero, the library's default; negative,
	// the clients do not wait on the nodes, and back off between attempts.
	MaxWait time.Duration

	// Delay and Jitter are every message's one-way delay: Delay plus a
	// uniform part in [0, Jitter). If zero, 1ms and 2ms.
	Delay, Jitter time.Duration

	// ClockDrift bounds the clock rates of the processes. Every node and
	// every client runs on a clock of its own (a clock.Scaled of the run's
	// virtual clock): its table's, or its dsync instance's (refresher
	// included) and its workload's. Each runs at a rate drawn from the
	// seed, uniformly in [1−ClockDrift, 1+ClockDrift]: at rate r it
	// advances r times as fast as virtual time, and its timers fire when
	// it reaches their deadline. Message delays stay on virtual time. Zero
	// means every rate is 1, every process clock reads virtual time. It
	// must be in [0, 0.5). What the design assumes of clock rates is stated
	// in README.md, Guarantees; the drift scenarios test both sides of it.
	ClockDrift float64
	// NodeRates and ClientRates fix the clock rate of node k or client i
	// where their entry is positive, instead of drawing it: scenarios use
	// them to put a process outside the drift bound. Entries must not be
	// negative.
	NodeRates, ClientRates []float64

	// Ops is how many acquisitions each client's workload makes. If zero, 20.
	Ops int
	// ReadFraction is the share of read locks in the workload, in [0, 1].
	// If zero, 0.3; negative means none.
	ReadFraction float64
	// Optimistic is the share of the workload's reads made without a lock
	// (optimistic.go): a version read, two reads of the register a hold
	// time apart, and a validation, whose outcome the register records for
	// CheckRegister. In [0, 1]; zero, the default, makes none.
	Optimistic float64
	// Hold is how long a client keeps a lock: a uniform time in [Hold/2,
	// Hold]. If zero, 50ms.
	Hold time.Duration
	// Think is the pause between one client's operations: uniform in [0,
	// Think). If zero, 20ms.
	Think time.Duration
	// LockTimeout is each acquisition's Options.Timeout. If zero, 4×Validity.
	// Adaptive replaces it.
	LockTimeout time.Duration
	// Adaptive, if not nil, gives every client one dsync.AdaptiveTimeout
	// made from it (as a process holds one per class of lock), and every
	// acquisition that takes Options (DRWMutex locks, semaphore permits,
	// hierarchy levels, leases) passes it as Options.Adaptive instead of
	// LockTimeout as Options.Timeout. Each acquisition's timeout before and
	// after it is recorded (Cluster.Adaptive) for CheckAdaptive, and the
	// liveness probe tries an acquisition that timed out again (see
	// Client.probe). Mutex, Barrier and Cond do not take Options and keep
	// LockTimeout. The zero value, nil, is off.
	Adaptive *dsync.AdaptiveConfig
	// Fenced makes the workload use fencing tokens: every write holder asks
	// DRWMutex.FencingToken right after it is granted (and, if it gets none,
	// releases the lock without writing), its writes carry the token, and
	// the Register is fenced (NewFencedRegister): it refuses a write whose
	// token is below the largest it has seen on that resource.
	Fenced bool
	// Permits, if positive, makes the workload a semaphore workload: every
	// client acquires a permit of one dsync.Semaphore of Permits permits,
	// uses it for a hold time, and releases it (semaphore.go); Resources,
	// ReadFraction and Fenced do not apply. The cluster's PermitLog records
	// every holding for CheckSemaphore.
	Permits int
	// Primitive chooses what the workload's clients use: DRWMutex locks
	// (the zero value, PrimitiveLock, or the semaphore with Permits), leases,
	// a lock hierarchy, a barrier or a condition variable. See Primitive.
	Primitive Primitive
	// Modes makes the hierarchy workload (PrimitiveHierarchy) draw the
	// modes of multi-granularity locking: "global" and buckets in any of
	// IS, IX, S, SIX and X; objects in S or X, under a bucket lock that
	// allows it, or (half the time) with the bucket left to the intention
	// lock the Hierarchy takes itself. See hierarchy.go.
	Modes bool
	// SetSize, if positive, makes the nodes lock sets of SetSize nodes each
	// (nodes k*SetSize to (k+1)*SetSize−1 are set k; Nodes must be a
	// multiple): every client is a dsync.NewSets client, each resource
	// lives on its set with that set's quorum (sets.go). If zero, one set.
	SetSize int
	// CrossSet is the share of the register workload's operations that
	// lock two resources of different sets at once (with SetSize), in
	// [0, 1]: each is entered in the register, and recorded in the history,
	// as a lock of each. Zero makes none.
	CrossSet float64
	// GrowFrom, if positive (with SetSize), makes the run a change of
	// layout (dsync.NewTransition): from the first GrowFrom nodes in sets
	// of SetSize to all Nodes in sets of SetSize, each client a client of
	// the layout ClientLayouts gives it (by index, round and round). A
	// change lets old and change, or change and new, run together; old and
	// new together is the mistake it exists to prevent (a negative control
	// makes it on purpose: TestGrowCheckerCatchesOldAndNewTogether).
	GrowFrom int
	// ClientLayouts, with GrowFrom, is each client's layout.
	ClientLayouts []ClientLayout

	// Seed makes the run: the fault schedule, every client's workload, the
	// network's drops and jitter and the clients' back-off all derive from it.
	Seed uint64

	// Quiesce blocks until every goroutine of the run waits on the clock or
	// on another goroutine, so that the driver may advance the virtual
	// clock. The simulated transport requires it: the run goes inside a
	// testing/synctest bubble and passes synctest.Wait, which is exact
	// (tests call synctest.Test; the dsync-sim command does too, with a
	// *testing.T of its own). The real-clock transports ignore it.
	Quiesce func()
	// MaxVirtual bounds a run's virtual time. If zero, 1h.
	MaxVirtual time.Duration

	// Transport chooses the fabric. The zero value is the in-process
	// network on virtual time.
	Transport Transport
}

// Primitive is the dsync primitive a workload drives.
type Primitive uint8

// Primitives.
const (
	// PrimitiveLock is the register workload over DRWMutex locks
	// (workload.go), or with Config.Permits the semaphore workload.
	PrimitiveLock Primitive = iota
	// PrimitiveLease is the register workload over dsync.Lease (lease.go):
	// holders write only while the lease is valid, and leases end by
	// MaxHold or MaxRenewals.
	PrimitiveLease
	// PrimitiveHierarchy is the register workload over dsync.Hierarchy
	// levels "global", "bucket", "object" (hierarchy.go).
	PrimitiveHierarchy
	// PrimitiveBarrier has every client take part in one dsync.Barrier
	// (barrier.go).
	PrimitiveBarrier
	// PrimitiveCond is a producer/consumer over a dsync.Mutex and a
	// dsync.Cond (cond.go).
	PrimitiveCond
	// PrimitiveDeadlock has every client, a holder (dsync.WithHolder), take
	// two or three write locks one at a time in orders that close cycles
	// across clients, and release them (deadlock.go).
	PrimitiveDeadlock
	// PrimitiveDeadlockChain is PrimitiveDeadlock with every client taking
	// the same resources in one global order: no cycle can close.
	PrimitiveDeadlockChain
)

// Transport is what carries a cluster's calls.
type Transport uint8

// Transports.
const (
	// TransportSim is the in-process Network on a virtual clock.
	TransportSim Transport = iota
	// TransportHTTP is the rest transport over loopback TCP, through a
	// fault-injecting proxy per link, on the real clock (HTTPNetwork).
	TransportHTTP
	// TransportNetns is TransportHTTP with every node in its own network
	// namespace, partitions made by taking veth links down (NetnsNetwork;
	// Linux, root).
	TransportNetns
)

// validate reports the first setting of a configuration with defaults
// applied that cannot work.
func (c Config) validate() error {
	switch {
	case c.Clients > MaxClients:
		return fmt.Errorf("simulation: %d clients, more than the model's %d", c.Clients, MaxClients)
	case !(c.ClockDrift >= 0 && c.ClockDrift < 0.5):
		return fmt.Errorf("simulation: ClockDrift %v not in [0, 0.5)", c.ClockDrift)
	case slices.ContainsFunc(c.NodeRates, func(r float64) bool { return !(r >= 0) }) ||
		slices.ContainsFunc(c.ClientRates, func(r float64) bool { return !(r >= 0) }):
		return fmt.Errorf("simulation: negative clock rate in NodeRates %v or ClientRates %v", c.NodeRates, c.ClientRates)
	case c.SetSize < 0 || c.SetSize > 0 && c.Nodes%c.SetSize != 0:
		return fmt.Errorf("simulation: %d nodes are not sets of %d", c.Nodes, c.SetSize)
	case c.GrowFrom != 0 && (c.SetSize <= 0 || c.GrowFrom < 0 || c.GrowFrom%c.SetSize != 0 || c.GrowFrom > c.Nodes):
		return fmt.Errorf("simulation: GrowFrom %d is not sets of %d among %d nodes", c.GrowFrom, c.SetSize, c.Nodes)
	case c.GrowFrom != 0 && len(c.ClientLayouts) == 0:
		return errors.New("simulation: GrowFrom without ClientLayouts")
	case c.Transport == TransportSim && c.Quiesce == nil:
		return errors.New("simulation: Config.Quiesce is required on the simulated transport: run inside a testing/synctest bubble and pass synctest.Wait")
	case c.Transport != TransportSim && (c.ClockDrift > 0 || slices.ContainsFunc(append(slices.Clone(c.NodeRates), c.ClientRates...), func(r float64) bool { return r > 0 && r != 1 })):
		return errors.New("simulation: clock rates other than 1 need the simulated transport: the real-clock tiers run every process on the machine's clock")
	}
	return nil
}

// rates returns the clock rate of every node and every client: drawn from
// the seed within ClockDrift, or fixed by NodeRates and ClientRates. The
// draws come from a source of their own, so that the other draws of a
// seed do not depend on them.
func (c Config) rates() (nodes, clients []float64) {
	rng := rand.New(rand.NewPCG(c.Seed, 0xc10c))
	draw := func(fixed []float64, i int) float64 {
		r := 1.0
		if c.ClockDrift > 0 {
			r = 1 + c.ClockDrift*(2*rng.Float64()-1)
		}
		if i < len(fixed) && fixed[i] > 0 {
			r = fixed[i]
		}
		return r
	}
	for k := range c.Nodes {
		nodes = append(nodes, draw(c.NodeRates, k))
	}
	for i := range c.Clients {
		clients = append(clients, draw(c.ClientRates, i))
	}
	return nodes, clients
}

func (c Config) withDefaults() Config {
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
	if c.Transport != TransportSim {
		// Real time: short durations so that a scenario takes seconds.
		def(&c.Validity, 2*time.Second)
		def(&c.CallTimeout, 250*time.Millisecond)
		def(&c.RetryMin, 10*time.Millisecond)
		def(&c.RetryMax, 100*time.Millisecond)
		def(&c.Hold, 20*time.Millisecond)
		def(&c.Think, 10*time.Millisecond)
		def(&c.MaxVirtual, 2*time.Minute)
		if c.Delay == 0 && c.Jitter == 0 {
			c.Delay, c.Jitter = -1, -1 // none: loopback has its own
		}
	}
	defInt(&c.Nodes, 3)
	defInt(&c.Clients, 3)
	defInt(&c.Resources, 1)
	defInt(&c.Ops, 20)
	def(&c.Validity, 10*time.Second)
	def(&c.RefreshInterval, c.Validity/4)
	def(&c.CallTimeout, 200*time.Millisecond)
	def(&c.RetryMin, 20*time.Millisecond)
	def(&c.RetryMax, 500*time.Millisecond)
	def(&c.Delay, time.Millisecond)
	def(&c.Jitter, 2*time.Millisecond)
	def(&c.Hold, 50*time.Millisecond)
	def(&c.Think, 20*time.Millisecond)
	def(&c.LockTimeout, 4*c.Validity)
	def(&c.WriterIntent, 2*(c.RetryMax+2*c.CallTimeout))
	def(&c.WaitExpiry, 2*(c.RetryMax+3*c.CallTimeout))
	def(&c.MaxVirtual, time.Hour)
	if c.ReadFraction == 0 {
		c.ReadFraction = 0.3
	}
	return c
}

// Cluster is one simulated run: nodes and dsync clients joined by a
// Network, on one virtual clock, with a History of lock operations and a
// Register the clients protect with their locks.
type Cluster struct {
	Cfg      Config
	Clock    clock.Clock
	Net      Fabric
	History  *History
	Register *Register
	Permits  *PermitLog   // the semaphore workload's holdings (Config.Permits)
	Leases   *LeaseLog    // the lease workload's writes (PrimitiveLease)
	Barriers *BarrierLog  // the barrier workload's events (PrimitiveBarrier)
	Conds    *CondLog     // the cond workload's counter and Waits (PrimitiveCond)
	Rounds   *RoundLog    // the deadlock workload's rounds (PrimitiveDeadlock, PrimitiveDeadlockChain)
	Adaptive *AdaptiveLog // every acquisition's adaptive timeout (Config.Adaptive)
	Start    time.Time

	hierarchy *dsync.Hierarchy // the hierarchy workload's levels
	// careless makes workloads skip the check a careful holder makes before
	// it writes (a lease's Valid or Verify): tests set it to show that the
	// checkers catch the writes that follow.
	careless bool
	// barrierParties, if positive, is the parties the barrier workload's
	// clients give NewBarrier instead of Config.Clients: tests set it below
	// the clients to show that CheckBarrier catches early passes.
	barrierParties int
	// silentProducer makes the cond workload's producer skip its Signals:
	// tests set it to show that CheckCond catches waiters left waiting with
	// items ready.
	silentProducer bool
	// anonymous makes the deadlock workload's clients take their locks
	// without naming a holder: tests set it to show that, without
	// detection, the cycles last until Options.Timeout and the liveness
	// check catches them.
	anonymous bool
	// unorderedChain makes the chain workload draw the cycle workload's
	// orders: tests set it to show that CheckDeadlocks then finds the
	// ErrDeadlocks it must not allow in a chain.
	unorderedChain bool
	// weakIntentions makes the hierarchy workload's clients take IS where
	// the Hierarchy would take IX on a container (and record IX): tests
	// set it to show that the lock checker catches writers of objects
	// beside holders of the whole bucket.
	weakIntentions bool

	// adaptiveCfg is Config.Adaptive with defaults applied; adaptiveWant
	// is what the scenario requires of the adaptive timeouts, set by its
	// Drive. fixedAdaptive makes clients record their AdaptiveTimeout but
	// pass LockTimeout: tests set it to show that CheckAdaptive catches a
	// timeout that does not adapt.
	adaptiveCfg   dsync.AdaptiveConfig
	adaptiveWant  AdaptiveWant
	fixedAdaptive bool

	probeMu sync.Mutex  // guards probes
	probes  []ProbeWait // the liveness probe's waits, with adaptive timeouts

	fake    *clock.Fake // Clock, when time is virtual; nil on the real clock
	clients []*Client

	nodeRates, clientRates []float64 // every process's clock rate (all 1 on the real clock)

	stopMu  sync.Mutex           // guards stopped and stops
	stopped map[string]time.Time // stops under way, by process ("c1", "n0"): when they began
	stops   ClockReport          // stops begun, and the longest that ended

	quiesce func()
	wg      sync.WaitGroup // every goroutine the cluster started
}

// Client is one simulated process: a dsync instance over its own links.
type Client struct {
	ID  int
	DS  *dsync.Dsync
	c   *Cluster
	rng *rand.Rand // the workload's choices; used only by the client's own goroutine

	// clk is the process's clock: its dsync instance's and its workload's
	// (hold and think times, its own timeouts). In the simulated tier it is
	// scaled, a clock.Scaled of the virtual clock at the client's rate,
	// which StopClient pauses; on the real clock both are the machine's,
	// and scaled is nil.
	clk    clock.Clock
	scaled *clock.Scaled

	mu      sync.Mutex
	ctx     context.Context // cancelled when the client crashes
	crash   context.CancelFunc
	mutexes map[string]*dsync.DRWMutex
	sem     *dsync.Semaphore // the semaphore workload's, if Config.Permits > 0

	adaptive *dsync.AdaptiveTimeout // the client's, if Config.Adaptive is set
	granted  atomic.Int64           // virtual time of the client's last grant, in Unix nanoseconds
	failed   atomic.Int64           // and of its last failed acquisition
}

// NewCluster builds the nodes, the network and the clients of cfg. It
// returns an error if cfg cannot work.
func NewCluster(cfg Config) (*Cluster, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Cluster{Cfg: cfg}
	nodeRates, clientRates := cfg.rates()
	var clientClocks []*clock.Scaled
	switch cfg.Transport {
	case TransportSim:
		c.fake = clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		c.Clock = c.fake
		var nodeClocks []*clock.Scaled
		for _, r := range nodeRates {
			nodeClocks = append(nodeClocks, clock.NewScaled(c.fake, r))
		}
		for _, r := range clientRates {
			clientClocks = append(clientClocks, clock.NewScaled(c.fake, r))
		}
		net := NewNetwork(NetworkConfig{
			Nodes: cfg.Nodes, Clients: cfg.Clients, Clock: c.fake, NodeClocks: nodeClocks, ClientClocks: clientClocks, Delay: cfg.Delay, Jitter: cfg.Jitter, Seed: cfg.Seed,
			// The sweep runs on the wall clock; expired grants are treated as
			// absent without it.
			Node:    locker.Config{Validity: cfg.Validity, QuietPeriod: cfg.QuietPeriod, WriterIntent: cfg.WriterIntent, WaitExpiry: cfg.WaitExpiry, SweepInterval: -1},
			Ordered: true,
		})
		c.Net = net
		// Every goroutine waits, and the messages sent meanwhile have left,
		// in their defined order (NetworkConfig.Ordered), and what they
		// woke waits again.
		c.quiesce = func() {
			cfg.Quiesce()
			for net.Depart() {
				cfg.Quiesce()
			}
		}
	case TransportHTTP, TransportNetns:
		c.Clock = clock.Real()
		hc := HTTPConfig{
			Nodes: cfg.Nodes, Clients: cfg.Clients, CallTimeout: cfg.CallTimeout, Seed: cfg.Seed,
			Delay: max(cfg.Delay, 0), Jitter: max(cfg.Jitter, 0),
			Node: locker.Config{Validity: cfg.Validity, QuietPeriod: cfg.QuietPeriod, WriterIntent: cfg.WriterIntent, WaitExpiry: cfg.WaitExpiry},
		}
		var err error
		if cfg.Transport == TransportHTTP {
			c.Net, err = NewHTTPNetwork(hc)
		} else {
			c.Net, err = NewNetnsNetwork(hc)
		}
		if err != nil {
			return nil, err
		}
		c.quiesce = func() {}
	default:
		return nil, fmt.Errorf("simulation: unknown transport %d", cfg.Transport)
	}
	clk := c.Clock
	c.History = NewHistory(clk)
	if cfg.Fenced {
		c.Register = NewFencedRegister(c.History)
	} else {
		c.Register = NewRegister(c.History)
	}
	c.Permits = NewPermitLog(c.History)
	c.Leases = NewLeaseLog(c.History)
	c.Barriers = NewBarrierLog(c.History, clk)
	c.Conds = NewCondLog(clk)
	c.Rounds = NewRoundLog()
	c.Adaptive = &AdaptiveLog{}
	var adaptive []*dsync.AdaptiveTimeout
	if cfg.Adaptive != nil {
		var err error
		if adaptive, err = adaptiveTimeouts(*cfg.Adaptive, cfg.Clients); err != nil {
			c.Net.Close()
			return nil, err
		}
		c.adaptiveCfg = adaptive[0].Config()
	}
	if cfg.Primitive == PrimitiveHierarchy {
		h, err := dsync.NewHierarchy(hierarchyLevels...)
		if err != nil {
			c.Net.Close()
			return nil, err
		}
		c.hierarchy = h
	}
	c.Start = clk.Now()
	c.nodeRates, c.clientRates = nodeRates, clientRates
	for i := range cfg.Clients {
		var own clock.Clock = clk
		var scaled *clock.Scaled
		if clientClocks != nil {
			own, scaled = clientClocks[i], clientClocks[i]
		}
		ds, err := newClientDsync(cfg, i, c.Net.Lockers(i), dsync.Config{
			RefreshInterval: cfg.RefreshInterval, Validity: cfg.Validity,
			CallTimeout: cfg.CallTimeout, RefreshCallTimeout: cfg.CallTimeout,
			RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, MaxWait: cfg.MaxWait,
			Owner: fmt.Sprintf("c%d", i), Clock: own,
			Rand:      rand.New(rand.NewPCG(cfg.Seed, 1000+uint64(i))),
			UIDSource: newUIDSource(cfg.Seed, i),
		})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("simulation: client %d: %w", i, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cl := &Client{ID: i, DS: ds, c: c, ctx: ctx, crash: cancel, clk: own, scaled: scaled,
			rng: rand.New(rand.NewPCG(cfg.Seed, 2000+uint64(i))), mutexes: map[string]*dsync.DRWMutex{}}
		if cfg.Permits > 0 {
			cl.sem = dsync.NewSemaphore(ds, semaphoreName, cfg.Permits)
		}
		if adaptive != nil {
			cl.adaptive = adaptive[i]
		}
		c.clients = append(c.clients, cl)
	}
	return c, nil
}

// uidSource is a client's dsync.Config.UIDSource: its UIDs drawn from the
// seed, so that a replay names its locks as the run did.
type uidSource struct {
	mu  sync.Mutex // guards src
	src *rand.ChaCha8
}

func newUIDSource(seed uint64, client int) *uidSource {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(client))
	copy(key[16:], "simulation uids")
	return &uidSource{src: rand.NewChaCha8(key)}
}

func (u *uidSource) Read(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.src.Read(p)
}

// Client returns client i.
func (c *Cluster) Client(i int) *Client { return c.clients[i] }

// Now returns the virtual time since the run started.
func (c *Cluster) Now() time.Duration { return c.Clock.Since(c.Start) }

// Go runs f on a goroutine that Close waits for.
func (c *Cluster) Go(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// Step lets every goroutine run until all wait, then advances the virtual
// clock to the earlier of the next timer and limit, and fires that one
// timer: timers due at one instant fire one Step at a time, in the order
// they were armed, each after what the one before woke has settled. It
// reports false if nothing is pending before limit (the clock then stands
// at limit). On the real clock it waits until limit.
func (c *Cluster) Step(limit time.Time) bool {
	if c.fake == nil {
		clock.Sleep(context.Background(), c.Clock, time.Until(limit))
		return false
	}
	c.quiesce()
	if !c.fake.FireNext(limit) {
		c.fake.Set(limit)
		c.quiesce()
		return false
	}
	return true
}

// RunUntil advances virtual time until done is closed, or until d of virtual
// time has passed. It reports whether done was closed.
func (c *Cluster) RunUntil(done <-chan struct{}, d time.Duration) bool {
	limit := c.Clock.Now().Add(d)
	if c.fake == nil {
		t := c.Clock.NewTimer(d)
		defer t.Stop()
		select {
		case <-done:
			return true
		case <-t.C():
			return false
		}
	}
	for range 10_000_000 { // bounded: each step advances time or ends
		c.quiesce()
		select {
		case <-done:
			return true
		default:
		}
		if !c.Clock.Now().Before(limit) {
			return false
		}
		c.Step(limit)
	}
	return false
}

// Advance runs the simulation for d of virtual time.
func (c *Cluster) Advance(d time.Duration) { c.RunUntil(nil, d) }

// Close stops everything: it lets every stopped process continue, cancels
// every client and closes the network, waits for the goroutines it
// started, then closes the clients' dsync instances. (Closing a Dsync while
// a call of its is still running is not done here: see the report on
// dsync.Close in simulation/README.md.)
func (c *Cluster) Close() {
	for _, cl := range c.clients {
		if cl.scaled != nil {
			cl.scaled.Resume() // its timers may be all that some goroutine waits for
		}
		cl.crash()
	}
	c.Net.Close()
	c.wg.Wait()
	for _, cl := range c.clients {
		cl.DS.Close()
	}
	switch n := c.Net.(type) { // rest clients close after dsync is done with them
	case *HTTPNetwork:
		n.CloseClients()
	case *NetnsNetwork:
		n.CloseClients()
	}
}

// CrashClient kills client i: its network fails every call at once and its
// workload stops. Locks it held stay on the nodes until they expire. Its
// dsync instance keeps running, as an unreachable process would, until
// Close: its refreshes never arrive. A stop of the client ends with it.
func (c *Cluster) CrashClient(i int) {
	c.Net.CrashClient(i)
	cl := c.clients[i]
	if cl.scaled != nil {
		cl.scaled.Resume()
	}
	cl.crash()
}

// NodeRate returns node k's clock rate (Config.ClockDrift).
func (c *Cluster) NodeRate(k int) float64 { return c.nodeRates[k] }

// ClientRate returns client i's clock rate (Config.ClockDrift).
func (c *Cluster) ClientRate(i int) float64 { return c.clientRates[i] }

// network returns the in-process network, for the faults that only the
// simulated tier has: stops of a process, whose timers the real clock
// cannot hold. It panics on the real-clock tiers (a scenario that stops
// processes must be SimulatedOnly).
func (c *Cluster) network(what string) *Network {
	n, ok := c.Net.(*Network)
	if !ok {
		panic(fmt.Sprintf("simulation: %s needs the simulated tier, not %T", what, c.Net))
	}
	return n
}

// StopClient stops client i's whole process, stop-the-world, as a long GC
// pause, SIGSTOP or a stopped VM would, until ContinueClient: its traffic
// and its workload freeze as in a pause (Fabric.PauseClient), and so does
// every timer of its clock (its dsync instance's and its refresher's
// included), while the clock itself keeps running. A holder stopped past its
// lock's validity deadline is thus not told the lock is lost before it
// continues, by which time another client may hold it (README.md,
// Guarantees). It does nothing if the client is stopped or crashed. Only in
// the simulated tier. Any goroutine may call it (a fault, a scenario's
// Drive, the client's own workload, as PausedSection does); ContinueClient
// is the driver's.
func (c *Cluster) StopClient(i int) {
	n := c.network("StopClient")
	cl := c.clients[i]
	if n.ClientStopped(i) || cl.Crashed() {
		return
	}
	cl.scaled.Pause()
	n.StopClient(i)
	c.stopBegan(fmt.Sprintf("c%d", i))
	if c.History.Holding(i) {
		c.stopMu.Lock()
		c.stops.HolderStops++
		c.stopMu.Unlock()
	}
}

// ContinueClient ends a stop of client i. The timers of its clock that fell
// due meanwhile fire first, and once every goroutine of the run waits again
// (the refresher has then cancelled the contexts of the locks whose deadline
// passed), its traffic and its workload continue. A real process has no
// such order; this one lets a holder that checks its lock context after the
// stop see what its refresher found, so that what the checkers catch is
// what no check could have prevented. It does nothing if the client is not
// stopped. The driver calls it: it waits for the run's goroutines.
func (c *Cluster) ContinueClient(i int) {
	n := c.network("ContinueClient")
	if !n.ClientStopped(i) {
		return
	}
	c.clients[i].scaled.Resume()
	c.quiesce()
	n.ContinueClient(i)
	c.stopEnded(fmt.Sprintf("c%d", i))
}

// ClientStopped reports whether client i is stopped (false on the real-clock
// tiers, where clients are never stopped).
func (c *Cluster) ClientStopped(i int) bool {
	n, ok := c.Net.(*Network)
	return ok && n.ClientStopped(i)
}

// StopNode stops node k's process until ContinueNode (Network.StopNode):
// requests to it wait, its clock runs on, its grants expire on their time.
// Only in the simulated tier.
func (c *Cluster) StopNode(k int) {
	n := c.network("StopNode")
	if n.NodeStopped(k) {
		return
	}
	n.StopNode(k)
	if n.NodeStopped(k) { // not if k is down
		c.stopBegan(fmt.Sprintf("n%d", k))
	}
}

// ContinueNode ends a stop of node k.
func (c *Cluster) ContinueNode(k int) {
	c.network("ContinueNode").ContinueNode(k)
	c.stopEnded(fmt.Sprintf("n%d", k))
}

// stopBegan records the start of a stop of process p.
func (c *Cluster) stopBegan(p string) {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if c.stopped == nil {
		c.stopped = map[string]time.Time{}
	}
	c.stopped[p] = c.Clock.Now()
	if p[0] == 'c' {
		c.stops.ClientStops++
	} else {
		c.stops.NodeStops++
	}
}

// stopEnded records the end of a stop of process p, if one was under way
// (a crash may have ended it already).
func (c *Cluster) stopEnded(p string) {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	from, ok := c.stopped[p]
	if !ok {
		return
	}
	delete(c.stopped, p)
	d := c.Clock.Since(from)
	if p[0] == 'c' {
		c.stops.LongestClientStop = max(c.stops.LongestClientStop, d)
	} else {
		c.stops.LongestNodeStop = max(c.stops.LongestNodeStop, d)
	}
}

// ClockReport describes the clocks of a run's processes.
type ClockReport struct {
	MinRate, MaxRate       float64 // the slowest and the fastest clock, of nodes and clients
	ClientStops, NodeStops int     // stops begun (Cluster.StopClient, Cluster.StopNode)
	HolderStops            int     // client stops that began while the client held a lock
	// LongestClientStop and LongestNodeStop are the longest stops that
	// ended by a continue, in virtual time.
	LongestClientStop, LongestNodeStop time.Duration
}

// clockReport returns the run's ClockReport.
func (c *Cluster) clockReport() ClockReport {
	c.stopMu.Lock()
	rep := c.stops
	c.stopMu.Unlock()
	rates := append(slices.Clone(c.nodeRates), c.clientRates...)
	rep.MinRate, rep.MaxRate = slices.Min(rates), slices.Max(rates)
	return rep
}

// NodeStopped reports whether node k is stopped (false on the real-clock
// tiers).
func (c *Cluster) NodeStopped(k int) bool {
	n, ok := c.Net.(*Network)
	return ok && n.NodeStopped(k)
}

// Clock returns the client's clock: what its dsync instance and its
// workload measure time with.
func (cl *Client) Clock() clock.Clock { return cl.clk }

// mutex returns the client's DRWMutex on resource.
func (cl *Client) mutex(resource string) *dsync.DRWMutex {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	m := cl.mutexes[resource]
	if m == nil {
		m = dsync.NewDRWMutex(cl.DS, resource)
		cl.mutexes[resource] = m
	}
	return m
}

// Crashed reports whether the client has crashed.
func (cl *Client) Crashed() bool { return cl.ctx.Err() != nil }

// Hold is a lock held by a simulated client.
type Hold struct {
	cl       *Client
	Resource string
	Write    bool
	Ctx      context.Context // the lock context dsync returned
	Took     time.Duration   // virtual time the acquisition took
	Token    uint64          // the fencing token of a write lock in a fenced run; 0 otherwise
	stop     func() bool
}

// Acquire asks for the lock on resource and records the call in the
// history. It returns the hold, or the error of the failed acquisition; an
// acquisition cut short by the client's crash is recorded as Unknown.
//
// In a fenced run (Config.Fenced) a write holder then asks for its fencing
// token. Without one it cannot write safely, so it gives the lock up: it
// releases it (recorded in the history) and returns the token's error.
func (cl *Client) Acquire(resource string, write bool) (*Hold, error) {
	return cl.acquire(cl.ctx, resource, write)
}

// acquire is Acquire with ctx, the client's context or one derived from it
// (the deadlock workload's names a holder).
func (cl *Client) acquire(ctx context.Context, resource string, write bool) (*Hold, error) {
	c := cl.c
	m := cl.mutex(resource)
	id := c.History.Invoke(cl.ID, resource, OpAcquire, write)
	start := c.Clock.Now()
	a := cl.begin()
	var lockCtx context.Context
	var err error
	if write {
		lockCtx, err = m.GetLock(ctx, a.opts)
	} else {
		lockCtx, err = m.GetRLock(ctx, a.opts)
	}
	a.end(err)
	if err != nil {
		if cl.Crashed() {
			// The process died during the call: whether it was granted is
			// unknown, and nobody will use it.
			return nil, err
		}
		c.History.Finish(id, Failed, err)
		return nil, err
	}
	h := &Hold{cl: cl, Resource: resource, Write: write, Ctx: lockCtx, Took: c.Clock.Since(start)}
	c.History.Finish(id, OK, nil)
	// Record the moment the client is told its lock is lost.
	h.stop = context.AfterFunc(lockCtx, func() {
		if errors.Is(context.Cause(lockCtx), dsync.ErrLockLost) {
			c.History.Point(cl.ID, resource, OpLost, write)
		}
	})
	if write && c.Cfg.Fenced {
		token, err := m.FencingToken(cl.ctx)
		if err != nil {
			h.Release()
			return nil, fmt.Errorf("c%d fencing token: %w", cl.ID, err)
		}
		h.Token = token
	}
	return h, nil
}

// Release unlocks h and records the release. If the client crashed, it
// records that the crashed process no longer holds the lock and sends
// nothing.
func (h *Hold) Release() error {
	c := h.cl.c
	if h.cl.Crashed() {
		c.History.Point(h.cl.ID, h.Resource, OpRelease, h.Write)
		return nil
	}
	id := c.History.Invoke(h.cl.ID, h.Resource, OpRelease, h.Write)
	m := h.cl.mutex(h.Resource)
	var err error
	if h.Write {
		err = m.Unlock(h.cl.ctx)
	} else {
		err = m.RUnlock(h.cl.ctx)
	}
	// The client stopped using the lock when it called Unlock: the release
	// is OK whatever the nodes answered.
	c.History.Finish(id, OK, err)
	return err
}
