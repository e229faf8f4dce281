package lockertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// RunQueue checks how lockers made by f queue lock requests that ask to
// wait (locker.LockArgs.Wait), through locker.Submitter with a
// locker.QueueSink: it skips if they are not Submitters. A request that
// cannot be granted is answered Queued (with the lowest ticket in its way),
// then Done once, with the grant when its turn comes, in ticket order; a
// grant is wounded once when an older request queues behind it;
// readers at the head are granted together; a release of its UID withdraws
// it; its wait passing on the node's clock refuses it (a writer kept out by
// readers then declares its intent); and Close ends it
// with ErrClosed. Answers are waited for, never slept for.
func RunQueue(t *testing.T, f Factory) {
	t.Helper()
	for _, tc := range queueCases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(time.Unix(1_700_000_000, 0))
			l := f(t, locker.Config{Validity: Validity, Clock: clk, SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
			s, ok := l.(locker.Submitter)
			if !ok {
				t.Skip("locker does not implement Submitter")
			}
			q := &queueHarness{t: t, l: l, s: s, clk: clk, log: make(chan string, 64)}
			tc.run(q)
		})
	}
}

// queueWait is the wait of the suite's requests: longer than any test.
const queueWait = 10 * time.Minute

// queueHarness submits waiting requests and reads their news, in the
// order it came, from one log that also records the test's own steps: a
// grant logged before the release that allowed it is a failure.
type queueHarness struct {
	t   *testing.T
	l   locker.NetLocker
	s   locker.Submitter
	clk *clock.Fake
	log chan string
}

// queueSink logs the news of one request.
type queueSink struct {
	q   *queueHarness
	uid string
}

func (s queueSink) Queued(_ int, ahead uint64) {
	s.q.log <- fmt.Sprintf("%s queued ahead %d", s.uid, ahead)
}

func (s queueSink) Wounded(_ int, ahead uint64) {
	s.q.log <- fmt.Sprintf("%s wounded by %d", s.uid, ahead)
}

func (s queueSink) Done(_ int, r locker.Reply, err error) {
	switch {
	case errors.Is(err, locker.ErrClosed):
		s.q.log <- s.uid + " closed"
	case err != nil:
		s.q.log <- fmt.Sprintf("%s error %v", s.uid, err)
	case r.OK:
		s.q.log <- s.uid + " granted"
	default:
		s.q.log <- fmt.Sprintf("%s refused %v", s.uid, r.Reason)
	}
}

// submit asks for a lock (write or read) that waits at most wait, with
// ticket, and returns without waiting for the answer.
func (q *queueHarness) submit(write bool, uid string, ticket uint64, wait time.Duration, resources ...string) {
	op := locker.OpRLock
	if write {
		op = locker.OpLock
	}
	args := &locker.LockArgs{UID: uid, Resources: resources, Quorum: 1, Ticket: ticket, Wait: wait}
	q.s.Submit(context.Background(), op, args, time.Hour, queueSink{q, uid}, 0)
}

// expect waits for the next news and checks it is want.
func (q *queueHarness) expect(want string) {
	q.t.Helper()
	select {
	case got := <-q.log:
		require.Equal(q.t, want, got)
	case <-time.After(time.Minute):
		require.Failf(q.t, "no news for a minute", "want %q", want)
	}
}

// expectSet waits for len(want) news and checks they are want, in any
// order.
func (q *queueHarness) expectSet(want ...string) {
	q.t.Helper()
	var got []string
	for range want {
		select {
		case s := <-q.log:
			got = append(got, s)
		case <-time.After(time.Minute):
			require.Failf(q.t, "no news for a minute", "have %q, want %q", got, want)
		}
	}
	require.ElementsMatch(q.t, want, got)
}

// lock takes a lock at once, without waiting, and requires its grant.
func (q *queueHarness) lock(write bool, uid string, ticket uint64, resources ...string) {
	q.t.Helper()
	r, err := q.call(write, locker.LockArgs{UID: uid, Resources: resources, Quorum: 1, Ticket: ticket})
	require.NoError(q.t, err)
	require.True(q.t, r.OK, "%s: %+v", uid, r)
}

// try asks for a lock without waiting and returns the reply.
func (q *queueHarness) try(write bool, uid string, ticket uint64, resources ...string) locker.Reply {
	q.t.Helper()
	r, err := q.call(write, locker.LockArgs{UID: uid, Resources: resources, Quorum: 1, Ticket: ticket})
	require.NoError(q.t, err)
	return r
}

func (q *queueHarness) call(write bool, a locker.LockArgs) (locker.Reply, error) {
	if write {
		return q.l.Lock(context.Background(), a)
	}
	return q.l.RLock(context.Background(), a)
}

// release unlocks uid (write or read) and returns whether it held it.
func (q *queueHarness) release(write bool, uid string) bool {
	q.t.Helper()
	var r locker.Reply
	var err error
	if write {
		r, err = q.l.Unlock(context.Background(), locker.LockArgs{UID: uid})
	} else {
		r, err = q.l.RUnlock(context.Background(), locker.LockArgs{UID: uid})
	}
	require.NoError(q.t, err)
	return r.OK
}

// unlockStep is a step that releases uid, which must hold its lock.
func (q *queueHarness) unlockStep(write bool, uid string) {
	q.t.Helper()
	q.log <- "release " + uid
	require.True(q.t, q.release(write, uid), "release %s", uid)
}

var queueCases = []struct {
	name string
	run  func(q *queueHarness)
}{
	{"GrantedAtOnceWhenFree", func(q *queueHarness) {
		q.submit(true, "w", 5, queueWait, "a")
		q.expect("w granted") // no Queued news first
		assert.False(q.t, q.try(true, "x", 6, "a").OK)
	}},
	{"HandsOffInTicketOrder", func(q *queueHarness) {
		q.lock(true, "h", 10, "a")
		q.submit(true, "w3", 13, queueWait, "a")
		q.expect("w3 queued ahead 10")
		q.submit(true, "w1", 11, queueWait, "a")
		q.expect("w1 queued ahead 10")
		q.submit(true, "w2", 12, queueWait, "a")
		q.expect("w2 queued ahead 10")
		q.unlockStep(true, "h")
		q.expect("release h")
		q.expect("w1 granted") // the oldest ticket, not the first to come
		q.unlockStep(true, "w1")
		q.expect("release w1")
		q.expect("w2 granted")
		q.unlockStep(true, "w2")
		q.expect("release w2")
		q.expect("w3 granted")
	}},
	{"ReadersTogether", func(q *queueHarness) {
		q.lock(true, "h", 1, "a")
		q.submit(false, "r1", 2, queueWait, "a")
		q.expect("r1 queued ahead 1")
		q.submit(false, "r2", 3, queueWait, "a")
		q.expect("r2 queued ahead 1")
		q.submit(true, "w", 4, queueWait, "a")
		q.expect("w queued ahead 1")
		q.submit(false, "r3", 5, queueWait, "a")
		q.expect("r3 queued ahead 1")
		q.unlockStep(true, "h")
		q.expect("release h")
		q.expectSet("r1 granted", "r2 granted")
		// A newer reader does not slip in before the waiting writer.
		assert.Equal(q.t, locker.ReasonConflict, q.try(false, "r4", 6, "a").Reason)
		q.unlockStep(false, "r1")
		q.unlockStep(false, "r2")
		q.expect("release r1")
		q.expect("release r2")
		q.expect("w granted")
		q.unlockStep(true, "w")
		q.expect("release w")
		q.expect("r3 granted")
	}},
	{"NoJumpingAhead", func(q *queueHarness) {
		// w1 waits for a and b; b is held, a is free.
		q.lock(true, "hb", 1, "b")
		q.submit(true, "w1", 5, queueWait, "a", "b")
		q.expect("w1 queued ahead 1")
		r := q.try(true, "young", 6, "a")
		assert.Equal(q.t, locker.ReasonConflict, r.Reason, "a younger request may not take a free resource an older one waits for")
		assert.EqualValues(q.t, 5, r.Ahead)
		q.lock(true, "old", 4, "a") // an older one may
		q.unlockStep(true, "hb")
		q.expect("release hb")
		q.unlockStep(true, "old")
		q.expect("release old")
		q.expect("w1 granted")
	}},
	{"WithdrawnByRelease", func(q *queueHarness) {
		q.lock(true, "h", 1, "a")
		q.submit(true, "gone", 2, queueWait, "a")
		q.expect("gone queued ahead 1")
		q.submit(false, "w", 3, queueWait, "a")
		q.expect("w queued ahead 1")
		// A client that gives up withdraws its waiter with a release of its
		// UID, which holds nothing; a late copy of the request is refused.
		assert.False(q.t, q.release(true, "gone"))
		q.expect("gone refused " + locker.ReasonReleased.String())
		assert.Equal(q.t, locker.ReasonReleased, q.try(true, "gone", 2, "a").Reason)
		q.unlockStep(true, "h")
		q.expect("release h")
		q.expect("w granted")
	}},
	{"WaitEndsOnTheNodesClock", func(q *queueHarness) {
		q.lock(true, "h", 1, "a")
		q.submit(true, "short", 2, 5*time.Second, "a")
		q.expect("short queued ahead 1")
		q.submit(true, "long", 3, queueWait, "a")
		q.expect("long queued ahead 1")
		q.clk.Advance(6 * time.Second)
		q.expect("short refused " + locker.ReasonConflict.String())
		q.unlockStep(true, "h")
		q.expect("release h")
		q.expect("long granted")
	}},
	{"WriterOutOfTimeDeclaresIntent", func(q *queueHarness) {
		// A writer whose wait ends while readers hold the resource is
		// refused as one refused at once is: it holds new readers back
		// (writer intent) until an Unlock of its UID withdraws it.
		q.lock(false, "r", 1, "a")
		q.submit(true, "w", 2, 5*time.Second, "a")
		q.expect("w queued ahead 1")
		q.clk.Advance(6 * time.Second)
		q.expect("w refused " + locker.ReasonConflict.String())
		assert.Equal(q.t, locker.ReasonWriterWaiting, q.try(false, "r2", 3, "a").Reason)
		// The withdrawal names the resources (see locker.NetLocker.Unlock).
		r, err := q.l.Unlock(context.Background(), locker.LockArgs{UID: "w", Resources: []string{"a"}})
		require.NoError(q.t, err)
		assert.False(q.t, r.OK)
		assert.True(q.t, q.try(false, "r3", 4, "a").OK, "a reader once the writer withdrew")
	}},
	{"WoundsAYoungerHolder", func(q *queueHarness) {
		// y asked to wait and was granted at once; o, older, queues
		// behind it and wounds it, once. A younger waiter wounds nobody.
		q.submit(true, "y", 20, queueWait, "a")
		q.expect("y granted")
		q.submit(true, "young", 30, queueWait, "a")
		q.expect("young queued ahead 20")
		q.submit(true, "o", 10, queueWait, "a")
		q.expectSet("o queued ahead 20", "y wounded by 10") // two messages: either may come first
		q.submit(true, "oo", 5, queueWait, "a")
		q.expect("oo queued ahead 20") // o is behind it, not in its way
		// y yields; the oldest waiter gets a, and is wounded by nobody.
		q.unlockStep(true, "y")
		q.expect("release y")
		q.expect("oo granted")
		q.unlockStep(true, "oo")
		q.expect("release oo")
		q.expect("o granted")
	}},
	{"CloseEndsWaiters", func(q *queueHarness) {
		q.lock(true, "h", 1, "a")
		q.submit(true, "w", 2, queueWait, "a")
		q.expect("w queued ahead 1")
		require.NoError(q.t, q.l.Close())
		q.expect("w closed")
	}},
}
