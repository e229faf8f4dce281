package loadgen

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// DsyncTarget drives our quorum client over a Cluster. It implements Target
// and Counters.
type DsyncTarget struct {
	ds       *dsync.Dsync
	cluster  *Cluster
	interval time.Duration
	cfg      DsyncConfig
}

// DsyncConfig configures the quorum client of a DsyncTarget. The zero value
// of each field means dsync's own default.
type DsyncConfig struct {
	RefreshInterval    time.Duration
	RetryMin, RetryMax time.Duration
	// SetSize, if set, makes the client lock through lock sets
	// (dsync.NewSets) of SetSize nodes each, in the cluster's order; the
	// cluster's nodes must be a multiple of it. If zero, every lock goes to
	// every node (dsync.New).
	SetSize int
	// Spread, if more than 1, makes every lock cover its resource and
	// resources of its own in Spread−1 other sets (with SetSize): a lock
	// across Spread sets. If zero or 1, one resource.
	Spread int
}

// NewDsyncTarget returns a target whose quorum client talks to c's nodes. It
// does not own c; Close closes only the client.
func NewDsyncTarget(c *Cluster, cfg DsyncConfig) (*DsyncTarget, error) {
	dc := dsync.Config{
		RefreshInterval: cfg.RefreshInterval,
		Validity:        c.cfg.Validity,
		RetryMin:        cfg.RetryMin,
		RetryMax:        cfg.RetryMax,
		Owner:           "dsync-bench",
	}
	var ds *dsync.Dsync
	var err error
	ls := c.Lockers()
	switch {
	case cfg.SetSize < 0 || cfg.SetSize > 0 && len(ls)%cfg.SetSize != 0:
		return nil, fmt.Errorf("loadgen: %d nodes are not sets of %d", len(ls), cfg.SetSize)
	case cfg.SetSize > 0:
		var sets [][]locker.NetLocker
		for i := 0; i < len(ls); i += cfg.SetSize {
			sets = append(sets, ls[i:i+cfg.SetSize:i+cfg.SetSize])
		}
		ds, err = dsync.NewSets(sets, dc)
	default:
		ds, err = dsync.New(ls, dc)
	}
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if cfg.Spread > ds.Sets() {
		ds.Close()
		return nil, fmt.Errorf("loadgen: a lock across %d sets of %d", cfg.Spread, ds.Sets())
	}
	interval := cfg.RefreshInterval
	if interval == 0 {
		interval = 10 * time.Second // dsync's documented default
	}
	return &DsyncTarget{ds: ds, cluster: c, interval: interval, cfg: cfg}, nil
}

// Close closes the quorum client.
func (t *DsyncTarget) Close() error { return t.ds.Close() }

// Name returns "dsync/" and the transport, and the sets and spread if set:
// "dsync/http sets of 4", "dsync/http sets of 4 x2".
func (t *DsyncTarget) Name() string {
	name := "dsync/" + t.cluster.cfg.Transport
	if t.cfg.SetSize > 0 {
		name += fmt.Sprintf(" sets of %d", t.cfg.SetSize)
	}
	if t.cfg.Spread > 1 {
		name += fmt.Sprintf(" x%d", t.cfg.Spread)
	}
	return name
}

// NewSession returns a session that locks through the quorum client.
func (t *DsyncTarget) NewSession() (Session, error) {
	return &dsyncSession{ds: t.ds, spread: t.cfg.Spread}, nil
}

// WireBytes implements Counters.
func (t *DsyncTarget) WireBytes() int64 { return t.cluster.WireBytes() }

// RefreshRequests implements Counters.
func (t *DsyncTarget) RefreshRequests() int64 { return t.cluster.RefreshRequests() }

// Nodes implements Counters.
func (t *DsyncTarget) Nodes() int { return t.cluster.Nodes() }

// LockCalls implements Counters.
func (t *DsyncTarget) LockCalls() (calls, refused, failed int64) { return t.cluster.LockCalls() }

// Requests implements Counters.
func (t *DsyncTarget) Requests() (requests, ops int64) { return t.cluster.Requests() }

// RefreshInterval implements Counters.
func (t *DsyncTarget) RefreshInterval() time.Duration { return t.interval }

type dsyncSession struct {
	ds     *dsync.Dsync
	spread int
	names  []string // reused
	m      *dsync.DRWMutex
	write  bool
}

// spreadNames returns resource, and resources named after it in spread−1
// other sets: resource+"+"+i for the least i that falls into a set not
// yet covered.
func (s *dsyncSession) spreadNames(resource string) []string {
	s.names = append(s.names[:0], resource)
	sets := s.ds.Sets()
	covered := uint64(1) << (dsync.SetIndex(resource, sets) % 64)
	for i := 0; len(s.names) < s.spread; i++ {
		name := resource + "+" + strconv.Itoa(i)
		bit := uint64(1) << (dsync.SetIndex(name, sets) % 64)
		if covered&bit == 0 {
			covered |= bit
			s.names = append(s.names, name)
		}
	}
	return s.names
}

func (s *dsyncSession) Lock(ctx context.Context, resource string, write bool, timeout time.Duration) error {
	var m *dsync.DRWMutex
	if s.spread > 1 {
		m = dsync.NewDRWMutex(s.ds, s.spreadNames(resource)...)
	} else {
		m = dsync.NewDRWMutex(s.ds, resource)
	}
	var err error
	if write {
		_, err = m.GetLock(ctx, dsync.Options{Timeout: timeout})
	} else {
		_, err = m.GetRLock(ctx, dsync.Options{Timeout: timeout})
	}
	if err != nil {
		return err
	}
	s.m, s.write = m, write
	return nil
}

func (s *dsyncSession) Unlock(ctx context.Context) error {
	m := s.m
	s.m = nil
	if s.write {
		return m.Unlock(ctx)
	}
	return m.RUnlock(ctx)
}
