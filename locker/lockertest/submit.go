package lockertest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Answer is one answer a Sink received.
type Answer struct {
	Tag   int
	Reply locker.Reply
	Err   error
}

// Sink passes the answers of submitted calls to a channel, which must have
// room for them.
type Sink chan Answer

// Done implements locker.Sink.
func (s Sink) Done(tag int, r locker.Reply, err error) { s <- Answer{tag, r, err} }

// RunSubmit checks the locker.Submitter contract of lockers made by f: it
// skips if they do not implement it. Every submitted call is answered once,
// with its tag, as the matching NetLocker method would answer; a call whose
// ctx ended before it left is answered with ErrNotSent and changes nothing;
// the caller may reuse its arguments once the answer has come.
func RunSubmit(t *testing.T, f Factory) {
	t.Helper()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	l := f(t, locker.Config{Validity: Validity, Clock: clk, SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
	s, ok := l.(locker.Submitter)
	if !ok {
		t.Skip("locker does not implement Submitter")
	}
	ctx := context.Background()
	sink := make(Sink, 16)
	submit := func(ctx context.Context, op locker.Op, a locker.LockArgs, tag int) Answer {
		t.Helper()
		s.Submit(ctx, op, &a, time.Minute, sink, tag)
		got := <-sink
		require.Equal(t, tag, got.Tag, "%v %s: answer's tag", op, a.UID)
		select {
		case extra := <-sink:
			require.Failf(t, "a second answer", "%v %s: a second answer %+v", op, a.UID, extra)
		default:
		}
		// The submitter has let go of the arguments: the caller may reuse
		// them, and what the node keeps must not change with them.
		if a.Resources != nil {
			a.Resources[0] = "reused-by-the-caller"
		}
		a.UID = "reused-by-the-caller"
		return got
	}
	args := func(uid string) locker.LockArgs {
		return locker.LockArgs{UID: uid, Resources: []string{"submitted"}, Quorum: 1}
	}
	steps := []struct {
		op     locker.Op
		uid    string
		ok     bool
		reason locker.Reason
	}{
		{locker.OpLock, "a", true, locker.ReasonNone},
		{locker.OpRLock, "b", false, locker.ReasonConflict},
		{locker.OpUnlock, "a", true, locker.ReasonNone},
		{locker.OpUnlock, "a", false, locker.ReasonNone}, // not held: refused, not an error
		{locker.OpRLock, "b", true, locker.ReasonNone},
		{locker.OpRUnlock, "b", true, locker.ReasonNone},
		{locker.OpLock, "c", true, locker.ReasonNone},
		{locker.OpForceUnlock, "c", true, locker.ReasonNone},
	}
	for i, st := range steps {
		got := submit(ctx, st.op, args(st.uid), i)
		require.NoError(t, got.Err, "step %d, %v %s: %+v", i, st.op, st.uid, got)
		require.Equal(t, st.ok, got.Reply.OK, "step %d, %v %s: %+v; want ok=%v reason=%v", i, st.op, st.uid, got, st.ok, st.reason)
		require.Equal(t, st.reason, got.Reply.Reason, "step %d, %v %s: %+v; want ok=%v reason=%v", i, st.op, st.uid, got, st.ok, st.reason)
	}
	got := submit(ctx, locker.OpLock, locker.LockArgs{UID: "", Resources: []string{"x"}}, 100)
	require.ErrorIs(t, got.Err, locker.ErrInvalidArgs, "lock without a UID: %+v", got)
	ended, cancel := context.WithCancel(ctx)
	cancel()
	got = submit(ended, locker.OpLock, args("d"), 101)
	require.ErrorIs(t, got.Err, context.Canceled, "ended ctx: %+v", got)
	require.ErrorIs(t, got.Err, locker.ErrNotSent, "ended ctx: %+v", got)
	// The lock granted above under "submitted" was released; a new one on
	// the same name must be granted, and the reused name never locked.
	got = submit(ctx, locker.OpLock, args("e"), 102)
	require.True(t, got.Reply.OK, "lock after the others: %+v", got)
	r, err := l.Lock(ctx, locker.LockArgs{UID: "f", Resources: []string{"reused-by-the-caller"}, Quorum: 1})
	require.NoError(t, err, "the node locked the caller's reused argument")
	require.True(t, r.OK, "the node locked the caller's reused argument: %+v", r)
}
