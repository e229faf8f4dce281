package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dsync-go/dsync/bench/loadgen"
	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	goredislib "github.com/redis/go-redis/v9"
)

// redlockTarget locks with redsync (the Redlock algorithm) over independent
// redis servers. Redlock has no shared locks: a read is taken as a write.
type redlockTarget struct {
	clients []*goredislib.Client
	rs      *redsync.Redsync
}

func newRedlockTarget(ctx context.Context, addrs []string, poolSize int) (*redlockTarget, error) {
	t := &redlockTarget{}
	var pools []redis.Pool
	for _, a := range addrs {
		c := goredislib.NewClient(&goredislib.Options{Addr: a, PoolSize: poolSize})
		if err := c.Ping(ctx).Err(); err != nil {
			t.Close()
			return nil, fmt.Errorf("redis %s: %w", a, err)
		}
		t.clients = append(t.clients, c)
		pools = append(pools, goredis.NewPool(c))
	}
	t.rs = redsync.New(pools...)
	return t, nil
}

func (t *redlockTarget) Close() error {
	for _, c := range t.clients {
		c.Close()
	}
	return nil
}

func (t *redlockTarget) Name() string { return fmt.Sprintf("redlock/%d-redis", len(t.clients)) }

func (t *redlockTarget) NewSession() (loadgen.Session, error) { return &redlockSession{rs: t.rs}, nil }

type redlockSession struct {
	rs *redsync.Redsync
	m  *redsync.Mutex
}

// Lock uses redsync's defaults (8 s expiry, up to 32 tries 50-250 ms apart),
// bounded by timeout.
func (s *redlockSession) Lock(ctx context.Context, resource string, write bool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m := s.rs.NewMutex("lock/" + resource)
	if err := m.LockContext(ctx); err != nil {
		return err
	}
	s.m = m
	return nil
}

func (s *redlockSession) Unlock(ctx context.Context) error {
	_, err := s.m.UnlockContext(ctx)
	s.m = nil
	return err
}
