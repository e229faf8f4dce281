package rest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// waitingNode is a table served over HTTP, with its server.
func waitingNode(t *testing.T) (*locker.Local, *Server, string) {
	tbl := locker.New(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
	t.Cleanup(func() { tbl.Close() })
	srv, endpoint := startServer(t, tbl, ServerConfig{Insecure: true})
	return tbl, srv, endpoint
}

// TestEventsGivenAgainUntilAcknowledged: an answer to a poll may be lost;
// the node gives its events again until a later poll acknowledges them.
func TestEventsGivenAgainUntilAcknowledged(t *testing.T) {
	var ss sessions
	s := ss.get("c1")
	s.hooks("u1").Done(locker.Reply{OK: true}, nil)
	s.hooks("u2").Done(locker.Reply{}, fmt.Errorf("x: %w", locker.ErrClosed))
	ep := s.epoch
	require.NotZero(t, ep)
	first := s.poll(nil, time.Hour, 0, ep)
	require.Len(t, first, 2)
	assert.Equal(t, Event{Seq: 1, UID: "u1", Reply: locker.Reply{OK: true}}, first[0])
	assert.Equal(t, CodeClosed, first[1].Code)
	assert.Equal(t, first, s.poll(nil, time.Hour, 0, ep), "not acknowledged: given again")
	assert.Equal(t, first[1:], s.poll(nil, time.Hour, 1, ep), "an ack of this epoch forgets")
	assert.Equal(t, first[1:], s.poll(nil, time.Hour, 5, ep+1), "an ack of another epoch is ignored")
	stop := make(chan struct{})
	close(stop)
	assert.Empty(t, s.poll(stop, time.Hour, 2, ep), "all acknowledged: nothing, once the server stops")
	assert.Empty(t, s.poll(nil, 0, 2, ep), "all acknowledged: nothing at once without a wait")
}

// TestEventsCarriedByTheBatch: an event that comes while a batch of its
// session runs does not wake the session's polls: the batch's answer
// carries it, once, and a poll gives it again until it is acknowledged, in
// a poll or a later batch.
func TestEventsCarriedByTheBatch(t *testing.T) {
	var ss sessions
	s := ss.get("c1")
	ep := s.epoch
	s.beginBatch(0, 0)
	wake := s.wake
	s.hooks("u1").Done(locker.Reply{OK: true}, nil)
	select {
	case <-wake:
		require.Fail(t, "a poll was woken for an event its batch carries")
	default:
	}
	s.hooks("u2").Done(locker.Reply{OK: true}, nil)
	carried, epoch := s.endBatch(nil)
	assert.Equal(t, ep, epoch)
	require.Len(t, carried, 2)
	assert.Equal(t, []uint64{1, 2}, []uint64{carried[0].Seq, carried[1].Seq})
	select {
	case <-wake:
		require.Fail(t, "the batch carried every event, yet a poll was woken")
	default:
	}

	s.beginBatch(0, 0)
	again, _ := s.endBatch(nil)
	assert.Empty(t, again, "an answer carries an event once")
	assert.Equal(t, carried, s.poll(nil, 0, 0, ep), "a poll gives them until acknowledged: the answer may have been lost")

	// Outside a batch, an event wakes the polls, and the next batch
	// carries it too, unless a poll has.
	s.hooks("u3").Done(locker.Reply{}, nil)
	select {
	case <-wake:
	default:
		require.Fail(t, "an event outside a batch did not wake the polls")
	}
	s.beginBatch(1, ep) // acknowledges u1
	next, _ := s.endBatch(nil)
	require.Len(t, next, 1)
	assert.Equal(t, "u3", next[0].UID)
	assert.Equal(t, []Event{carried[1], next[0]}, s.poll(nil, 0, 0, ep), "the batch's ack forgot event 1")
	s.hooks("u4").Done(locker.Reply{}, nil)
	require.Len(t, s.poll(nil, 0, 2, ep), 2, "u3 and u4")
	s.beginBatch(0, 0)
	none, _ := s.endBatch(nil)
	assert.Empty(t, none, "the poll carried u4 already")
}

// TestEventsOfAClientThatDoesNotTakeThem: a batch that names its session
// but does not take its events (a client older than BatchReply.Events)
// leaves the polls to be woken at once.
func TestEventsOfAClientThatDoesNotTakeThem(t *testing.T) {
	_, srv, _ := waitingNode(t)
	sess, take := srv.batchSession(&BatchArgs{Session: "old", Ack: 3, Epoch: 1})
	require.NotNil(t, sess)
	assert.False(t, take)
	wake := sess.wake
	sess.hooks("u1").Done(locker.Reply{OK: true}, nil)
	select {
	case <-wake:
	default:
		require.Fail(t, "the poll of a client that does not take events from answers was not woken")
	}
	sess, take = srv.batchSession(&BatchArgs{Session: "new", TakeEvents: true})
	require.NotNil(t, sess)
	assert.True(t, take)
	assert.Equal(t, 1, sess.batches)
	sess.endBatch(nil)
}

// TestBatchSessionNameBounded: a batch that names a session longer than a
// poll may is refused whole, with a precise error, and the node keeps no
// session of it.
func TestBatchSessionNameBounded(t *testing.T) {
	_, srv, endpoint := waitingNode(t)
	long := strings.Repeat("s", maxSessionLen+1)
	body, err := (&BatchArgs{Ops: []BatchOp{{Verb: VerbUnlock, Lock: locker.LockArgs{UID: "u"}}}, Session: long, TakeEvents: true}).MarshalMsg(nil)
	require.NoError(t, err)
	resp, err := http.Post(endpoint+PathBatch, ContentType, bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, CodeMalformed.status(), resp.StatusCode)
	var e ErrorReply
	_, err = e.UnmarshalMsg(out)
	require.NoError(t, err)
	assert.Equal(t, CodeMalformed, e.Code)
	assert.Contains(t, e.Message, fmt.Sprintf("a session of %d bytes; at most %d", maxSessionLen+1, maxSessionLen))
	srv.sessions.mu.Lock()
	defer srv.sessions.mu.Unlock()
	assert.Empty(t, srv.sessions.m)
}

// TestEventsOverAnAnswersBound: a batch carries at most MaxEventsPerReply
// events; for the others it wakes the polls.
func TestEventsOverAnAnswersBound(t *testing.T) {
	var ss sessions
	s := ss.get("c1")
	s.beginBatch(0, 0)
	wake := s.wake
	for i := range MaxEventsPerReply + 1 {
		s.hooks(fmt.Sprint("u", i)).Done(locker.Reply{}, nil)
	}
	carried, _ := s.endBatch(nil)
	assert.Len(t, carried, MaxEventsPerReply)
	select {
	case <-wake:
	default:
		require.Fail(t, "an event the answer could not carry woke no poll")
	}
	left := s.poll(nil, 0, MaxEventsPerReply, s.epoch)
	require.Len(t, left, 1)
	assert.Equal(t, uint64(MaxEventsPerReply+1), left[0].Seq)
}

// TestEventsCountedOnceInAnyOrder: the answers of several connections are
// read in any order; each event is delivered once, and the client
// acknowledges only what it has with no gap before it.
func TestEventsCountedOnceInAnyOrder(t *testing.T) {
	var w waits
	w.init(&Client{})
	sinks := map[string]outcomeSink{}
	for _, uid := range []string{"a", "b", "c"} {
		sinks[uid] = make(outcomeSink, 2)
		w.pending[uid] = pendingWait{sink: sinks[uid], deadline: monoNow().Add(time.Hour)}
	}
	ev := func(seq uint64, uid string) Event { return Event{Seq: seq, UID: uid, Reply: locker.Reply{OK: true}} }
	w.take([]Event{ev(2, "b")}, 7, true) // event 1 is in an answer not read yet
	assert.Zero(t, w.ref(true).ack, "nothing acknowledged past a gap")
	assert.Len(t, sinks["b"], 1)
	w.take([]Event{ev(1, "a"), ev(2, "b")}, 7, false)
	assert.Equal(t, sessionRef{name: w.session, ack: 2, epoch: 7, take: true}, w.ref(true))
	w.take([]Event{ev(3, "c"), ev(3, "c")}, 7, true)
	for uid, sink := range sinks {
		assert.Len(t, sink, 1, "%s: delivered once", uid)
	}
	st := w.c.Stats()
	assert.Equal(t, int64(3), st.Events)
	assert.Equal(t, int64(2), st.EventsInBatches)
	assert.Equal(t, sessionRef{}, w.ref(false), "nothing waits: a batch names no session")
}

// TestHandOffInTheReleasesAnswer: when a client releases a lock that
// another caller of the same client waits for, the release's answer brings
// the waiter its grant.
func TestHandOffInTheReleasesAnswer(t *testing.T) {
	tbl, _, endpoint := waitingNode(t)
	c := newClient(t, endpoint, ClientConfig{Insecure: true})
	ctx := context.Background()
	_, err := c.Lock(ctx, locker.LockArgs{UID: "h", Resources: []string{"a"}, Ticket: 1})
	require.NoError(t, err)
	got := make(chan locker.Reply, 1)
	go func() {
		r, err := c.Lock(ctx, locker.LockArgs{UID: "w", Resources: []string{"a"}, Ticket: 2, Wait: time.Minute})
		assert.NoError(t, err)
		got <- r
	}()
	require.Eventually(t, func() bool { return tbl.Stats().Queued == 1 }, time.Minute, time.Millisecond, "queued")
	// And the client has read the answer that says so: from then on its
	// batches name the session. (A release sent before would go alone, and
	// the grant by the poll.)
	require.Eventually(t, c.waits.live.Load, time.Minute, time.Millisecond, "the client knows its call waits")
	_, err = c.Unlock(ctx, locker.LockArgs{UID: "h"})
	require.NoError(t, err)
	assert.True(t, (<-got).OK)
	st := c.Stats()
	assert.Equal(t, int64(1), st.Events)
	assert.Equal(t, int64(1), st.EventsInBatches, "the grant came in the release's answer")
}

// TestEventsDeadSessionWithdrawn: the waiters of a client that stops
// polling are withdrawn after SessionTTL, so a dead client holds no queue.
func TestEventsDeadSessionWithdrawn(t *testing.T) {
	tbl, srv, _ := waitingNode(t)
	ctx := context.Background()
	_, err := tbl.Lock(ctx, locker.LockArgs{UID: "h", Resources: []string{"a"}, Ticket: 1})
	require.NoError(t, err)
	r, err := srv.lockWait(ctx, true, locker.LockArgs{UID: "dead", Resources: []string{"a"}, Ticket: 2, Wait: time.Hour}, srv.sessions.get("gone"))
	require.NoError(t, err)
	require.Equal(t, locker.ReasonQueued, r.Reason)
	require.Equal(t, 1, tbl.Stats().Queued)

	srv.expireSessions(time.Now()) // seen just now: kept
	assert.Equal(t, 1, tbl.Stats().Queued)
	srv.expireSessions(time.Now().Add(SessionTTL + time.Second))
	assert.Zero(t, tbl.Stats().Queued)
	_, err = tbl.Unlock(ctx, locker.LockArgs{UID: "h"})
	require.NoError(t, err)
	r, err = tbl.Lock(ctx, locker.LockArgs{UID: "next", Resources: []string{"a"}})
	require.NoError(t, err)
	assert.True(t, r.OK, "the dead waiter was not handed the lock")
}

// TestEventsSessionsBounded: past MaxSessions, a lock that asks to wait in
// a new session is answered at once, and a poll of one is refused busy.
func TestEventsSessionsBounded(t *testing.T) {
	tbl, srv, endpoint := waitingNode(t)
	for i := range MaxSessions {
		require.NotNil(t, srv.sessions.get(fmt.Sprint("s", i)))
	}
	ctx := context.Background()
	_, err := tbl.Lock(ctx, locker.LockArgs{UID: "h", Resources: []string{"a"}})
	require.NoError(t, err)
	sess, _ := srv.batchSession(&BatchArgs{Session: "one-too-many", TakeEvents: true})
	require.Nil(t, sess, "no new session past MaxSessions")
	r, err := srv.lockWait(ctx, true, locker.LockArgs{UID: "w", Resources: []string{"a"}, Wait: time.Hour}, sess)
	require.NoError(t, err)
	assert.Equal(t, locker.ReasonConflict, r.Reason, "refused at once, not queued")
	assert.Zero(t, tbl.Stats().Queued)

	c := newClient(t, endpoint, ClientConfig{Insecure: true})
	_, _, err = c.pollEvents(0, 0, 0)
	assert.ErrorIs(t, err, locker.ErrBusy)
}

// TestEventsOfASessionTheNodeForgot: a node that forgets a client's
// session (it restarted, or the session outlived SessionTTL unpolled) makes
// a new one when the client names it again, whose events count from 1
// again. The client sees the session's epoch change and takes them, instead
// of skipping them as events it has had (and waiting out every wait).
func TestEventsOfASessionTheNodeForgot(t *testing.T) {
	tbl, srv, endpoint := waitingNode(t)
	c := newClient(t, endpoint, ClientConfig{Insecure: true})
	ctx := context.Background()
	handOver := func(uid string, ticket uint64) {
		t.Helper()
		_, err := c.Lock(ctx, locker.LockArgs{UID: "h" + uid, Resources: []string{"a"}, Ticket: ticket})
		require.NoError(t, err)
		got := make(chan locker.Reply, 1)
		go func() {
			r, err := c.Lock(ctx, locker.LockArgs{UID: uid, Resources: []string{"a"}, Ticket: ticket + 1, Wait: time.Minute})
			assert.NoError(t, err, uid)
			got <- r
		}()
		require.Eventually(t, func() bool { return tbl.Stats().Queued == 1 }, time.Minute, time.Millisecond, "%s queued", uid)
		_, err = c.Unlock(ctx, locker.LockArgs{UID: "h" + uid})
		require.NoError(t, err)
		select {
		case r := <-got:
			assert.True(t, r.OK, "%s handed the lock", uid)
		case <-time.After(30 * time.Second):
			require.Failf(t, "no news", "%s was handed the lock, but its client did not hear of it", uid)
		}
		_, err = c.Unlock(ctx, locker.LockArgs{UID: uid})
		require.NoError(t, err)
	}
	handOver("w1", 10)
	handOver("w2", 20) // the client has had the session's events 1 and 2
	srv.sessions.mu.Lock()
	delete(srv.sessions.m, c.waits.session)
	srv.sessions.mu.Unlock()
	handOver("w3", 30) // event 1 of a new session
}

// TestLockWaitingGivesUp: a blocking Lock that waits on the node and whose
// ctx ends withdraws its request: the node is left with no waiter, and the
// lock is not handed to it.
func TestLockWaitingGivesUp(t *testing.T) {
	tbl, _, endpoint := waitingNode(t)
	c := newClient(t, endpoint, ClientConfig{Insecure: true})
	ctx := context.Background()
	_, err := c.Lock(ctx, locker.LockArgs{UID: "h", Resources: []string{"a"}, Ticket: 1})
	require.NoError(t, err)

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.Lock(cctx, locker.LockArgs{UID: "w", Resources: []string{"a"}, Ticket: 2, Wait: time.Hour})
		done <- err
	}()
	require.Eventually(t, func() bool { return tbl.Stats().Queued == 1 }, time.Minute, time.Millisecond, "queued")
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	require.Eventually(t, func() bool { return tbl.Stats().Queued == 0 }, time.Minute, time.Millisecond, "withdrawn")
	_, err = c.Unlock(ctx, locker.LockArgs{UID: "h"})
	require.NoError(t, err)
	r, err := c.Lock(ctx, locker.LockArgs{UID: "next", Resources: []string{"a"}})
	require.NoError(t, err)
	assert.True(t, r.OK)

	// And one that waits to the end is granted at the release.
	got := make(chan locker.Reply, 1)
	go func() {
		r, err := c.Lock(ctx, locker.LockArgs{UID: "w2", Resources: []string{"a"}, Ticket: 3, Wait: time.Hour})
		assert.NoError(t, err)
		got <- r
	}()
	require.Eventually(t, func() bool { return tbl.Stats().Queued == 1 }, time.Minute, time.Millisecond)
	_, err = c.Unlock(ctx, locker.LockArgs{UID: "next"})
	require.NoError(t, err)
	assert.True(t, (<-got).OK)
}
