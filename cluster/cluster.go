// Package cluster starts a cluster of lock nodes on this machine: n lock
// tables, each served over authenticated HTTP on its own loopback port, and
// hands out clients for them. The demo, the integration tests and the
// benchmarks use it; production runs one node per server (cmd/dsync-node).
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/dsync-go/dsync/layout"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// Config configures a Cluster. The zero value gives one node with the
// defaults of locker.Config and a random secret.
type Config struct {
	// Nodes is the number of nodes. If zero, 1.
	Nodes int
	// Table configures every node's lock table.
	Table locker.Config
	// Secret is shared by the nodes and their clients (the lock role). If
	// empty, a random one.
	Secret string
	// AdminSecret is the nodes' admin secret, which AdminLockers sign with.
	// If empty, a random one.
	AdminSecret string
	// Client configures the clients returned by Lockers, except Secret.
	Client rest.ClientConfig
	// StateDir holds each node's boot record (locker.Config.StateDir), in a
	// directory per node, so that a node started for the first time grants
	// at once and a node restarted while it held grants waits its grace
	// period. If empty, a temporary directory that Close removes. A
	// Table.StateDir is ignored.
	StateDir string
	// SetSize, if set, makes the nodes lock sets of SetSize nodes each, in
	// order (Nodes must be a multiple of it): every node is told the
	// fingerprint of that layout of their endpoints
	// (rest.ServerConfig.Layout), and LockerSets gives clients in those
	// sets, for dsync.NewSets. If zero, the nodes are one set and are told
	// no layout.
	SetSize int
}

// Cluster is a set of running nodes. Its methods are safe for concurrent
// use.
type Cluster struct {
	cfg     Config
	tempDir bool          // cfg.StateDir was made by Start, for Close to remove
	layout  layout.Layout // of the endpoints, in sets of cfg.SetSize; nil Sets if SetSize is 0

	mu    sync.Mutex // guards nodes
	nodes []*Node
}

// Node is one running node.
type Node struct {
	Addr  string // host:port it listens on
	dir   string // its state directory
	table *locker.Local
	srv   *rest.Server
	done  chan error // Serve's result
}

// Table returns the node's lock table, or nil while the node is stopped.
func (n *Node) Table() *locker.Local { return n.table }

// Start starts the nodes of cfg on 127.0.0.1, each on a free port.
func Start(cfg Config) (*Cluster, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 1
	}
	if cfg.Nodes < 0 {
		return nil, fmt.Errorf("cluster: %d nodes", cfg.Nodes)
	}
	if cfg.Secret == "" {
		cfg.Secret = randomSecret()
	}
	if cfg.AdminSecret == "" {
		cfg.AdminSecret = randomSecret()
	}
	c := &Cluster{cfg: cfg}
	if c.cfg.StateDir == "" {
		dir, err := os.MkdirTemp("", "dsync-cluster-")
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		c.cfg.StateDir, c.tempDir = dir, true
	}
	// Listen first: the layout is of the nodes' endpoints.
	lns := make([]net.Listener, cfg.Nodes)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, ln := range lns[:i] {
				ln.Close()
			}
			c.Close()
			return nil, fmt.Errorf("cluster: listen: %w", err)
		}
		lns[i] = ln
	}
	if cfg.SetSize != 0 {
		eps := make([]string, len(lns))
		for i, ln := range lns {
			eps[i] = "http://" + ln.Addr().String()
		}
		l, err := layout.Parse(eps, cfg.SetSize)
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			c.Close()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		c.layout = l
	}
	for i, ln := range lns {
		n, err := c.startNode(ln, filepath.Join(c.cfg.StateDir, fmt.Sprint("node-", i)))
		if err != nil {
			for _, ln := range lns[i+1:] {
				ln.Close()
			}
			c.Close()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	return c, nil
}

// startNode serves a new node on ln, with its state in dir.
func (c *Cluster) startNode(ln net.Listener, dir string) (*Node, error) {
	tc := c.cfg.Table
	tc.StateDir = dir
	table, err := locker.Open(tc)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	scfg := rest.ServerConfig{Secret: c.cfg.Secret, AdminSecret: c.cfg.AdminSecret}
	if c.layout.Sets != nil {
		scfg.Layout = c.layout.Fingerprint()
	}
	srv, err := rest.NewServer(table, scfg)
	if err != nil {
		ln.Close()
		table.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n := &Node{Addr: ln.Addr().String(), dir: dir, table: table, srv: srv, done: make(chan error, 1)}
	go func() { n.done <- srv.Serve(ln) }()
	return n, nil
}

// Layout returns the nodes' layout of lock sets: one set of every node
// unless Config.SetSize is set.
func (c *Cluster) Layout() layout.Layout {
	if c.layout.Sets != nil {
		return c.layout
	}
	l, _ := layout.Parse(c.Endpoints(), 0)
	return l
}

// LockerSets returns a new HTTP client for every node, signing for the
// lock role, in the nodes' lock sets (see Config.SetSize), for
// dsync.NewSets, once it has checked with layout.Check that the nodes have
// the cluster's layout; with SetSize, the clients check it again at every
// restart of a node (rest.ClientConfig.Layout). Close them when done.
func (c *Cluster) LockerSets(ctx context.Context) ([][]locker.NetLocker, error) {
	l := c.Layout()
	cc := c.cfg.Client
	cc.Secret = c.cfg.Secret
	if c.layout.Sets != nil {
		cc.Layout = l.Fingerprint() // and refuse, from then on, a node restarted with another
	}
	ls, err := c.lockers(cc)
	if err != nil {
		return nil, err
	}
	if err := layout.Check(ctx, l, ls); err != nil {
		for _, lk := range ls {
			lk.Close()
		}
		return nil, fmt.Errorf("cluster: %w", err)
	}
	size := l.SetSize()
	sets := make([][]locker.NetLocker, 0, len(l.Sets))
	for i := 0; i < len(ls); i += size {
		sets = append(sets, ls[i:i+size:i+size])
	}
	return sets, nil
}

// Nodes returns the running nodes, in order.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// randomSecret returns 32 random hex digits.
func randomSecret() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Secret returns the secret the nodes and their clients share.
func (c *Cluster) Secret() string { return c.cfg.Secret }

// AdminSecret returns the nodes' admin secret.
func (c *Cluster) AdminSecret() string { return c.cfg.AdminSecret }

// Endpoints returns every node's URL.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, n := range c.Nodes() {
		eps = append(eps, "http://"+n.Addr)
	}
	return eps
}

// Lockers returns a new HTTP client for every node, as one client process
// would hold them, signing for the lock role. Close them when done.
func (c *Cluster) Lockers() ([]locker.NetLocker, error) {
	cc := c.cfg.Client
	cc.Secret = c.cfg.Secret
	return c.lockers(cc)
}

// AdminLockers returns a new HTTP client for every node that signs for the
// admin role: it may list the nodes' locks and force-unlock every holder of
// a resource. Close them when done.
func (c *Cluster) AdminLockers() ([]locker.NetLocker, error) {
	cc := c.cfg.Client
	cc.AdminSecret = c.cfg.AdminSecret
	return c.lockers(cc)
}

func (c *Cluster) lockers(cc rest.ClientConfig) ([]locker.NetLocker, error) {
	var ls []locker.NetLocker
	for _, ep := range c.Endpoints() {
		l, err := rest.NewClient(ep, cc)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("cluster: %w", err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// Stop stops node i: its table and every lock in it are lost, as in a
// crash, and its boot record says whether it held a live grant, so that
// Restart brings it back on the same address with a grace period if it
// did.
func (c *Cluster) Stop(i int) error {
	c.mu.Lock()
	n := c.nodes[i]
	c.mu.Unlock()
	if n.srv == nil {
		return fmt.Errorf("cluster: node %d is already stopped", i)
	}
	err := n.srv.Close()
	<-n.done
	err = errors.Join(err, n.table.Close())
	n.srv, n.table = nil, nil
	return err
}

// Restart starts node i again, with an empty table, on its old address and
// with its old state directory.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	old := c.nodes[i]
	c.mu.Unlock()
	if old.srv != nil {
		return fmt.Errorf("cluster: node %d is running", i)
	}
	ln, err := net.Listen("tcp", old.Addr)
	if err != nil {
		return fmt.Errorf("cluster: listen: %w", err)
	}
	n, err := c.startNode(ln, old.dir)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
	return nil
}

// Close stops every running node, and removes the state directory if Start
// made it.
func (c *Cluster) Close() error {
	var errs []error
	for i, n := range c.Nodes() {
		if n.srv != nil {
			errs = append(errs, c.Stop(i))
		}
	}
	if c.tempDir {
		errs = append(errs, os.RemoveAll(c.cfg.StateDir))
	}
	return errors.Join(errs...)
}
