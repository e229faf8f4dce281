package simulation

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Submitted calls, and locks that wait on the node.
//
// A Link is a locker.Submitter, so that dsync's acquisitions that wait on
// the nodes (locker.LockArgs.Wait) meet the same faults as its other calls:
// the request travels the request leg, waits in the node's queue, and its
// answer travels the reply leg when it is granted or its wait ends. The
// news sent meanwhile, that the request is queued (locker.QueueSink) and
// that its grant is wounded by an older waiter (locker.WoundSink), travel
// the reply leg too, each on its own: they may be delayed, lost, or come
// after the answer (a queued notice that would is dropped).

var _ locker.Submitter = (*Link)(nil)

// Submit implements locker.Submitter: the call runs on a goroutine of its
// own, bounded by timeout on the client's clock. A lock or rlock with Wait
// waits on the node (see the top of waiting.go); any other call is made as
// its NetLocker method makes it.
func (l *Link) Submit(ctx context.Context, op locker.Op, args *locker.LockArgs, timeout time.Duration, sink locker.Sink, tag int) {
	a := *args
	a.Resources = slices.Clone(args.Resources) // args are the caller's again once Submit returns (a stronger promise than Submitter's)
	go func() {
		cctx, cancel := clock.WithTimeout(ctx, l.clientClock(), timeout)
		defer cancel()
		if (op == locker.OpLock || op == locker.OpRLock) && a.Wait > 0 {
			l.lockWaiting(cctx, op == locker.OpLock, a, sink, tag)
			return
		}
		r, err := op.Call(cctx, l, a)
		sink.Done(tag, r, err)
	}()
}

// clientClock returns the clock of the link's client.
func (l *Link) clientClock() clock.Clock {
	if cc := l.net.cfg.ClientClocks; l.client < len(cc) && cc[l.client] != nil {
		return cc[l.client]
	}
	return l.net.clk
}

// lockWaiting makes a lock (write) or rlock that may wait on the node, and
// gives sink its news and answer.
func (l *Link) lockWaiting(ctx context.Context, write bool, a locker.LockArgs, sink locker.Sink, tag int) {
	var mu sync.Mutex // orders the news and the answer
	answered := false
	qs, _ := sink.(locker.QueueSink)
	ws, _ := sink.(locker.WoundSink)
	var hooks locker.WaitHooks
	if qs != nil {
		hooks.Queued = func(r locker.Reply) {
			go l.news("queued", a.UID, func() {
				mu.Lock()
				defer mu.Unlock()
				if !answered {
					qs.Queued(tag, r.Ahead)
				}
			})
		}
	}
	if ws != nil {
		hooks.Wounded = func(ahead uint64) { go l.news("wounded", a.UID, func() { ws.Wounded(tag, ahead) }) }
	}
	op := "rlock"
	if write {
		op = "lock"
	}
	r, err := call(ctx, l, op, a.UID, func(t *locker.Local) (locker.Reply, error) {
		type outcome struct {
			r   locker.Reply
			err error
		}
		done := make(chan outcome, 1)
		hooks := hooks
		hooks.Done = func(r locker.Reply, err error) { done <- outcome{r, err} }
		r, err := t.LockWait(ctx, write, a, hooks)
		if err != nil || r.Reason != locker.ReasonQueued {
			return r, err
		}
		select {
		case o := <-done:
			return o.r, o.err
		case <-ctx.Done():
			if l.clientCrashed() {
				// A crashed process withdraws nothing: its waiter stays
				// until its wait ends.
				return locker.Reply{}, fmt.Errorf("locker: %s: %w", op, ctx.Err())
			}
			// The client gave up (or its call timed out): as a real client,
			// it withdraws the request, which also releases a grant that
			// came at that moment. (The withdrawal is assumed to arrive: a
			// lost one is a waiter left until its wait ends, which the
			// tables' own tests cover.)
			release := t.Unlock
			if !write {
				release = t.RUnlock
			}
			release(context.Background(), locker.LockArgs{UID: a.UID})
			<-done
			return locker.Reply{}, fmt.Errorf("locker: %s: %w", op, ctx.Err())
		}
	})
	mu.Lock()
	answered = true
	sink.Done(tag, r, err)
	mu.Unlock()
}

// news carries one message from the node to the client over the reply leg,
// then runs deliver, unless the message is lost or the client crashed. kind
// and uid identify it (Link.depart).
func (l *Link) news(kind, uid string, deliver func()) {
	lg, err := l.depart(1, kind, uid)
	if err != nil || lg.lost || l.sleep(context.Background(), lg.delay) != nil || l.waitClient() != nil {
		return
	}
	deliver()
}

// clientCrashed reports whether the link's client crashed.
func (l *Link) clientCrashed() bool {
	l.net.mu.Lock()
	defer l.net.mu.Unlock()
	return l.net.clients[l.client].crashed
}
