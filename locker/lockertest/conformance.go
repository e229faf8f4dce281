// Package lockertest is the conformance suite for locker.NetLocker. Every
// implementation in this module (the in-memory table, the HTTP client talking
// to an HTTP server, the simulated node) runs it, so that the quorum client can
// rely on one contract whatever carries its calls.
package lockertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// Factory returns a new, empty locker backed by a node table configured with
// cfg. cfg.Clock is a *clock.Fake that the suite advances; the factory must
// pass cfg to locker.New unchanged and arrange for the locker to be closed
// when t ends.
type Factory func(t *testing.T, cfg locker.Config) locker.NetLocker

// Validity is the validity the suite configures.
const Validity = 30 * time.Second

// Run runs the conformance suite against lockers made by f.
func Run(t *testing.T, f Factory) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(time.Unix(1_700_000_000, 0))
			// No grace period unless a case asks for one: most cases start
			// from a table that grants at once.
			cfg := locker.Config{Validity: Validity, Clock: clk, SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod}
			if tc.config != nil {
				tc.config(&cfg)
			}
			h := &harness{t: t, l: f(t, cfg), clk: clk, ctx: context.Background(), f: f, cfg: cfg}
			tc.run(h)
		})
	}
}

type testCase struct {
	name   string
	config func(*locker.Config)
	run    func(h *harness)
}

// harness wraps a locker with assertions that report the failing step.
type harness struct {
	t   *testing.T
	l   locker.NetLocker
	clk *clock.Fake
	ctx context.Context

	f      Factory       // made l; restart makes another (nil outside Run)
	cfg    locker.Config // what l was made with
	incarn uint64        // l's incarnation, once a refresh in its grace period has named it
}

// restart replaces the locker with a new one made as the first was: a
// node that restarted with an empty table, a new incarnation and, if the
// case's config has one, a grace period that starts now.
func (h *harness) restart() {
	h.t.Helper()
	require.NotNil(h.t, h.f, "restart outside Run")
	h.l = h.f(h.t, h.cfg)
	h.incarn = 0
}

// incarnation returns the locker's incarnation, learned as a client learns
// it: from a refresh answered in the grace period (the first time; the
// locker must then be in its grace).
func (h *harness) incarnation() uint64 {
	h.t.Helper()
	if h.incarn == 0 {
		r, err := h.l.Refresh(h.ctx, locker.RefreshArgs{UIDs: []string{"incarnation-probe"}})
		require.NoError(h.t, err, "refresh in grace")
		require.Positive(h.t, r.Grace, "refresh in grace = %+v; want the grace left", r)
		require.NotZero(h.t, r.Incarnation, "refresh in grace = %+v; want a nonzero incarnation", r)
		h.incarn = r.Incarnation
	}
	return h.incarn
}

func args(uid string, resources ...string) locker.LockArgs {
	return locker.LockArgs{UID: uid, Resources: resources, Owner: "owner-" + uid, Source: "conformance.go:1", Quorum: 1}
}

func (h *harness) lock(write bool, a locker.LockArgs) locker.Reply {
	h.t.Helper()
	var r locker.Reply
	var err error
	if write {
		r, err = h.l.Lock(h.ctx, a)
	} else {
		r, err = h.l.RLock(h.ctx, a)
	}
	require.NoError(h.t, err, "lock(write=%v, %s %v)", write, a.UID, a.Resources)
	return r
}

func (h *harness) mustGrant(write bool, uid string, resources ...string) locker.Reply {
	h.t.Helper()
	r := h.lock(write, args(uid, resources...))
	require.True(h.t, r.OK, "lock(write=%v, %s %v) refused (%v), want granted", write, uid, resources, r.Reason)
	require.NotZero(h.t, r.Fence, "lock(write=%v, %s %v) granted with zero fence", write, uid, resources)
	require.Equal(h.t, Validity, r.Validity, "lock(write=%v, %s %v) granted with another validity than the table's", write, uid, resources)
	return r
}

func (h *harness) mustRefuse(write bool, uid string, want locker.Reason, resources ...string) {
	h.t.Helper()
	r := h.lock(write, args(uid, resources...))
	require.False(h.t, r.OK, "lock(write=%v, %s %v) granted, want refused", write, uid, resources)
	require.Equal(h.t, want, r.Reason, "lock(write=%v, %s %v) refused with another reason", write, uid, resources)
}

// withdraw sends a writer's give-up: an Unlock of uid that names the
// resources. It reports what Unlock did.
func (h *harness) withdraw(uid string, resources ...string) bool {
	h.t.Helper()
	r, err := h.l.Unlock(h.ctx, args(uid, resources...))
	require.NoError(h.t, err, "withdraw(%s %v)", uid, resources)
	return r.OK
}

func (h *harness) unlock(write bool, uid string) bool {
	h.t.Helper()
	var r locker.Reply
	var err error
	if write {
		r, err = h.l.Unlock(h.ctx, args(uid))
	} else {
		r, err = h.l.RUnlock(h.ctx, args(uid))
	}
	require.NoError(h.t, err, "unlock(write=%v, %s)", write, uid)
	return r.OK
}

func (h *harness) refresh(uids ...string) []locker.RefreshStatus {
	h.t.Helper()
	r, err := h.l.Refresh(h.ctx, locker.RefreshArgs{UIDs: uids})
	require.NoError(h.t, err, "refresh(%v)", uids)
	require.Len(h.t, r.Status, len(uids), "refresh(%v) statuses", uids)
	require.Equal(h.t, Validity, r.Validity, "refresh(%v) answered another validity than the table's", uids)
	return r.Status
}

// reclaim sends a reclaim of a lock on resources by uid, naming the
// locker's incarnation (see incarnation).
func (h *harness) reclaim(write bool, uid string, resources ...string) locker.Reply {
	h.t.Helper()
	return h.reclaimNaming(h.incarnation(), write, uid, resources...)
}

// reclaimNaming sends a reclaim of a lock on resources by uid that names
// incarnation.
func (h *harness) reclaimNaming(incarnation uint64, write bool, uid string, resources ...string) locker.Reply {
	h.t.Helper()
	a := args(uid, resources...)
	a.Reclaim = true
	a.Incarnation = incarnation
	return h.lock(write, a)
}

func (h *harness) expect(cond bool, format string, a ...any) {
	h.t.Helper()
	require.Truef(h.t, cond, format, a...)
}

var cases = []testCase{
	{name: "WriteExcludesWrite", run: func(h *harness) {
		h.mustGrant(true, "u1", "a")
		h.mustRefuse(true, "u2", locker.ReasonConflict, "a")
		h.mustGrant(true, "u3", "b")
		h.expect(h.unlock(true, "u1"), "unlock of held write lock reported false")
		h.mustGrant(true, "u2", "a")
	}},
	{name: "ReadsShareWritesExclude", run: func(h *harness) {
		h.mustGrant(false, "r1", "a")
		h.mustGrant(false, "r2", "a")
		h.mustRefuse(true, "w1", locker.ReasonConflict, "a")
		h.expect(h.unlock(false, "r1"), "runlock r1 reported false")
		h.mustRefuse(true, "w1", locker.ReasonConflict, "a")
		h.expect(h.unlock(false, "r2"), "runlock r2 reported false")
		h.mustGrant(true, "w1", "a")
		h.mustRefuse(false, "r3", locker.ReasonConflict, "a")
	}},
	{name: "WriterIntentHoldsNewReadersBack", run: func(h *harness) {
		h.mustGrant(false, "r1", "a")
		h.mustRefuse(true, "w", locker.ReasonConflict, "a")
		// A writer waits: new readers are refused, so the readers drain.
		h.mustRefuse(false, "r2", locker.ReasonWriterWaiting, "a")
		h.mustGrant(false, "r3", "b") // other resources are not affected
		h.expect(h.unlock(false, "r1"), "runlock r1 reported false")
		h.mustRefuse(false, "r2", locker.ReasonWriterWaiting, "a") // not even once the readers are gone
		h.mustGrant(true, "w", "a")
		h.expect(h.unlock(true, "w"), "unlock w reported false")
		h.mustGrant(false, "r2", "a") // the writer came and went: readers are welcome again
	}},
	{name: "WriterIntentLapses", run: func(h *harness) {
		h.mustGrant(false, "r1", "a")
		h.mustRefuse(true, "w", locker.ReasonConflict, "a")
		h.clk.Advance(locker.DefaultWriterIntent - time.Millisecond)
		h.mustRefuse(false, "r2", locker.ReasonWriterWaiting, "a")
		h.clk.Advance(time.Millisecond) // the writer gave up
		h.mustGrant(false, "r2", "a")
		h.expect(h.unlock(false, "r1") && h.unlock(false, "r2"), "runlock reported false")
		// An intent outliving its readers also lapses.
		h.mustGrant(false, "r3", "c")
		h.mustRefuse(true, "w2", locker.ReasonConflict, "c")
		h.expect(h.unlock(false, "r3"), "runlock r3 reported false")
		h.mustRefuse(false, "r4", locker.ReasonWriterWaiting, "c")
		h.clk.Advance(locker.DefaultWriterIntent)
		h.mustGrant(false, "r4", "c")
	}},
	{name: "WriterIntentNotForATryLock", run: func(h *harness) {
		h.mustGrant(false, "r1", "a")
		a := args("w", "a")
		a.NoIntent = true // the writer will not retry
		r := h.lock(true, a)
		require.False(h.t, r.OK, "write with NoIntent under a reader: %+v, want refused as held", r)
		require.Equal(h.t, locker.ReasonConflict, r.Reason, "write with NoIntent under a reader: %+v, want refused as held", r)
		h.mustGrant(false, "r2", "a") // no intent: readers still welcome
		h.mustRefuse(true, "w2", locker.ReasonConflict, "a")
		h.mustRefuse(false, "r3", locker.ReasonWriterWaiting, "a") // a writer that retries still counts
	}},
	{name: "WriterIntentWithdrawn", run: func(h *harness) {
		h.mustGrant(false, "r1", "a")
		h.mustGrant(false, "r2", "b")
		h.mustRefuse(true, "w", locker.ReasonConflict, "a", "b")
		h.mustRefuse(false, "r3", locker.ReasonWriterWaiting, "a")
		// The writer gives up: an unlock of its UID that names the
		// resources withdraws its intent on both. It held nothing.
		h.expect(!h.withdraw("w", "a", "b"), "withdrawal reported a release")
		h.mustGrant(false, "r3", "a")
		h.mustGrant(false, "r4", "b")
		// The withdrawal also left a tombstone: the writer's own request, if
		// still on its way, is refused when it comes.
		h.expect(h.unlock(false, "r1") && h.unlock(false, "r3") && h.unlock(false, "r2") && h.unlock(false, "r4"), "runlock reported false")
		h.mustRefuse(true, "w", locker.ReasonReleased, "a", "b")
		// An intent that outlived its readers is withdrawn too, and the
		// resource is free at once.
		h.mustGrant(false, "r5", "c")
		h.mustRefuse(true, "w2", locker.ReasonConflict, "c")
		h.expect(h.unlock(false, "r5"), "runlock r5 reported false")
		h.mustRefuse(false, "r6", locker.ReasonWriterWaiting, "c")
		h.withdraw("w2", "c")
		h.mustGrant(false, "r6", "c")
	}},
	{name: "WriterIntentWithdrawnOnlyByItsWriter", run: func(h *harness) {
		h.mustGrant(false, "r1", "a")
		h.mustRefuse(true, "w1", locker.ReasonConflict, "a")
		h.mustRefuse(true, "w2", locker.ReasonConflict, "a") // renews the intent: it is w2's now
		h.withdraw("w1", "a")
		h.mustRefuse(false, "r2", locker.ReasonWriterWaiting, "a") // w2 still waits
		h.withdraw("x", "a")                                       // a UID that never asked
		h.mustRefuse(false, "r2", locker.ReasonWriterWaiting, "a")
		// An unlock of the UID alone, as a release sends, withdraws nothing.
		h.unlock(true, "w2")
		h.mustRefuse(false, "r2", locker.ReasonWriterWaiting, "a")
		h.withdraw("w2-other", "a")
		h.mustRefuse(false, "r2", locker.ReasonWriterWaiting, "a")
	}},
	{name: "WithdrawalChecksResources", run: func(h *harness) {
		for _, bad := range [][]string{{""}, {"a", "a"}} {
			_, err := h.l.Unlock(h.ctx, args("w", bad...))
			h.expect(errors.Is(err, locker.ErrInvalidArgs), "unlock naming %q: %v, want ErrInvalidArgs", bad, err)
		}
	}},
	{name: "WriterIntentOff", config: func(c *locker.Config) { c.WriterIntent = -1 }, run: func(h *harness) {
		h.mustGrant(false, "r1", "a")
		h.mustRefuse(true, "w", locker.ReasonConflict, "a")
		h.mustGrant(false, "r2", "a")
	}},
	{name: "MultiResourceAllOrNothing", run: func(h *harness) {
		h.mustGrant(true, "u1", "b")
		h.mustRefuse(true, "u2", locker.ReasonConflict, "a", "b", "c")
		// Nothing of the refused request was left behind.
		h.mustGrant(true, "u3", "a")
		h.mustGrant(true, "u4", "c")
		h.expect(h.unlock(true, "u1") && h.unlock(true, "u3") && h.unlock(true, "u4"), "unlock reported false")
		h.mustGrant(true, "u2", "a", "b", "c")
		for _, r := range []string{"a", "b", "c"} {
			h.mustRefuse(false, "x-"+r, locker.ReasonConflict, r)
		}
		h.expect(h.unlock(true, "u2"), "unlock of multi-resource lock reported false")
		for _, r := range []string{"a", "b", "c"} {
			h.mustGrant(true, "y-"+r, r)
		}
	}},
	{name: "MultiResourceRead", run: func(h *harness) {
		h.mustGrant(false, "r1", "a", "b")
		h.mustGrant(false, "r2", "b", "c")
		h.mustRefuse(true, "w", locker.ReasonConflict, "c")
		h.expect(h.unlock(false, "r2"), "runlock r2 reported false")
		h.mustGrant(true, "w", "c")
	}},
	{name: "RepeatedLockIsIdempotent", run: func(h *harness) {
		first := h.mustGrant(true, "u1", "a")
		again := h.mustGrant(true, "u1", "a")
		h.expect(first.Fence == again.Fence, "repeated grant got fence %d, first had %d", again.Fence, first.Fence)
		h.mustRefuse(true, "u1", locker.ReasonUIDInUse, "b")
		h.mustRefuse(false, "u1", locker.ReasonUIDInUse, "a")
		h.expect(h.unlock(true, "u1"), "unlock reported false")
		h.expect(!h.unlock(true, "u1"), "second unlock reported true")
	}},
	{name: "UnlockNotHeldIsCleanFalse", run: func(h *harness) {
		h.expect(!h.unlock(true, "nobody"), "unlock of unknown uid reported true")
		h.expect(!h.unlock(false, "nobody"), "runlock of unknown uid reported true")
		h.mustGrant(false, "r", "a")
		h.mustGrant(true, "w", "b")
		h.expect(!h.unlock(true, "r"), "unlock of a read grant reported true")
		h.expect(!h.unlock(false, "w"), "runlock of a write grant reported true")
		h.mustRefuse(true, "x", locker.ReasonConflict, "a")
		h.mustRefuse(true, "x", locker.ReasonConflict, "b")
	}},
	{name: "UnlockBeforeLockLeavesNothing", run: func(h *harness) {
		// An unlock that overtakes its own lock request (the client gave up
		// and released while the lock was still on its way) must win.
		h.expect(!h.unlock(true, "late"), "unlock of unknown uid reported true")
		h.mustRefuse(true, "late", locker.ReasonReleased, "a")
		h.expect(!h.unlock(false, "late-r"), "runlock of unknown uid reported true")
		h.mustRefuse(false, "late-r", locker.ReasonReleased, "a")
		st := h.refresh("late")
		h.expect(st[0] == locker.RefreshNotHeld, "refresh of released uid = %v", st[0])
		h.mustGrant(true, "other", "a")
	}},
	{name: "FencesIncrease", run: func(h *harness) {
		var last uint64
		for i := range 5 {
			r := h.mustGrant(true, fmt.Sprint("u", i), "a")
			h.expect(r.Fence > last, "grant %d fence %d not above %d", i, r.Fence, last)
			last = r.Fence
			h.unlock(true, fmt.Sprint("u", i))
		}
	}},
	{name: "RefreshReportsPerUID", run: func(h *harness) {
		h.mustGrant(true, "w", "a")
		h.mustGrant(false, "r", "b")
		st := h.refresh("w", "missing", "r")
		want := []locker.RefreshStatus{locker.RefreshRefreshed, locker.RefreshNotHeld, locker.RefreshRefreshed}
		for i := range want {
			h.expect(st[i] == want[i], "refresh status %d = %v, want %v", i, st[i], want[i])
		}
		h.expect(len(h.refresh()) == 0, "empty refresh returned statuses")
	}},
	{name: "ExpiresWithoutRefresh", run: func(h *harness) {
		h.mustGrant(true, "w", "a")
		h.clk.Advance(Validity - time.Millisecond)
		h.mustRefuse(true, "x", locker.ReasonConflict, "a")
		h.clk.Advance(time.Millisecond)
		h.mustGrant(true, "x", "a")
		st := h.refresh("w")
		h.expect(st[0] == locker.RefreshNotHeld, "expired grant refreshed as %v", st[0])
		h.expect(!h.unlock(true, "w"), "unlock of expired and replaced grant reported true")
	}},
	{name: "ExpiredGrantIsNotRevived", run: func(h *harness) {
		h.mustGrant(true, "w", "a")
		h.clk.Advance(Validity)
		st := h.refresh("w")
		h.expect(st[0] == locker.RefreshNotHeld, "refresh after validity = %v, want not held", st[0])
		h.mustGrant(true, "x", "a")
	}},
	{name: "RefreshKeepsAlive", run: func(h *harness) {
		h.mustGrant(true, "w", "a")
		h.mustGrant(false, "r", "b")
		for range 6 {
			h.clk.Advance(Validity / 2)
			st := h.refresh("w", "r")
			h.expect(st[0] == locker.RefreshRefreshed && st[1] == locker.RefreshRefreshed, "refresh = %v", st)
		}
		h.mustRefuse(true, "x", locker.ReasonConflict, "a")
		h.mustRefuse(true, "x", locker.ReasonConflict, "b")
	}},
	{name: "ExpiredReaderDoesNotBlockWriter", run: func(h *harness) {
		h.mustGrant(false, "r1", "a")
		h.clk.Advance(Validity / 2)
		h.mustGrant(false, "r2", "a")
		h.clk.Advance(Validity / 2)
		h.mustRefuse(true, "w", locker.ReasonConflict, "a") // r2 still valid
		h.clk.Advance(Validity / 2)
		h.mustGrant(true, "w", "a")
	}},
	{name: "ForceUnlockByUID", run: func(h *harness) {
		h.mustGrant(true, "w", "a", "b")
		r, err := h.l.ForceUnlock(h.ctx, locker.LockArgs{UID: "w"})
		h.expect(err == nil && r.OK, "force-unlock by uid = %v, %v", r, err)
		h.mustGrant(true, "x", "a")
		h.mustGrant(true, "y", "b")
		r, err = h.l.ForceUnlock(h.ctx, locker.LockArgs{UID: "w"})
		h.expect(err == nil && !r.OK, "second force-unlock = %v, %v", r, err)
	}},
	{name: "ForceUnlockByResources", run: func(h *harness) {
		h.mustGrant(false, "r1", "a")
		h.mustGrant(false, "r2", "a", "c")
		h.mustGrant(true, "w", "b")
		r, err := h.l.ForceUnlock(h.ctx, locker.LockArgs{Resources: []string{"a", "b"}})
		h.expect(err == nil && r.OK, "force-unlock by resources = %v, %v", r, err)
		h.mustGrant(true, "x", "a")
		h.mustGrant(true, "y", "b")
		h.mustGrant(true, "z", "c") // r2's whole grant went
		r, err = h.l.ForceUnlock(h.ctx, locker.LockArgs{Resources: []string{"nothing"}})
		h.expect(err == nil && !r.OK, "force-unlock of free resource = %v, %v", r, err)
		_, err = h.l.ForceUnlock(h.ctx, locker.LockArgs{})
		h.expect(errors.Is(err, locker.ErrInvalidArgs), "force-unlock of nothing: err %v, want ErrInvalidArgs", err)
	}},
	{name: "InvalidArgs", config: func(c *locker.Config) { c.MaxResources = 3 }, run: func(h *harness) {
		bad := []locker.LockArgs{
			{Resources: []string{"a"}},
			{UID: "u"},
			{UID: "u", Resources: []string{"a", ""}},
			{UID: "u", Resources: []string{"a", "b", "a"}},
			{UID: "u", Resources: []string{"a", "b", "c", "d"}},
		}
		for _, a := range bad {
			for _, write := range []bool{true, false} {
				var err error
				if write {
					_, err = h.l.Lock(h.ctx, a)
				} else {
					_, err = h.l.RLock(h.ctx, a)
				}
				h.expect(errors.Is(err, locker.ErrInvalidArgs), "lock(write=%v, %+v): err %v, want ErrInvalidArgs", write, a, err)
				h.expect(strings.Contains(err.Error(), "lock"), "error %q does not name the operation", err)
			}
		}
		_, err := h.l.Unlock(h.ctx, locker.LockArgs{})
		h.expect(errors.Is(err, locker.ErrInvalidArgs), "unlock without uid: err %v", err)
		// Nothing was half-applied.
		for _, r := range []string{"a", "b", "c"} {
			h.mustGrant(true, "ok-"+r, r)
		}
		h.mustGrant(true, "unsorted", "z", "y", "x")
	}},
	{name: "CancelledContextGrantsNothing", run: func(h *harness) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r, err := h.l.Lock(ctx, args("u", "a"))
		h.expect(err != nil && errors.Is(err, context.Canceled), "lock with cancelled ctx = %v, %v; want context.Canceled", r, err)
		h.mustGrant(true, "v", "a")
	}},
	{name: "QuietPeriod", config: func(c *locker.Config) { c.QuietPeriod = Validity }, run: func(h *harness) {
		h.mustRefuse(true, "u", locker.ReasonQuiet, "a")
		h.mustRefuse(false, "u", locker.ReasonQuiet, "a")
		h.clk.Advance(Validity / 3)
		r := h.lock(true, args("u", "a"))
		h.expect(!r.OK && r.Reason == locker.ReasonQuiet && r.Grace == Validity-Validity/3,
			"lock in grace = %+v, want ReasonQuiet with %v of grace left", r, Validity-Validity/3)
		st, err := h.l.Refresh(h.ctx, locker.RefreshArgs{UIDs: []string{"gone"}})
		h.expect(err == nil && len(st.Status) == 1 && st.Status[0] == locker.RefreshNotHeld && st.Grace == Validity-Validity/3,
			"refresh in grace = %+v, %v; want not held with the grace left", st, err)
		u, err := h.l.Unlock(h.ctx, args("gone"))
		h.expect(err == nil && !u.OK && u.Grace == Validity-Validity/3, "unlock of an unknown uid in grace = %+v, %v; want not held with the grace left", u, err)
		h.clk.Advance(Validity - Validity/3)
		h.mustGrant(true, "u", "a")
		st, err = h.l.Refresh(h.ctx, locker.RefreshArgs{UIDs: []string{"u"}})
		h.expect(err == nil && st.Grace == 0, "refresh after grace = %+v, %v; want no grace", st, err)
		u, err = h.l.Unlock(h.ctx, args("gone2"))
		h.expect(err == nil && !u.OK && u.Grace == 0, "unlock of an unknown uid after grace = %+v, %v", u, err)
	}},
	{name: "ReclaimInGrace", config: func(c *locker.Config) { c.QuietPeriod = Validity }, run: func(h *harness) {
		// Holders re-assert what they held before the node restarted.
		r := h.reclaim(true, "w", "a", "b")
		h.expect(r.OK && r.Fence != 0 && r.Validity == Validity, "write reclaim = %+v, want granted", r)
		h.expect(h.reclaim(false, "r1", "c").OK, "read reclaim refused")
		h.expect(h.reclaim(false, "r2", "c").OK, "second read reclaim refused")
		// A reclaim is checked against the grants already reclaimed.
		r = h.reclaim(true, "w2", "b")
		h.expect(!r.OK && r.Reason == locker.ReasonConflict, "conflicting write reclaim = %+v, want ReasonConflict", r)
		r = h.reclaim(false, "r3", "a")
		h.expect(!r.OK && r.Reason == locker.ReasonConflict, "read reclaim under a reclaimed writer = %+v, want ReasonConflict", r)
		// A repeated reclaim gets the grant it has.
		h.expect(h.reclaim(true, "w", "a", "b").OK, "repeated reclaim refused")
		// New locks still wait for the grace to end; the reclaimed grants
		// are held, refreshed and released like any other.
		h.mustRefuse(false, "new", locker.ReasonQuiet, "d")
		st := h.refresh("w", "r1", "r2")
		h.expect(st[0] == locker.RefreshRefreshed && st[1] == locker.RefreshRefreshed && st[2] == locker.RefreshRefreshed, "refresh of reclaimed grants = %v", st)
		h.expect(h.unlock(false, "r1") && h.unlock(false, "r2"), "release of reclaimed reads failed")
		// A reclaim that its holder's release overtook is refused.
		h.expect(!h.unlock(false, "r4"), "release of an unknown UID reported a release")
		r = h.reclaim(false, "r4", "c")
		h.expect(!r.OK && r.Reason == locker.ReasonReleased, "reclaim after its release = %+v, want ReasonReleased", r)
		h.clk.Advance(Validity / 2)
		h.refresh("w")
		h.clk.Advance(Validity / 2) // the grace is over
		h.mustRefuse(true, "new", locker.ReasonConflict, "a")
		h.expect(h.unlock(true, "w"), "release of the reclaimed write failed")
		h.mustGrant(true, "new", "a")
	}},
	{name: "ReclaimAfterGrace", config: func(c *locker.Config) { c.QuietPeriod = time.Second }, run: func(h *harness) {
		// After the grace, a reclaim that names the node's incarnation (asked
		// for in the grace, arriving late) is an ordinary lock request,
		// except that writer intent does not hold it back.
		h.incarnation()
		h.clk.Advance(time.Second)
		h.mustGrant(false, "r", "a")
		h.mustRefuse(true, "w", locker.ReasonConflict, "a") // declares intent
		h.mustRefuse(false, "r2", locker.ReasonWriterWaiting, "a")
		h.expect(h.reclaim(false, "r3", "a").OK, "read reclaim held back by writer intent")
		r := h.reclaim(true, "w2", "a")
		h.expect(!r.OK && r.Reason == locker.ReasonConflict, "write reclaim over readers = %+v, want ReasonConflict", r)
		// One that names another incarnation is refused, after the grace
		// as in it.
		r = h.reclaimNaming(h.incarnation()+1, false, "r4", "b")
		h.expect(!r.OK && r.Reason == locker.ReasonStaleReclaim, "reclaim of another incarnation after the grace = %+v, want ReasonStaleReclaim", r)
		st, err := h.l.Refresh(h.ctx, locker.RefreshArgs{UIDs: []string{"r4"}})
		h.expect(err == nil && st.Grace == 0 && st.Incarnation == 0, "refresh after the grace = %+v, %v; want neither grace nor incarnation", st, err)
	}},
	{name: "ReclaimNamesIncarnation", config: func(c *locker.Config) { c.QuietPeriod = Validity }, run: func(h *harness) {
		// A refresh in the grace names the incarnation, the same in every
		// answer of this run of the table.
		in := h.incarnation()
		st, err := h.l.Refresh(h.ctx, locker.RefreshArgs{UIDs: []string{"w"}})
		h.expect(err == nil && len(st.Status) == 1 && st.Status[0] == locker.RefreshNotHeld && st.Incarnation == in,
			"refresh in grace = %+v, %v; want not held, incarnation %d", st, err, in)
		// A reclaim that names no incarnation (a client that predates
		// them), or another, is refused and grants nothing.
		for _, other := range []uint64{0, in + 1, in - 1, ^in} {
			r := h.reclaimNaming(other, true, "w", "a")
			h.expect(!r.OK && r.Reason == locker.ReasonStaleReclaim && r.Fence == 0,
				"reclaim naming incarnation %d (the node's is %d) = %+v, want ReasonStaleReclaim", other, in, r)
			r = h.reclaimNaming(other, false, "r", "b")
			h.expect(!r.OK && r.Reason == locker.ReasonStaleReclaim, "read reclaim naming incarnation %d = %+v, want ReasonStaleReclaim", other, r)
		}
		h.expect(h.refresh("w", "r")[0] == locker.RefreshNotHeld, "a refused reclaim left a grant")
		// One that names it is granted; repeated with a wrong one, refused.
		r := h.reclaimNaming(in, true, "w", "a")
		h.expect(r.OK && r.Validity == Validity, "reclaim naming the incarnation = %+v, want granted", r)
		r = h.reclaimNaming(0, true, "w", "a")
		h.expect(!r.OK && r.Reason == locker.ReasonStaleReclaim, "repeated reclaim naming no incarnation = %+v, want ReasonStaleReclaim", r)
		h.expect(h.refresh("w")[0] == locker.RefreshRefreshed, "the reclaimed grant is not held")
	}},
	{name: "ReclaimOfAnEarlierIncarnation", config: func(c *locker.Config) { c.QuietPeriod = Validity }, run: func(h *harness) {
		// The model's trail (simulation/model, RECLAIM_EPOCH): a node in
		// its grace answers that it does not hold w's lock; w's reclaim is
		// delayed; the node's grace ends, it grants the resource to
		// another, and restarts again, losing that grant. The old reclaim,
		// arriving in the new grace, must be refused: the new grace
		// protects the other holder's grant, not w's.
		first := h.incarnation()
		h.clk.Advance(Validity) // the first grace ends
		h.mustGrant(true, "other", "a")
		h.restart()
		second := h.incarnation()
		h.expect(second != first, "a restarted table kept its incarnation %d", first)
		r := h.reclaimNaming(first, true, "w", "a")
		h.expect(!r.OK && r.Reason == locker.ReasonStaleReclaim, "reclaim naming the earlier incarnation = %+v, want ReasonStaleReclaim", r)
		// The other holder, whose grant the restart took, reclaims it.
		r = h.reclaimNaming(second, true, "other", "a")
		h.expect(r.OK, "reclaim naming the current incarnation = %+v, want granted", r)
		r = h.reclaimNaming(second, true, "w", "a")
		h.expect(!r.OK && r.Reason == locker.ReasonConflict, "w's reclaim after the other's = %+v, want ReasonConflict", r)
	}},
	{name: "List", run: func(h *harness) {
		lister, ok := h.l.(locker.Lister)
		if !ok {
			h.t.Skip("locker does not implement Lister")
		}
		h.mustGrant(true, "w", "b", "c")
		h.mustGrant(false, "r", "a")
		h.clk.Advance(time.Second)
		h.refresh("r")
		page, err := lister.List(h.ctx, locker.ListArgs{})
		h.expect(err == nil, "list: %v", err)
		entries := page.Entries
		h.expect(len(entries) == 3 && !page.More, "list returned %d entries (more: %v), want 3: %+v", len(entries), page.More, entries)
		want := []struct {
			res, uid string
			write    bool
		}{{"a", "r", false}, {"b", "w", true}, {"c", "w", true}}
		for i, w := range want {
			e := entries[i]
			h.expect(e.Resource == w.res && e.UID == w.uid && e.Write == w.write && e.Owner == "owner-"+w.uid && e.Source != "",
				"entry %d = %+v, want %s held by %s (write %v)", i, e, w.res, w.uid, w.write)
		}
		h.expect(entries[0].SinceRefresh == 0 && entries[1].SinceRefresh == int64(time.Second), "ages = %d, %d", entries[0].SinceRefresh, entries[1].SinceRefresh)
		h.expect(entries[1].HeldFor == int64(time.Second), "held for %d", entries[1].HeldFor)
		// Pages: the first two entries, then the rest after the cursor.
		some, err := lister.List(h.ctx, locker.ListArgs{Max: 2})
		h.expect(err == nil && len(some.Entries) == 2 && some.More, "list(max 2) = %d entries (more: %v), %v", len(some.Entries), some.More, err)
		rest, err := lister.List(h.ctx, some.Next(2))
		h.expect(err == nil && len(rest.Entries) == 1 && !rest.More && rest.Entries[0].Resource == "c",
			"the page after %q = %+v, %v; want the entry of c alone", some.Entries[1].Resource, rest, err)
		var walked []string
		for e, err := range locker.Entries(h.ctx, lister, 1) {
			h.expect(err == nil, "walking pages of 1: %v", err)
			walked = append(walked, e.Resource+" "+e.UID)
		}
		h.expect(strings.Join(walked, ",") == "a r,b w,c w", "walking pages of 1: %q", walked)
		_, err = lister.List(h.ctx, locker.ListArgs{Max: -1})
		h.expect(errors.Is(err, locker.ErrInvalidArgs), "list(max -1): %v, want ErrInvalidArgs", err)
	}},
	{name: "ConcurrentMutualExclusion", run: func(h *harness) {
		const workers, rounds = 8, 50
		var (
			mu      sync.Mutex
			holders int
			worst   int
			wg      sync.WaitGroup
		)
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < rounds; {
					uid := fmt.Sprintf("w%d-%d", w, i)
					r, err := h.l.Lock(h.ctx, args(uid, "hot"))
					if err != nil {
						errs <- err
						return
					}
					if !r.OK {
						continue
					}
					mu.Lock()
					holders++
					worst = max(worst, holders)
					holders--
					mu.Unlock()
					if r, err := h.l.Unlock(h.ctx, args(uid)); err != nil || !r.OK {
						errs <- fmt.Errorf("unlock %s = %v, %v", uid, r, err)
						return
					}
					i++
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(h.t, err)
		}
		h.expect(worst == 1, "%d holders at once", worst)
	}},
	{name: "Close", run: func(h *harness) {
		h.expect(h.l.IsOnline(), "new locker is not online")
		h.expect(h.l.String() != "", "String() is empty")
		h.expect(h.l.Close() == nil, "close failed")
		_, err := h.l.Lock(h.ctx, args("u", "a"))
		h.expect(errors.Is(err, locker.ErrClosed), "lock after close: err %v, want ErrClosed", err)
		_, err = h.l.Refresh(h.ctx, locker.RefreshArgs{UIDs: []string{"u"}})
		h.expect(errors.Is(err, locker.ErrClosed), "refresh after close: err %v, want ErrClosed", err)
	}},
}
