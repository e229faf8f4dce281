package rest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

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

func newBatchFixture(t *testing.T) *batchFixture {
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
	f.c = newClient(t, endpoint, ClientConfig{Secret: secret, MaxInFlight: 1, MaxBatch: 1000, queued: func(n int) { f.queued <- n }})
	return f
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
	if uid := <-f.g.entered; uid != "gate0" {
		t.Fatalf("entered %q", uid)
	}
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
	if _, err := f.c.Lock(ctx, locker.LockArgs{UID: "held", Resources: []string{"taken"}}); err != nil {
		t.Fatal(err)
	}
	if f.singles.Load() != 1 || f.batches.Load() != 0 {
		t.Fatalf("an idle client's call went as %d singles, %d batches; want it alone, at once", f.singles.Load(), f.batches.Load())
	}
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

	if s, b := f.singles.Load(), f.batches.Load(); s != 2 || b != 1 {
		t.Fatalf("%d operations went as %d single requests and %d batches; want the queued %d in one batch", n+2, s, b, n)
	}
	fences := map[uint64]bool{}
	for i, o := range out {
		switch i % 5 {
		case 0, 1, 2:
			if o.err != nil || !o.reply.OK || o.reply.Fence == 0 || fences[o.reply.Fence] {
				t.Fatalf("caller %d: %+v, %v; want its own grant", i, o.reply, o.err)
			}
			fences[o.reply.Fence] = true
		case 3:
			if o.err != nil || o.reply.OK || o.reply.Reason != locker.ReasonConflict {
				t.Fatalf("caller %d: %+v, %v; want refused as held by another", i, o.reply, o.err)
			}
		case 4:
			if i%10 == 4 {
				if !errors.Is(o.err, locker.ErrInvalidArgs) {
					t.Fatalf("caller %d: %v, want ErrInvalidArgs", i, o.err)
				}
				continue
			}
			want := []locker.RefreshStatus{locker.RefreshRefreshed, locker.RefreshNotHeld}
			if o.err != nil || len(o.refresh.Status) != 2 || o.refresh.Status[0] != want[0] || o.refresh.Status[1] != want[1] {
				t.Fatalf("caller %d: refresh %+v, %v", i, o.refresh, o.err)
			}
		}
	}
	entries, err := listAll(ctx, f.g)
	require.NoError(t, err)
	if want := 3*n/5 + 2; len(entries) != want {
		t.Fatalf("table holds %d entries, want %d", len(entries), want)
	}

	// The client counted each request once and each operation by outcome.
	want := ClientStats{
		Requests: 3, Batches: 1, Ops: n + 2,
		Locks: 4*n/5 + n/10 + 2, Refreshes: n / 10, Refused: n / 5, Failed: n / 10,
	}
	if got := f.c.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
	f.c.Close()
	_, err = f.c.Lock(ctx, locker.LockArgs{UID: "late", Resources: []string{"r"}})
	require.ErrorIs(t, err, locker.ErrClosed, "Lock after Close")
	if got := f.c.Stats(); got.NotSent != 1 || got.Requests != want.Requests {
		t.Fatalf("after a call on the closed client, Stats() = %+v; want NotSent 1 and no request", got)
	}
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
	if uid := <-f.g.entered; uid != "gate-inflight" {
		t.Fatalf("entered %q", uid)
	}
	// A caller cancelled while its batch waits in the node returns at once.
	cancelInflight()
	require.ErrorIs(t, <-inflight, context.Canceled, "caller cancelled in flight = want context.Canceled")
	// The node then grants it; the client releases the grant itself.
	close(inflightGate)
	require.NoError(t, <-stay)
	if uid := <-f.g.unlocked; uid != "gate-inflight" {
		t.Fatalf("client unlocked %q, want the abandoned grant gate-inflight", uid)
	}
	if f.batches.Load() != 1 {
		t.Fatalf("%d batches, want 1", f.batches.Load())
	}
	entries, err := listAll(context.Background(), f.g)
	require.NoError(t, err)
	var held []string
	for _, e := range entries {
		held = append(held, e.UID)
	}
	if strings.Join(held, ",") != "gate0,stay" {
		t.Fatalf("table holds %v; want only gate0 and stay (nothing of the cancelled callers)", held)
	}
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
	if batches.Load() != 1 {
		t.Fatalf("%d batches, want 1", batches.Load())
	}
	if c.IsOnline() {
		t.Fatal("a batch result saying the table is closed left the node online")
	}
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
	if !errors.Is(err, locker.ErrBusy) {
		t.Fatalf("lock beyond the queue bound = %v, want ErrBusy at once", err)
	}
	close(gate)
	require.NoError(t, <-slot)
	for range limit {
		require.NoError(t, <-errs, "queued lock")
	}
	if !c.IsOnline() {
		t.Fatal("a full queue marked the node offline")
	}
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
		if a := <-sink; a.Err != nil {
			t.Fatalf("submitted unlock %d: %v", a.Tag, a.Err)
		}
	}
	// The queue [b b b s s s] goes as [b b], [b s], [s s].
	if b, s := f.batches.Load(), f.singles.Load()-singles; b != 3 || s != 0 {
		t.Fatalf("%d batches and %d single requests, want 3 batches of 2", b, s)
	}
}
