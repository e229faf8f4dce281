package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dsync-go/dsync/bench/loadgen"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// etcdTarget locks with etcd's concurrency.Mutex. Each worker has its own
// session (a lease kept alive in the background: etcd's refresh). The
// Mutex has no shared mode: a read is taken as a write.
type etcdTarget struct {
	client *clientv3.Client
}

func newEtcdTarget(ctx context.Context, endpoints []string) (*etcdTarget, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Status(sctx, endpoints[0]); err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd %s: %w", endpoints[0], err)
	}
	return &etcdTarget{client: c}, nil
}

func (t *etcdTarget) Close() error { return t.client.Close() }

func (t *etcdTarget) Name() string { return fmt.Sprintf("etcd/%d-members", len(t.client.Endpoints())) }

func (t *etcdTarget) NewSession() (loadgen.Session, error) {
	s, err := concurrency.NewSession(t.client, concurrency.WithTTL(60))
	if err != nil {
		return nil, err
	}
	return &etcdSession{s: s}, nil
}

type etcdSession struct {
	s *concurrency.Session
	m *concurrency.Mutex
}

func (s *etcdSession) Lock(ctx context.Context, resource string, write bool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m := concurrency.NewMutex(s.s, "/lock/"+resource)
	if err := m.Lock(ctx); err != nil {
		return err
	}
	s.m = m
	return nil
}

func (s *etcdSession) Unlock(ctx context.Context) error {
	err := s.m.Unlock(ctx)
	s.m = nil
	return err
}

// Close revokes the session's lease.
func (s *etcdSession) Close() error { return s.s.Close() }
