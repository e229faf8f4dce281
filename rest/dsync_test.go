package rest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// TestDsyncOverHTTP runs the quorum client over four authenticated HTTP
// nodes, with batching on, and checks mutual exclusion under contention,
// then again with one node stopped.
func TestDsyncOverHTTP(t *testing.T) {
	const nodes, secret = 4, "integration-secret-integration-s"
	var servers []*rest.Server
	var lockers []locker.NetLocker
	for range nodes {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
		t.Cleanup(func() { tbl.Close() })
		srv, err := rest.NewServer(tbl, rest.ServerConfig{Secret: secret})
		require.NoError(t, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		servers = append(servers, srv)
		c, err := rest.NewClient("http://"+ln.Addr().String(), rest.ClientConfig{Secret: secret})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		lockers = append(lockers, c)
	}
	// Every failed attempt leaves a background release for the stopped node
	// (dsync cannot tell a call that was never sent from one whose outcome
	// is unknown); keep those retries gentle and short.
	ds, err := dsync.New(lockers, dsync.Config{RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, UnlockRetryFor: 2 * time.Second})
	require.NoError(t, err)
	defer ds.Close()

	run := func(t *testing.T) {
		const workers, rounds, resources = 8, 8, 3
		var mu sync.Mutex
		inside := map[string]int{}
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range rounds {
					name := fmt.Sprint("bucket/object-", (w+i)%resources)
					m := dsync.NewDRWMutex(ds, name)
					if _, err := m.GetLock(context.Background(), dsync.Options{Timeout: time.Minute}); err != nil {
						errs <- fmt.Errorf("worker %d: GetLock(%s): %w", w, name, err)
						return
					}
					mu.Lock()
					inside[name]++
					n := inside[name]
					mu.Unlock()
					if n != 1 {
						errs <- fmt.Errorf("%d holders of %s at once", n, name)
					}
					mu.Lock()
					inside[name]--
					mu.Unlock()
					// A release still being retried is not a failure here:
					// the lock expires or the retries finish it.
					if err := m.Unlock(context.Background()); err != nil && !errors.Is(err, dsync.ErrUnlockPending) {
						errs <- fmt.Errorf("worker %d: Unlock(%s): %w", w, name, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			assert.NoError(t, err)
		}
	}
	t.Run("AllNodes", run)
	servers[nodes-1].Close()
	t.Run("OneNodeDown", run)
}

// TestDeadlockAcrossProcessesOverHTTP: two processes, each with its own
// Dsync and its own HTTP clients of three nodes, take a then b and b then a.
// Exactly one acquisition fails with ErrDeadlock, that of B ("p2/B" is the
// larger name), whichever asks first; A gets b once B's caller releases a.
func TestDeadlockAcrossProcessesOverHTTP(t *testing.T) {
	const nodes, secret = 3, "integration-secret-integration-s"
	var endpoints []string
	for range nodes {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
		t.Cleanup(func() { tbl.Close() })
		srv, err := rest.NewServer(tbl, rest.ServerConfig{Secret: secret})
		require.NoError(t, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		endpoints = append(endpoints, "http://"+ln.Addr().String())
	}
	var procs []*dsync.Dsync
	for _, owner := range []string{"p1", "p2"} {
		var lockers []locker.NetLocker
		for _, ep := range endpoints {
			c, err := rest.NewClient(ep, rest.ClientConfig{Secret: secret})
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			lockers = append(lockers, c)
		}
		ds, err := dsync.New(lockers, dsync.Config{Owner: owner, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { ds.Close() })
		procs = append(procs, ds)
	}
	ctx := context.Background()
	for round := range 4 {
		type result struct {
			holder string
			err    error
		}
		results := make(chan result, 2)
		var holding sync.WaitGroup
		holding.Add(2)
		both := make(chan struct{})
		worker := func(ds *dsync.Dsync, holder, first, second string) {
			hctx := dsync.WithHolder(ctx, holder)
			m := dsync.NewDRWMutex(ds, first)
			if _, err := m.GetLock(hctx, dsync.Options{Timeout: 30 * time.Second}); err != nil {
				holding.Done()
				results <- result{holder, fmt.Errorf("first lock: %w", err)}
				return
			}
			holding.Done()
			<-both
			n := dsync.NewDRWMutex(ds, second)
			_, err := n.GetLock(hctx, dsync.Options{Timeout: 30 * time.Second})
			if err == nil {
				n.Unlock(ctx)
			}
			m.Unlock(ctx)
			results <- result{holder, err}
		}
		go worker(procs[round%2], []string{"A", "B"}[round%2], []string{"a", "b"}[round%2], []string{"b", "a"}[round%2])
		go worker(procs[1-round%2], []string{"A", "B"}[1-round%2], []string{"a", "b"}[1-round%2], []string{"b", "a"}[1-round%2])
		holding.Wait()
		close(both)
		for range 2 {
			r := <-results
			switch {
			case r.holder == "B" && !errors.Is(r.err, dsync.ErrDeadlock):
				require.Failf(t, "B: want ErrDeadlock", "round %d: B: %v", round, r.err)
			case r.holder == "B" && !strings.Contains(r.err.Error(), `"p2/B" waits for "a" held by "p1/A"`):
				require.Failf(t, "B's error does not name the cycle", "round %d: %v", round, r.err)
			case r.holder == "A" && r.err != nil:
				require.Failf(t, "A: want b once B released", "round %d: A: %v", round, r.err)
			}
		}
	}
}
