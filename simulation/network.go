package simulation

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Direction names one or both legs of a client↔node link.
type Direction uint8

// Link directions.
const (
	ToNode   Direction = 1 << iota // requests, client to node
	FromNode                       // replies, node to client
	Both     = ToNode | FromNode
)

// NetworkConfig configures a Network. The zero value of each field is a
// documented default.
type NetworkConfig struct {
	// Nodes and Clients are how many of each the network joins. If zero, 1.
	Nodes, Clients int
	// Node configures every node table; Clock is replaced by the network's
	// clock. A node that restarts gets a fresh table with the same Config,
	// whose QuietPeriod (zero: one Validity) is its restart grace period; the
	// first start of a node has none unless QuietPeriod is positive, as for
	// a node whose boot record says it never ran (see FirstStart).
	Node locker.Config
	// Clock is the time source of message delays, and of the tables that
	// NodeClocks does not give a clock of their own. If nil, the real clock.
	Clock clock.Clock
	// NodeClocks, if node k's entry is not nil, is node k's own clock: its
	// table's (at every start), and the one StopNode stops. The simulated
	// cluster derives one per node from its virtual clock (clock.Scaled),
	// at the node's clock rate.
	NodeClocks []*clock.Scaled
	// ClientClocks, if client c's entry is not nil, is the clock of client
	// c: the timeouts of the calls submitted on its links (Link.Submit) run
	// on it, as they would on its Dsync's. If nil, on Clock.
	ClientClocks []*clock.Scaled
	// Delay is the one-way delay of every message before faults; Jitter adds
	// a uniformly random delay in [0, Jitter). If zero, messages are delivered
	// at once.
	Delay, Jitter time.Duration
	// Seed seeds the random drops and jitter of each link.
	Seed uint64
	// Ordered makes the messages that leave at one instant leave in a
	// defined order, not in the order their goroutines reach the link: a
	// message waits, at the instant it is sent, until Depart lets it go,
	// and those that Depart finds waiting draw their fate (drop, jitter)
	// from their link's source and arm their timers in the order of client,
	// node, direction, operation and key (a call's UID, or what stands for
	// it). The Go runtime wakes the goroutines of one instant in an order
	// that is not always a function of the run (the context package cancels
	// a context's children in a map's order), and each link's draws are a
	// sequence. The simulated cluster sets it and calls Depart each time
	// every goroutine of the run waits.
	Ordered bool
}

// Network joins simulated clients to simulated nodes. Each node is a real
// *locker.Local; each client reaches each node through its own Link, a
// locker.NetLocker that carries calls with per-direction delay, drop and
// partition. All methods are safe for concurrent use.
//
// A call travels like this: the request waits out the request leg's delay,
// then takes effect on the node's table (with the caller's ctx, so that a
// caller who gave up meanwhile is granted nothing), then the reply waits out
// the reply leg's delay. A request or reply that is dropped or cut by a
// partition is lost: the caller waits until its ctx is done, as it would for a
// TCP peer that stopped answering, and gets an error wrapping locker.ErrOffline;
// if only the reply was lost, the call did take effect on the node.
type Network struct {
	cfg NetworkConfig
	clk clock.Clock

	mu      sync.Mutex // guards everything below
	links   [][]*Link  // [client][node]
	nodes   []*node
	clients []*clientState
	closed  bool
	done    chan struct{} // closed by Close: every waiting call returns
	// waiting are the messages sent since the last Depart, with
	// NetworkConfig.Ordered; sent counts them all, for the last tie-break.
	waiting []*departure
	sent    uint64
}

// departure is a message waiting to leave (NetworkConfig.Ordered).
type departure struct {
	link *Link
	dir  int    // 0 toward the node
	op   string // the call's, or "queued" or "wounded" for news
	key  string // the call's UID, or what identifies its arguments
	seq  uint64 // Network.sent when it was sent: the order of arrival
	leg  chan leg
}

// compareDepartures orders the messages that leave at one instant. Two
// with the same link, direction, operation and key keep their order of
// arrival, which may vary: they are the same message, but for the
// goroutine that waits for each.
func compareDepartures(a, b *departure) int {
	return cmp.Or(
		cmp.Compare(a.link.client, b.link.client),
		cmp.Compare(a.link.node, b.link.node),
		cmp.Compare(a.dir, b.dir),
		strings.Compare(a.op, b.op),
		strings.Compare(a.key, b.key),
		cmp.Compare(a.seq, b.seq),
	)
}

// Depart lets the messages waiting to leave go (NetworkConfig.Ordered), in
// the order of compareDepartures: each draws its fate from its link's
// source in that order, and its goroutine, made ready in that order, goes
// on. It reports whether any was waiting; the caller waits for the run's
// goroutines again, and calls Depart again, until none is.
func (n *Network) Depart() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.waiting) == 0 {
		return false
	}
	ds := n.waiting
	n.waiting = nil
	slices.SortFunc(ds, compareDepartures)
	for _, d := range ds {
		d.leg <- d.link.plan(d.dir) // buffered: never blocks
	}
	return true
}

// depart decides the fate of a message that l sends now in direction dir
// (0 toward the node), as plan does; with NetworkConfig.Ordered it waits
// for Depart first. It fails only if the network closes meanwhile.
func (l *Link) depart(dir int, op, key string) (leg, error) {
	n := l.net
	n.mu.Lock()
	if !n.cfg.Ordered || n.closed {
		lg := l.plan(dir)
		n.mu.Unlock()
		return lg, nil
	}
	d := &departure{link: l, dir: dir, op: op, key: key, seq: n.sent, leg: make(chan leg, 1)}
	n.sent++
	n.waiting = append(n.waiting, d)
	n.mu.Unlock()
	select {
	case lg := <-d.leg:
		return lg, nil
	case <-n.done:
		return leg{}, fmt.Errorf("%w: network closed", locker.ErrClosed)
	}
}

// legState is the fault state of one direction of one link.
type legState struct {
	cut    bool
	drop   float64 // probability that a message is lost
	delay  time.Duration
	jitter time.Duration
}

type node struct {
	table   *locker.Local // nil while crashed
	epoch   int           // incremented at every crash, failing replies in flight
	clk     clock.Clock   // the table's clock
	scaled  *clock.Scaled // the same, if the node has a clock of its own; StopNode pauses it
	stopped chan struct{} // non-nil while stopped; closed by ContinueNode or a crash
}

type clientState struct {
	paused  chan struct{} // non-nil while paused; closed by ResumeClient
	stopped chan struct{} // non-nil while stopped; closed by ContinueClient
	crashed bool
}

// NewNetwork returns a network of fresh node tables, every link healthy.
func NewNetwork(cfg NetworkConfig) *Network {
	cfg.Nodes = max(cfg.Nodes, 1)
	cfg.Clients = max(cfg.Clients, 1)
	n := &Network{cfg: cfg, clk: clock.OrReal(cfg.Clock), done: make(chan struct{})}
	n.cfg.Node.Clock = n.clk
	for k := range cfg.Nodes {
		nd := &node{clk: n.clk}
		if k < len(cfg.NodeClocks) && cfg.NodeClocks[k] != nil {
			nd.clk, nd.scaled = cfg.NodeClocks[k], cfg.NodeClocks[k]
		}
		nd.table = n.newTable(nd, true)
		n.nodes = append(n.nodes, nd)
	}
	for c := range cfg.Clients {
		n.clients = append(n.clients, &clientState{})
		var row []*Link
		for k := range cfg.Nodes {
			l := &Link{net: n, client: c, node: k, online: true,
				name: fmt.Sprintf("sim c%d->n%d", c, k),
				rng:  rand.New(rand.NewPCG(cfg.Seed, uint64(c)<<32|uint64(k)))}
			l.legs[0] = legState{delay: cfg.Delay, jitter: cfg.Jitter}
			l.legs[1] = l.legs[0]
			row = append(row, l)
		}
		n.links = append(n.links, row)
	}
	return n
}

// newTable returns a fresh table for nd, on nd's clock.
func (n *Network) newTable(nd *node, first bool) *locker.Local {
	cfg := n.cfg.Node
	if first {
		cfg = FirstStart(cfg)
	}
	cfg.Clock = nd.clk
	return locker.New(cfg)
}

// Lockers returns client c's links to every node, in node order: the locker
// set that client's dsync instance is built on.
func (n *Network) Lockers(c int) []locker.NetLocker {
	out := make([]locker.NetLocker, len(n.links[c]))
	for k, l := range n.links[c] {
		out[k] = l
	}
	return out
}

// Link returns the link from client c to node k.
func (n *Network) Link(c, k int) *Link { return n.links[c][k] }

// Table returns node k's current table, or nil while it is crashed. Tests use
// it to look at what a node holds.
func (n *Network) Table(k int) *locker.Local {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[k].table
}

// Close closes every table and makes every waiting call return.
func (n *Network) Close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	close(n.done)
	var tables []*locker.Local
	for _, nd := range n.nodes {
		if nd.table != nil {
			tables = append(tables, nd.table)
		}
	}
	for _, cs := range n.clients {
		cs.release()
	}
	for _, nd := range n.nodes {
		nd.cont()
	}
	n.mu.Unlock()
	for _, t := range tables {
		t.Close()
	}
}

// eachLeg applies f to the fault state of the chosen directions of the link
// between client c and node k; c or k may be -1 for all.
func (n *Network) eachLeg(c, k int, dir Direction, f func(*legState)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ci, row := range n.links {
		if c >= 0 && ci != c {
			continue
		}
		for ki, l := range row {
			if k >= 0 && ki != k {
				continue
			}
			if dir&ToNode != 0 {
				f(&l.legs[0])
			}
			if dir&FromNode != 0 {
				f(&l.legs[1])
			}
		}
	}
}

// Cut partitions the link between client c and node k in direction dir:
// messages that way are lost until Heal. c or k may be -1 for every client or
// node. Cut(-1, k, Both) isolates node k.
func (n *Network) Cut(c, k int, dir Direction) {
	n.eachLeg(c, k, dir, func(s *legState) { s.cut = true })
}

// Isolate cuts node k off from every client in both directions.
func (n *Network) Isolate(k int) { n.Cut(-1, k, Both) }

// SetDrop makes the link lose each message in direction dir with
// probability p. c or k may be -1.
func (n *Network) SetDrop(c, k int, dir Direction, p float64) {
	n.eachLeg(c, k, dir, func(s *legState) { s.drop = p })
}

// SetDelay sets the one-way delay of the link in direction dir to fixed plus
// a uniformly random part in [0, jitter). c or k may be -1.
func (n *Network) SetDelay(c, k int, dir Direction, fixed, jitter time.Duration) {
	n.eachLeg(c, k, dir, func(s *legState) { s.delay, s.jitter = fixed, jitter })
}

// Heal restores every link to the configured delay, with no cut and no drop.
// It does not restart nodes or resume clients.
func (n *Network) Heal() {
	n.eachLeg(-1, -1, Both, func(s *legState) {
		*s = legState{delay: n.cfg.Delay, jitter: n.cfg.Jitter}
	})
}

// CrashNode kills node k: its table and everything it held are lost, calls
// that reach it fail at once (connection refused), and replies it had sent
// are lost. A stop of k ends with it: the stopped process is gone. It does
// nothing else if k is already down.
func (n *Network) CrashNode(k int) {
	n.mu.Lock()
	nd := n.nodes[k]
	t := nd.table
	nd.table = nil
	nd.epoch++
	nd.cont()
	n.mu.Unlock()
	if t != nil {
		t.Close()
	}
}

// RestartNode starts node k again with an empty table, in its restart
// grace period (the configured QuietPeriod; zero means one Validity). A node
// that is up is crashed first.
func (n *Network) RestartNode(k int) {
	n.CrashNode(k)
	t := n.newTable(n.nodes[k], false)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		t.Close()
		return
	}
	n.nodes[k].table = t
}

// FirstStart returns cfg for the first start of a node: without a grace
// period, unless cfg.QuietPeriod asks for one explicitly (positive), as
// locker.Open does for a node whose boot record says it never ran.
func FirstStart(cfg locker.Config) locker.Config {
	if cfg.QuietPeriod <= 0 {
		cfg.QuietPeriod = locker.NoQuietPeriod
	}
	return cfg
}

// NodeUp reports whether node k is running.
func (n *Network) NodeUp(k int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[k].table != nil
}

// StopNode stops node k's process, as a long GC pause, SIGSTOP or a
// stopped VM would, until ContinueNode: it answers nothing meanwhile.
// Requests that reach it wait (each caller may give up on its ctx, as it
// would on a peer that stopped answering, and its request is then never
// taken), and are taken when it continues; its clock keeps running, so the
// grants it holds expire on their time, and timers of its clock that fall
// due are held and fire, late, when it continues (the simulated tables set
// none: they check expiry on each request). It does nothing if k is down or
// already stopped; a crash ends a stop.
func (n *Network) StopNode(k int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	nd := n.nodes[k]
	if nd.table == nil || nd.stopped != nil || n.closed {
		return
	}
	nd.stopped = make(chan struct{})
	if nd.scaled != nil {
		nd.scaled.Pause()
	}
}

// ContinueNode ends a stop of node k: its held timers fire, and the
// requests that waited reach its table.
func (n *Network) ContinueNode(k int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodes[k].cont()
}

// NodeStopped reports whether node k is stopped.
func (n *Network) NodeStopped(k int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[k].stopped != nil
}

// cont ends a stop of nd, if any; net.mu must be held.
func (nd *node) cont() {
	if nd.stopped == nil {
		return
	}
	if nd.scaled != nil {
		nd.scaled.Resume()
	}
	close(nd.stopped)
	nd.stopped = nil
}

// PauseClient freezes client c's traffic and its workload, but not its
// timers, until ResumeClient: its requests are not sent and replies to it
// not received, as over a network that stalls (TCP holds the bytes), and
// its workload waits at its next step (WaitResumed), as an application
// blocked on I/O would; its dsync instance's timers run on, so its
// refresher still finds its locks lost at their validity deadline and
// cancels their contexts on time. Calls blocked by the pause ignore their
// ctx meanwhile; on resume a call whose ctx is done returns its error. It
// does nothing if c is already paused. StopClient (Cluster.StopClient)
// stops the whole process, timers included.
func (n *Network) PauseClient(c int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cs := n.clients[c]; cs.paused == nil && !n.closed {
		cs.paused = make(chan struct{})
	}
}

// ResumeClient ends a pause of client c.
func (n *Network) ResumeClient(c int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cs := n.clients[c]; cs.paused != nil {
		close(cs.paused)
		cs.paused = nil
	}
}

// Paused reports whether client c is paused.
func (n *Network) Paused(c int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.clients[c].paused != nil
}

// StopClient freezes client c's traffic and its workload as PauseClient
// does, independently of a pause: each ends by its own call. It is the
// network's part of a stop of the whole process; Cluster.StopClient also
// stops the client's clock, which the network does not own. It does
// nothing if c is already stopped.
func (n *Network) StopClient(c int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cs := n.clients[c]; cs.stopped == nil && !cs.crashed && !n.closed {
		cs.stopped = make(chan struct{})
	}
}

// ContinueClient ends a stop of client c's traffic and workload.
func (n *Network) ContinueClient(c int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cs := n.clients[c]; cs.stopped != nil {
		close(cs.stopped)
		cs.stopped = nil
	}
}

// ClientStopped reports whether client c is stopped.
func (n *Network) ClientStopped(c int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.clients[c].stopped != nil
}

// WaitResumed blocks while client c is paused or stopped, ignoring any
// ctx: a paused process does nothing. Workloads call it before each step
// that a pause can freeze, such as a write to protected storage.
func (n *Network) WaitResumed(c int) {
	for {
		n.mu.Lock()
		ch := n.clients[c].frozen()
		n.mu.Unlock()
		if ch == nil {
			return
		}
		<-ch
	}
}

// frozen returns a channel closed when the client's current pause or stop
// ends, or nil if it is neither paused nor stopped; net.mu must be held.
func (cs *clientState) frozen() chan struct{} {
	if cs.paused != nil {
		return cs.paused
	}
	return cs.stopped
}

// release ends the client's pause and stop, if any; net.mu must be held.
func (cs *clientState) release() {
	if cs.paused != nil {
		close(cs.paused)
		cs.paused = nil
	}
	if cs.stopped != nil {
		close(cs.stopped)
		cs.stopped = nil
	}
}

// CrashClient kills client c's network: every call it makes from now on, and
// every reply to it, is lost at once with locker.ErrClosed. What its dsync
// instance held stays on the nodes until it expires.
func (n *Network) CrashClient(c int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cs := n.clients[c]
	cs.crashed = true
	cs.release()
}

// Link is one client's connection to one node: a locker.NetLocker whose
// calls suffer the faults the Network sets. Safe for concurrent use.
type Link struct {
	net          *Network
	client, node int
	name         string // String's

	// guarded by net.mu:
	legs   [2]legState // [0] toward the node, [1] toward the client
	rng    *rand.Rand
	online bool
	closed bool
}

var (
	_ locker.NetLocker = (*Link)(nil)
	_ locker.Lister    = (*Link)(nil)
	_ locker.Fencer    = (*Link)(nil)
	_ locker.Querier   = (*Link)(nil)

	_ locker.WaitReporter = (*Link)(nil)
)

// String names the link, e.g. "sim c0->n2".
func (l *Link) String() string { return l.name }

// IsOnline reports whether the last call reached the node and came back.
func (l *Link) IsOnline() bool {
	l.net.mu.Lock()
	defer l.net.mu.Unlock()
	return l.online
}

// Close makes later calls on this link fail with locker.ErrClosed. It does
// not touch the node.
func (l *Link) Close() error {
	l.net.mu.Lock()
	defer l.net.mu.Unlock()
	l.closed = true
	return nil
}

// Lock implements locker.NetLocker.
func (l *Link) Lock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return call(ctx, l, "lock", args.UID, func(t *locker.Local) (locker.Reply, error) { return t.Lock(ctx, args) })
}

// RLock implements locker.NetLocker.
func (l *Link) RLock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return call(ctx, l, "rlock", args.UID, func(t *locker.Local) (locker.Reply, error) { return t.RLock(ctx, args) })
}

// Unlock implements locker.NetLocker.
func (l *Link) Unlock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return call(ctx, l, "unlock", args.UID, func(t *locker.Local) (locker.Reply, error) { return t.Unlock(ctx, args) })
}

// RUnlock implements locker.NetLocker.
func (l *Link) RUnlock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return call(ctx, l, "runlock", args.UID, func(t *locker.Local) (locker.Reply, error) { return t.RUnlock(ctx, args) })
}

// Refresh implements locker.NetLocker.
func (l *Link) Refresh(ctx context.Context, args locker.RefreshArgs) (locker.RefreshReply, error) {
	return call(ctx, l, "refresh", strings.Join(args.UIDs, " "), func(t *locker.Local) (locker.RefreshReply, error) { return t.Refresh(ctx, args) })
}

// ForceUnlock implements locker.NetLocker.
func (l *Link) ForceUnlock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return call(ctx, l, "force-unlock", args.UID, func(t *locker.Local) (locker.Reply, error) { return t.ForceUnlock(ctx, args) })
}

// List implements locker.Lister through the same faulty link.
func (l *Link) List(ctx context.Context, args locker.ListArgs) (locker.EntryList, error) {
	return call(ctx, l, "list", args.AfterResource+" "+args.AfterUID, func(t *locker.Local) (locker.EntryList, error) { return t.List(ctx, args) })
}

// RaiseFence implements locker.Fencer through the same faulty link, so that
// dsync's FencingToken meets the faults its lock calls meet.
func (l *Link) RaiseFence(ctx context.Context, args locker.FenceArgs) (locker.FenceReply, error) {
	return call(ctx, l, "fence", strconv.FormatUint(args.Floor, 10), func(t *locker.Local) (locker.FenceReply, error) { return t.RaiseFence(ctx, args) })
}

// Query implements locker.Querier through the same faulty link, so that
// dsync's Barrier and Cond meet the faults its lock calls meet.
func (l *Link) Query(ctx context.Context, args locker.QueryArgs) (locker.QueryReply, error) {
	return call(ctx, l, "query", strings.Join(args.Resources, " "), func(t *locker.Local) (locker.QueryReply, error) { return t.Query(ctx, args) })
}

// Version implements locker.Versioner through the same faulty link, so
// that dsync's optimistic reads meet the faults its lock calls meet.
func (l *Link) Version(ctx context.Context, args locker.VersionArgs) (locker.VersionReply, error) {
	return call(ctx, l, "version", strings.Join(args.Resources, " "), func(t *locker.Local) (locker.VersionReply, error) { return t.Version(ctx, args) })
}

// Waits implements locker.WaitReporter through the same faulty link, so
// that dsync's deadlock detection across processes meets the faults its lock
// calls meet: a read of the edges, or a withdrawal of a wait, may be lost,
// delayed, refused by a node that is down, or never leave a crashed client.
func (l *Link) Waits(ctx context.Context, args locker.WaitsArgs) (locker.WaitsReply, error) {
	return call(ctx, l, "waits", args.Withdraw+" "+strings.Join(args.Resources, " "), func(t *locker.Local) (locker.WaitsReply, error) { return t.Waits(ctx, args) })
}

// leg is what one message needs to know about its trip, decided under
// net.mu when it leaves.
type leg struct {
	lost  bool
	delay time.Duration
}

// plan decides the fate of one message in direction d (0 toward the node);
// net.mu must be held.
func (l *Link) plan(d int) leg {
	s := l.legs[d]
	lg := leg{lost: s.cut, delay: s.delay}
	if s.drop > 0 && l.rng.Float64() < s.drop {
		lg.lost = true
	}
	if s.jitter > 0 {
		lg.delay += time.Duration(l.rng.Int64N(int64(s.jitter)))
	}
	return lg
}

// call carries one call over l: request leg, effect on the node, reply leg.
// key identifies its arguments among the calls of op on l (depart).
func call[R any](ctx context.Context, l *Link, op, key string, do func(*locker.Local) (R, error)) (R, error) {
	var zero R
	n := l.net
	fail := func(cause error) (R, error) {
		n.mu.Lock()
		l.online = false
		n.mu.Unlock()
		return zero, &callError{l, op, cause}
	}
	if err := ctx.Err(); err != nil {
		return zero, &callError{l, op, err}
	}
	// The request leaves when the client is not frozen.
	if err := l.waitClient(); err != nil {
		return fail(err)
	}
	n.mu.Lock()
	closed := l.closed
	n.mu.Unlock()
	if closed {
		return zero, &callError{l, op, locker.ErrClosed}
	}
	req, err := l.depart(0, op, key)
	if err != nil {
		return fail(err)
	}

	if req.lost {
		return fail(l.lost(ctx))
	}
	if err := l.sleep(ctx, req.delay); err != nil {
		return fail(err)
	}
	// The request is taken when the node is not stopped.
	if err := l.waitNode(ctx); err != nil {
		return fail(err)
	}

	n.mu.Lock()
	nd := n.nodes[l.node]
	table, epoch := nd.table, nd.epoch
	rep := l.plan(1)
	n.mu.Unlock()
	if table == nil {
		return fail(fmt.Errorf("%w: node n%d is down (connection refused)", locker.ErrOffline, l.node))
	}
	// An error from the table (invalid arguments, busy) is a reply like any
	// other and travels back over the reply leg.
	res, err := do(table)

	if rep.lost {
		return fail(l.lost(ctx))
	}
	if serr := l.sleep(ctx, rep.delay); serr != nil {
		return fail(serr)
	}
	n.mu.Lock()
	crashed := nd.epoch != epoch
	n.mu.Unlock()
	if crashed {
		return fail(fmt.Errorf("%w: node n%d crashed before its reply arrived (connection reset)", locker.ErrOffline, l.node))
	}
	// The reply is received when the client is not frozen.
	if werr := l.waitClient(); werr != nil {
		return fail(werr)
	}
	if cerr := ctx.Err(); cerr != nil {
		return fail(fmt.Errorf("%w: reply arrived after the caller gave up: %w", locker.ErrOffline, cerr))
	}
	n.mu.Lock()
	l.online = true
	n.mu.Unlock()
	if err != nil {
		return zero, &callError{l, op, err}
	}
	return res, nil
}

// callError is the error of a call over a link, "sim c0->n2: lock: " and
// its cause, put together only when it is read: most are never read.
type callError struct {
	link *Link
	op   string
	err  error
}

func (e *callError) Error() string { return e.link.name + ": " + e.op + ": " + e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// waitClient blocks while the client is paused or stopped and fails if it
// crashed.
func (l *Link) waitClient() error {
	n := l.net
	for {
		n.mu.Lock()
		cs := n.clients[l.client]
		crashed, frozen := cs.crashed, cs.frozen()
		n.mu.Unlock()
		if crashed {
			return fmt.Errorf("%w: client c%d crashed", locker.ErrClosed, l.client)
		}
		if frozen == nil {
			return nil
		}
		select {
		case <-frozen:
		case <-n.done:
			return fmt.Errorf("%w: network closed", locker.ErrClosed)
		}
	}
}

// waitNode blocks while the link's node is stopped: a request that reached
// it waits to be taken until the node continues, or until the caller gives
// up.
func (l *Link) waitNode(ctx context.Context) error {
	n := l.net
	for {
		n.mu.Lock()
		stopped := n.nodes[l.node].stopped
		n.mu.Unlock()
		if stopped == nil {
			return nil
		}
		select {
		case <-stopped:
		case <-ctx.Done():
			return fmt.Errorf("%w: node n%d is stopped: no answer: %w", locker.ErrOffline, l.node, ctx.Err())
		case <-n.done:
			return fmt.Errorf("%w: network closed", locker.ErrClosed)
		}
	}
}

// lost waits, for a message that will never arrive, until the caller gives up.
func (l *Link) lost(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: message lost: %w", locker.ErrOffline, ctx.Err())
	case <-l.net.done:
		return fmt.Errorf("%w: network closed", locker.ErrClosed)
	}
}

// sleep waits out a message's delay on the network's clock.
func (l *Link) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := l.net.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", locker.ErrOffline, ctx.Err())
	case <-l.net.done:
		return fmt.Errorf("%w: network closed", locker.ErrClosed)
	}
}
