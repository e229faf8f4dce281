package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// Transports a Cluster can use between the quorum client and the nodes.
const (
	TransportLocal = "local" // the node tables called in-process, no encoding
	TransportHTTP  = "http"  // package rest over loopback TCP
	TransportHTTPS = "https" // package rest over loopback TCP with mutual TLS
)

// ClusterConfig says which nodes to start. The zero value of each field
// means its documented default.
type ClusterConfig struct {
	// Nodes is how many lock servers to start. If zero, 4.
	Nodes int
	// Transport is TransportLocal, TransportHTTP or TransportHTTPS. If
	// empty, TransportLocal.
	Transport string
	// Secret authenticates HTTP requests. If empty and Insecure is false, a
	// fixed benchmark secret is used.
	Secret string
	// Insecure turns authentication off (HTTP only).
	Insecure bool
	// Validity is how long a grant lives on a node without a refresh. If
	// zero, locker.DefaultValidity.
	Validity time.Duration
	// MaxInFlight and MaxBatch set the HTTP client's coalescing (see
	// rest.ClientConfig). If zero, rest's defaults.
	MaxInFlight, MaxBatch int
	// DisableBatching sends every HTTP call in its own request.
	DisableBatching bool
	// Metrics gives every HTTP node the Prometheus metrics of package
	// dsyncprom (rest.ServerConfig.Observer), each in a registry of its
	// own, so that their cost shows.
	Metrics bool
}

// Cluster is a set of lock servers running in this process, and one client
// locker per server, as the quorum client uses them.
type Cluster struct {
	cfg     ClusterConfig
	tables  []*locker.Local
	lockers []locker.NetLocker
	clients []*rest.Client // the HTTP clients, which count their calls themselves
	closers []func() error
	tls     *clusterTLS // TransportHTTPS: the certificates, made by the first node

	wireBytes atomic.Int64 // bytes through the servers' listeners
	calls     callCounts   // calls sent to the in-process nodes
}

// callCounts counts what the quorum client asked of the nodes.
type callCounts struct {
	refreshes atomic.Int64 // refresh requests
	locks     atomic.Int64 // Lock and RLock calls
	refused   atomic.Int64 // of those, answered with a refusal
	failed    atomic.Int64 // of those, failed with an error
}

// StartCluster starts cfg.Nodes node tables, serving them over
// cfg.Transport on 127.0.0.1 ports the system picks. Close stops them.
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 4
	}
	if cfg.Transport == "" {
		cfg.Transport = TransportLocal
	}
	if cfg.Nodes < 0 {
		return nil, fmt.Errorf("loadgen: %d nodes", cfg.Nodes)
	}
	c := &Cluster{cfg: cfg}
	for range cfg.Nodes {
		t := locker.New(locker.Config{Validity: cfg.Validity, QuietPeriod: locker.NoQuietPeriod}) // one process: nothing restarts
		c.tables = append(c.tables, t)
		c.closers = append(c.closers, t.Close)
		switch cfg.Transport {
		case TransportLocal:
			// The table has no counters of calls: count them on the way.
			c.lockers = append(c.lockers, &countingSubmitter{&countingLocker{NetLocker: t, n: &c.calls}, t})
		case TransportHTTP, TransportHTTPS:
			// The client counts its own traffic, once per request: a wrapper
			// counting every call would add its own cost to each.
			cl, err := c.serveHTTP(t)
			if err != nil {
				c.Close()
				return nil, err
			}
			c.clients = append(c.clients, cl)
			c.lockers = append(c.lockers, cl)
		default:
			c.Close()
			return nil, fmt.Errorf("loadgen: unknown transport %q (want %s, %s or %s)", cfg.Transport, TransportLocal, TransportHTTP, TransportHTTPS)
		}
	}
	return c, nil
}

// Lockers returns one client locker per node.
func (c *Cluster) Lockers() []locker.NetLocker { return c.lockers }

// Tables returns the nodes' tables.
func (c *Cluster) Tables() []*locker.Local { return c.tables }

// Nodes is how many nodes the cluster has.
func (c *Cluster) Nodes() int { return len(c.lockers) }

// WireBytes is how many bytes the servers received and sent; -1 for
// TransportLocal, which sends nothing over a wire.
func (c *Cluster) WireBytes() int64 {
	if c.cfg.Transport == TransportLocal {
		return -1
	}
	return c.wireBytes.Load()
}

// RefreshRequests is how many refresh requests the clients sent, in total
// over the nodes.
func (c *Cluster) RefreshRequests() int64 {
	if c.clients != nil {
		return c.clientStats().Refreshes
	}
	return c.calls.refreshes.Load()
}

// LockCalls returns how many Lock and RLock calls were sent to the nodes in
// total, how many of them the nodes refused and how many failed with an
// error. Without contention, refusals mean the client retried. Over HTTP,
// failed counts the failed calls of every kind, not only locks.
func (c *Cluster) LockCalls() (calls, refused, failed int64) {
	if c.clients != nil {
		s := c.clientStats()
		return s.Locks, s.Refused, s.Failed + s.NotSent
	}
	return c.calls.locks.Load(), c.calls.refused.Load(), c.calls.failed.Load()
}

// Requests returns how many requests the HTTP clients sent and how many
// operations they carried; -1, -1 for TransportLocal.
func (c *Cluster) Requests() (requests, ops int64) {
	if c.clients == nil {
		return -1, -1
	}
	s := c.clientStats()
	return s.Requests, s.Ops
}

// clientStats sums the HTTP clients' counts.
func (c *Cluster) clientStats() rest.ClientStats {
	var sum rest.ClientStats
	for _, cl := range c.clients {
		s := cl.Stats()
		sum.Requests += s.Requests
		sum.Batches += s.Batches
		sum.Ops += s.Ops
		sum.Locks += s.Locks
		sum.Refreshes += s.Refreshes
		sum.Refused += s.Refused
		sum.Failed += s.Failed
		sum.NotSent += s.NotSent
		sum.Polls += s.Polls
		sum.Events += s.Events
		sum.EventsInBatches += s.EventsInBatches
	}
	return sum
}

// Close stops the servers and closes the clients, last started first.
func (c *Cluster) Close() error {
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i]())
	}
	c.closers = nil
	return errors.Join(errs...)
}

// countingLocker counts the calls sent through a locker.
type countingLocker struct {
	locker.NetLocker
	n *callCounts
}

func (l *countingLocker) Refresh(ctx context.Context, args locker.RefreshArgs) (locker.RefreshReply, error) {
	l.n.refreshes.Add(1)
	return l.NetLocker.Refresh(ctx, args)
}

func (l *countingLocker) Lock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return l.count(l.NetLocker.Lock(ctx, args))
}

func (l *countingLocker) RLock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	return l.count(l.NetLocker.RLock(ctx, args))
}

func (l *countingLocker) count(r locker.Reply, err error) (locker.Reply, error) {
	l.n.locks.Add(1)
	switch {
	case err != nil:
		l.n.failed.Add(1)
	case !r.OK:
		l.n.refused.Add(1)
	}
	return r, err
}

// Version passes optimistic reads' version queries to the table
// (locker.Versioner), uncounted: they are neither locks nor refreshes.
func (l *countingLocker) Version(ctx context.Context, args locker.VersionArgs) (locker.VersionReply, error) {
	return l.NetLocker.(locker.Versioner).Version(ctx, args)
}

// countingSubmitter is a countingLocker over a locker.Submitter that counts
// submitted lock calls too.
type countingSubmitter struct {
	*countingLocker
	sub locker.Submitter
}

func (l *countingSubmitter) Submit(ctx context.Context, op locker.Op, args *locker.LockArgs, timeout time.Duration, sink locker.Sink, tag int) {
	if op != locker.OpLock && op != locker.OpRLock {
		l.sub.Submit(ctx, op, args, timeout, sink, tag)
		return
	}
	cs := countingSinks.Get().(*countingSink)
	cs.inner, cs.l = sink, l.countingLocker
	l.sub.Submit(ctx, op, args, timeout, cs, tag)
}

// countingSink counts the outcome of one submitted lock call and passes it
// on. Sinks are pooled, so that counting adds no allocation per call.
type countingSink struct {
	inner locker.Sink
	l     *countingLocker
}

var countingSinks = sync.Pool{New: func() any { return new(countingSink) }}

func (cs *countingSink) Done(tag int, r locker.Reply, err error) {
	inner, l := cs.inner, cs.l
	*cs = countingSink{}
	countingSinks.Put(cs)
	l.count(r, err)
	inner.Done(tag, r, err)
}
