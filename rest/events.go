package rest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/dsync-go/dsync/locker"
)

// Waiting on the node, over HTTP.
//
// A lock operation that asks to wait (LockArgs.Wait), in a batch that names
// the client's session (BatchArgs.Session), is queued by the node's table
// when it cannot be granted at once (locker.Waiter), and answered
// ReasonQueued in the batch; its outcome comes later, as an event of the
// session. The client asks for its session's events with a long poll:
//
//	POST /dsync/v2/events  EventsArgs {"s": session, "a": ack, "w": wait}  -> EventsReply {"e": [Event...]}
//
// which the node holds until it has an event after ack, or wait has passed
// (at most MaxEventsWait). The node keeps an event until the client
// acknowledges it (a later poll's ack), so an answer lost on its way is
// given again. Why a long poll and not a pushed answer on the connection of
// the request: HTTP/1.1 answers one request at a time, in order, and a
// client batches its calls; one poll per client and node carries every
// waiter's news, on a connection of its own, through the same
// authentication, proxies and load balancers as every other request.
//
// A session that stops polling (its client crashed, or is cut off) is
// forgotten after SessionTTL: its queued requests are withdrawn, so that a
// dead client's waiters do not hold a queue. (One granted just before is
// held by nobody, and expires after its validity, like any grant whose
// holder died.)

// Bounds of the events endpoint.
const (
	// MaxEventsWait bounds EventsArgs.Wait.
	MaxEventsWait = 5 * time.Second
	// MaxEventsPerReply bounds the events of one answer.
	MaxEventsPerReply = 1024
	// SessionTTL is how long a session with queued requests is kept after
	// its last poll or batch: then its requests are withdrawn.
	SessionTTL = 3 * MaxEventsWait
	// MaxSessions bounds the sessions a node keeps: past it, a lock that
	// asks to wait in a new session is answered at once, as if it had not
	// asked (a refusal, after which its client backs off), and a poll of a
	// new session fails with CodeBusy.
	MaxSessions = 1 << 16
	// maxSessionLen bounds a session's name.
	maxSessionLen = 64
)

// PathEvents serves the events of a session (see events.go).
const PathEvents = PathPrefix + "events"

// session is one client's queued requests and their outcomes, on a node.
type session struct {
	mu       sync.Mutex // guards the fields below
	events   []Event    // not yet acknowledged, oldest first
	next     uint64     // the next event's Seq
	queued   map[string]bool
	lastSeen time.Time     // on the real monotonic clock
	polling  int           // polls waiting now
	wake     chan struct{} // closed, and replaced, when an event comes
	epoch    uint64        // this life of the session (EventsReply.Epoch); set when made
	batches  int           // batches naming the session that run now (beginBatch)
	sent     uint64        // the highest Seq an answer has carried
}

// newEpoch draws a session's epoch: random, never zero.
func newEpoch() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

// sessions are a server's sessions. It is safe for concurrent use.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

// get returns the session of name, made if needed, and notes that its
// client was seen; nil if it is new and there are MaxSessions already.
func (ss *sessions) get(name string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = make(map[string]*session)
	}
	s := ss.m[name]
	if s == nil {
		if len(ss.m) >= MaxSessions {
			return nil
		}
		s = &session{queued: make(map[string]bool), wake: make(chan struct{}), next: 1, epoch: newEpoch()}
		ss.m[strings.Clone(name)] = s // name may alias a request's body
	}
	s.mu.Lock()
	s.lastSeen = time.Now()
	s.mu.Unlock()
	return s
}

// hooks returns the hooks of a request of uid that may wait for session
// s: they record its queueing, and its outcome and wound as events.
func (s *session) hooks(uid string) locker.WaitHooks {
	uid = strings.Clone(uid) // it may alias a request's body
	return locker.WaitHooks{
		Queued: func(locker.Reply) {
			s.mu.Lock()
			s.queued[uid] = true
			s.mu.Unlock()
		},
		Done: func(r locker.Reply, err error) {
			e := Event{UID: uid, Reply: r}
			if err != nil {
				e.Reply, e.Code, e.Message = locker.Reply{}, codeOf(err), err.Error()
			}
			s.add(e, true)
		},
		Wounded: func(ahead uint64) { s.add(Event{UID: uid, Wound: ahead}, false) },
	}
}

// add records e as the session's next event; outcome says it ends the
// wait of its UID. It wakes the session's polls, unless a batch of the
// session runs: that batch's answer will carry e (endBatch).
func (s *session) add(e Event, outcome bool) {
	s.mu.Lock()
	if outcome {
		delete(s.queued, e.UID)
	}
	e.Seq = s.next
	s.next++
	s.events = append(s.events, e)
	if s.batches == 0 {
		s.wakeLocked()
	}
	s.mu.Unlock()
}

// wakeLocked wakes the session's polls; s.mu must be held.
func (s *session) wakeLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// ackLocked forgets the events up to ack, if ack counts in the session's
// epoch (see EventsArgs.Epoch); s.mu must be held.
func (s *session) ackLocked(ack, epoch uint64) {
	if epoch != s.epoch {
		return
	}
	i := 0
	for i < len(s.events) && s.events[i].Seq <= ack {
		i++
	}
	s.events = s.events[i:]
}

// Events in batch answers.
//
// A batch that names its session carries, in its answer, the events of
// the session that no answer has carried yet (BatchReply.Events): those
// its own operations caused, and any that came while it ran. A hot lock
// whose releaser and next waiter share a client, as the workers of one
// process do, is then handed over in the release's own round trip: the
// release's answer brings the waiter its grant, and the client's poll is
// neither woken nor asked again. While a batch of the session runs, add
// does not wake the polls: the event is carried by the answer of that
// batch, or of another that ends after it, since each carries every event
// no answer has carried. endBatch wakes them only for events over an
// answer's bound. Carried events stay until acknowledged (BatchArgs.Ack), and a
// poll answers them again, so a lost answer delays an event by at most a
// poll's wait, and loses none.

// beginBatch notes that a batch of the session starts, and forgets the
// events up to ack (BatchArgs.Ack and Epoch).
func (s *session) beginBatch(ack, epoch uint64) {
	s.mu.Lock()
	s.ackLocked(ack, epoch)
	s.batches++
	s.mu.Unlock()
}

// endBatch notes that a batch of the session ended, and appends to dst,
// for its answer, the events that no answer has carried yet (at most
// MaxEventsPerReply); it returns them and the session's epoch.
func (s *session) endBatch(dst []Event) ([]Event, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches--
	i := len(s.events)
	for i > 0 && s.events[i-1].Seq > s.sent {
		i--
	}
	fresh := s.events[i:]
	carried := fresh[:min(len(fresh), MaxEventsPerReply)]
	if len(carried) > 0 {
		dst = append(dst, carried...)
		s.sent = carried[len(carried)-1].Seq
	}
	if len(carried) < len(fresh) {
		s.wakeLocked() // events this answer cannot carry
	}
	return dst, s.epoch
}

// poll forgets the events up to ack and returns those after it, waiting
// for one for at most wait, or until stop is closed, if there are none.
// An ack counted in another epoch than s's is ignored (see
// EventsArgs.Epoch). Only a poll that waits costs a timer.
func (s *session) poll(stop <-chan struct{}, wait time.Duration, ack, epoch uint64) []Event {
	s.mu.Lock()
	s.ackLocked(ack, epoch)
	if len(s.events) == 0 && wait > 0 {
		wake := s.wake
		s.polling++
		s.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-wake:
		case <-t.C:
		case <-stop:
		}
		t.Stop()
		s.mu.Lock()
		s.polling--
	}
	out := append([]Event(nil), s.events[:min(len(s.events), MaxEventsPerReply)]...)
	if len(out) > 0 {
		s.sent = max(s.sent, out[len(out)-1].Seq)
	}
	s.lastSeen = time.Now()
	s.mu.Unlock()
	return out
}

// expired removes the sessions not seen for SessionTTL and not polling,
// and returns the UIDs of their queued requests, for the caller to
// withdraw.
func (ss *sessions) expired(now time.Time) []string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var uids []string
	for name, s := range ss.m {
		s.mu.Lock()
		if s.polling == 0 && now.Sub(s.lastSeen) > SessionTTL {
			for uid := range s.queued {
				uids = append(uids, uid)
			}
			delete(ss.m, name)
		}
		s.mu.Unlock()
	}
	return uids
}

// lockWait runs a lock operation that may wait: through the table's
// queue if its batch names a session, sess (nil if none, or if the table
// has no queue: see batchSession), else without waiting.
func (s *Server) lockWait(ctx context.Context, write bool, args locker.LockArgs, sess *session) (locker.Reply, error) {
	if args.Wait > 0 && sess != nil {
		return s.waiter.LockWait(ctx, write, args, sess.hooks(args.UID))
	}
	args.Wait = 0
	if write {
		return s.l.Lock(ctx, args)
	}
	return s.l.RLock(ctx, args)
}

// batchSession returns the session that batch names, and whether the
// batch takes its events (BatchArgs.TakeEvents): then its acknowledgement
// is noted and the batch counted as running (beginBatch), and the caller
// must end it (endBatch). It returns nil if the batch names none, if the
// table has no queue (then nothing waits on the node), or if the session
// is new and the node has MaxSessions.
func (s *Server) batchSession(batch *BatchArgs) (*session, bool) {
	if batch.Session == "" || s.waiter == nil {
		return nil, false
	}
	sess := s.sessions.get(batch.Session)
	if sess == nil || !batch.TakeEvents {
		return sess, false
	}
	sess.beginBatch(batch.Ack, batch.Epoch)
	return sess, true
}

// serveEvents answers a poll of PathEvents (an alone handler: see
// alone.go); ctx is the request's.
func (s *Server) serveEvents(ctx context.Context, body []byte) ([]byte, bool, error) {
	if s.waiter == nil {
		return nil, false, nil // nothing waits on this node
	}
	var args EventsArgs
	if err := decodeArgs(body, &args); err != nil {
		return nil, true, err
	}
	if args.Session == "" || len(args.Session) > maxSessionLen {
		return nil, true, errMalformed(fmt.Sprintf("a session of 1 to %d bytes is needed", maxSessionLen))
	}
	wait := min(max(args.Wait, 0), MaxEventsWait)
	if d, ok := ctx.Deadline(); ok { // the request's own bound, on the server's clock
		wait = min(wait, d.Sub(s.cfg.Clock.Now()))
	}
	sess := s.sessions.get(args.Session)
	if sess == nil {
		return nil, true, fmt.Errorf("%w: %d sessions wait on this node", locker.ErrBusy, MaxSessions)
	}
	// Not ctx.Done(): the request's context would make a channel and a
	// goroutine for every poll. The poll ends at its wait or when the
	// server closes.
	reply := EventsReply{Events: sess.poll(s.base.Done(), wait, args.Ack, args.Epoch), Epoch: sess.epoch}
	out, err := reply.MarshalMsg(nil)
	return out, true, err
}

// janitor withdraws, every second until the server closes, the queued
// requests of sessions whose clients have stopped polling.
func (s *Server) janitor() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.base.Done():
			return
		case now := <-t.C:
			s.expireSessions(now)
		}
	}
}

// expireSessions forgets the sessions not seen for SessionTTL before now,
// and withdraws their queued requests.
func (s *Server) expireSessions(now time.Time) {
	for _, uid := range s.sessions.expired(now) {
		// An Unlock of a queued UID withdraws it (the table does not care
		// which mode it asked for: none is held).
		s.l.Unlock(s.base, locker.LockArgs{UID: uid})
	}
}
