package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/dsync-go/dsync/dsync"
)

// DsyncTarget drives our quorum client over a Cluster. It implements Target
// and Counters.
type DsyncTarget struct {
	ds       *dsync.Dsync
	cluster  *Cluster
	interval time.Duration
}

// DsyncConfig configures the quorum client of a DsyncTarget. The zero value
// of each field means dsync's own default.
type DsyncConfig struct {
	RefreshInterval    time.Duration
	RetryMin, RetryMax time.Duration
}

// NewDsyncTarget returns a target whose quorum client talks to c's nodes. It
// does not own c; Close closes only the client.
func NewDsyncTarget(c *Cluster, cfg DsyncConfig) (*DsyncTarget, error) {
	ds, err := dsync.New(c.Lockers(), dsync.Config{
		RefreshInterval: cfg.RefreshInterval,
		Validity:        c.cfg.Validity,
		RetryMin:        cfg.RetryMin,
		RetryMax:        cfg.RetryMax,
		Owner:           "dsync-bench",
	})
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	interval := cfg.RefreshInterval
	if interval == 0 {
		interval = 10 * time.Second // dsync's documented default
	}
	return &DsyncTarget{ds: ds, cluster: c, interval: interval}, nil
}

// Close closes the quorum client.
func (t *DsyncTarget) Close() error { return t.ds.Close() }

// Name returns "dsync/" and the transport.
func (t *DsyncTarget) Name() string { return "dsync/" + t.cluster.cfg.Transport }

// NewSession returns a session that locks through the quorum client.
func (t *DsyncTarget) NewSession() (Session, error) { return &dsyncSession{ds: t.ds}, nil }

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
	ds    *dsync.Dsync
	m     *dsync.DRWMutex
	write bool
}

func (s *dsyncSession) Lock(ctx context.Context, resource string, write bool, timeout time.Duration) error {
	m := dsync.NewDRWMutex(s.ds, resource)
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
