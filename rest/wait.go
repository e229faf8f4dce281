package rest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/locker"
)

// The client's side of waiting on the node (see events.go): a submitted
// lock that asks to wait (LockArgs.Wait) goes in a batch that names the
// client's session; if the node queues it, the batch answers ReasonQueued,
// the sink hears of it (locker.QueueSink), and the call waits, registered
// here, for its event, which one poller per client brings with a long poll
// of PathEvents. The sink gets the outcome when the event comes, or a
// timeout error (context.DeadlineExceeded) if none came by the end of the
// request's wait: the node may then have granted it, and the caller must
// release the UID, as after any call whose outcome is unknown.

// eventSlack is how long after a request's wait ends on the node its client
// still waits for the event that says so.
const eventSlack = time.Second

// pollWait is how long one poll of the client asks the node to hold it.
const pollWait = 2 * time.Second

// pendingWait is a queued call waiting for its event.
type pendingWait struct {
	sink     locker.Sink
	tag      int
	read     bool      // an rlock: a grant is released with RUnlock
	deadline time.Time // on the monotonic clock (monoNow)
}

// woundSub is a call that waits whose sink hears of wounds
// (locker.WoundSink), until deadline.
type woundSub struct {
	sink     locker.WoundSink
	tag      int
	deadline time.Time // on the monotonic clock (monoNow)
}

// sessionRef is what a batch says of the client's session: its name, the
// acknowledgement of its events, and that the client takes them from the
// answer (BatchArgs.Session, Ack, Epoch and TakeEvents).
type sessionRef struct {
	name       string
	ack, epoch uint64
	take       bool // BatchArgs.TakeEvents
}

// waits are the queued calls of one Client, and its poller.
type waits struct {
	c       *Client
	session string
	nsubs   atomic.Int32 // len(subs), read without mu by releases
	live    atomic.Bool  // polling, read without mu by senders of batches

	mu      sync.Mutex // guards the fields below
	pending map[string]pendingWait
	subs    map[string]woundSub   // by UID
	early   map[string]earlyEvent // events whose batch answer had not come yet
	ack     uint64                // every event up to it was received, in epoch (seenLocked)
	above   map[uint64]struct{}   // events received after ack+1 (seenLocked)
	epoch   uint64                // the session's epoch on the node, as last seen (EventsReply.Epoch)
	polling bool                  // the poller runs
}

// earlyEvent is an event that came before the batch answer that queued
// its request.
type earlyEvent struct {
	e    Event
	came time.Time
}

func (w *waits) init(c *Client) {
	var b [16]byte
	rand.Read(b[:])
	w.c, w.session = c, hex.EncodeToString(b[:])
	w.pending = make(map[string]pendingWait)
	w.subs = make(map[string]woundSub)
	w.early = make(map[string]earlyEvent)
}

// subscribe sends the wounds of uid's grant to sink, with tag, for as long
// as its call may wait (wait), and starts the poller if needed.
func (w *waits) subscribe(uid string, sink locker.WoundSink, tag int, wait time.Duration) {
	w.mu.Lock()
	w.subs[uid] = woundSub{sink: sink, tag: tag, deadline: monoNow().Add(wait + eventSlack)}
	w.nsubs.Store(int32(len(w.subs)))
	w.startLocked()
}

// unsubscribe forgets the wounds of uid: it was released, or not granted.
func (w *waits) unsubscribe(uid string) {
	if w.nsubs.Load() == 0 {
		return
	}
	w.mu.Lock()
	delete(w.subs, uid)
	w.nsubs.Store(int32(len(w.subs)))
	w.mu.Unlock()
}

// startLocked starts the poller if it is not running, and unlocks w.mu.
func (w *waits) startLocked() {
	start := !w.polling
	w.polling = true
	w.live.Store(true)
	w.mu.Unlock()
	if start {
		go w.poll()
	}
}

// add registers a call queued on the node for uid (an rlock if read), which
// waits at most wait there, and starts the poller if needed. If its event
// came already, the sink gets it at once.
func (w *waits) add(uid string, read bool, sink locker.Sink, tag int, wait time.Duration) {
	w.mu.Lock()
	if ee, ok := w.early[uid]; ok {
		delete(w.early, uid)
		w.mu.Unlock()
		w.deliver(sink, tag, ee.e)
		return
	}
	w.pending[uid] = pendingWait{sink: sink, tag: tag, read: read, deadline: monoNow().Add(wait + eventSlack)}
	w.startLocked()
}

// deliver gives sink the outcome of e.
func (w *waits) deliver(sink locker.Sink, tag int, e Event) {
	if e.Code != CodeOK {
		w.unsubscribe(e.UID)
		sink.Done(tag, locker.Reply{}, fmt.Errorf("%w: %s", e.Code.sentinel(), e.Message))
		return
	}
	if !e.Reply.OK {
		w.unsubscribe(e.UID) // no grant to wound
	}
	sink.Done(tag, e.Reply, nil)
}

// poll asks the node for the session's events while calls wait, and
// delivers them; it ends the calls whose wait has passed without one.
func (w *waits) poll() {
	c := w.c
	for {
		w.mu.Lock()
		now := monoNow()
		for uid, sub := range w.subs {
			if !sub.deadline.After(now) {
				delete(w.subs, uid) // its call has decided by now
			}
		}
		w.nsubs.Store(int32(len(w.subs)))
		if len(w.pending) == 0 && len(w.subs) == 0 {
			w.polling = false
			w.live.Store(false)
			w.mu.Unlock()
			return
		}
		var expired []pendingWait
		earliest := now.Add(pollWait)
		for uid, p := range w.pending {
			if !p.deadline.After(now) {
				expired = append(expired, p)
				delete(w.pending, uid)
			} else if p.deadline.Before(earliest) {
				earliest = p.deadline
			}
		}
		for uid, ee := range w.early {
			if now.Sub(ee.came) > time.Minute {
				delete(w.early, uid) // its batch answer never came
			}
		}
		ack, epoch := w.ack, w.epoch
		w.mu.Unlock()
		for _, p := range expired {
			p.sink.Done(p.tag, locker.Reply{}, fmt.Errorf("rest: lock %s: no news of a queued request by the end of its wait: %w", c.endpoint, context.DeadlineExceeded))
		}
		if c.closed.Load() {
			w.failAll(fmt.Errorf("rest: lock %s: %w", c.endpoint, locker.ErrClosed))
			continue
		}
		events, gotEpoch, err := c.pollEvents(ack, epoch, max(earliest.Sub(now), 0))
		if err != nil {
			// Nothing came: the calls end at their deadlines, unless a
			// later poll brings their events.
			select {
			case <-c.stop:
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		c.stats.polls.Add(1)
		w.take(events, gotEpoch, false)
	}
}

// ref returns what a batch says of the session: nothing unless one of its
// operations waits (waiting) or calls of the client wait, so that the
// answer can bring their events (BatchReply.Events).
func (w *waits) ref(waiting bool) sessionRef {
	if !waiting && !w.live.Load() {
		return sessionRef{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return sessionRef{name: w.session, ack: w.ack, epoch: w.epoch, take: true}
}

// take delivers events of the session, from a batch's answer (inBatch) or
// a poll's, whose epoch is epoch (zero: an answer that named no session).
func (w *waits) take(events []Event, epoch uint64, inBatch bool) {
	if epoch == 0 {
		return
	}
	fresh := 0
	now := monoNow()
	w.mu.Lock()
	if epoch != w.epoch {
		// A new session on the node (it restarted, or forgot ours): its
		// events count from 1 again.
		w.epoch, w.ack = epoch, 0
		clear(w.above)
	}
	var got []struct {
		p pendingWait
		e Event
	}
	var wounded []woundSub
	var aheads []uint64
	for _, e := range events {
		if w.seenLocked(e.Seq) {
			continue // given again: the answer that carried it was lost
		}
		fresh++
		if e.Wound != 0 {
			if sub, ok := w.subs[e.UID]; ok {
				delete(w.subs, e.UID)
				wounded, aheads = append(wounded, sub), append(aheads, e.Wound)
			}
			continue
		}
		if p, ok := w.pending[e.UID]; ok {
			delete(w.pending, e.UID)
			got = append(got, struct {
				p pendingWait
				e Event
			}{p, e})
		} else {
			w.early[e.UID] = earlyEvent{e, now}
		}
	}
	w.nsubs.Store(int32(len(w.subs)))
	w.mu.Unlock()
	// Counted before the callers hear: a caller that reads the stats then
	// finds its event in them.
	w.c.stats.events.Add(int64(fresh))
	if inBatch {
		w.c.stats.batchEvents.Add(int64(fresh))
	}
	for i, sub := range wounded {
		sub.sink.Wounded(sub.tag, aheads[i])
	}
	for _, g := range got {
		w.deliver(g.p.sink, g.p.tag, g.e)
	}
}

// seenLocked reports whether the event numbered seq came already, and
// notes that it did; w.mu must be held. Events come in order on each
// connection, but the answers of several connections (batches, and the
// poll) are read in any order, so the session's events are counted as
// w.ack, every one up to which came, and w.above, those after a gap.
func (w *waits) seenLocked(seq uint64) bool {
	if seq <= w.ack {
		return true
	}
	if _, ok := w.above[seq]; ok {
		return true
	}
	if seq != w.ack+1 {
		if w.above == nil {
			w.above = make(map[uint64]struct{})
		}
		w.above[seq] = struct{}{}
		return false
	}
	w.ack = seq
	for {
		if _, ok := w.above[w.ack+1]; !ok {
			return false
		}
		delete(w.above, w.ack+1)
		w.ack++
	}
}

// failAll ends every waiting call with err.
func (w *waits) failAll(err error) {
	for _, p := range w.takeAll() {
		p.sink.Done(p.tag, locker.Reply{}, err)
	}
}

// takeAll removes and returns every waiting call, and forgets the wounds.
func (w *waits) takeAll() map[string]pendingWait {
	w.mu.Lock()
	defer w.mu.Unlock()
	pending := w.pending
	w.pending = make(map[string]pendingWait)
	clear(w.subs)
	w.nsubs.Store(0)
	return pending
}

// withdrawAll ends every waiting call with err after asking the node,
// within timeout, to withdraw its request (or release its grant, had one
// just come): Close does, so that a closed client leaves no waiter on the
// node to be granted a lock nobody will use.
func (w *waits) withdrawAll(err error, timeout time.Duration) {
	pending := w.takeAll()
	if len(pending) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for uid, p := range pending {
		wg.Go(func() {
			release := w.c.Unlock
			if p.read {
				release = w.c.RUnlock
			}
			release(ctx, locker.LockArgs{UID: uid})
		})
	}
	wg.Wait()
	for _, p := range pending {
		p.sink.Done(p.tag, locker.Reply{}, err)
	}
}

// pollEvents asks the node for the session's events after ack (counted in
// epoch), letting it hold the request for up to wait, and returns them with
// the session's epoch.
func (c *Client) pollEvents(ack, epoch uint64, wait time.Duration) ([]Event, uint64, error) {
	ex := getExchange()
	defer putExchange(ex)
	args := EventsArgs{Session: c.waits.session, Ack: ack, Wait: wait, Epoch: epoch}
	var err error
	if ex.buf, err = args.MarshalMsg(ex.buf[:0]); err != nil {
		return nil, 0, err
	}
	if err := c.roundTrip(ex, fasthttp.MethodPost, PathEvents, monoNow().Add(wait+c.cfg.CallTimeout)); err != nil {
		return nil, 0, err
	}
	var r EventsReply
	if left, err := r.UnmarshalMsg(ex.body); decodeProblem(left, err) != "" {
		return nil, 0, fmt.Errorf("%w: events: %s", ErrProtocol, decodeProblem(left, err))
	}
	return r.Events, r.Epoch, nil
}

// outcomeSink is the sink of a blocking call that waits.
type outcomeSink chan struct {
	r   locker.Reply
	err error
}

func (s outcomeSink) Done(_ int, r locker.Reply, err error) {
	s <- struct {
		r   locker.Reply
		err error
	}{r, err}
}

// lockWaiting is Lock or RLock (v) of args that asks to wait: it submits
// the call and waits for its outcome, or for ctx to end, when it withdraws
// the request (an unlock of its UID, which also releases a grant that came
// at that moment).
func (c *Client) lockWaiting(ctx context.Context, v Verb, args locker.LockArgs) (locker.Reply, error) {
	op := locker.OpLock
	if v == VerbRLock {
		op = locker.OpRLock
	}
	sink := make(outcomeSink, 1)
	c.Submit(ctx, op, &args, args.Wait+c.cfg.CallTimeout, sink, 0)
	select {
	case o := <-sink:
		return o.r, o.err
	case <-ctx.Done():
		go func() {
			// Withdrawn at once: the node then answers the waiter. A grant
			// that came meanwhile is released by the same unlock.
			release := c.Unlock
			if v == VerbRLock {
				release = c.RUnlock
			}
			rctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
			defer cancel()
			release(rctx, locker.LockArgs{UID: args.UID})
			<-sink // args are the submitter's until the answer
		}()
		return locker.Reply{}, fmt.Errorf("rest: %s %s: %w", opName(v), c.endpoint, ctxError(ctx))
	}
}
