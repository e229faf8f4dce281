package rest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

func TestSubmitConformance(t *testing.T) {
	t.Run("Unbatched", func(t *testing.T) { lockertest.RunSubmit(t, conformanceFactory(ClientConfig{DisableBatching: true})) })
	t.Run("Batched", func(t *testing.T) { lockertest.RunSubmit(t, conformanceFactory(ClientConfig{})) })
	t.Run("BatchPathOnly", func(t *testing.T) {
		lockertest.RunSubmit(t, conformanceFactory(ClientConfig{batchAlone: true, MaxInFlight: 1}))
	})
}

type chanSink = lockertest.Sink

func TestSubmitBatchesAndAnswersEachCallOnce(t *testing.T) {
	f := newBatchFixture(t)
	ctx := context.Background()
	gate, slot := f.holdSlot(t)

	const n = 100
	sink := make(chanSink, 2*n)
	ops := []locker.Op{locker.OpLock, locker.OpRLock}
	all := make([]*locker.LockArgs, n)
	for i := range n {
		all[i] = &locker.LockArgs{UID: fmt.Sprint("s", i), Resources: []string{fmt.Sprint("r", i)}, Quorum: 1}
		f.c.Submit(ctx, ops[i%2], all[i], 0, sink, i)
	}
	f.waitQueued(n)
	if len(sink) != 0 {
		t.Fatalf("%d answers before the node was asked", len(sink))
	}
	close(gate)
	require.NoError(t, <-slot)
	seen := make(map[int]bool)
	for range n {
		a := <-sink
		if seen[a.Tag] || a.Tag < 0 || a.Tag >= n {
			t.Fatalf("tag %d answered twice or unknown", a.Tag)
		}
		seen[a.Tag] = true
		if a.Err != nil || !a.Reply.OK || a.Reply.Fence == 0 {
			t.Fatalf("call %d: %+v, %v; want granted", a.Tag, a.Reply, a.Err)
		}
	}
	if b := f.batches.Load(); b != 1 {
		t.Fatalf("%d batches, want the %d queued calls in one", b, n)
	}
	for _, a := range all {
		a.Resources[0] = "reused" // answered: the caller may reuse args (-race checks nobody reads them now)
	}
	entries, err := listAll(ctx, f.g)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Resource == "reused" {
			t.Fatalf("the node locked the caller's reused argument: %+v", e)
		}
	}

	// Releases go the same way.
	for i := range n {
		op := locker.OpUnlock
		if i%2 == 1 {
			op = locker.OpRUnlock
		}
		f.c.Submit(ctx, op, &locker.LockArgs{UID: fmt.Sprint("s", i)}, 0, sink, i)
	}
	for range n {
		if a := <-sink; a.Err != nil || !a.Reply.OK {
			t.Fatalf("release %d: %+v, %v", a.Tag, a.Reply, a.Err)
		}
	}
}

func TestSubmitThatCannotBeSent(t *testing.T) {
	f := newBatchFixture(t)
	sink := make(chanSink, 1)
	args := &locker.LockArgs{UID: "u", Resources: []string{"r"}}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.c.Submit(ctx, locker.OpLock, args, 0, sink, 7)
	if a := <-sink; a.Tag != 7 || !errors.Is(a.Err, context.Canceled) || !errors.Is(a.Err, locker.ErrNotSent) {
		t.Fatalf("ended ctx: %+v; want Canceled and ErrNotSent", a)
	}

	f.c.Submit(context.Background(), locker.Op(0), args, 0, sink, 8)
	if a := <-sink; a.Tag != 8 || !errors.Is(a.Err, locker.ErrInvalidArgs) {
		t.Fatalf("unknown op: %+v; want ErrInvalidArgs", a)
	}

	f.c.Close()
	f.c.Submit(context.Background(), locker.OpLock, args, 0, sink, 9)
	if a := <-sink; a.Tag != 9 || !errors.Is(a.Err, locker.ErrClosed) || !errors.Is(a.Err, locker.ErrNotSent) {
		t.Fatalf("closed client: %+v; want ErrClosed and ErrNotSent", a)
	}
	if st := f.g.Stats(); st.Grants != 0 {
		t.Fatalf("the node holds %d grants from calls that were never sent", st.Grants)
	}
}

// TestSubmitTimesOutInTheQueue checks that a submitted call whose timeout
// passes while it waits in the queue is answered with an error wrapping
// context.DeadlineExceeded and never sent, while the calls queued around it
// go in one batch. Its timeout, a nanosecond, counts from when the request
// that holds the slot was taken (see coalescer.now), so it has passed when
// the sender next takes from the queue, after that request's round trip.
func TestSubmitTimesOutInTheQueue(t *testing.T) {
	f := newBatchFixture(t)
	ctx := context.Background()
	gate, slot := f.holdSlot(t)
	sink := make(chanSink, 3)
	for i, timeout := range []time.Duration{0, time.Nanosecond, 0} {
		f.c.Submit(ctx, locker.OpLock, &locker.LockArgs{UID: fmt.Sprint("s", i), Resources: []string{fmt.Sprint("r", i)}}, timeout, sink, i)
	}
	f.waitQueued(3)
	close(gate)
	require.NoError(t, <-slot)
	for range 3 {
		a := <-sink
		if a.Tag == 1 {
			if !errors.Is(a.Err, context.DeadlineExceeded) || a.Reply.OK {
				t.Fatalf("call timed out in the queue: %+v; want DeadlineExceeded", a)
			}
			continue
		}
		if a.Err != nil || !a.Reply.OK {
			t.Fatalf("call %d: %+v, %v; want granted", a.Tag, a.Reply, a.Err)
		}
	}
	if got := f.c.Stats(); got.NotSent != 1 || got.Batches != 1 || got.Ops != 3 {
		t.Fatalf("Stats() = %+v; want NotSent 1, and one batch of the 2 live calls after the held one", got)
	}
	entries, err := listAll(ctx, f.g)
	require.NoError(t, err)
	for _, e := range entries {
		if e.UID == "s1" {
			t.Fatalf("the node holds the call that timed out in the queue: %+v", e)
		}
	}
}

// TestQueuedCallFitsACacheLine keeps a queued call within one cache line
// (see coalescer): what a submitter writes, and the sender reads, per call.
func TestQueuedCallFitsACacheLine(t *testing.T) {
	if size := unsafe.Sizeof(queuedCall{}); size > 64 {
		t.Errorf("a queued call takes %d bytes, more than a cache line", size)
	}
}

// TestQueueConformance: waiting on the node through the client, which
// gets its news by polling the node's events (wait.go, events.go).
func TestQueueConformance(t *testing.T) {
	t.Run("Batched", func(t *testing.T) { lockertest.RunQueue(t, conformanceFactory(ClientConfig{})) })
	t.Run("Unbatched", func(t *testing.T) { lockertest.RunQueue(t, conformanceFactory(ClientConfig{DisableBatching: true})) })
}
