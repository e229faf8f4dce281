package rest

import (
	"fmt"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/locker"
)

// maxBatchBytes bounds the encoded arguments of one batch, well below the
// node's default body limit, so that a few large refreshes that happen to
// queue together are not refused as a whole.
const maxBatchBytes = 1 << 20

// coalescer sends the calls of one Client to its node, many per HTTP
// request when the node is busy.
//
// At most ClientConfig.MaxInFlight requests are in flight. A call that finds
// a free slot starts a sender for it at once, so an idle client adds no
// latency: its call goes alone, on the single-operation path. Calls that
// arrive while every slot is busy wait in the queue; a sender that finishes
// a request takes up to ClientConfig.MaxBatch queued calls (and at most
// maxBatchBytes of arguments) into its next request, a batch. Batches thus
// grow only while the node is slow to answer, which is when merging saves
// the most. A sender that finds the queue empty frees its slot.
//
// The queue is first in, first out, and every sender takes from its head,
// so no call waits behind calls that arrived after it. It holds at most
// queueBatches full batches; past that, calls fail at once with ErrBusy.
//
// The queue holds calls by value (queuedCall): what a submitted call (see
// Client.Submit) needs is written once, by its submitter, into the queue's
// array, and read once, by the sender, with no call struct of its own to
// fetch and fill. Under load a submitter and the sender run on different
// cores, and each cache line a call moves between them costs more than the
// rest of the submission. Calls of the blocking methods (Lock, Refresh...)
// keep their call, which their caller waits on, and the queue points to it.
// A sender that takes the whole queue, the common case under load, swaps
// the queue's array for its own emptied one instead of copying.
type coalescer struct {
	c *Client

	mu          sync.Mutex   // guards the fields below
	queue       []queuedCall // submitted, not yet taken by a sender
	inflight    int          // senders running, at most cfg.MaxInFlight
	lingerUntil int64        // in monoNanos: when the queued calls that wait have lingered (see lingerLocked)
	linger      *time.Timer  // sends what lingered (lingered); made at its first use

	// spare is an empty array for the queue, left by the last sender to
	// free its slot for the next sender to start: with it, senders and the
	// queue trade arrays (see take) without allocating new ones.
	spare []queuedCall

	// now is the time, in monoNanos, when a sender last took calls from
	// the queue. While a sender runs, it is no older than the request that
	// sender has in flight, and submitNew dates a submitted call's deadline
	// from it instead of reading the clock for each call: under load, calls
	// come many per request, and a clock read costs as much as the rest of
	// submitNew.
	now int64
}

// queuedCall is a call in the coalescer's queue. A submitted call is only
// this: its fields are copied from Client.Submit's arguments. A call of
// the blocking methods is cl, with its verb, arguments and deadline copied
// here so that take and appendBatch read every call alike.
type queuedCall struct {
	verb     Verb
	wait     bool             // a submitted lock that may wait on the node (see waits)
	size     uint32           // bound on the encoded arguments (see argSize)
	args     *locker.LockArgs // the lock arguments sent: a submitter's, unchanged until the answer (see locker.Submitter), or &cl.lock
	cl       *call            // of a blocking call, which gets the answer; nil for a submitted call
	deadline int64            // in monoNanos; the call is not sent at or after it
	sink     locker.Sink      // of a submitted call: gets the answer
	tag      int              // the sink's tag for this call
}

// refreshUIDs returns the UIDs q sends to refresh: only a blocking call
// has any.
func (q *queuedCall) refreshUIDs() []string {
	if q.cl == nil {
		return nil
	}
	return q.cl.refresh.UIDs
}

// waits reports whether q is a submitted lock that may wait on the node
// (LockArgs.Wait): it must go in a batch that names the client's session.
// The blocking methods wait through Submit (see lockWaiting).
func (q *queuedCall) waits() bool { return q.wait }

// submittedWaits reports whether a submitted call of verb v with args may
// wait on the node: queuedCall.wait, found once, on the submitter's core
// (take reads it for every queued call under the coalescer's lock, where
// a read through args could miss the cache).
func submittedWaits(v Verb, args *locker.LockArgs) bool {
	return args.Wait > 0 && (v == VerbLock || v == VerbRLock)
}

// queued returns cl, a call of the blocking methods whose deadline is set,
// as it waits in the queue.
func (cl *call) queued() queuedCall {
	q := queuedCall{verb: cl.verb, args: cl.lockArgs(), cl: cl, deadline: monoNanosOf(cl.deadline)}
	if cl.verb == VerbRefresh {
		q.size = argSize(cl.refresh.Msgsize())
	} else {
		q.size = argSize(q.args.Msgsize())
	}
	return q
}

func (co *coalescer) init(c *Client) { co.c = c }

// queueBatches bounds the queue to this many full batches. A node so slow
// that more calls wait for it is overloaded; further calls fail at once with
// locker.ErrBusy rather than pile up behind it.
const queueBatches = 16

// submit queues cl, a call made through the blocking methods, and starts a
// sender if a slot is free. The caller must have set cl.state and
// cl.deadline.
func (co *coalescer) submit(cl *call) {
	q := cl.queued() // sized before the lock, on the caller's core (see argSize)
	co.mu.Lock()
	if co.full() {
		co.refuse(&q)
		return
	}
	co.enqueue(&q)
}

// submitNew queues a submitted call of verb v (see Client.Submit). size is
// argSize of args.Msgsize().
func (co *coalescer) submitNew(v Verb, args *locker.LockArgs, size uint32, timeout time.Duration, sink locker.Sink, tag int) {
	q := queuedCall{verb: v, wait: submittedWaits(v, args), size: size, args: args, sink: sink, tag: tag}
	co.mu.Lock()
	if co.full() {
		co.refuse(&q)
		return
	}
	q.deadline = co.deadline(timeout)
	co.enqueue(&q)
}

// deadline returns the deadline, in monoNanos, of a call with timeout
// queued now; co.mu must be held. It reads the clock only if no sender runs
// (see co.now).
func (co *coalescer) deadline(timeout time.Duration) int64 {
	if co.inflight == 0 {
		co.now = monoNanos()
	}
	return co.now + int64(timeout)
}

// full reports whether the queue is at its bound; co.mu must be held.
func (co *coalescer) full() bool { return len(co.queue) >= queueBatches*co.c.cfg.MaxBatch }

// refuse fails q because the queue is full; co.mu must be held, and
// refuse unlocks it.
func (co *coalescer) refuse(q *queuedCall) {
	n := len(co.queue)
	co.mu.Unlock()
	co.c.stats.notSent.Add(1)
	co.c.fail(q, fmt.Errorf("rest: %s %s: %w: %d calls already queued for the node (%w)", opName(q.verb), co.c.endpoint, locker.ErrBusy, n, locker.ErrNotSent))
}

// enqueue queues q, whose deadline is set, and starts a sender if a slot
// is free; co.mu must be held, and enqueue unlocks it.
func (co *coalescer) enqueue(q *queuedCall) {
	co.queue = append(co.queue, *q)
	lingers := q.waits() && co.c.cfg.WaitLinger > 0
	var now int64
	if lingers {
		now = monoNanos()
		if len(co.queue) == 1 {
			co.lingerUntil = now + int64(co.c.cfg.WaitLinger)
		}
	}
	if co.inflight >= co.c.cfg.MaxInFlight {
		n := len(co.queue)
		co.mu.Unlock()
		if co.c.cfg.queued != nil {
			co.c.cfg.queued(n)
		}
		return
	}
	if lingers {
		// A free slot, so nothing but calls that wait is queued (any other
		// call would have started a sender): they linger until lingerUntil,
		// which the first of them set.
		co.lingerLocked(now)
		co.mu.Unlock()
		return
	}
	co.inflight++
	co.mu.Unlock()
	go co.run()
}

// Lingering calls that wait.
//
// A lock that asks to wait on the node (LockArgs.Wait) is sent when the
// lock was found held a moment ago: the node will most likely queue it, and
// a few tens of microseconds more on the client cost it nothing. A call
// that does not wait, such as the release that a hand-off waits for, is
// urgent. So a request is not started for calls that all wait until they
// have lingered ClientConfig.WaitLinger in the queue: a call that does not
// wait, coming meanwhile, takes them along in its request. On a hot lock
// whose callers share a client, the caller just granted releases while the
// caller just served asks again: one request per node instead of two, and
// the release does not queue behind the other's request (one request is in
// flight per node, by default).

// lingerLocked sets the timer that sends the queued calls, all of which
// wait, when they have lingered (co.lingerUntil: WaitLinger after the first
// of them came into an empty queue); co.mu must be held.
func (co *coalescer) lingerLocked(now int64) {
	d := time.Duration(co.lingerUntil - now)
	if co.linger == nil {
		co.linger = time.AfterFunc(d, co.lingered)
	} else {
		co.linger.Reset(d)
	}
}

// lingered starts a sender for the calls that lingered their time, unless
// a sender took them meanwhile.
func (co *coalescer) lingered() {
	co.mu.Lock()
	co.lingerUntil = 0 // what is queued goes now
	if len(co.queue) == 0 || co.inflight >= co.c.cfg.MaxInFlight {
		co.mu.Unlock()
		return
	}
	co.inflight++
	co.mu.Unlock()
	co.run()
}

// run is one sender: it sends what the queue holds until it is empty.
func (co *coalescer) run() {
	var group []queuedCall
	for {
		var now int64
		group, now = co.take(group)
		if len(group) == 0 {
			return
		}
		co.send(group, now)
		clear(group) // drop the references to arguments and sinks
		group = group[:0]
	}
}

// take moves calls from the head of the queue into group, which must be
// empty, or frees the sender's slot if the queue is empty. It returns the
// time it took them, in monoNanos.
//
// When it takes every queued call it swaps arrays: group gets the queue's,
// and the queue gets group's (or the spare, for a sender's first take).
// When the sender frees its slot, its array becomes the spare.
func (co *coalescer) take(group []queuedCall) ([]queuedCall, int64) {
	now := monoNanos()
	co.mu.Lock()
	defer co.mu.Unlock()
	co.now = now
	if group == nil {
		group, co.spare = co.spare, nil
	}
	n, bytes, waiting := 0, 0, true
	for n < len(co.queue) && n < co.c.cfg.MaxBatch {
		bytes += int(co.queue[n].size)
		if n > 0 && bytes > maxBatchBytes {
			break
		}
		waiting = waiting && co.queue[n].waits()
		n++
	}
	if n > 0 && waiting && n == len(co.queue) && now < co.lingerUntil && co.c.cfg.WaitLinger > 0 {
		co.lingerLocked(now)
		n = 0 // they linger: the slot is freed
	}
	switch {
	case n == 0:
		co.inflight--
		if cap(group) > cap(co.spare) {
			co.spare = group
		}
		return nil, now
	case n == len(co.queue):
		group, co.queue = co.queue, group
		return group, now
	}
	group = append(group, co.queue[:n]...)
	left := copy(co.queue, co.queue[n:])
	clear(co.queue[left:])
	co.queue = co.queue[:left]
	return group, now
}

// argSize returns what a queued call keeps in its size field for arguments
// whose Msgsize is n: n, capped at maxBatchBytes+1. Every call is sized
// before it is queued, on its caller's core where its arguments are in
// cache, so that take, under co.mu, only sums the sizes. The cap keeps the
// size in the 32 bits beside queuedCall.verb and changes no decision of take: a call over
// maxBatchBytes goes alone either way, and take stops summing as soon as
// the sum is over maxBatchBytes, so the sum stays far from overflowing.
func argSize(n int) uint32 { return uint32(min(n, maxBatchBytes+1)) }

// send sends group, taken from the queue at now (in monoNanos), alone or
// as a batch, and answers each call.
func (co *coalescer) send(group []queuedCall, now int64) {
	c := co.c
	// Calls whose callers left before they were sent are dropped: nothing
	// was asked of the node, so nothing needs releasing.
	live := group[:0]
	for i := range group {
		q := &group[i]
		switch {
		case q.cl != nil && q.cl.state.Load() == callAbandoned:
			putCall(q.cl)
		case now >= q.deadline:
			c.stats.notSent.Add(1)
			c.fail(q, fmt.Errorf("rest: %s %s: %w: timed out in the client's queue", opName(q.verb), c.endpoint, errQueueTimeout))
		default:
			live = append(live, *q)
		}
	}
	waiting := false
	for i := range live {
		if live[i].waits() {
			waiting = true
			break
		}
	}
	// Only a batch names the session: a batch with a call that waits, or
	// any batch while calls wait, whose answer may bring their news.
	sess := c.waits.ref(waiting)
	switch {
	case len(live) == 0:
		return
	case len(live) == 1 && !c.cfg.batchAlone && sess.name == "":
		c.sendQueued(&live[0])
		return
	}

	ex := getExchange()
	defer putExchange(ex)
	deadline := live[0].deadline
	for i := range live[1:] {
		deadline = max(deadline, live[1+i].deadline)
	}
	var err error
	ex.buf, err = appendBatch(ex.buf[:0], live, sess)
	if err == nil {
		err = c.roundTrip(ex, fasthttp.MethodPost, PathBatch, monoTime(deadline))
	}
	if err == nil {
		err = checkBatchReply(len(live), &ex.reply, ex.body)
	}
	if err != nil {
		c.stats.tallyFailed(live)
		for i := range live {
			q := &live[i]
			c.fail(q, fmt.Errorf("rest: %s %s (in a batch of %d): %w", opName(q.verb), c.endpoint, len(live), err))
		}
		return
	}
	results := ex.reply.Results
	for i := range results {
		if results[i].Code == CodeClosed {
			// Before any caller hears that the node is closed, so that no
			// caller can see the node still online after that answer.
			c.markOffline(fmt.Errorf("%w: %s", ErrRemote, results[i].Message))
			break
		}
	}
	c.stats.tallyResults(live, results)
	for i := range live {
		q, r := &live[i], &results[i]
		var err error
		if r.Code != CodeOK {
			err = fmt.Errorf("rest: %s %s: %w: %s", opName(q.verb), c.endpoint, r.Code.sentinel(), r.Message)
		}
		if q.cl == nil {
			if err == nil && r.Reply.Reason == locker.ReasonQueued && q.waits() {
				// Its outcome comes as an event (wait.go).
				if qs, ok := q.sink.(locker.QueueSink); ok {
					qs.Queued(q.tag, r.Reply.Ahead)
				}
				c.waits.add(q.args.UID, q.verb == VerbRLock, q.sink, q.tag, q.args.Wait)
				continue
			}
			if q.waits() && (err != nil || !r.Reply.OK) {
				c.waits.unsubscribe(q.args.UID) // no grant to wound
			}
			q.sink.Done(q.tag, r.Reply, err)
			continue
		}
		cl := q.cl
		cl.err = err
		if cl.verb == VerbRefresh {
			cl.rreply = r.Refresh
		} else {
			cl.reply = r.Reply
		}
		c.answer(cl)
	}
	// After the results, which register the calls this batch queued: an
	// event may be of one of them.
	c.waits.take(ex.reply.Events, ex.reply.Epoch, true)
}

// sendQueued sends q alone, on its verb's own path, and answers it.
func (c *Client) sendQueued(q *queuedCall) {
	cl := q.cl
	if cl == nil {
		// sendOne takes a call: a submitted call sent alone is made one,
		// which answer disposes of.
		cl = newCall(q.verb)
		cl.args, cl.sink, cl.tag = q.args, q.sink, q.tag
		cl.deadline = monoTime(q.deadline)
	}
	c.sendOne(cl)
	c.answer(cl)
}

// fail answers q with err.
func (c *Client) fail(q *queuedCall, err error) {
	if q.cl == nil {
		q.sink.Done(q.tag, locker.Reply{}, err)
		return
	}
	q.cl.err = err
	c.answer(q.cl)
}

// checkBatchReply decodes a batch answer for n operations into reply. It
// returns an error if the answer is not a well-formed reply for them.
func checkBatchReply(n int, reply *BatchReply, body []byte) error {
	left, err := decodeBatchReply(reply, body)
	if msg := decodeProblem(left, err); msg != "" {
		return fmt.Errorf("%w: batch answer: %s", ErrProtocol, msg)
	}
	if len(reply.Results) != n {
		return fmt.Errorf("%w: batch answer has %d results for %d operations", ErrProtocol, len(reply.Results), n)
	}
	return nil
}
