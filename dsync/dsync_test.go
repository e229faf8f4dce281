package dsync_test

import (
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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

func (n *node) Version(ctx context.Context, a locker.VersionArgs) (locker.VersionReply, error) {
	if err := n.fail(); err != nil {
		return locker.VersionReply{}, err
	}
	return n.Local.Version(ctx, a)
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
// is bounded by timeout on the node's clock, not by ctx. A lock that waits
// on a node that is up and not instrumented goes to the table's own Submit,
// which tells the sink it is queued, and wounded, as a real node's
// transport does (without that, split votes between waiters would wait out
// their MaxWait instead of yielding to the older one).
func (n *node) Submit(ctx context.Context, op locker.Op, a *locker.LockArgs, timeout time.Duration, sink locker.Sink, tag int) {
	if err := ctx.Err(); err != nil {
		sink.Done(tag, locker.Reply{}, fmt.Errorf("%w (%w)", err, locker.ErrNotSent))
		return
	}
	if (op == locker.OpLock || op == locker.OpRLock) && a.Wait > 0 && !n.down.Load() {
		n.mu.Lock()
		plain := n.gate == nil && n.onLock == nil && n.locked == nil
		if plain {
			n.lockSeen++
		}
		n.mu.Unlock()
		if plain {
			n.Local.Submit(ctx, op, a, timeout, sink, tag)
			return
		}
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
		require.NoError(t, err)
		assert.Equal(t, rw[0], ds.ReadQuorum(), "n=%d: read quorum", n)
		assert.Equal(t, rw[1], ds.WriteQuorum(), "n=%d: write quorum", n)
		assert.Equal(t, n, ds.Lockers(), "n=%d: lockers", n)
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
		ds, err := dsync.New(tc.ls, tc.cfg)
		if err == nil {
			ds.Close()
		}
		if assert.Error(t, err, "%s: New succeeded", name) {
			assert.True(t, strings.HasPrefix(err.Error(), "dsync: "), "%s: error %q does not start with the package name", name, err)
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
				ok, _, err := w.TryLock(ctx)
				require.NoError(t, err, "first TryLock")
				require.True(t, ok, "first TryLock")
				other := dsync.NewDRWMutex(c.ds, "obj")
				ok, _, err = other.TryLock(ctx)
				require.NoError(t, err, "second writer, want refused")
				require.False(t, ok, "second writer, want refused")
				ok, _, err = other.TryRLock(ctx)
				require.NoError(t, err, "reader while written, want refused")
				require.False(t, ok, "reader while written, want refused")
				require.NoError(t, w.Unlock(ctx))
				r1, r2 := dsync.NewDRWMutex(c.ds, "obj"), dsync.NewDRWMutex(c.ds, "obj")
				for _, r := range []*dsync.DRWMutex{r1, r2} {
					ok, _, err := r.TryRLock(ctx)
					require.NoError(t, err, "reader")
					require.True(t, ok, "reader")
				}
				ok, _, _ = other.TryLock(ctx)
				require.False(t, ok, "writer granted while read-locked")
				r1.RUnlock(ctx)
				r2.RUnlock(ctx)
				// Each RUnlock returned once a read quorum released, so a
				// TryLock could still meet a reader on a node whose answer
				// is on its way: a writer that waits gets the lock.
				_, err = other.GetLock(ctx, dsync.Options{Timeout: 10 * time.Second})
				require.NoError(t, err, "writer after readers left")
				other.Unlock(ctx)
				c.ds.Close() // waits for background releases
				require.Zero(t, c.grants(), "grants left on the nodes")
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
			require.NoError(t, err)
		}
		require.Equal(t, workers*rounds, counter, "counter: updates lost")
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
				_, err := m.GetLock(ctx, dsync.Options{Timeout: time.Minute})
				require.NoError(t, err, "with %d of %d down", w, n)
				require.NoError(t, m.Unlock(ctx), "unlock with %d down", w)
				// One more down: no write quorum.
				c.nodes[w].down.Store(true)
				ok, _, err := m.TryLock(ctx)
				require.False(t, ok, "with %d down: ok=%v err=%v, want ErrNoQuorum", w+1, ok, err)
				require.ErrorIs(t, err, dsync.ErrNoQuorum, "with %d down", w+1)
				_, err = m.GetLock(ctx, dsync.Options{Timeout: 20 * time.Millisecond})
				require.ErrorIs(t, err, dsync.ErrTimeout, "GetLock with %d down, want ErrTimeout wrapping ErrNoQuorum", w+1)
				require.ErrorIs(t, err, dsync.ErrNoQuorum, "GetLock with %d down, want ErrTimeout wrapping ErrNoQuorum", w+1)
				c.ds.Close()
				require.Zero(t, c.grants(), "failed attempts left grants")
			})
		}
	})
}

func TestTimeoutAndCancellationAreDistinct(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		ctx := context.Background()
		holder := dsync.NewDRWMutex(c.ds, "obj")
		_, err := holder.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		m := dsync.NewDRWMutex(c.ds, "obj")
		_, err = m.GetLock(ctx, dsync.Options{Timeout: 10 * time.Millisecond})
		require.ErrorIs(t, err, dsync.ErrTimeout, "timeout")
		require.ErrorIs(t, err, dsync.ErrLocked, "timeout")
		require.NotErrorIs(t, err, context.Canceled, "timeout")
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() {
			_, err := m.GetLock(cctx, dsync.Options{})
			done <- err
		}()
		cancel()
		err = <-done
		require.ErrorIs(t, err, context.Canceled, "cancelled")
		require.NotErrorIs(t, err, dsync.ErrTimeout, "cancelled")
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer dcancel()
		_, err = m.GetLock(dctx, dsync.Options{})
		require.ErrorIs(t, err, context.DeadlineExceeded, "deadline")
		require.NotErrorIs(t, err, dsync.ErrTimeout, "deadline")
		holder.Unlock(ctx)
	})
}

func TestInvalidNamesFailAtOnce(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		for _, names := range [][]string{nil, {""}, {"a", ""}} {
			m := dsync.NewDRWMutex(c.ds, names...)
			_, err := m.GetLock(context.Background(), dsync.Options{})
			assert.ErrorIs(t, err, locker.ErrInvalidArgs, "names %q", names)
		}
		// Too many resources: the nodes refuse, and the client does not retry.
		many := make([]string, locker.DefaultMaxResources+1)
		for i := range many {
			many[i] = fmt.Sprint("r", i)
		}
		_, err := dsync.NewDRWMutex(c.ds, many...).GetLock(context.Background(), dsync.Options{})
		assert.ErrorIs(t, err, locker.ErrInvalidArgs, "too many names")
		m := dsync.NewDRWMutex(c.ds, "b", "a", "b")
		assert.Equal(t, []string{"a", "b"}, m.Names(), "Names()")
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
					s, _ := r.(string)
					assert.True(t, strings.HasPrefix(s, "dsync: "), "%s of unlocked mutex: recovered %v, want a panic starting with \"dsync: \"", name, r)
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
			r, err := n.Local.Lock(ctx, locker.LockArgs{UID: "holder", Resources: []string{"obj"}})
			require.NoError(t, err)
			require.True(t, r.OK, "%+v", r)
		}
		gate := make(chan struct{})
		c.nodes[0].mu.Lock()
		c.nodes[0].gate = gate
		c.nodes[0].unlocks = make(chan string, 10)
		c.nodes[0].mu.Unlock()

		m := dsync.NewDRWMutex(c.ds, "obj")
		ok, _, err := m.TryLock(ctx)
		require.NoError(t, err, "TryLock, want refused")
		require.False(t, ok, "TryLock, want refused")
		close(gate) // node 0 now grants the abandoned request...
		<-c.nodes[0].unlocks
		// ...and the client released it.
		require.Zero(t, c.nodes[0].Stats().Grants, "node 0 still holds grants")
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
		require.NoError(t, err)
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
		require.ErrorIs(t, context.Cause(lockCtx), dsync.ErrLockLost, "cause")
		c.ds.Close() // waits for the background force-release
		require.Zero(t, c.grants(), "remains of the lost lock: grants")
		require.ErrorIs(t, m.Unlock(ctx), dsync.ErrLockLost, "Unlock of lost lock")
	})
}

func TestUnrefreshedLockIsGivenUpBeforeNodesExpireIt(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		clk := clock.NewFake(time.Unix(1_700_000_000, 0))
		c := newCluster(t, 3, clk)
		ctx := context.Background()
		m := dsync.NewDRWMutex(c.ds, "obj")
		lockCtx, err := m.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
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
		require.ErrorIs(t, context.Cause(lockCtx), dsync.ErrLockLost, "cause")
		// The holder gave up before the nodes' validity ran out.
		held := clk.Since(start)
		require.Less(t, held, validity, "lock given up after %v, not before the validity %v", held, validity)
	})
}

func TestUnlockDoesNotBlockWhenNodesAreDown(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		ctx := context.Background()
		m := dsync.NewDRWMutex(c.ds, "obj")
		_, err := m.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		c.nodes[0].down.Store(true)
		c.nodes[1].down.Store(true)
		err = m.Unlock(ctx)
		require.ErrorIs(t, err, dsync.ErrUnlockPending, "Unlock with 2 of 3 down")
		// The nodes come back and the background retries finish the release.
		c.nodes[0].mu.Lock()
		c.nodes[0].unlocks = make(chan string, 100)
		c.nodes[0].mu.Unlock()
		c.nodes[0].down.Store(false)
		c.nodes[1].down.Store(false)
		<-c.nodes[0].unlocks
		st := c.nodes[0].Stats()
		require.Zero(t, st.Grants, "node 0 still holds the lock: %+v", st)
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
	_, err := m.GetLock(context.Background(), dsync.Options{})
	require.NoError(t, err)
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
			require.NoError(t, m.Unlock(ctx), "Unlock with one node slow")
			waited := time.Since(start)
			require.Zero(t, waited, "Unlock waited %v for the slow node", waited)
			require.Equal(t, 1, c.nodes[2].Stats().Grants, "the slow node holds grants before it answered")
			closed := make(chan struct{})
			go func() {
				c.ds.Close()
				close(closed)
			}()
			synctest.Wait()
			select {
			case <-closed:
				require.Fail(t, "Close returned before the slow node answered the release")
			default:
			}
			close(gate)
			<-closed
			require.Zero(t, c.grants(), "grants left after Close")
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
			require.NoError(t, m.Unlock(ctx))
			slow.down.Store(true)
			close(gate)
			synctest.Wait() // the release failed; retries wait out their back-off
			require.Equal(t, 1, slow.Stats().Grants, "the down node holds grants")
			slow.mu.Lock()
			slow.unlocks = make(chan string, 1)
			slow.mu.Unlock()
			slow.down.Store(false)
			select {
			case <-slow.unlocks: // a retry got through
			case <-time.After(time.Minute): // on the bubble's clock: at once if nothing else is to happen
				require.Fail(t, "the failed release was not retried")
			}
			require.GreaterOrEqual(t, slow.releases.Load(), int32(2), "release calls on the slow node, want the failed one and a retry")
			require.Zero(t, slow.Stats().Grants, "the node holds grants after the retry")
		})
	})
}

func TestLockContextEndsWithUnlockAndCaller(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		m := dsync.NewDRWMutex(c.ds, "obj")
		lockCtx, err := m.GetLock(context.Background(), dsync.Options{Timeout: time.Minute})
		require.NoError(t, err)
		require.NoError(t, lockCtx.Err(), "lock context done while held")
		m.Unlock(context.Background())
		<-lockCtx.Done()

		parent, cancel := context.WithCancel(context.Background())
		rctx, err := m.GetRLock(parent, dsync.Options{})
		require.NoError(t, err)
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
		ok, _, err := r.TryRLock(ctx)
		require.NoError(t, err, "read with 2 of 4 up")
		require.True(t, ok, "read with 2 of 4 up")
		ok, _, err = dsync.NewDRWMutex(c.ds, "z").TryLock(ctx)
		require.False(t, ok, "write with 2 of 4 up: %v %v", ok, err)
		require.ErrorIs(t, err, dsync.ErrNoQuorum, "write with 2 of 4 up")
		c.nodes[0].down.Store(false)
		c.nodes[1].down.Store(false)
		w := dsync.NewDRWMutex(c.ds, "b", "c")
		ok, _, _ = w.TryLock(ctx)
		require.False(t, ok, "write on b granted while b is read-locked")
		wc := dsync.NewDRWMutex(c.ds, "c")
		ok, _, err = wc.TryLock(ctx)
		require.NoError(t, err, "c was left locked by the failed multi-resource attempt")
		require.True(t, ok, "c was left locked by the failed multi-resource attempt")
	})
}

func TestSourceIsTheCallersLine(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 1, nil)
		m := dsync.NewDRWMutex(c.ds, "obj")
		for range 2 { // the second time from the cache
			_, err := m.GetLock(context.Background(), dsync.Options{}) // the line recorded
			require.NoError(t, err)
			entries, err := listAll(context.Background(), c.nodes[0])
			require.NoError(t, err, "entries %+v", entries)
			require.Len(t, entries, 1, "entries %+v", entries)
			require.True(t, strings.HasPrefix(entries[0].Source, "dsync/dsync_test.go:"), "entries %+v", entries)
			m.Unlock(context.Background())
		}
		ok, _, _ := m.TryLock(context.Background())
		entries, _ := listAll(context.Background(), c.nodes[0])
		require.True(t, ok, "TryLock source: %+v", entries)
		require.Len(t, entries, 1, "TryLock source: %+v", entries)
		require.Contains(t, entries[0].Source, "dsync_test.go:", "TryLock source: %+v", entries)
	})
}

func TestCloseCancelsHeldLocks(t *testing.T) {
	eachPath(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		m := dsync.NewDRWMutex(c.ds, "obj")
		lockCtx, err := m.GetLock(context.Background(), dsync.Options{})
		require.NoError(t, err)
		c.ds.Close()
		require.Error(t, lockCtx.Err(), "after Close: %v", context.Cause(lockCtx))
		require.ErrorIs(t, context.Cause(lockCtx), dsync.ErrLockLost, "after Close")
		_, err = m.GetLock(context.Background(), dsync.Options{})
		require.ErrorIs(t, err, dsync.ErrClosed, "GetLock after Close")
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
				require.False(t, ok, "TryLock: %v %v", ok, err)
				require.ErrorIs(t, err, dsync.ErrNoQuorum, "TryLock")
				require.Zero(t, c.nodes[0].Stats().Grants, "node 0 kept the failed attempt's grant")
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
					require.Zero(t, n.releases.Load(), "node %d: releases of a call never sent", i+1)
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
		ok, _, err := r1.TryRLock(ctx)
		require.NoError(t, err, "first reader")
		require.True(t, ok, "first reader")
		w := dsync.NewDRWMutex(c.ds, "obj")
		ok, _, err = w.TryLock(ctx)
		require.NoError(t, err, "TryLock under a reader, want refused")
		require.False(t, ok, "TryLock under a reader, want refused")
		r2 := dsync.NewDRWMutex(c.ds, "obj")
		ok, _, err = r2.TryRLock(ctx)
		require.NoError(t, err, "reader after a refused TryLock, want granted")
		require.True(t, ok, "reader after a refused TryLock, want granted")
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
		ok, _, err = r3.TryRLock(ctx)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled, "writer under two readers")
		require.NoError(t, err, "reader while a writer retries, want refused (writer waiting)")
		require.False(t, ok, "reader while a writer retries, want refused (writer waiting)")
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
		require.ErrorIs(t, <-done, context.Canceled, "TryLock with its ctx cancelled")
		close(gate) // the nodes now grant what was asked of them...
		for _, n := range c.nodes {
			if n.Stats().Grants == 0 {
				continue // this node's call ended with the ctx, ungranted
			}
			<-n.unlocks // ...and the client releases each grant
		}
		c.ds.Close() // waits for the background releases
		require.Zero(t, c.grants(), "grants left behind by the cut-short attempt")
	})
}
