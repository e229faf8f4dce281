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
type coalescer struct {
	c *Client

	mu       sync.Mutex // guards the fields below
	queue    []*call    // submitted, not yet taken by a sender
	inflight int        // senders running, at most cfg.MaxInFlight

	// now is the time when a sender last took calls from the queue. While
	// a sender runs, it is no older than the request that sender has in
	// flight, and submit dates a submitted call's deadline from it instead
	// of reading the clock for each call: under load, calls come many per
	// request, and a clock read costs as much as the rest of submit.
	now time.Time

	// free holds answered submitted calls for reuse. Senders return them in
	// bulk when they next take from the queue, and submitNew takes one
	// under the lock it holds anyway: cheaper than a sync.Pool round trip
	// per call.
	free []*call
}

// maxFreeCalls bounds coalescer.free.
const maxFreeCalls = 1024

func (co *coalescer) init(c *Client) { co.c = c }

// queueBatches bounds the queue to this many full batches. A node so slow
// that more calls wait for it is overloaded; further calls fail at once with
// locker.ErrBusy rather than pile up behind it.
const queueBatches = 16

// submit queues cl, a call made through the blocking methods, and starts a
// sender if a slot is free. The caller must have set cl.state, and
// cl.deadline or cl.timeout.
func (co *coalescer) submit(cl *call) {
	// Sized before the lock, on the caller's core (see argSize).
	if cl.verb == VerbRefresh {
		cl.size = argSize(cl.refresh.Msgsize())
	} else {
		cl.size = argSize(cl.lockArgs().Msgsize())
	}
	co.mu.Lock()
	if co.full() {
		co.refuse(cl)
		return
	}
	if cl.deadline.IsZero() {
		cl.deadline = co.deadline(cl.timeout)
	}
	co.enqueue(cl)
}

// submitNew queues a submitted call of verb v (see Client.Submit), made
// from a free call if there is one. size is argSize of args.Msgsize().
func (co *coalescer) submitNew(v Verb, args *locker.LockArgs, size uint32, timeout time.Duration, sink locker.Sink, tag int) {
	co.mu.Lock()
	var cl *call
	if n := len(co.free); n > 0 {
		cl = co.free[n-1]
		co.free[n-1] = nil
		co.free = co.free[:n-1]
	} else {
		cl = new(call)
	}
	cl.verb = v
	cl.fill(args, size, timeout, sink, tag)
	if co.full() {
		co.refuse(cl)
		return
	}
	// Written, not tested first: the call was last touched on the
	// sender's core, and a read of it would wait for its cache line.
	cl.deadline = co.deadline(timeout)
	co.enqueue(cl)
}

// deadline returns the deadline of a call with timeout queued now; co.mu
// must be held. It reads the clock only if no sender runs (see co.now).
func (co *coalescer) deadline(timeout time.Duration) time.Time {
	if co.inflight == 0 {
		co.now = monoNow()
	}
	return co.now.Add(timeout)
}

// full reports whether the queue is at its bound; co.mu must be held.
func (co *coalescer) full() bool { return len(co.queue) >= queueBatches*co.c.cfg.MaxBatch }

// refuse fails cl because the queue is full; co.mu must be held, and
// refuse unlocks it.
func (co *coalescer) refuse(cl *call) {
	n := len(co.queue)
	co.mu.Unlock()
	co.c.stats.notSent.Add(1)
	cl.err = fmt.Errorf("rest: %s %s: %w: %d calls already queued for the node (%w)", opName(cl.verb), co.c.endpoint, locker.ErrBusy, n, locker.ErrNotSent)
	co.c.answer(cl)
}

// enqueue queues cl, whose deadline is set, and starts a sender if a slot
// is free; co.mu must be held, and enqueue unlocks it.
func (co *coalescer) enqueue(cl *call) {
	co.queue = append(co.queue, cl)
	if co.inflight >= co.c.cfg.MaxInFlight {
		n := len(co.queue)
		co.mu.Unlock()
		if co.c.cfg.queued != nil {
			co.c.cfg.queued(n)
		}
		return
	}
	co.inflight++
	co.mu.Unlock()
	go co.run()
}

// run is one sender: it sends what the queue holds until it is empty.
func (co *coalescer) run() {
	group := make([]*call, 0, 8)
	var spent []*call
	for {
		var now time.Time
		// spent shares group's array: take files it away before it
		// refills group.
		group, now = co.take(group[:0], spent)
		if len(group) == 0 {
			return
		}
		spent = co.send(group, now)
		clear(group[len(spent):])
	}
}

// take puts the calls of spent on the free list, then moves calls from the
// head of the queue into group, or frees the sender's slot if the queue is
// empty. It returns the time it took them.
func (co *coalescer) take(group, spent []*call) ([]*call, time.Time) {
	now := monoNow()
	co.mu.Lock()
	defer co.mu.Unlock()
	co.now = now
	if keep := min(len(spent), maxFreeCalls-len(co.free)); keep > 0 {
		co.free = append(co.free, spent[:keep]...)
	}
	clear(spent)
	n, bytes := 0, 0
	for n < len(co.queue) && n < co.c.cfg.MaxBatch {
		bytes += int(co.queue[n].size)
		if n > 0 && bytes > maxBatchBytes {
			break
		}
		n++
	}
	if n == 0 {
		co.inflight--
		return group, now
	}
	group = append(group, co.queue[:n]...)
	left := copy(co.queue, co.queue[n:])
	clear(co.queue[left:])
	co.queue = co.queue[:left]
	return group, now
}

// argSize returns what a call keeps in its size field for arguments whose
// Msgsize is n: n, capped at maxBatchBytes+1. Every call is sized when it
// is queued, on its caller's core where its arguments are in cache, so that
// take, under co.mu, only sums the sizes. The cap keeps the size in the
// padding after call.code and changes no decision of take: a call over
// maxBatchBytes goes alone either way, and take stops summing as soon as
// the sum is over maxBatchBytes, so the sum stays far from overflowing.
func argSize(n int) uint32 { return uint32(min(n, maxBatchBytes+1)) }

// send sends group, taken from the queue at now, alone or as a batch, and
// answers each call. It returns the submitted calls it answered, for the
// free list (as they are: see call.fill), at the head of group's array.
func (co *coalescer) send(group []*call, now time.Time) (spent []*call) {
	c := co.c
	// Calls whose callers left before they were sent are dropped: nothing
	// was asked of the node, so nothing needs releasing.
	live := group[:0]
	for _, cl := range group {
		switch {
		case cl.state.Load() == callAbandoned:
			putCall(cl)
		case !now.Before(cl.deadline):
			cl.err = fmt.Errorf("rest: %s %s: %w: timed out in the client's queue", opName(cl.verb), c.endpoint, errQueueTimeout)
			c.stats.notSent.Add(1)
			c.answer(cl)
		default:
			live = append(live, cl)
		}
	}
	switch {
	case len(live) == 0:
		return nil
	case len(live) == 1 && !c.cfg.batchAlone:
		c.sendOne(live[0])
		return c.answerAll(live)
	}

	ex := getExchange()
	defer putExchange(ex)
	deadline := live[0].deadline
	for _, cl := range live[1:] {
		if cl.deadline.After(deadline) {
			deadline = cl.deadline
		}
	}
	var err error
	ex.buf, err = appendBatch(ex.buf[:0], live)
	if err == nil {
		err = c.roundTrip(ex, fasthttp.MethodPost, PathBatch, 0, deadline)
	}
	if err == nil {
		err = checkBatchReply(len(live), &ex.reply, ex.resp.Body())
	}
	if err != nil {
		for _, cl := range live {
			cl.err = fmt.Errorf("rest: %s %s (in a batch of %d): %w", opName(cl.verb), c.endpoint, len(live), err)
		}
		c.stats.tally(live, true)
		return c.answerAll(live)
	}
	results := ex.reply.Results
	for i := range results {
		if results[i].Code == CodeClosed {
			// Before any caller hears that the node is closed, so that no
			// caller can see the node still online after that answer.
			c.markOffline()
			break
		}
	}
	c.stats.tallyResults(live, results)
	spent = live[:0]
	for i, cl := range live {
		r := &results[i]
		var err error
		if r.Code != CodeOK {
			err = fmt.Errorf("rest: %s %s: %w: %s", opName(cl.verb), c.endpoint, r.Code.sentinel(), r.Message)
		}
		if cl.sink == nil {
			cl.code, cl.err = r.Code, err
			if cl.verb == VerbRefresh {
				cl.rreply = r.Refresh
			} else {
				cl.reply = r.Reply
			}
			c.answer(cl)
			continue
		}
		// A submitted call is only read here, never written: it goes back
		// to the free list as it is, and submitNew sets every field a
		// submitted call uses. So its cache lines need not come back from
		// this core before the submitter reuses it.
		sink, tag := cl.sink, cl.tag
		spent = append(spent, cl) // over a call already answered
		sink.Done(tag, r.Reply, err)
	}
	return spent
}

// answerAll answers the calls of group, each with its err, or its reply. It
// returns the submitted ones in the head of group's array, for the free
// list; the others are answered as answer does.
func (c *Client) answerAll(group []*call) (spent []*call) {
	spent = group[:0]
	for _, cl := range group {
		if cl.sink == nil {
			c.answer(cl)
			continue
		}
		sink, tag, r, err := cl.sink, cl.tag, cl.reply, cl.err
		spent = append(spent, cl) // over a call already answered
		sink.Done(tag, r, err)
	}
	return spent
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
