package locker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

// queueTable is a table whose waiters' outcomes a test reads in order.
type queueTable struct {
	t   *testing.T
	l   *locker.Local
	mu  sync.Mutex
	got []string // "uid:granted" or "uid:<reason>", in the order they came
	ch  chan string
}

func newQueueTable(t *testing.T) *queueTable {
	q := &queueTable{t: t, l: locker.New(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod}), ch: make(chan string, 100)}
	t.Cleanup(func() { q.l.Close() })
	return q
}

// lock asks for a lock that may wait, with a ticket, and returns the
// immediate reply.
func (q *queueTable) lock(write bool, uid string, ticket uint64, wait time.Duration, resources ...string) locker.Reply {
	q.t.Helper()
	r, err := q.l.LockWait(context.Background(), write, locker.LockArgs{UID: uid, Resources: resources, Ticket: ticket, Wait: wait},
		locker.WaitHooks{Done: func(r locker.Reply, err error) {
			out := uid + ":granted"
			switch {
			case err != nil:
				out = uid + ":" + err.Error()
			case !r.OK:
				out = uid + ":" + r.Reason.String()
			}
			q.ch <- out
		}, Wounded: func(ahead uint64) { q.ch <- fmt.Sprintf("%s:wounded by %d", uid, ahead) }})
	require.NoError(q.t, err)
	return r
}

// next returns the next waiter's outcome.
func (q *queueTable) next() string {
	q.t.Helper()
	synctest.Wait()
	select {
	case s := <-q.ch:
		return s
	default:
		require.Fail(q.t, "no waiter was answered")
		return ""
	}
}

func (q *queueTable) none() {
	q.t.Helper()
	synctest.Wait()
	select {
	case s := <-q.ch:
		require.Failf(q.t, "a waiter was answered", "%s", s)
	default:
	}
}

func (q *queueTable) unlock(write bool, uid string) {
	q.t.Helper()
	var r locker.Reply
	var err error
	if write {
		r, err = q.l.Unlock(context.Background(), locker.LockArgs{UID: uid})
	} else {
		r, err = q.l.RUnlock(context.Background(), locker.LockArgs{UID: uid})
	}
	require.NoError(q.t, err)
	require.True(q.t, r.OK, "unlock %s", uid)
}

const wait = time.Minute

func TestQueueHandsOffInTicketOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueueTable(t)
		require.True(t, q.lock(true, "h", 10, wait, "a").OK)
		for _, w := range []struct {
			uid    string
			ticket uint64
		}{{"w3", 13}, {"w1", 11}, {"w2", 12}} {
			r := q.lock(true, w.uid, w.ticket, wait, "a")
			assert.Equal(t, locker.ReasonQueued, r.Reason)
			assert.EqualValues(t, 10, r.Ahead, "the holder is the oldest in the way")
		}
		assert.Equal(t, 3, q.l.Stats().Queued)
		q.none()
		q.unlock(true, "h")
		assert.Equal(t, "w1:granted", q.next(), "the oldest ticket first, not the first to come")
		q.none()
		q.unlock(true, "w1")
		assert.Equal(t, "w2:granted", q.next())
		q.unlock(true, "w2")
		assert.Equal(t, "w3:granted", q.next())
		assert.Zero(t, q.l.Stats().Queued)
	})
}

func TestQueueReadersTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueueTable(t)
		require.True(t, q.lock(true, "h", 1, wait, "a").OK)
		q.lock(false, "r1", 2, wait, "a")
		q.lock(false, "r2", 3, wait, "a")
		q.lock(true, "w", 4, wait, "a")
		q.lock(false, "r3", 5, wait, "a")
		q.unlock(true, "h")
		got := []string{q.next(), q.next()}
		assert.ElementsMatch(t, []string{"r1:granted", "r2:granted"}, got, "the readers at the head, together")
		q.none() // the writer waits for both; r3 waits behind the writer
		// A newer reader does not slip in before the waiting writer.
		r := q.lock(false, "r4", 6, 0, "a")
		assert.Equal(t, locker.ReasonConflict, r.Reason)
		q.unlock(false, "r1")
		q.none()
		q.unlock(false, "r2")
		assert.Equal(t, "w:granted", q.next())
		q.unlock(true, "w")
		assert.Equal(t, "r3:granted", q.next())
	})
}

// TestQueueIntentYieldsToOlderReaders: a writer's intent holds back the
// readers younger than the writer only. A reader older than the writer
// waits at the head of the queue, before the writer; if the intent held it
// back too, nobody would be served until the reader's wait ran out (the
// soak saw every worker stall for a third of the validity, over and over).
func TestQueueIntentYieldsToOlderReaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueueTable(t)
		require.True(t, q.lock(false, "r0", 1, wait, "a").OK)
		// The writer, ticket 20, is refused once without waiting: its
		// intent holds readers back.
		assert.Equal(t, locker.ReasonConflict, q.lock(true, "w-try", 20, 0, "a").Reason)
		assert.Equal(t, locker.ReasonWriterWaiting, q.lock(false, "young-try", 30, 0, "a").Reason,
			"a reader younger than the writer is held back")
		// An older reader is granted at once: it was there first.
		assert.True(t, q.lock(false, "old", 10, 0, "a").OK, "a reader older than the writer is not held back")
		q.unlock(false, "old")
		// The same with requests that may wait: the older reader is not
		// queued behind the intent, the writer waits for both readers, and
		// the younger reader behind the writer.
		assert.True(t, q.lock(false, "r", 10, wait, "a").OK)
		assert.Equal(t, locker.ReasonQueued, q.lock(true, "w", 20, wait, "a").Reason)
		assert.Equal(t, locker.ReasonQueued, q.lock(false, "young", 30, wait, "a").Reason)
		q.unlock(false, "r0")
		q.none()
		q.unlock(false, "r")
		assert.Equal(t, "w:granted", q.next())
		q.unlock(true, "w")
		assert.Equal(t, "young:granted", q.next())
	})
}

func TestQueueNoJumpingAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueueTable(t)
		// w1 waits for a and b; b is held, a is free.
		require.True(t, q.lock(true, "hb", 1, wait, "b").OK)
		assert.Equal(t, locker.ReasonQueued, q.lock(true, "w1", 5, wait, "a", "b").Reason)
		// A younger request may not take a, even free; an older one may.
		r := q.lock(true, "young", 6, 0, "a")
		assert.Equal(t, locker.ReasonConflict, r.Reason)
		assert.EqualValues(t, 5, r.Ahead)
		r = q.lock(true, "ticketless", 0, 0, "a")
		assert.Equal(t, locker.ReasonConflict, r.Reason, "a request without a ticket comes after every waiter")
		assert.True(t, q.lock(true, "old", 4, 0, "a").OK, "an older request goes first")
		q.unlock(true, "hb")
		q.none() // w1 waits for a now
		q.unlock(true, "old")
		assert.Equal(t, "w1:granted", q.next())
	})
}

func TestQueueWaitEndsAndWithdraw(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueueTable(t)
		require.True(t, q.lock(true, "h", 1, wait, "a").OK)
		q.lock(true, "short", 2, time.Second, "a")
		q.lock(true, "gone", 3, wait, "a")
		q.lock(true, "w", 4, wait, "a")
		time.Sleep(time.Second)
		assert.Equal(t, "short:held by another", q.next(), "its wait passed")
		// A client that gives up withdraws its waiter with an unlock of its
		// UID; a late copy of its request is refused.
		r, err := q.l.Unlock(context.Background(), locker.LockArgs{UID: "gone"})
		require.NoError(t, err)
		assert.False(t, r.OK)
		assert.Equal(t, "gone:uid already released", q.next())
		assert.Equal(t, locker.ReasonReleased, q.lock(true, "gone", 3, wait, "a").Reason)
		q.unlock(true, "h")
		assert.Equal(t, "w:granted", q.next())
		assert.Zero(t, q.l.Stats().Queued)
	})
}

func TestQueueRepeatedRequestAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueueTable(t)
		require.True(t, q.lock(true, "h", 1, wait, "a").OK)
		assert.Equal(t, locker.ReasonQueued, q.lock(true, "w", 2, wait, "a").Reason)
		assert.Equal(t, locker.ReasonQueued, q.lock(true, "w", 2, wait, "a").Reason, "a repeated request is still queued, once")
		assert.Equal(t, 1, q.l.Stats().Queued)
		require.NoError(t, q.l.Close())
		assert.Contains(t, q.next(), "w:locker: lock \"a\": locker: closed")
		q.none()
	})
}

// TestQueueBlockingLock: Lock with Wait blocks until the grant; a caller
// whose ctx ends leaves no waiter and no grant behind.
func TestQueueBlockingLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := locker.New(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
		defer l.Close()
		ctx := context.Background()
		_, err := l.Lock(ctx, locker.LockArgs{UID: "h", Resources: []string{"a"}, Ticket: 1})
		require.NoError(t, err)
		done := make(chan locker.Reply, 1)
		go func() {
			r, err := l.Lock(ctx, locker.LockArgs{UID: "w", Resources: []string{"a"}, Ticket: 2, Wait: wait})
			assert.NoError(t, err)
			done <- r
		}()
		synctest.Wait()
		_, err = l.Unlock(ctx, locker.LockArgs{UID: "h"})
		require.NoError(t, err)
		assert.True(t, (<-done).OK)

		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err = l.Lock(cctx, locker.LockArgs{UID: "w2", Resources: []string{"a"}, Ticket: 3, Wait: wait})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		st := l.Stats()
		assert.Zero(t, st.Queued)
		assert.Equal(t, 1, st.Grants, "only w holds a")
	})
}

// TestQueueSubmit: a submitted lock with Wait answers its sink when granted,
// and tells a QueueSink first that it is queued.
func TestQueueSubmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := locker.New(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
		defer l.Close()
		ctx := context.Background()
		_, err := l.Lock(ctx, locker.LockArgs{UID: "h", Resources: []string{"a"}, Ticket: 7})
		require.NoError(t, err)
		sink := &recordingSink{}
		l.Submit(ctx, locker.OpLock, &locker.LockArgs{UID: "w", Resources: []string{"a"}, Ticket: 8, Wait: wait}, time.Minute, sink, 3)
		assert.Equal(t, []string{"queued 3 ahead 7"}, sink.events())
		_, err = l.Unlock(ctx, locker.LockArgs{UID: "h"})
		require.NoError(t, err)
		assert.Equal(t, []string{"queued 3 ahead 7", "done 3 ok"}, sink.events())
	})
}

type recordingSink struct {
	mu  sync.Mutex
	evs []string
}

func (s *recordingSink) Queued(tag int, ahead uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, fmt.Sprintf("queued %d ahead %d", tag, ahead))
}

func (s *recordingSink) Done(tag int, r locker.Reply, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, fmt.Sprintf("done %d ok", tag))
	if err != nil || !r.OK {
		s.evs[len(s.evs)-1] = fmt.Sprintf("done %d %v %v", tag, r.Reason, err)
	}
}

func (s *recordingSink) events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.evs...)
}

func TestQueueConformance(t *testing.T) {
	lockertest.RunQueue(t, func(t *testing.T, cfg locker.Config) locker.NetLocker {
		l := locker.New(cfg)
		t.Cleanup(func() { l.Close() })
		return l
	})
}

// TestQueueWounds: a waiter queued behind a younger holder's grant wounds
// it, once; an older holder, a holder without a hook and a released grant
// are not wounded.
func TestQueueWounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueueTable(t)
		// y (ticket 20) holds a; o (ticket 10) is queued behind it.
		require.True(t, q.lock(true, "y", 20, wait, "a").OK)
		q.none()
		assert.Equal(t, locker.ReasonQueued, q.lock(true, "o", 10, wait, "a").Reason)
		assert.Equal(t, "y:wounded by 10", q.next())
		// An even older waiter does not wound y again.
		assert.Equal(t, locker.ReasonQueued, q.lock(true, "oo", 5, wait, "a").Reason)
		q.none()
		// A younger waiter does not wound its older holder.
		require.True(t, q.lock(true, "old", 1, wait, "b").OK)
		assert.Equal(t, locker.ReasonQueued, q.lock(true, "young", 2, wait, "b").Reason)
		q.none()
		// A grant without a ticket has no hook.
		r, err := q.l.Lock(context.Background(), locker.LockArgs{UID: "plain", Resources: []string{"c"}, Ticket: 50})
		require.NoError(t, err)
		require.True(t, r.OK)
		assert.Equal(t, locker.ReasonQueued, q.lock(true, "w", 3, wait, "c").Reason)
		q.none()
		// A hand-off registers the hook too: oo gets a at y's release.
		q.unlock(true, "y")
		assert.Equal(t, "oo:granted", q.next())
		assert.Equal(t, locker.ReasonQueued, q.lock(false, "r", 4, wait, "a").Reason)
		assert.Equal(t, "oo:wounded by 4", q.next())
		// A released grant's hook is gone.
		require.True(t, q.lock(true, "z", 30, wait, "d").OK)
		q.unlock(true, "z")
		require.True(t, q.lock(true, "z2", 31, wait, "d").OK)
		assert.Equal(t, locker.ReasonQueued, q.lock(true, "w2", 6, wait, "d").Reason)
		assert.Equal(t, "z2:wounded by 6", q.next())
		q.none()
	})
}
