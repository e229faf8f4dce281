package cluster_test

// Integration tests of the whole stack over real loopback HTTP: lock tables
// behind authenticated rest servers, quorum clients in several "processes"
// (one Dsync each, with its own HTTP clients).

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/cluster"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

func start(t *testing.T, cfg cluster.Config) *cluster.Cluster {
	t.Helper()
	c, err := cluster.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// process returns a quorum client with its own HTTP clients, as a separate
// process of the storage server would have.
func process(t *testing.T, c *cluster.Cluster, cfg dsync.Config) *dsync.Dsync {
	t.Helper()
	ls, err := c.Lockers()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = time.Millisecond, 8*time.Millisecond
	}
	ds, err := dsync.New(ls, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ds.Close()
		for _, l := range ls {
			l.Close()
		}
	})
	return ds
}

func TestReadWriteExclusionAndNoLostUpdates(t *testing.T) {
	for _, n := range []int{1, 3, 4, 5} {
		t.Run(fmt.Sprint("n=", n), func(t *testing.T) {
			c := start(t, cluster.Config{Nodes: n})
			procs := []*dsync.Dsync{process(t, c, dsync.Config{}), process(t, c, dsync.Config{}), process(t, c, dsync.Config{})}
			const workers, rounds = 12, 8
			var (
				register  int          // read-modify-written under the write lock only
				writers   atomic.Int32 // holders of the write lock right now
				readers   atomic.Int32
				violation atomic.Value
				wg        sync.WaitGroup
			)
			check := func(cond bool, format string, a ...any) {
				if !cond {
					violation.CompareAndSwap(nil, fmt.Sprintf(format, a...))
				}
			}
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ds := procs[w%len(procs)]
					m := dsync.NewDRWMutex(ds, "bucket/object")
					ctx := context.Background()
					for i := range rounds {
						if (w+i)%3 == 0 { // a reader
							if _, err := m.GetRLock(ctx, dsync.Options{Timeout: time.Minute}); err != nil {
								check(false, "rlock: %v", err)
								return
							}
							readers.Add(1)
							check(writers.Load() == 0, "reader inside with a writer")
							readers.Add(-1)
							m.RUnlock(ctx)
							continue
						}
						if _, err := m.GetLock(ctx, dsync.Options{Timeout: time.Minute}); err != nil {
							check(false, "lock: %v", err)
							return
						}
						check(writers.Add(1) == 1, "two writers inside")
						check(readers.Load() == 0, "writer inside with readers")
						v := register
						register = v + 1
						writers.Add(-1)
						m.Unlock(ctx)
					}
				}()
			}
			wg.Wait()
			if v := violation.Load(); v != nil {
				t.Fatal(v)
			}
			want := 0
			for w := range workers {
				for i := range rounds {
					if (w+i)%3 != 0 {
						want++
					}
				}
			}
			if register != want {
				t.Fatalf("register = %d after %d locked increments: updates lost", register, want)
			}
		})
	}
}

func TestSurvivesNMinusWStoppedAndFailsCleanlyBeyond(t *testing.T) {
	for _, n := range []int{3, 4, 5} {
		t.Run(fmt.Sprint("n=", n), func(t *testing.T) {
			c := start(t, cluster.Config{Nodes: n})
			ds := process(t, c, dsync.Config{CallTimeout: 200 * time.Millisecond})
			ctx := context.Background()
			down := n - ds.WriteQuorum()
			for i := range down {
				c.Stop(i)
			}
			m := dsync.NewDRWMutex(ds, "obj")
			for range 3 {
				if _, err := m.GetLock(ctx, dsync.Options{Timeout: 30 * time.Second}); err != nil {
					t.Fatalf("%d of %d stopped: %v", down, n, err)
				}
				if err := m.Unlock(ctx); err != nil {
					t.Fatalf("unlock with %d of %d stopped: %v", down, n, err)
				}
			}
			c.Stop(down)
			_, err := m.GetLock(ctx, dsync.Options{Timeout: 300 * time.Millisecond})
			if !errors.Is(err, dsync.ErrTimeout) || !errors.Is(err, dsync.ErrNoQuorum) || !errors.Is(err, locker.ErrOffline) {
				t.Fatalf("%d of %d stopped: %v, want ErrTimeout wrapping ErrNoQuorum and ErrOffline", down+1, n, err)
			}
			// The node comes back: locks work again.
			if err := c.Restart(down); err != nil {
				t.Fatal(err)
			}
			if _, err := m.GetLock(ctx, dsync.Options{Timeout: 30 * time.Second}); err != nil {
				t.Fatalf("after restart: %v", err)
			}
			m.Unlock(ctx)
		})
	}
}

func TestCrashedClientLockIsGrantedAfterExpiry(t *testing.T) {
	nodeClock := clock.NewFake(time.Unix(1_700_000_000, 0))
	const validity = time.Minute
	c := start(t, cluster.Config{Nodes: 3, Table: locker.Config{Validity: validity, Clock: nodeClock, SweepInterval: -1}})
	ctx := context.Background()

	crashed := process(t, c, dsync.Config{Validity: validity})
	if _, err := dsync.NewDRWMutex(crashed, "obj").GetLock(ctx, dsync.Options{}); err != nil {
		t.Fatal(err)
	}
	crashed.Close() // the process dies: no unlock, no more refreshes

	other := process(t, c, dsync.Config{Validity: validity})
	m := dsync.NewDRWMutex(other, "obj")
	if ok, _, err := m.TryLock(ctx); ok || err != nil {
		t.Fatalf("stale lock not honoured before expiry: %v %v", ok, err)
	}
	nodeClock.Advance(validity - time.Second)
	if ok, _, err := m.TryLock(ctx); ok || err != nil {
		t.Fatalf("granted a second before expiry: %v %v", ok, err)
	}
	nodeClock.Advance(time.Second)
	if ok, _, err := m.TryLock(ctx); !ok || err != nil {
		t.Fatalf("not granted after expiry: %v %v", ok, err)
	}
	m.Unlock(ctx)
}

func TestForceReleaseOnQuorumCancelsHolder(t *testing.T) {
	c := start(t, cluster.Config{Nodes: 5})
	ctx := context.Background()
	// Refresh often, so that the loss is seen at once; the test waits on
	// the lock context, not on time.
	ds := process(t, c, dsync.Config{RefreshInterval: 20 * time.Millisecond})
	m := dsync.NewDRWMutex(ds, "obj")
	lockCtx, err := m.GetLock(ctx, dsync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// GetLock returned once a quorum granted; let the other two grants land
	// too, so that the force-release below is not undone by a late grant.
	for _, n := range c.Nodes() {
		for n.Table().Stats().Grants == 0 {
			runtime.Gosched()
		}
	}
	ls, err := c.AdminLockers() // force-unlock of a resource's holders is the admin's
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls[:3] { // a quorum of 5
		if _, err := l.ForceUnlock(ctx, locker.LockArgs{Resources: []string{"obj"}}); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	<-lockCtx.Done()
	if cause := context.Cause(lockCtx); !errors.Is(cause, dsync.ErrLockLost) {
		t.Fatalf("cause %v, want ErrLockLost", cause)
	}
	if err := m.Unlock(ctx); !errors.Is(err, dsync.ErrLockLost) {
		t.Fatalf("unlock of lost lock: %v", err)
	}
}

func TestWrongSecretIsRefusedAndChangesNothing(t *testing.T) {
	c := start(t, cluster.Config{Nodes: 3})
	var ls []locker.NetLocker
	for _, ep := range c.Endpoints() {
		l, err := rest.NewClient(ep, rest.ClientConfig{Secret: "wrong-wrong-wrong-wrong-wrong-wro"})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ls = append(ls, l)
	}
	ds, err := dsync.New(ls, dsync.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	ok, _, err := dsync.NewDRWMutex(ds, "obj").TryLock(context.Background())
	if ok || !errors.Is(err, locker.ErrUnauthorized) || !errors.Is(err, dsync.ErrNoQuorum) {
		t.Fatalf("wrong secret: ok=%v err=%v, want ErrNoQuorum wrapping ErrUnauthorized", ok, err)
	}
	for i, n := range c.Nodes() {
		if st := n.Table().Stats(); st.Grants != 0 {
			t.Fatalf("node %d changed by unauthenticated requests: %+v", i, st)
		}
	}
}
