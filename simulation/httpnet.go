package simulation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// HTTPConfig configures an HTTPNetwork. The zero value of each field is a
// documented default.
type HTTPConfig struct {
	// Nodes and Clients are how many of each. If zero, 1.
	Nodes, Clients int
	// Node configures every node table (on the real clock).
	Node locker.Config
	// CallTimeout is each rest.Client's ClientConfig.CallTimeout. If zero,
	// the rest default.
	CallTimeout time.Duration
	// Delay and Jitter delay every chunk a proxy forwards. If zero, none.
	Delay, Jitter time.Duration
	// Seed seeds the proxies' drops and jitter.
	Seed uint64
	// Host is the address nodes and proxies listen on. If empty,
	// "127.0.0.1". The netns tier gives each node its own namespace's
	// address through ListenNode instead.
	Host string
	// ListenNode, if set, opens node k's listener (the netns tier starts
	// nodes inside their own network namespaces with it). If nil, nodes
	// listen on Host.
	ListenNode func(k int) (net.Listener, error)
	// Dial, if set, is how proxies connect to a node (the netns tier dials
	// from the clients' namespace). If nil, net.DialTimeout.
	Dial func(addr string, timeout time.Duration) (net.Conn, error)
	// Secret, if set, turns authentication on: every node serves with it as
	// its lock secret (rest.ServerConfig.Secret) and every rest client signs
	// with it, so each client asks each node's hello and signs for that node
	// and that start of it, as in production. At least rest.MinSecretLen
	// bytes. If empty, nodes and clients run Insecure.
	Secret string
	// Logger receives what the nodes' HTTP servers log
	// (rest.ServerConfig.Logger) and what the rest clients log of nodes
	// going offline and answering again (rest.ClientConfig.Logger). If
	// nil, slog.Default().
	Logger *slog.Logger
}

// HTTPNetwork runs every node as a real rest.Server over a real
// *locker.Local, and gives every client a rest.Client per node whose
// connections pass through a TCP proxy of their own. The proxies inject the
// faults: a cut or dropped message blackholes the connection (a TCP stream
// that lost data stalls; the caller times out), a delay holds each chunk, a
// reset (ResetLink) aborts connections with RST, a crashed node refuses
// connections, a paused client's bytes wait in its proxies. Everything runs
// on the real clock.
type HTTPNetwork struct {
	cfg HTTPConfig

	mu      sync.Mutex // guards the fields below
	nodes   []*httpNode
	proxies [][]*proxy // [client][node]
	clients [][]*rest.Client
	paused  []chan struct{} // per client: non-nil while paused
	closed  bool
}

type httpNode struct {
	table *locker.Local
	srv   *rest.Server
	addr  string // "" while down
}

var _ Fabric = (*HTTPNetwork)(nil)

// NewHTTPNetwork starts the nodes, the proxies and the clients.
func NewHTTPNetwork(cfg HTTPConfig) (*HTTPNetwork, error) {
	cfg.Nodes, cfg.Clients = max(cfg.Nodes, 1), max(cfg.Clients, 1)
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	h := &HTTPNetwork{cfg: cfg, paused: make([]chan struct{}, cfg.Clients)}
	for k := range cfg.Nodes {
		h.nodes = append(h.nodes, &httpNode{})
		if err := h.startNode(k, FirstStart(h.cfg.Node)); err != nil {
			h.Close()
			h.CloseClients()
			return nil, err
		}
	}
	for c := range cfg.Clients {
		var prow []*proxy
		var crow []*rest.Client
		for k := range cfg.Nodes {
			p, err := newProxy(cfg.Host, func() string { return h.nodeAddr(k) }, cfg.Dial,
				rand.New(rand.NewPCG(cfg.Seed, uint64(c)<<32|uint64(k))), legState{delay: cfg.Delay, jitter: cfg.Jitter})
			if err != nil {
				h.Close()
				h.CloseClients()
				return nil, err
			}
			prow = append(prow, p)
			rc, err := rest.NewClient("http://"+p.addr(), rest.ClientConfig{
				Secret: cfg.Secret, Insecure: cfg.Secret == "", CallTimeout: cfg.CallTimeout, Logger: cfg.Logger,
			})
			if err != nil {
				h.Close()
				h.CloseClients()
				return nil, err
			}
			crow = append(crow, rc)
		}
		h.mu.Lock()
		h.proxies = append(h.proxies, prow)
		h.clients = append(h.clients, crow)
		h.mu.Unlock()
	}
	return h, nil
}

func (h *HTTPNetwork) nodeAddr(k int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nodes[k].addr
}

// startNode starts node k with a table configured by cfg, on a new
// listener.
func (h *HTTPNetwork) startNode(k int, cfg locker.Config) error {
	var ln net.Listener
	var err error
	if h.cfg.ListenNode != nil {
		ln, err = h.cfg.ListenNode(k)
	} else {
		ln, err = net.Listen("tcp", net.JoinHostPort(h.cfg.Host, "0"))
	}
	if err != nil {
		return fmt.Errorf("simulation: node %d: %w", k, err)
	}
	table := locker.New(cfg)
	srv, err := rest.NewServer(table, rest.ServerConfig{
		Secret: h.cfg.Secret, Insecure: h.cfg.Secret == "", ShutdownTimeout: time.Second, Logger: h.cfg.Logger,
	})
	if err != nil {
		ln.Close()
		table.Close()
		return err
	}
	go srv.Serve(ln)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nodes[k] = &httpNode{table: table, srv: srv, addr: ln.Addr().String()}
	return nil
}

// Lockers returns client c's rest clients, one per node.
func (h *HTTPNetwork) Lockers(c int) []locker.NetLocker {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]locker.NetLocker, len(h.clients[c]))
	for k, rc := range h.clients[c] {
		out[k] = rc
	}
	return out
}

// eachProxy applies f to the proxies of client c and node k (-1: all).
func (h *HTTPNetwork) eachProxy(c, k int, f func(*proxy)) {
	h.mu.Lock()
	var ps []*proxy
	for ci, row := range h.proxies {
		for ki, p := range row {
			if (c < 0 || ci == c) && (k < 0 || ki == k) {
				ps = append(ps, p)
			}
		}
	}
	h.mu.Unlock()
	for _, p := range ps {
		f(p)
	}
}

// Cut blackholes the link's traffic in direction dir until Heal.
func (h *HTTPNetwork) Cut(c, k int, dir Direction) {
	h.eachProxy(c, k, func(p *proxy) { p.set(dir, func(s *legState) { s.cut = true }) })
}

// Isolate cuts node k off from every client.
func (h *HTTPNetwork) Isolate(k int) { h.Cut(-1, k, Both) }

// SetDrop blackholes a connection at each chunk with probability p.
func (h *HTTPNetwork) SetDrop(c, k int, dir Direction, p float64) {
	h.eachProxy(c, k, func(x *proxy) { x.set(dir, func(s *legState) { s.drop = p }) })
}

// SetDelay delays each forwarded chunk.
func (h *HTTPNetwork) SetDelay(c, k int, dir Direction, fixed, jitter time.Duration) {
	h.eachProxy(c, k, func(x *proxy) { x.set(dir, func(s *legState) { s.delay, s.jitter = fixed, jitter }) })
}

// ResetLink aborts every open connection of the link with a TCP reset.
func (h *HTTPNetwork) ResetLink(c, k int) {
	h.eachProxy(c, k, func(p *proxy) { p.resetAll() })
}

// Heal restores every link and resets the connections that a cut or drop
// had stalled.
func (h *HTTPNetwork) Heal() {
	h.eachProxy(-1, -1, func(p *proxy) {
		p.set(Both, func(s *legState) { *s = legState{delay: h.cfg.Delay, jitter: h.cfg.Jitter} })
		p.resetStalled()
	})
}

// CrashNode stops node k's server and loses its table; its proxies refuse
// new connections and reset open ones.
func (h *HTTPNetwork) CrashNode(k int) {
	h.mu.Lock()
	nd := h.nodes[k]
	h.nodes[k] = &httpNode{}
	h.mu.Unlock()
	h.eachProxy(-1, k, func(p *proxy) { p.resetAll() })
	if nd.srv != nil {
		nd.srv.Close()
	}
	if nd.table != nil {
		nd.table.Close()
	}
}

// RestartNode starts node k again with an empty table on a new port.
func (h *HTTPNetwork) RestartNode(k int) {
	h.CrashNode(k)
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return
	}
	if err := h.startNode(k, h.cfg.Node); err != nil {
		panic(fmt.Sprintf("simulation: restart node %d: %v", k, err))
	}
}

// describe says, for a report, what each node's table holds of resource
// (the first 8 digits of each grant's tag, locker.UIDTag, not of its UID:
// a UID is a capability; w or r) and whether client c's rest client finds
// the node online: "n0 online {3f2a9c1b w}, n1 offline {}, n2 down".
func (h *HTTPNetwork) describe(resource string, c int) string {
	h.mu.Lock()
	nodes := slices.Clone(h.nodes)
	var clients []*rest.Client
	if c < len(h.clients) {
		clients = h.clients[c]
	}
	h.mu.Unlock()
	parts := make([]string, len(nodes))
	for k, nd := range nodes {
		state := "offline"
		if k < len(clients) && clients[k].IsOnline() {
			state = "online"
		}
		if nd.table == nil {
			parts[k] = fmt.Sprintf("n%d down", k)
			continue
		}
		var held []string
		for _, e := range entriesOf(nd.table, resource) {
			mode := "r"
			if e.Write {
				mode = "w"
			}
			held = append(held, fmt.Sprintf("%.8s %s", locker.UIDTag(e.UID), mode))
		}
		parts[k] = fmt.Sprintf("n%d %s {%s}", k, state, strings.Join(held, ", "))
	}
	return strings.Join(parts, ", ")
}

// entriesOf returns the entries table holds of resource, read from the
// listing from resource's place in it on, a page at a time.
func entriesOf(table *locker.Local, resource string) []locker.Entry {
	const pageSize = 64
	var held []locker.Entry
	args := locker.ListArgs{AfterResource: resource, Max: pageSize}
	for {
		page, err := table.List(context.Background(), args)
		if err != nil {
			return held
		}
		for _, e := range page.Entries {
			if e.Resource != resource {
				return held
			}
			held = append(held, e)
		}
		if !page.More || len(page.Entries) == 0 {
			return held
		}
		args = page.Next(pageSize)
	}
}

// NodeUp reports whether node k runs.
func (h *HTTPNetwork) NodeUp(k int) bool { return h.nodeAddr(k) != "" }

// PauseClient holds every byte to and from client c in its proxies.
func (h *HTTPNetwork) PauseClient(c int) {
	h.mu.Lock()
	if h.paused[c] != nil || h.closed {
		h.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	h.paused[c] = ch
	h.mu.Unlock()
	h.eachProxy(c, -1, func(p *proxy) { p.pause(ch) })
}

// ResumeClient releases what client c's proxies held.
func (h *HTTPNetwork) ResumeClient(c int) {
	h.mu.Lock()
	ch := h.paused[c]
	h.paused[c] = nil
	h.mu.Unlock()
	if ch != nil {
		h.eachProxy(c, -1, func(p *proxy) { p.pause(nil) })
		close(ch)
	}
}

// WaitResumed blocks while client c is paused.
func (h *HTTPNetwork) WaitResumed(c int) {
	h.mu.Lock()
	ch := h.paused[c]
	h.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// CrashClient makes client c's proxies refuse and reset every connection.
func (h *HTTPNetwork) CrashClient(c int) {
	h.ResumeClient(c)
	h.eachProxy(c, -1, func(p *proxy) { p.kill() })
}

// Close stops the proxies, the servers and the tables and resumes paused
// clients. The rest clients stay open for dsync's last calls (which fail);
// CloseClients closes them.
func (h *HTTPNetwork) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	paused := h.paused
	h.paused = make([]chan struct{}, len(paused))
	h.mu.Unlock()
	for _, ch := range paused {
		if ch != nil {
			close(ch)
		}
	}
	h.eachProxy(-1, -1, func(p *proxy) { p.close() })
	for k := range h.nodes {
		h.CrashNode(k)
	}
}

// CloseClients closes every rest client.
func (h *HTTPNetwork) CloseClients() {
	h.mu.Lock()
	clients := h.clients
	h.clients = nil
	h.mu.Unlock()
	for _, row := range clients {
		for _, rc := range row {
			rc.Close()
		}
	}
}

// proxy forwards one client's connections to one node, injecting faults.
type proxy struct {
	ln     net.Listener
	target func() string // the node's address, "" while it is down
	dial   func(addr string, timeout time.Duration) (net.Conn, error)
	rng    *rand.Rand

	mu     sync.Mutex // guards the fields below and rng
	legs   [2]legState
	hold   chan struct{} // non-nil while the client is paused: forwarding waits for it to close
	conns  map[*pconn]struct{}
	dead   bool // the client crashed: refuse everything
	closed bool
	wg     sync.WaitGroup
}

// pconn is one proxied connection: the client's side and the node's.
type pconn struct {
	client, node net.Conn
	stalled      bool // a cut or drop blackholed it; guarded by proxy.mu
}

func newProxy(host string, target func() string, dial func(string, time.Duration) (net.Conn, error), rng *rand.Rand, leg legState) (*proxy, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	if dial == nil {
		dial = func(addr string, timeout time.Duration) (net.Conn, error) {
			return net.DialTimeout("tcp", addr, timeout)
		}
	}
	p := &proxy{ln: ln, target: target, dial: dial, rng: rng, conns: map[*pconn]struct{}{}}
	p.legs[0], p.legs[1] = leg, leg
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) set(dir Direction, f func(*legState)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if dir&ToNode != 0 {
		f(&p.legs[0])
	}
	if dir&FromNode != 0 {
		f(&p.legs[1])
	}
}

func (p *proxy) pause(ch chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = ch
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		cc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.dead || p.closed
		p.mu.Unlock()
		addr := p.target()
		if refuse || addr == "" {
			abort(cc)
			continue
		}
		nc, err := p.dial(addr, time.Second)
		if err != nil {
			abort(cc)
			continue
		}
		pc := &pconn{client: cc, node: nc}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			abort(cc)
			abort(nc)
			continue
		}
		p.conns[pc] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pump(pc, cc, nc, 0)
		go p.pump(pc, nc, cc, 1)
	}
}

// pump copies src to dst for direction d (0 toward the node), applying the
// leg's faults to each chunk.
func (p *proxy) pump(pc *pconn, src, dst net.Conn, d int) {
	defer p.wg.Done()
	defer p.drop(pc)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			hold := p.hold
			p.mu.Unlock()
			if hold != nil {
				<-hold // a paused client's bytes wait (Close closes it too)
			}
			p.mu.Lock()
			s := p.legs[d]
			if s.cut || (s.drop > 0 && p.rng.Float64() < s.drop) {
				pc.stalled = true
			}
			stalled := pc.stalled
			delay := s.delay
			if s.jitter > 0 {
				delay += time.Duration(p.rng.Int64N(int64(s.jitter)))
			}
			p.mu.Unlock()
			if stalled {
				continue // blackholed: read and discard until the connection ends
			}
			if delay > 0 {
				time.Sleep(delay)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
					return
				}
			}
			return
		}
	}
}

// drop forgets pc and closes both sides once either pump ends.
func (p *proxy) drop(pc *pconn) {
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
	pc.client.Close()
	pc.node.Close()
}

// resetAll aborts every connection with a reset.
func (p *proxy) resetAll() {
	p.mu.Lock()
	var all []*pconn
	for pc := range p.conns {
		all = append(all, pc)
	}
	p.mu.Unlock()
	for _, pc := range all {
		abort(pc.client)
		abort(pc.node)
	}
}

// resetStalled aborts the connections a cut or drop blackholed, as their
// peers' timeouts eventually would.
func (p *proxy) resetStalled() {
	p.mu.Lock()
	var stalled []*pconn
	for pc := range p.conns {
		if pc.stalled {
			stalled = append(stalled, pc)
		}
	}
	p.mu.Unlock()
	for _, pc := range stalled {
		abort(pc.client)
		abort(pc.node)
	}
}

func (p *proxy) kill() {
	p.mu.Lock()
	p.dead = true
	p.mu.Unlock()
	p.resetAll()
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.hold = nil // a pump already waiting is released by HTTPNetwork.Close
	p.mu.Unlock()
	p.ln.Close()
	p.resetAll()
	p.wg.Wait()
}

// abort closes c with a TCP reset rather than a FIN.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
