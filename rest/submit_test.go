package rest

import (
	"context"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
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
	require.Empty(t, sink, "answers before the node was asked")
	close(gate)
	require.NoError(t, <-slot)
	seen := make(map[int]bool)
	for range n {
		a := <-sink
		require.False(t, seen[a.Tag], "tag %d answered twice", a.Tag)
		require.GreaterOrEqual(t, a.Tag, 0, "tag %d unknown", a.Tag)
		require.Less(t, a.Tag, n, "tag %d unknown", a.Tag)
		seen[a.Tag] = true
		require.NoError(t, a.Err, "call %d: %+v; want granted", a.Tag, a.Reply)
		require.True(t, a.Reply.OK, "call %d: %+v; want granted", a.Tag, a.Reply)
		require.NotZero(t, a.Reply.Fence, "call %d: %+v; want granted", a.Tag, a.Reply)
	}
	require.EqualValues(t, 1, f.batches.Load(), "batches, want the %d queued calls in one", n)
	for _, a := range all {
		a.Resources[0] = "reused" // answered: the caller may reuse args (-race checks nobody reads them now)
	}
	entries, err := listAll(ctx, f.g)
	require.NoError(t, err)
	for _, e := range entries {
		require.NotEqual(t, "reused", e.Resource, "the node locked the caller's reused argument: %+v", e)
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
		a := <-sink
		require.NoError(t, a.Err, "release %d: %+v", a.Tag, a.Reply)
		require.True(t, a.Reply.OK, "release %d: %+v", a.Tag, a.Reply)
	}
}

func TestSubmitThatCannotBeSent(t *testing.T) {
	f := newBatchFixture(t)
	sink := make(chanSink, 1)
	args := &locker.LockArgs{UID: "u", Resources: []string{"r"}}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.c.Submit(ctx, locker.OpLock, args, 0, sink, 7)
	a := <-sink
	require.Equal(t, 7, a.Tag, "ended ctx: %+v; want Canceled and ErrNotSent", a)
	require.ErrorIs(t, a.Err, context.Canceled, "ended ctx: %+v; want Canceled and ErrNotSent", a)
	require.ErrorIs(t, a.Err, locker.ErrNotSent, "ended ctx: %+v; want Canceled and ErrNotSent", a)

	f.c.Submit(context.Background(), locker.Op(0), args, 0, sink, 8)
	a = <-sink
	require.Equal(t, 8, a.Tag, "unknown op: %+v; want ErrInvalidArgs", a)
	require.ErrorIs(t, a.Err, locker.ErrInvalidArgs, "unknown op: %+v; want ErrInvalidArgs", a)

	f.c.Close()
	f.c.Submit(context.Background(), locker.OpLock, args, 0, sink, 9)
	a = <-sink
	require.Equal(t, 9, a.Tag, "closed client: %+v; want ErrClosed and ErrNotSent", a)
	require.ErrorIs(t, a.Err, locker.ErrClosed, "closed client: %+v; want ErrClosed and ErrNotSent", a)
	require.ErrorIs(t, a.Err, locker.ErrNotSent, "closed client: %+v; want ErrClosed and ErrNotSent", a)
	require.Zero(t, f.g.Stats().Grants, "the node holds grants from calls that were never sent")
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
			require.ErrorIs(t, a.Err, context.DeadlineExceeded, "call timed out in the queue: %+v; want DeadlineExceeded", a)
			require.False(t, a.Reply.OK, "call timed out in the queue: %+v; want DeadlineExceeded", a)
			continue
		}
		require.NoError(t, a.Err, "call %d: %+v; want granted", a.Tag, a.Reply)
		require.True(t, a.Reply.OK, "call %d: %+v; want granted", a.Tag, a.Reply)
	}
	got := f.c.Stats()
	require.EqualValues(t, 1, got.NotSent, "Stats() = %+v; want NotSent 1, and one batch of the 2 live calls after the held one", got)
	require.EqualValues(t, 1, got.Batches, "Stats() = %+v; want NotSent 1, and one batch of the 2 live calls after the held one", got)
	require.EqualValues(t, 3, got.Ops, "Stats() = %+v; want NotSent 1, and one batch of the 2 live calls after the held one", got)
	entries, err := listAll(ctx, f.g)
	require.NoError(t, err)
	for _, e := range entries {
		require.NotEqual(t, "s1", e.UID, "the node holds the call that timed out in the queue: %+v", e)
	}
}

// TestQueuedCallFitsACacheLine keeps a queued call within one cache line
// (see coalescer): what a submitter writes, and the sender reads, per call.
func TestQueuedCallFitsACacheLine(t *testing.T) {
	size := unsafe.Sizeof(queuedCall{})
	assert.LessOrEqual(t, size, uintptr(64), "a queued call takes %d bytes, more than a cache line", size)
}

// TestQueueConformance: waiting on the node through the client, which
// gets its news by polling the node's events (wait.go, events.go).
func TestQueueConformance(t *testing.T) {
	t.Run("Batched", func(t *testing.T) { lockertest.RunQueue(t, conformanceFactory(ClientConfig{})) })
	t.Run("Unbatched", func(t *testing.T) { lockertest.RunQueue(t, conformanceFactory(ClientConfig{DisableBatching: true})) })
}
