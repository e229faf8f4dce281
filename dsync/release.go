package dsync

import (
	"context"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// releaseFailed releases what a failed attempt may hold: now on the nodes
// that granted, and in the background, with retries, on the nodes that failed
// (they may have granted before failing to answer). Nodes the call never
// reached (locker.ErrNotSent) hold nothing and are left alone, so that an
// outage does not breed a background release per attempt.
func (ds *Dsync) releaseFailed(ctx context.Context, write bool, uid string, state []nodeState) {
	args := releaseArgs(uid)
	n := len(state)
	rv := releaseOp(write)
	granted := make([]bool, n)
	later := make([]bool, n)
	anyLater := false
	for i, st := range state {
		granted[i] = st == stateGranted
		later[i] = st == stateFailed
		anyLater = anyLater || later[i]
	}
	for _, r := range ds.callEach(ctx, rv, args, granted) {
		if r.err != nil {
			later[r.node], anyLater = true, true
		}
	}
	if anyLater {
		ds.goBackground(func(bg context.Context) { ds.releaseOn(bg, rv, args, later) })
	}
}

// releaseOn sends v for args to the nodes marked in nodes and retries the
// ones that fail until each has answered or UnlockRetryFor has passed. A node
// that answers "not held" counts as released. It does not modify nodes.
//
// The first round of calls is made even if ctx has ended (Close cancels
// background work): a release that Close finds started is tried once, and
// Close waits for its answers, at most CallTimeout. Only the retries are
// cancelled.
func (ds *Dsync) releaseOn(ctx context.Context, v locker.Op, args locker.LockArgs, nodes []bool) {
	ctx, cancel := clock.WithTimeout(ctx, ds.clk(), ds.cfg.UnlockRetryFor)
	defer cancel()
	todo := append([]bool(nil), nodes...)
	for attempt := 0; ; attempt++ {
		callCtx := ctx
		if attempt == 0 {
			callCtx = context.WithoutCancel(ctx)
		}
		results := ds.callEach(callCtx, v, args, todo)
		left := false
		for _, res := range results {
			if res.err == nil {
				todo[res.node] = false
			} else {
				left = true
			}
		}
		if !left || !clock.Sleep(ctx, ds.clk(), ds.backoff(attempt)) {
			return
		}
	}
}

// leaveRelease gives up the waiter's hold on c, the collector of a release
// made on every node by op, and leaves the answers still to come to it: once
// every answer is in, the nodes whose release failed are released by
// background retries (retryFailed), and Close waits until then. If Close has
// begun, leaveRelease waits for the answers itself instead, and the nodes
// that failed keep their grants until these expire.
func (ds *Dsync) leaveRelease(c *collector, op locker.Op) {
	if !ds.hold() {
		c.waitAll()
		c.done()
		return
	}
	c.doneRetrying(ds, op)
}

// retryFailed takes every answer of a release of uid made on every node by
// op (see leaveRelease): it retries in the background, with releaseOn, the
// nodes that failed, and ends the release's hold on Close. It runs on the
// goroutine that gave up the collector's last reference, which may be one
// that reads a node's responses: it does not block. It does not keep
// results.
func (ds *Dsync) retryFailed(op locker.Op, uid string, results []nodeResult) {
	defer ds.bgWG.Done()
	var retry []bool // nodes to release in the background; nil if none
	for _, r := range results {
		if r.err != nil {
			retry = markNode(retry, len(ds.lockers), r.node)
		}
	}
	if retry != nil && !ds.closed.Load() {
		ds.goBackground(func(bg context.Context) { ds.releaseOn(bg, op, releaseArgs(uid), retry) })
	}
}

// releaseArgs returns the arguments of a release of uid. A node finds a grant
// by its UID alone, so nothing else is sent.
func releaseArgs(uid string) locker.LockArgs { return locker.LockArgs{UID: uid} }
