package locker_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dsync-go/dsync/locker"
)

type answer struct {
	tag   int
	reply locker.Reply
	err   error
}

type chanSink chan answer

func (s chanSink) Done(tag int, r locker.Reply, err error) { s <- answer{tag, r, err} }

func TestLocalSubmitAnswersBeforeReturning(t *testing.T) {
	l := locker.New(locker.Config{SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	sink := make(chanSink, 1)
	args := locker.LockArgs{UID: "a", Resources: []string{"r"}}
	steps := []struct {
		op     locker.Op
		uid    string
		ok     bool
		reason locker.Reason
	}{
		{locker.OpLock, "a", true, locker.ReasonNone},
		{locker.OpRLock, "b", false, locker.ReasonConflict},
		{locker.OpUnlock, "a", true, locker.ReasonNone},
		{locker.OpRLock, "b", true, locker.ReasonNone},
		{locker.OpRUnlock, "b", true, locker.ReasonNone},
		{locker.OpLock, "c", true, locker.ReasonNone},
		{locker.OpForceUnlock, "c", true, locker.ReasonNone},
	}
	for i, st := range steps {
		args.UID = st.uid
		l.Submit(ctx, st.op, args, 0, sink, i)
		if len(sink) != 1 {
			t.Fatalf("step %d (%v): no answer when Submit returned", i, st.op)
		}
		a := <-sink
		if a.tag != i || a.err != nil || a.reply.OK != st.ok || a.reply.Reason != st.reason {
			t.Fatalf("step %d (%v %s): %+v; want ok=%v reason=%v", i, st.op, st.uid, a, st.ok, st.reason)
		}
	}

	l.Submit(ctx, locker.Op(0), args, 0, sink, 99)
	if a := <-sink; !errors.Is(a.err, locker.ErrInvalidArgs) {
		t.Fatalf("unknown op: %+v, want ErrInvalidArgs", a)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	args.UID = "d"
	l.Submit(cctx, locker.OpLock, args, 0, sink, 100)
	if a := <-sink; !errors.Is(a.err, context.Canceled) || !errors.Is(a.err, locker.ErrNotSent) {
		t.Fatalf("ended ctx: %+v, want Canceled and ErrNotSent", a)
	}
	if st := l.Stats(); st.Grants != 0 {
		t.Fatalf("%d grants left", st.Grants)
	}
}
