package rest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// gateLocker is a table whose Lock, for the UIDs the test gated, waits
// until the test opens that UID's gate or the call's context ends.
type gateLocker struct {
	*locker.Local
	mu       sync.Mutex
	gates    map[string]chan struct{} // guarded by mu
	entered  chan string              // receives the UID of each gated Lock as it starts waiting
	unlocked chan string              // receives the UID of every Unlock
}

func newGateLocker() *gateLocker {
	return &gateLocker{
		Local:    locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1}),
		gates:    map[string]chan struct{}{},
		entered:  make(chan string, 64),
		unlocked: make(chan string, 1024),
	}
}

// gate makes Locks of uid wait; closing the returned channel lets them go.
func (g *gateLocker) gate(uid string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan struct{})
	g.gates[uid] = ch
	return ch
}

func (g *gateLocker) Lock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	g.mu.Lock()
	gate := g.gates[args.UID]
	g.mu.Unlock()
	if gate != nil {
		g.entered <- strings.Clone(args.UID) // args alias the request body (locker.ArgCopier)
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	return g.Local.Lock(ctx, args)
}

func (g *gateLocker) Unlock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	r, err := g.Local.Unlock(ctx, args)
	g.unlocked <- strings.Clone(args.UID)
	return r, err
}

// batchFixture is a gated table behind a server that counts requests, and a
// batching client with one slot.
type batchFixture struct {
	g       *gateLocker
	c       *Client
	singles atomic.Int64 // requests on single-operation paths
	batches atomic.Int64 // requests on the batch path
	queued  chan int
}

func newBatchFixture(t *testing.T, opts ...func(*ClientConfig)) *batchFixture {
	f := &batchFixture{g: newGateLocker(), queued: make(chan int, 4096)}
	t.Cleanup(func() { f.g.Close() })
	secret := newSecret(t)
	_, endpoint := startServer(t, f.g, ServerConfig{Secret: secret, OnRequest: func(path []byte) {
		switch string(path) {
		case PathBatch:
			f.batches.Add(1)
		case PathHello: // a client's first request, not a call
		default:
			f.singles.Add(1)
		}
	}})
	cfg := ClientConfig{Secret: secret, MaxInFlight: 1, MaxBatch: 1000, queued: func(n int) { f.queued <- n }}
	for _, o := range opts {
		o(&cfg)
	}
	f.c = newClient(t, endpoint, cfg)
	return f
}

// lingerFor returns an option of newBatchFixture that sets WaitLinger.
func lingerFor(d time.Duration) func(*ClientConfig) {
	return func(c *ClientConfig) { c.WaitLinger = d }
}

// queueState returns how many calls the coalescer holds and its senders.
func (f *batchFixture) queueState() (queued, inflight int) {
	co := &f.c.co
	co.mu.Lock()
	defer co.mu.Unlock()
	return len(co.queue), co.inflight
}

// TestWaitingCallLingersForAnUrgentOne: a lock that asks to wait is not
// sent alone at once: the release that comes next takes it along, in one
// request whose answer also brings it the grant the release handed it.
func TestWaitingCallLingersForAnUrgentOne(t *testing.T) {
	f := newBatchFixture(t, lingerFor(time.Hour))
	ctx := context.Background()
	_, err := f.c.Lock(ctx, locker.LockArgs{UID: "h", Resources: []string{"r"}, Ticket: 1})
	require.NoError(t, err)
	// h's sender frees its slot after h's caller has its answer.
	require.Eventually(t, func() bool { _, inflight := f.queueState(); return inflight == 0 }, time.Minute, time.Millisecond, "the sender freed its slot")
	sink := make(outcomeSink, 1)
	f.c.Submit(ctx, locker.OpLock, &locker.LockArgs{UID: "w", Resources: []string{"r"}, Ticket: 2, Wait: time.Minute}, 0, sink, 0)
	queued, inflight := f.queueState()
	assert.Equal(t, 1, queued, "the waiting lock lingers in the queue")
	assert.Zero(t, inflight, "no request started for it")

	_, err = f.c.Unlock(ctx, locker.LockArgs{UID: "h"})
	require.NoError(t, err)
	o := <-sink
	require.NoError(t, o.err)
	assert.True(t, o.r.OK, "w was handed the lock")
	assert.EqualValues(t, 1, f.batches.Load(), "the release and the waiting lock went in one request")
	// w's grant came in that request's answer, and maybe by the poll that
	// w's queued answer started too (it asks for what is unacknowledged):
	// either way, once.
	assert.EqualValues(t, 1, f.c.Stats().Events, "w's grant, once")
}

// TestWaitingCallLingersAtMostWaitLinger: a lock that asks to wait and
// that no other call takes along goes alone once it has lingered.
func TestWaitingCallLingersAtMostWaitLinger(t *testing.T) {
	f := newBatchFixture(t, lingerFor(time.Millisecond))
	sink := make(outcomeSink, 1)
	f.c.Submit(context.Background(), locker.OpLock, &locker.LockArgs{UID: "w", Resources: []string{"free"}, Ticket: 1, Wait: time.Minute}, 0, sink, 0)
	o := <-sink
	require.NoError(t, o.err)
	assert.True(t, o.r.OK)
	assert.EqualValues(t, 1, f.batches.Load())
}

// TestWaitingCallLingersBehindARequest: a lock that asks to wait and
// queued behind a request in flight is not sent alone when that request
// returns: it lingers for the next urgent call, which does not then wait
// behind it.
func TestWaitingCallLingersBehindARequest(t *testing.T) {
	f := newBatchFixture(t, lingerFor(time.Hour))
	ctx := context.Background()
	_, err := f.c.Lock(ctx, locker.LockArgs{UID: "h", Resources: []string{"r"}, Ticket: 1})
	require.NoError(t, err)
	gate, slot := f.holdSlot(t)
	sink := make(outcomeSink, 1)
	f.c.Submit(ctx, locker.OpLock, &locker.LockArgs{UID: "w", Resources: []string{"r"}, Ticket: 2, Wait: time.Minute}, 0, sink, 0)
	f.waitQueued(1)
	close(gate)
	require.NoError(t, <-slot)
	require.Eventually(t, func() bool { _, inflight := f.queueState(); return inflight == 0 }, time.Minute, time.Millisecond, "the sender freed its slot")
	queued, _ := f.queueState()
	assert.Equal(t, 1, queued, "the waiting lock still lingers")
	assert.Zero(t, f.batches.Load(), "nothing sent in a batch yet")

	_, err = f.c.Unlock(ctx, locker.LockArgs{UID: "h"})
	require.NoError(t, err)
	o := <-sink
	require.NoError(t, o.err)
	assert.True(t, o.r.OK)
	assert.EqualValues(t, 1, f.batches.Load(), "the release took the waiting lock along")
}

// holdSlot sends a gated lock that occupies the client's only slot until
// the returned gate is closed, and returns a channel for its result.
func (f *batchFixture) holdSlot(t *testing.T) (gate chan struct{}, result <-chan error) {
	gate = f.g.gate("gate0")
	done := make(chan error, 1)
	go func() {
		r, err := f.c.Lock(context.Background(), locker.LockArgs{UID: "gate0", Resources: []string{"gate-resource"}})
		if err == nil && !r.OK {
			err = fmt.Errorf("gate0 refused: %v", r.Reason)
		}
		done <- err
	}()
	require.Equal(t, "gate0", <-f.g.entered, "entered")
	return gate, done
}

// waitQueued waits until n calls are queued.
func (f *batchFixture) waitQueued(n int) {
	for got := range f.queued {
		if got >= n {
			return
		}
	}
}

func TestBatchingCoalescesAndAnswersEachCaller(t *testing.T) {
	f := newBatchFixture(t)
	ctx := context.Background()
	_, err := f.c.Lock(ctx, locker.LockArgs{UID: "held", Resources: []string{"taken"}})
	require.NoError(t, err)
	require.EqualValues(t, 1, f.singles.Load(), "an idle client's call went as %d singles, %d batches; want it alone, at once", f.singles.Load(), f.batches.Load())
	require.Zero(t, f.batches.Load(), "an idle client's call went as %d singles, %d batches; want it alone, at once", f.singles.Load(), f.batches.Load())
	gate, slot := f.holdSlot(t)

	// Many callers with different operations queue behind the held slot.
	const n = 200
	type outcome struct {
		reply   locker.Reply
		refresh locker.RefreshReply
		err     error
	}
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &out[i]
			a := locker.LockArgs{UID: fmt.Sprint("u", i), Resources: []string{fmt.Sprint("r", i)}, Quorum: 1}
			switch i % 5 {
			case 0, 1:
				o.reply, o.err = f.c.Lock(ctx, a)
			case 2:
				o.reply, o.err = f.c.RLock(ctx, a)
			case 3:
				a.Resources = []string{"taken"} // held by another
				o.reply, o.err = f.c.Lock(ctx, a)
			case 4:
				if i%10 == 4 {
					a.UID = "" // invalid: only this caller fails
					o.reply, o.err = f.c.Lock(ctx, a)
				} else {
					o.refresh, o.err = f.c.Refresh(ctx, locker.RefreshArgs{UIDs: []string{"held", "nobody"}})
				}
			}
		}()
	}
	f.waitQueued(n)
	close(gate)
	wg.Wait()
	require.NoError(t, <-slot)

	s, b := f.singles.Load(), f.batches.Load()
	require.EqualValues(t, 2, s, "%d operations went as %d single requests and %d batches; want the queued %d in one batch", n+2, s, b, n)
	require.EqualValues(t, 1, b, "%d operations went as %d single requests and %d batches; want the queued %d in one batch", n+2, s, b, n)
	fences := map[uint64]bool{}
	for i, o := range out {
		switch i % 5 {
		case 0, 1, 2:
			require.NoError(t, o.err, "caller %d: %+v; want its own grant", i, o.reply)
			require.True(t, o.reply.OK, "caller %d: %+v; want its own grant", i, o.reply)
			require.NotZero(t, o.reply.Fence, "caller %d: %+v; want its own grant", i, o.reply)
			require.False(t, fences[o.reply.Fence], "caller %d: %+v; want its own grant (fence already given)", i, o.reply)
			fences[o.reply.Fence] = true
		case 3:
			require.NoError(t, o.err, "caller %d: %+v; want refused as held by another", i, o.reply)
			require.False(t, o.reply.OK, "caller %d: %+v; want refused as held by another", i, o.reply)
			require.Equal(t, locker.ReasonConflict, o.reply.Reason, "caller %d: %+v; want refused as held by another", i, o.reply)
		case 4:
			if i%10 == 4 {
				require.ErrorIs(t, o.err, locker.ErrInvalidArgs, "caller %d", i)
				continue
			}
			want := []locker.RefreshStatus{locker.RefreshRefreshed, locker.RefreshNotHeld}
			require.NoError(t, o.err, "caller %d: refresh %+v", i, o.refresh)
			require.Equal(t, want, o.refresh.Status, "caller %d: refresh %+v", i, o.refresh)
		}
	}
	entries, err := listAll(ctx, f.g)
	require.NoError(t, err)
	require.Len(t, entries, 3*n/5+2, "table holds entries")

	// The client counted each request once and each operation by outcome.
	want := ClientStats{
		Requests: 3, Batches: 1, Ops: n + 2,
		Locks: 4*n/5 + n/10 + 2, Refreshes: n / 10, Refused: n / 5, Failed: n / 10,
	}
	require.Equal(t, want, f.c.Stats(), "Stats()")
	f.c.Close()
	_, err = f.c.Lock(ctx, locker.LockArgs{UID: "late", Resources: []string{"r"}})
	require.ErrorIs(t, err, locker.ErrClosed, "Lock after Close")
	got := f.c.Stats()
	require.EqualValues(t, 1, got.NotSent, "after a call on the closed client, Stats() = %+v; want NotSent 1 and no request", got)
	require.Equal(t, want.Requests, got.Requests, "after a call on the closed client, Stats() = %+v; want NotSent 1 and no request", got)
}

func TestBatchingCancelledCallers(t *testing.T) {
	f := newBatchFixture(t)
	gate0, slot := f.holdSlot(t)
	inflightGate := f.g.gate("gate-inflight")

	lock := func(ctx context.Context, uid, resource string) <-chan error {
		done := make(chan error, 1)
		go func() {
			r, err := f.c.Lock(ctx, locker.LockArgs{UID: uid, Resources: []string{resource}})
			if err == nil && !r.OK {
				err = fmt.Errorf("%s refused: %v", uid, r.Reason)
			}
			done <- err
		}()
		return done
	}
	queuedCtx, cancelQueued := context.WithCancel(context.Background())
	queued := lock(queuedCtx, "queued", "q")
	f.waitQueued(1)
	inflightCtx, cancelInflight := context.WithCancel(context.Background())
	inflight := lock(inflightCtx, "gate-inflight", "i")
	f.waitQueued(2)
	stay := lock(context.Background(), "stay", "s")
	f.waitQueued(3)

	// A caller cancelled while queued returns at once and is never sent.
	cancelQueued()
	require.ErrorIs(t, <-queued, context.Canceled, "caller cancelled in the queue = want context.Canceled")

	// The slot frees; the next request carries the two live calls.
	close(gate0)
	require.NoError(t, <-slot)
	require.Equal(t, "gate-inflight", <-f.g.entered, "entered")
	// A caller cancelled while its batch waits in the node returns at once.
	cancelInflight()
	require.ErrorIs(t, <-inflight, context.Canceled, "caller cancelled in flight = want context.Canceled")
	// The node then grants it; the client releases the grant itself.
	close(inflightGate)
	require.NoError(t, <-stay)
	require.Equal(t, "gate-inflight", <-f.g.unlocked, "client unlocked, want the abandoned grant gate-inflight")
	require.EqualValues(t, 1, f.batches.Load(), "batches")
	entries, err := listAll(context.Background(), f.g)
	require.NoError(t, err)
	var held []string
	for _, e := range entries {
		held = append(held, e.UID)
	}
	require.Equal(t, "gate0,stay", strings.Join(held, ","), "table holds %v; want only gate0 and stay (nothing of the cancelled callers)", held)
}

// closingLocker answers every Lock but gate0's with ErrClosed, as a table
// that is shutting down does.
type closingLocker struct{ *gateLocker }

func (c closingLocker) Lock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	if args.UID == "gate0" {
		return c.gateLocker.Lock(ctx, args)
	}
	return locker.Reply{}, locker.ErrClosed
}

func TestBatchResultClosedMarksOffline(t *testing.T) {
	g := newGateLocker()
	defer g.Close()
	var batches atomic.Int64
	_, endpoint := startServer(t, closingLocker{g}, ServerConfig{Insecure: true, OnRequest: func(p []byte) {
		if string(p) == PathBatch {
			batches.Add(1)
		}
	}})
	queued := make(chan int, 16)
	c := newClient(t, endpoint, ClientConfig{Insecure: true, MaxInFlight: 1, queued: func(n int) { queued <- n }})
	f := &batchFixture{g: g, c: c, queued: queued}
	gate, slot := f.holdSlot(t)
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := c.Lock(context.Background(), locker.LockArgs{UID: fmt.Sprint("u", i), Resources: []string{fmt.Sprint("r", i)}})
			errs <- err
		}()
	}
	f.waitQueued(2)
	close(gate)
	require.NoError(t, <-slot)
	for range 2 {
		require.ErrorIs(t, <-errs, locker.ErrOffline, "lock in a batch answered closed = want ErrOffline")
	}
	require.EqualValues(t, 1, batches.Load(), "batches")
	require.False(t, c.IsOnline(), "a batch result saying the table is closed left the node online")
}

func TestBatchingQueueIsBounded(t *testing.T) {
	g := newGateLocker()
	defer g.Close()
	_, endpoint := startServer(t, g, ServerConfig{Insecure: true})
	queued := make(chan int, 64)
	c := newClient(t, endpoint, ClientConfig{Insecure: true, MaxInFlight: 1, MaxBatch: 1, queued: func(n int) { queued <- n }})
	f := &batchFixture{g: g, c: c, queued: queued}
	gate, slot := f.holdSlot(t)
	const limit = queueBatches * 1
	errs := make(chan error, limit)
	for i := range limit {
		go func() {
			_, err := c.Lock(context.Background(), locker.LockArgs{UID: fmt.Sprint("u", i), Resources: []string{fmt.Sprint("r", i)}})
			errs <- err
		}()
	}
	f.waitQueued(limit)
	_, err := c.Lock(context.Background(), locker.LockArgs{UID: "one-too-many", Resources: []string{"x"}})
	require.ErrorIs(t, err, locker.ErrBusy, "lock beyond the queue bound, want ErrBusy at once")
	close(gate)
	require.NoError(t, <-slot)
	for range limit {
		require.NoError(t, <-errs, "queued lock")
	}
	require.True(t, c.IsOnline(), "a full queue marked the node offline")
}

// TestBatchBytesBound checks that a batch carries at most maxBatchBytes of
// arguments, counted by the size each call got when it was queued, for
// calls made through Unlock and through Submit alike. Three calls of 0.4
// MiB each queue behind a held slot: two fit in a batch, three do not.
func TestBatchBytesBound(t *testing.T) {
	f := newBatchFixture(t)
	ctx := context.Background()
	big := strings.Repeat("o", maxBatchBytes*2/5)
	gate, slot := f.holdSlot(t)

	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.c.Unlock(ctx, locker.LockArgs{UID: fmt.Sprint("b", i), Owner: big})
			assert.NoError(t, err, "unlock b%d", i)
		}()
	}
	f.waitQueued(3)
	sink := make(chanSink, 3)
	for i := range 3 {
		f.c.Submit(ctx, locker.OpUnlock, &locker.LockArgs{UID: fmt.Sprint("s", i), Owner: big}, 0, sink, i)
	}
	f.waitQueued(6)
	singles := f.singles.Load()
	close(gate)
	require.NoError(t, <-slot)
	wg.Wait()
	for range 3 {
		a := <-sink
		require.NoError(t, a.Err, "submitted unlock %d", a.Tag)
	}
	// The queue [b b b s s s] goes as [b b], [b s], [s s].
	b, s := f.batches.Load(), f.singles.Load()-singles
	require.EqualValues(t, 3, b, "%d batches and %d single requests, want 3 batches of 2", b, s)
	require.Zero(t, s, "%d batches and %d single requests, want 3 batches of 2", b, s)
}
