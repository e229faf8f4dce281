package dsync_test

import (
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// node wraps a table with faults a test can switch on.
type node struct {
	*locker.Local
	down     atomic.Bool           // every call fails with ErrOffline
	notSent  atomic.Bool           // with down: the failure also says the call was never sent
	releases atomic.Int32          // unlock calls attempted, failed or not
	gate     chan struct{}         // if non-nil, Lock and RLock wait for it to close
	unGate   chan struct{}         // if non-nil, Unlock and RUnlock wait for it to close (or their ctx) first
	unlocks  chan string           // if non-nil, receives the UID of every unlock call
	locked   chan string           // if non-nil, receives the UID of every lock call answered
	mu       sync.Mutex            // guards the fields below, and unlocks and gate
	onLock   func(locker.LockArgs) // if non-nil, called with every lock call answered
	lockSeen int
	clk      clock.Clock
}

func (n *node) fail() error {
	if !n.down.Load() {
		return nil
	}
	if n.notSent.Load() {
		return fmt.Errorf("%s: %w (%w)", n.String(), locker.ErrOffline, locker.ErrNotSent)
	}
	return fmt.Errorf("%s: %w", n.String(), locker.ErrOffline)
}

func (n *node) Lock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	return n.acquire(ctx, a, n.Local.Lock)
}

func (n *node) RLock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	return n.acquire(ctx, a, n.Local.RLock)
}

func (n *node) acquire(ctx context.Context, a locker.LockArgs, f func(context.Context, locker.LockArgs) (locker.Reply, error)) (locker.Reply, error) {
	if err := n.fail(); err != nil {
		return locker.Reply{}, err
	}
	n.mu.Lock()
	n.lockSeen++
	gate := n.gate
	n.mu.Unlock()
	if gate != nil {
		// The request is held up in the network: if the caller gives up, it
		// still reaches the table once the gate opens.
		applied := make(chan struct{})
		var r locker.Reply
		var err error
		go func() {
			<-gate
			r, err = f(context.Background(), a)
			close(applied)
		}()
		select {
		case <-applied:
			return r, err
		case <-ctx.Done():
			return locker.Reply{}, ctx.Err()
		}
	}
	r, err := f(ctx, a)
	if n.locked != nil {
		n.locked <- a.UID
	}
	n.mu.Lock()
	onLock := n.onLock
	n.mu.Unlock()
	if onLock != nil {
		onLock(a)
	}
	return r, err
}

func (n *node) Unlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	return n.release(ctx, a, n.Local.Unlock)
}

func (n *node) RUnlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	return n.release(ctx, a, n.Local.RUnlock)
}

func (n *node) release(ctx context.Context, a locker.LockArgs, f func(context.Context, locker.LockArgs) (locker.Reply, error)) (locker.Reply, error) {
	n.releases.Add(1)
	n.mu.Lock()
	unGate := n.unGate
	n.mu.Unlock()
	if unGate != nil {
		select {
		case <-unGate:
		case <-ctx.Done():
			return locker.Reply{}, ctx.Err()
		}
	}
	if err := n.fail(); err != nil {
		return locker.Reply{}, err
	}
	r, err := f(ctx, a)
	n.mu.Lock()
	unlocks := n.unlocks
	n.mu.Unlock()
	if unlocks != nil {
		unlocks <- a.UID
	}
	return r, err
}

func (n *node) Refresh(ctx context.Context, a locker.RefreshArgs) (locker.RefreshReply, error) {
	if err := n.fail(); err != nil {
		return locker.RefreshReply{}, err
	}
	return n.Local.Refresh(ctx, a)
}

func (n *node) RaiseFence(ctx context.Context, a locker.FenceArgs) (locker.FenceReply, error) {
	if err := n.fail(); err != nil {
		return locker.FenceReply{}, err
	}
	return n.Local.RaiseFence(ctx, a)
}

func (n *node) ForceUnlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	if err := n.fail(); err != nil {
		return locker.Reply{}, err
	}
	return n.Local.ForceUnlock(ctx, a)
}

type cluster struct {
	t     *testing.T
	clk   clock.Clock
	nodes []*node
	ds    *dsync.Dsync
	ls    []locker.NetLocker // the nodes as c.ds sees them
}

const validity = time.Minute

// eachPath runs f twice, as subtests: "submit", where the client submits its
// calls to the nodes (locker.Submitter) and their answers come from other
// goroutines, as from package rest; and "sync", where the client calls each
// node's methods on a goroutine of its own, as it does for lockers without
// that capability. newCluster reads the path from the test's name.
func eachPath(t *testing.T, f func(t *testing.T)) {
	t.Run("submit", f)
	t.Run("sync", f)
}

// netOnly hides every method of a locker but those of locker.NetLocker.
type netOnly struct{ locker.NetLocker }

// Submit makes the node a locker.Submitter that answers from another
// goroutine, through the same faults as its other methods. Once sent, a call
// is bounded by timeout on the node's clock, not by ctx.
func (n *node) Submit(ctx context.Context, op locker.Op, a *locker.LockArgs, timeout time.Duration, sink locker.Sink, tag int) {
	if err := ctx.Err(); err != nil {
		sink.Done(tag, locker.Reply{}, fmt.Errorf("%w (%w)", err, locker.ErrNotSent))
		return
	}
	go func() {
		cctx, cancel := clock.WithTimeout(context.Background(), n.clk, timeout)
		defer cancel()
		r, err := op.Call(cctx, n, *a)
		sink.Done(tag, r, err)
	}()
}

// newCluster starts n in-memory nodes and a client. With a nil clock it uses
// the real clock and fast retries. Under eachPath's "sync" subtest the client
// sees the nodes as plain NetLockers.
func newCluster(t *testing.T, n int, clk clock.Clock) *cluster {
	t.Helper()
	c := &cluster{t: t, clk: clock.OrReal(clk)}
	syncPath := slices.Contains(strings.Split(t.Name(), "/"), "sync")
	var ls []locker.NetLocker
	for range n {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: validity, Clock: c.clk, SweepInterval: -1})
		t.Cleanup(func() { tbl.Close() })
		nd := &node{Local: tbl, clk: c.clk}
		c.nodes = append(c.nodes, nd)
		if syncPath {
			ls = append(ls, netOnly{nd})
		} else {
			ls = append(ls, nd)
		}
	}
	c.ls = ls
	c.ds = c.client()
	return c
}

// client makes another client of c's nodes, configured as c.ds is, and
// closed at the end of the test.
func (c *cluster) client() *dsync.Dsync {
	c.t.Helper()
	ds, err := dsync.New(c.ls, dsync.Config{
		Validity: validity, Clock: c.clk,
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
	})
	require.NoError(c.t, err)
	c.t.Cleanup(func() { ds.Close() })
	return ds
}

// grants counts the grants held on every node.
func (c *cluster) grants() int {
	total := 0
	for _, n := range c.nodes {
		total += n.Stats().Grants
	}
	return total
}

func TestQuorumTable(t *testing.T) {
	want := map[int][2]int{1: {1, 1}, 2: {1, 2}, 3: {2, 2}, 4: {2, 3}, 5: {3, 3}, 8: {4, 5}, 16: {8, 9}}
	for n, rw := range want {
		ls := make([]locker.NetLocker, n)
		for i := range ls {
			ls[i] = locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
		}
		ds, err := dsync.New(ls, dsync.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if ds.ReadQuorum() != rw[0] || ds.WriteQuorum() != rw[1] || ds.Lockers() != n {
			t.Errorf("n=%d: read %d write %d, want %v", n, ds.ReadQuorum(), ds.WriteQuorum(), rw)
		}
		ds.Close()
	}
}

func TestNewRejects(t *testing.T) {
	a := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	b := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	for name, tc := range map[string]struct {
		ls  []locker.NetLocker
		cfg dsync.Config
	}{
		"no lockers":        {nil, dsync.Config{}},
		"nil locker":        {[]locker.NetLocker{a, nil}, dsync.Config{}},
		"duplicate":         {[]locker.NetLocker{a, b, a}, dsync.Config{}},
		"negative":          {[]locker.NetLocker{a}, dsync.Config{CallTimeout: -1}},
		"refresh too slow":  {[]locker.NetLocker{a}, dsync.Config{RefreshInterval: time.Minute, Validity: time.Minute}},
		"retry max too low": {[]locker.NetLocker{a}, dsync.Config{RetryMin: time.Second, RetryMax: time.Millisecond}},
	} {
		if ds, err := dsync.New(tc.ls, tc.cfg); err == nil {
			ds.Close()
			t.Errorf("%s: New succeeded", name)
		} else if !strings.HasPrefix(err.Error(), "dsync: ") {
			t.Errorf("%s: error %q does not start with the package name", name, err)
		}
	}
}

func TestExclusion(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		ctx := context.Background()
		for _, n := range []int{1, 2, 3, 4, 5} {
			t.Run(fmt.Sprint("n=", n), func(t *testing.T) {
				c := newCluster(t, n, nil)
				w := dsync.NewDRWMutex(c.ds, "obj")
				if ok, _, err := w.TryLock(ctx); !ok || err != nil {
					t.Fatalf("first TryLock: %v %v", ok, err)
				}
				other := dsync.NewDRWMutex(c.ds, "obj")
				if ok, _, err := other.TryLock(ctx); ok || err != nil {
					t.Fatalf("second writer: ok=%v err=%v, want refused", ok, err)
				}
				if ok, _, err := other.TryRLock(ctx); ok || err != nil {
					t.Fatalf("reader while written: ok=%v err=%v, want refused", ok, err)
				}
				if err := w.Unlock(ctx); err != nil {
					t.Fatal(err)
				}
				r1, r2 := dsync.NewDRWMutex(c.ds, "obj"), dsync.NewDRWMutex(c.ds, "obj")
				for _, r := range []*dsync.DRWMutex{r1, r2} {
					if ok, _, err := r.TryRLock(ctx); !ok || err != nil {
						t.Fatalf("reader: %v %v", ok, err)
					}
				}
				if ok, _, _ := other.TryLock(ctx); ok {
					t.Fatal("writer granted while read-locked")
				}
				r1.RUnlock(ctx)
				r2.RUnlock(ctx)
				// Each RUnlock returned once a read quorum released, so a
				// TryLock could still meet a reader on a node whose answer
				// is on its way: a writer that waits gets the lock.
				if _, err := other.GetLock(ctx, dsync.Options{Timeout: 10 * time.Second}); err != nil {
					t.Fatalf("writer after readers left: %v", err)
				}
				other.Unlock(ctx)
				c.ds.Close() // waits for background releases
				if g := c.grants(); g != 0 {
					t.Fatalf("%d grants left on the nodes", g)
				}
			})
		}
	})
}

func TestNoLostUpdates(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 5, nil)
		const workers, rounds = 8, 25
		var (
			counter int // protected by the distributed lock only
			inside  atomic.Int32
			wg      sync.WaitGroup
		)
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := dsync.NewDRWMutex(c.ds, "counter")
				for range rounds {
					if _, err := m.GetLock(context.Background(), dsync.Options{}); err != nil {
						errs <- err
						return
					}
					if inside.Add(1) != 1 {
						errs <- errors.New("two holders at once")
					}
					v := counter
					counter = v + 1
					inside.Add(-1)
					if err := m.Unlock(context.Background()); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if counter != workers*rounds {
			t.Fatalf("counter = %d, want %d: updates lost", counter, workers*rounds)
		}
	})
}

func TestToleratesNMinusQuorumDown(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		ctx := context.Background()
		for _, n := range []int{3, 4, 5} {
			t.Run(fmt.Sprint("n=", n), func(t *testing.T) {
				c := newCluster(t, n, nil)
				w := n - c.ds.WriteQuorum()
				for i := range w {
					c.nodes[i].down.Store(true)
				}
				m := dsync.NewDRWMutex(c.ds, "obj")
				if _, err := m.GetLock(ctx, dsync.Options{Timeout: time.Minute}); err != nil {
					t.Fatalf("with %d of %d down: %v", w, n, err)
				}
				if err := m.Unlock(ctx); err != nil {
					t.Fatalf("unlock with %d down: %v", w, err)
				}
				// One more down: no write quorum.
				c.nodes[w].down.Store(true)
				ok, _, err := m.TryLock(ctx)
				if ok || !errors.Is(err, dsync.ErrNoQuorum) {
					t.Fatalf("with %d down: ok=%v err=%v, want ErrNoQuorum", w+1, ok, err)
				}
				_, err = m.GetLock(ctx, dsync.Options{Timeout: 20 * time.Millisecond})
				if !errors.Is(err, dsync.ErrTimeout) || !errors.Is(err, dsync.ErrNoQuorum) {
					t.Fatalf("GetLock with %d down: %v, want ErrTimeout wrapping ErrNoQuorum", w+1, err)
				}
				c.ds.Close()
				if g := c.grants(); g != 0 {
					t.Fatalf("failed attempts left %d grants", g)
				}
			})
		}
	})
}

func TestTimeoutAndCancellationAreDistinct(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		ctx := context.Background()
		holder := dsync.NewDRWMutex(c.ds, "obj")
		if _, err := holder.GetLock(ctx, dsync.Options{}); err != nil {
			t.Fatal(err)
		}
		m := dsync.NewDRWMutex(c.ds, "obj")
		_, err := m.GetLock(ctx, dsync.Options{Timeout: 10 * time.Millisecond})
		if !errors.Is(err, dsync.ErrTimeout) || !errors.Is(err, dsync.ErrLocked) || errors.Is(err, context.Canceled) {
			t.Fatalf("timeout: %v", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() {
			_, err := m.GetLock(cctx, dsync.Options{})
			done <- err
		}()
		cancel()
		err = <-done
		if !errors.Is(err, context.Canceled) || errors.Is(err, dsync.ErrTimeout) {
			t.Fatalf("cancelled: %v", err)
		}
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer dcancel()
		_, err = m.GetLock(dctx, dsync.Options{})
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, dsync.ErrTimeout) {
			t.Fatalf("deadline: %v", err)
		}
		holder.Unlock(ctx)
	})
}

func TestInvalidNamesFailAtOnce(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		for _, names := range [][]string{nil, {""}, {"a", ""}} {
			m := dsync.NewDRWMutex(c.ds, names...)
			if _, err := m.GetLock(context.Background(), dsync.Options{}); !errors.Is(err, locker.ErrInvalidArgs) {
				t.Errorf("names %q: %v, want ErrInvalidArgs", names, err)
			}
		}
		// Too many resources: the nodes refuse, and the client does not retry.
		many := make([]string, locker.DefaultMaxResources+1)
		for i := range many {
			many[i] = fmt.Sprint("r", i)
		}
		if _, err := dsync.NewDRWMutex(c.ds, many...).GetLock(context.Background(), dsync.Options{}); !errors.Is(err, locker.ErrInvalidArgs) {
			t.Errorf("too many names: %v, want ErrInvalidArgs", err)
		}
		m := dsync.NewDRWMutex(c.ds, "b", "a", "b")
		if got := m.Names(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Errorf("Names() = %q", got)
		}
	})
}

func TestMisusePanics(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 1, nil)
		m := dsync.NewDRWMutex(c.ds, "obj")
		for name, f := range map[string]func(){
			"Unlock":  func() { m.Unlock(context.Background()) },
			"RUnlock": func() { m.RUnlock(context.Background()) },
		} {
			func() {
				defer func() {
					r := recover()
					if s, _ := r.(string); !strings.HasPrefix(s, "dsync: ") {
						t.Errorf("%s of unlocked mutex: recovered %v, want a panic starting with \"dsync: \"", name, r)
					}
				}()
				f()
			}()
		}
	})
}

func TestLateGrantIsReleased(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		ctx := context.Background()
		// Node 0 holds back lock requests; nodes 1 and 2 are locked by another
		// holder, so the attempt fails while node 0's request is in flight.
		for _, n := range c.nodes[1:] {
			if r, err := n.Local.Lock(ctx, locker.LockArgs{UID: "holder", Resources: []string{"obj"}}); err != nil || !r.OK {
				t.Fatal(r, err)
			}
		}
		gate := make(chan struct{})
		c.nodes[0].mu.Lock()
		c.nodes[0].gate = gate
		c.nodes[0].unlocks = make(chan string, 10)
		c.nodes[0].mu.Unlock()

		m := dsync.NewDRWMutex(c.ds, "obj")
		ok, _, err := m.TryLock(ctx)
		if ok || err != nil {
			t.Fatalf("TryLock: ok=%v err=%v, want refused", ok, err)
		}
		close(gate) // node 0 now grants the abandoned request...
		<-c.nodes[0].unlocks
		// ...and the client released it.
		if st := c.nodes[0].Stats(); st.Grants != 0 {
			t.Fatalf("node 0 still holds %d grants", st.Grants)
		}
	})
}

func TestLostLockCancelsContext(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		clk := clock.NewFake(time.Unix(1_700_000_000, 0))
		c := newCluster(t, 5, clk)
		for _, n := range c.nodes {
			n.locked = make(chan string, 1)
		}
		ctx := context.Background()
		m := dsync.NewDRWMutex(c.ds, "obj")
		lockCtx, err := m.GetLock(ctx, dsync.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.nodes { // every node has answered, not just a quorum
			<-n.locked
		}
		// An operator force-releases the lock on a quorum of nodes (3 of 5).
		for _, n := range c.nodes[:3] {
			n.ForceUnlock(ctx, locker.LockArgs{Resources: []string{"obj"}})
		}
		clk.BlockUntil(nil, 2) // the refresher's tick and deadline timers
		clk.Advance(dsync.DefaultRefreshInterval)
		<-lockCtx.Done()
		if cause := context.Cause(lockCtx); !errors.Is(cause, dsync.ErrLockLost) {
			t.Fatalf("cause %v, want ErrLockLost", cause)
		}
		c.ds.Close() // waits for the background force-release
		if g := c.grants(); g != 0 {
			t.Fatalf("remains of the lost lock: %d grants", g)
		}
		if err := m.Unlock(ctx); !errors.Is(err, dsync.ErrLockLost) {
			t.Fatalf("Unlock of lost lock: %v, want ErrLockLost", err)
		}
	})
}

func TestUnrefreshedLockIsGivenUpBeforeNodesExpireIt(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		clk := clock.NewFake(time.Unix(1_700_000_000, 0))
		c := newCluster(t, 3, clk)
		ctx := context.Background()
		m := dsync.NewDRWMutex(c.ds, "obj")
		lockCtx, err := m.GetLock(ctx, dsync.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// The holder is cut off from two nodes: refreshes miss the quorum, but
		// nobody denies the lock.
		// Cut the holder off from every node but one that granted.
		holder := -1
		for i, n := range c.nodes {
			if e, _ := listAll(ctx, n); len(e) == 1 && holder < 0 {
				holder = i
			} else {
				n.down.Store(true)
			}
		}
		start := clk.Now()
		clk.BlockUntil(nil, 2) // the refresher's tick and deadline timers
		// Jump to the holder's deadline: validity less its 2% margin.
		clk.Set(start.Add(validity - validity/50))
		<-lockCtx.Done()
		if cause := context.Cause(lockCtx); !errors.Is(cause, dsync.ErrLockLost) {
			t.Fatalf("cause %v", cause)
		}
		// The holder gave up before the nodes' validity ran out.
		if held := clk.Since(start); held >= validity {
			t.Fatalf("lock given up after %v, not before the validity %v", held, validity)
		}
	})
}

func TestUnlockDoesNotBlockWhenNodesAreDown(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		ctx := context.Background()
		m := dsync.NewDRWMutex(c.ds, "obj")
		if _, err := m.GetLock(ctx, dsync.Options{}); err != nil {
			t.Fatal(err)
		}
		c.nodes[0].down.Store(true)
		c.nodes[1].down.Store(true)
		err := m.Unlock(ctx)
		if !errors.Is(err, dsync.ErrUnlockPending) {
			t.Fatalf("Unlock with 2 of 3 down: %v, want ErrUnlockPending", err)
		}
		// The nodes come back and the background retries finish the release.
		c.nodes[0].mu.Lock()
		c.nodes[0].unlocks = make(chan string, 100)
		c.nodes[0].mu.Unlock()
		c.nodes[0].down.Store(false)
		c.nodes[1].down.Store(false)
		<-c.nodes[0].unlocks
		if st := c.nodes[0].Stats(); st.Grants != 0 {
			t.Fatalf("node 0 still holds the lock: %+v", st)
		}
	})
}

// gateUnlocks makes n's unlocks wait until the returned gate is closed.
func (n *node) gateUnlocks() chan struct{} {
	gate := make(chan struct{})
	n.mu.Lock()
	n.unGate = gate
	n.mu.Unlock()
	return gate
}

// heldInBubble starts three nodes and a client in t's synctest bubble, and
// returns them with a write lock on "obj" that every node has granted.
func heldInBubble(t *testing.T) (*cluster, *dsync.DRWMutex) {
	t.Helper()
	c := newCluster(t, 3, nil)
	m := dsync.NewDRWMutex(c.ds, "obj")
	if _, err := m.GetLock(context.Background(), dsync.Options{}); err != nil {
		t.Fatal(err)
	}
	synctest.Wait() // every node has answered the lock
	return c, m
}

// Unlock returns once a quorum has released, without waiting for a slow
// node, and Close waits for the slow node's answer. In a synctest bubble
// time moves only when every goroutine waits, so an Unlock that waited for
// the slow node would return only after its CallTimeout.
func TestUnlockReturnsAtQuorumAndCloseWaitsForTheRest(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, m := heldInBubble(t)
			ctx := context.Background()
			gate := c.nodes[2].gateUnlocks()
			start := time.Now()
			if err := m.Unlock(ctx); err != nil {
				t.Fatalf("Unlock with one node slow: %v", err)
			}
			if waited := time.Since(start); waited != 0 {
				t.Fatalf("Unlock waited %v for the slow node", waited)
			}
			if g := c.nodes[2].Stats().Grants; g != 1 {
				t.Fatalf("the slow node holds %d grants before it answered, want 1", g)
			}
			closed := make(chan struct{})
			go func() {
				c.ds.Close()
				close(closed)
			}()
			synctest.Wait()
			select {
			case <-closed:
				t.Fatal("Close returned before the slow node answered the release")
			default:
			}
			close(gate)
			<-closed
			if g := c.grants(); g != 0 {
				t.Fatalf("%d grants left after Close", g)
			}
		})
	})
}

// A release that fails after Unlock returned (here: the slow node goes down
// before it answers) is retried in the background until the node is back.
func TestLateReleaseFailureIsRetried(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, m := heldInBubble(t)
			ctx := context.Background()
			slow := c.nodes[2]
			gate := slow.gateUnlocks()
			if err := m.Unlock(ctx); err != nil {
				t.Fatal(err)
			}
			slow.down.Store(true)
			close(gate)
			synctest.Wait() // the release failed; retries wait out their back-off
			if g := slow.Stats().Grants; g != 1 {
				t.Fatalf("the down node holds %d grants, want 1", g)
			}
			slow.mu.Lock()
			slow.unlocks = make(chan string, 1)
			slow.mu.Unlock()
			slow.down.Store(false)
			select {
			case <-slow.unlocks: // a retry got through
			case <-time.After(time.Minute): // on the bubble's clock: at once if nothing else is to happen
				t.Fatal("the failed release was not retried")
			}
			if r := slow.releases.Load(); r < 2 {
				t.Fatalf("%d release calls on the slow node, want the failed one and a retry", r)
			}
			if g := slow.Stats().Grants; g != 0 {
				t.Fatalf("the node holds %d grants after the retry", g)
			}
		})
	})
}

func TestLockContextEndsWithUnlockAndCaller(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		m := dsync.NewDRWMutex(c.ds, "obj")
		lockCtx, err := m.GetLock(context.Background(), dsync.Options{Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if lockCtx.Err() != nil {
			t.Fatal("lock context done while held")
		}
		m.Unlock(context.Background())
		<-lockCtx.Done()

		parent, cancel := context.WithCancel(context.Background())
		rctx, err := m.GetRLock(parent, dsync.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		<-rctx.Done()
		m.RUnlock(context.Background())
	})
}

func TestReadQuorumAndMultiResource(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 4, nil) // R = 2, W = 3
		ctx := context.Background()
		c.nodes[0].down.Store(true)
		c.nodes[1].down.Store(true)
		r := dsync.NewDRWMutex(c.ds, "a", "b")
		if ok, _, err := r.TryRLock(ctx); !ok || err != nil {
			t.Fatalf("read with 2 of 4 up: %v %v", ok, err)
		}
		if ok, _, err := dsync.NewDRWMutex(c.ds, "z").TryLock(ctx); ok || !errors.Is(err, dsync.ErrNoQuorum) {
			t.Fatalf("write with 2 of 4 up: %v %v", ok, err)
		}
		c.nodes[0].down.Store(false)
		c.nodes[1].down.Store(false)
		w := dsync.NewDRWMutex(c.ds, "b", "c")
		if ok, _, _ := w.TryLock(ctx); ok {
			t.Fatal("write on b granted while b is read-locked")
		}
		wc := dsync.NewDRWMutex(c.ds, "c")
		if ok, _, err := wc.TryLock(ctx); !ok || err != nil {
			t.Fatalf("c was left locked by the failed multi-resource attempt: %v %v", ok, err)
		}
	})
}

func TestSourceIsTheCallersLine(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 1, nil)
		m := dsync.NewDRWMutex(c.ds, "obj")
		for range 2 { // the second time from the cache
			if _, err := m.GetLock(context.Background(), dsync.Options{}); err != nil { // the line recorded
				t.Fatal(err)
			}
			entries, err := listAll(context.Background(), c.nodes[0])
			if err != nil || len(entries) != 1 || !strings.HasPrefix(entries[0].Source, "dsync/dsync_test.go:") {
				t.Fatalf("entries %+v, %v", entries, err)
			}
			m.Unlock(context.Background())
		}
		ok, _, _ := m.TryLock(context.Background())
		entries, _ := listAll(context.Background(), c.nodes[0])
		if !ok || len(entries) != 1 || !strings.Contains(entries[0].Source, "dsync_test.go:") {
			t.Fatalf("TryLock source: %+v", entries)
		}
	})
}

func TestCloseCancelsHeldLocks(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		m := dsync.NewDRWMutex(c.ds, "obj")
		lockCtx, err := m.GetLock(context.Background(), dsync.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c.ds.Close()
		if lockCtx.Err() == nil || !errors.Is(context.Cause(lockCtx), dsync.ErrLockLost) {
			t.Fatalf("after Close: %v", context.Cause(lockCtx))
		}
		if _, err := m.GetLock(context.Background(), dsync.Options{}); !errors.Is(err, dsync.ErrClosed) {
			t.Fatalf("GetLock after Close: %v", err)
		}
	})
}

func TestQuietNodesAreNotALockedResource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // the real clock, in a bubble
		start := time.Now()
		var ls []locker.NetLocker
		for range 3 {
			tbl := locker.New(locker.Config{QuietPeriod: time.Minute, SweepInterval: -1})
			defer tbl.Close()
			ls = append(ls, tbl)
		}
		ds, err := dsync.New(ls, dsync.Config{})
		require.NoError(t, err)
		defer ds.Close()
		ok, _, err := dsync.NewDRWMutex(ds, "obj").TryLock(context.Background())
		assert.False(t, ok)
		require.ErrorIs(t, err, dsync.ErrRestarting)
		assert.ErrorIs(t, err, dsync.ErrNoQuorum)
		assert.NotErrorIs(t, err, dsync.ErrLocked)
		var re *dsync.RestartingError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, time.Minute, re.RetryAfter)
		assert.Contains(t, err.Error(), "nodes restarting, retry after 1m0s")

		// An acquisition whose timeout is shorter than the grace times
		// out, saying why; one whose timeout outlasts it waits the grace
		// out, and is granted once it is over.
		m := dsync.NewDRWMutex(ds, "obj")
		_, err = m.GetLock(context.Background(), dsync.Options{Timeout: 5 * time.Second})
		require.ErrorIs(t, err, dsync.ErrTimeout)
		assert.ErrorIs(t, err, dsync.ErrRestarting)
		assert.Contains(t, err.Error(), "nodes restarting, retry after")
		assert.Equal(t, 5*time.Second, time.Since(start))
		_, err = m.GetLock(context.Background(), dsync.Options{Timeout: 2 * time.Minute})
		require.NoError(t, err)
		took := time.Since(start)
		assert.GreaterOrEqual(t, took, time.Minute)
		assert.Less(t, took, time.Minute+time.Second, "asked again as the grace ended")
		require.NoError(t, m.Unlock(context.Background()))
	})
}

func TestCallsNeverSentAreNotReleased(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		for _, notSent := range []bool{true, false} {
			t.Run(fmt.Sprint("notSent=", notSent), func(t *testing.T) {
				c := newCluster(t, 3, nil)
				for _, n := range c.nodes[1:] {
					n.down.Store(true)
					n.notSent.Store(notSent)
				}
				ok, _, err := dsync.NewDRWMutex(c.ds, "obj").TryLock(context.Background())
				if ok || !errors.Is(err, dsync.ErrNoQuorum) {
					t.Fatalf("TryLock: %v %v", ok, err)
				}
				if g := c.nodes[0].Stats().Grants; g != 0 {
					t.Fatalf("node 0 kept the failed attempt's grant")
				}
				if !notSent {
					// The outcome on the failed nodes is unknown: they are
					// released in the background, retried until they answer.
					for c.nodes[1].releases.Load() == 0 {
						runtime.Gosched()
					}
					return
				}
				c.ds.Close() // waits for any background release
				for i, n := range c.nodes[1:] {
					if r := n.releases.Load(); r != 0 {
						t.Fatalf("node %d: %d releases of a call never sent", i+1, r)
					}
				}
			})
		}
	})
}

func TestCloseWhileLocking(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		// Close runs while clients lock, fail and release: no race between
		// starting background releases and waiting for them (run with -race).
		c := newCluster(t, 3, nil)
		c.nodes[1].down.Store(true) // every attempt fails and starts
		c.nodes[2].down.Store(true) // background releases of the failed nodes
		var wg sync.WaitGroup
		started := make(chan struct{}, 4)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := dsync.NewDRWMutex(c.ds, fmt.Sprint("obj", w%2))
				started <- struct{}{}
				for {
					if ok, _, err := m.TryLock(context.Background()); ok && err == nil {
						m.Unlock(context.Background())
					} else if errors.Is(err, dsync.ErrClosed) {
						return
					}
				}
			}()
		}
		for range 4 {
			<-started
		}
		c.ds.Close()
		wg.Wait()
	})
}

// A refused TryLock leaves no writer intent behind: readers are not held
// back for a writer that will not retry. A refused GetLock attempt does.
func TestTryLockLeavesNoWriterIntent(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		ctx := context.Background()
		r1 := dsync.NewDRWMutex(c.ds, "obj")
		if ok, _, err := r1.TryRLock(ctx); !ok || err != nil {
			t.Fatalf("first reader: %v %v", ok, err)
		}
		w := dsync.NewDRWMutex(c.ds, "obj")
		if ok, _, err := w.TryLock(ctx); ok || err != nil {
			t.Fatalf("TryLock under a reader: %v %v, want refused", ok, err)
		}
		r2 := dsync.NewDRWMutex(c.ds, "obj")
		if ok, _, err := r2.TryRLock(ctx); !ok || err != nil {
			t.Fatalf("reader after a refused TryLock: %v %v, want granted", ok, err)
		}
		// A writer that retries does hold new readers back, while it
		// retries. (Once it gives up it withdraws that: intent_test.go.)
		refused := make(chan struct{}, 64)
		for _, n := range c.nodes {
			n.mu.Lock()
			n.onLock = func(a locker.LockArgs) {
				if a.Source == "retrying-writer" {
					select {
					case refused <- struct{}{}:
					default:
					}
				}
			}
			n.mu.Unlock()
		}
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := w.GetLock(wctx, dsync.Options{Source: "retrying-writer"})
			done <- err
		}()
		for range c.nodes {
			<-refused // the writer's first attempt, refused by every node
		}
		r3 := dsync.NewDRWMutex(c.ds, "obj")
		ok, _, err := r3.TryRLock(ctx)
		cancel()
		if werr := <-done; !errors.Is(werr, context.Canceled) {
			t.Fatalf("writer under two readers: %v, want context.Canceled", werr)
		}
		if ok || err != nil {
			t.Fatalf("reader while a writer retries: %v %v, want refused (writer waiting)", ok, err)
		}
	})
}

// An attempt whose ctx ends before the nodes answered returns at once, and
// whatever the nodes grant afterwards is released in the background.
func TestAttemptCutShortByCtxReleasesLateGrants(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		gate := make(chan struct{})
		for _, n := range c.nodes {
			n.mu.Lock()
			n.gate, n.unlocks = gate, make(chan string, 10)
			n.mu.Unlock()
		}
		ctx, cancel := context.WithCancel(context.Background())
		m := dsync.NewDRWMutex(c.ds, "obj")
		done := make(chan error, 1)
		go func() {
			ok, _, err := m.TryLock(ctx)
			if ok {
				err = errors.New("granted")
			}
			done <- err
		}()
		for _, n := range c.nodes { // every node has the request
			for {
				n.mu.Lock()
				seen := n.lockSeen
				n.mu.Unlock()
				if seen > 0 {
					break
				}
				runtime.Gosched()
			}
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("TryLock with its ctx cancelled: %v, want context.Canceled", err)
		}
		close(gate) // the nodes now grant what was asked of them...
		for _, n := range c.nodes {
			if n.Stats().Grants == 0 {
				continue // this node's call ended with the ctx, ungranted
			}
			<-n.unlocks // ...and the client releases each grant
		}
		c.ds.Close() // waits for the background releases
		if g := c.grants(); g != 0 {
			t.Fatalf("%d grants left behind by the cut-short attempt", g)
		}
	})
}
