package lockertest

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// WaitExpiry is the locker.Config.WaitExpiry that RunWaits configures.
const WaitExpiry = 10 * time.Second

// RunWaits checks the locker.WaitReporter contract of lockers made by f: it
// skips if they do not implement it.
func RunWaits(t *testing.T, f Factory) {
	t.Helper()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	l := f(t, locker.Config{Validity: Validity, Clock: clk, SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod, WaitExpiry: WaitExpiry})
	wr, ok := l.(locker.WaitReporter)
	if !ok {
		t.Skip("locker does not implement WaitReporter")
	}
	ctx := context.Background()
	uidOf := make(map[string]string) // the UIDs the edges' tags stand for
	lock := func(write bool, uid, holder string, noIntent bool, resources ...string) locker.Reply {
		t.Helper()
		uidOf[locker.UIDTag(uid)] = uid
		a := locker.LockArgs{UID: uid, Resources: resources, Owner: "o", Quorum: 2, Holder: holder, NoIntent: noIntent}
		var r locker.Reply
		var err error
		if write {
			r, err = l.Lock(ctx, a)
		} else {
			r, err = l.RLock(ctx, a)
		}
		require.NoError(t, err, "lock(write=%v, %s by %q %v)", write, uid, holder, resources)
		return r
	}
	grant := func(write bool, uid, holder string, resources ...string) {
		t.Helper()
		r := lock(write, uid, holder, false, resources...)
		require.True(t, r.OK, "lock(write=%v, %s by %q %v) refused (%v)", write, uid, holder, resources, r.Reason)
	}
	refuse := func(write bool, uid, holder string, resources ...string) {
		t.Helper()
		r := lock(write, uid, holder, false, resources...)
		require.False(t, r.OK, "lock(write=%v, %s by %q %v) granted, want refused", write, uid, holder, resources)
	}
	// edges returns the node's edges as "waiter resource holder uid/quorum",
	// sorted, with the UID that the edge's tag stands for: a node names a
	// holder's grant only by its tag.
	edges := func() []string {
		t.Helper()
		r, err := wr.Waits(ctx, locker.WaitsArgs{})
		require.NoError(t, err, "Waits")
		require.False(t, r.Truncated, "Waits truncated %d edges", len(r.Edges))
		var out []string
		for _, e := range r.Edges {
			uid, ok := uidOf[e.Tag]
			require.True(t, ok, "edge %+v: the tag is none of the UIDs locked", e)
			out = append(out, e.Waiter+" "+e.Resource+" "+e.Holder+" "+uid+"/"+strconv.Itoa(e.Quorum))
		}
		slices.Sort(out)
		return out
	}
	want := func(step string, w ...string) {
		t.Helper()
		// Both are nil when empty (edges appends to a nil slice, and w is
		// nil without arguments): Equal is no stricter than slices.Equal.
		require.Equal(t, w, edges(), "%s: edges", step)
	}
	withdraw := func(holder string, resources ...string) {
		t.Helper()
		r, err := wr.Waits(ctx, locker.WaitsArgs{Withdraw: holder, Resources: resources})
		require.NoError(t, err, "withdraw %q %v", holder, resources)
		require.Empty(t, r.Edges, "withdraw %q %v: %+v", holder, resources, r)
	}

	want("empty table")
	// A holds a, B holds b; A is refused b: A waits for B.
	grant(true, "ua", "A", "a")
	grant(true, "ub", "B", "b")
	refuse(true, "ua2", "A", "b")
	want("A refused b", "A b B ub/2")
	// B refused a closes the cycle on this node; it reports both edges.
	refuse(true, "ub2", "B", "a", "c")
	want("B refused a,c", "A b B ub/2", "B a A ua/2")

	// A grant to a holder ends its wait; releasing a grant ends its edges.
	grant(true, "ua3", "A", "d")
	want("A granted d", "B a A ua/2")
	require.True(t, unlockOK(t, l, true, "ua"), "unlock ua reported false")
	want("A released a")
	grant(true, "ua", "A", "a")
	want("A holds a again: B's wait is still recorded", "B a A ua/2")

	// A withdrawal ends a wait, for exactly its resources, or any without.
	withdraw("B", "a")
	want("B withdrew a, but waits for a,c", "B a A ua/2")
	withdraw("B", "a", "c")
	want("B withdrew a,c")
	refuse(true, "ub3", "B", "a")
	withdraw("B")
	want("B withdrew any")

	// Modes: readers do not wait for readers; a writer waits for every
	// reader; a reader waits for the writer. Grants without a holder, or
	// refusals that do not name one, give no edge; nor does a TryLock
	// (NoIntent).
	grant(false, "r1", "R1", "x")
	grant(false, "r2", "R2", "x")
	grant(false, "r3", "", "x")
	grant(false, "r4", "R4", "x") // readers share: no wait
	refuse(true, "w1", "", "x")
	require.False(t, lock(true, "w2", "W2", true, "x").OK, "TryLock-style write granted over readers")
	want("readers, and waits that record nothing")
	refuse(true, "w3", "W3", "x")
	want("W3 waits for the readers with holders", "W3 x R1 r1/2", "W3 x R2 r2/2", "W3 x R4 r4/2")
	withdraw("W3")
	grant(true, "w4", "W4", "y")
	refuse(false, "r5", "R5", "y")
	want("a reader waits for a writer", "R5 y W4 w4/2")

	// A wait expires WaitExpiry after its last refusal; a refusal renews it.
	clk.Advance(WaitExpiry - time.Second)
	refuse(false, "r5b", "R5", "y")
	clk.Advance(WaitExpiry - time.Second)
	want("renewed", "R5 y W4 w4/2")
	clk.Advance(time.Second)
	want("expired")

	// A holder's expired grant gives no edge.
	since := 2*(WaitExpiry-time.Second) + time.Second // since w4 was granted
	clk.Advance(Validity - since - time.Nanosecond)
	refuse(false, "r5c", "R5", "y")
	want("just before w4 expires", "R5 y W4 w4/2")
	clk.Advance(time.Nanosecond)
	got := edges()
	require.False(t, slices.ContainsFunc(got, func(e string) bool { return strings.Contains(e, " w4/") }), "an expired grant gives an edge: %q", got)

	l.Close()
	_, err := wr.Waits(ctx, locker.WaitsArgs{})
	assert.Error(t, err, "Waits after Close succeeded")
}

func unlockOK(t *testing.T, l locker.NetLocker, write bool, uid string) bool {
	t.Helper()
	var r locker.Reply
	var err error
	if write {
		r, err = l.Unlock(context.Background(), locker.LockArgs{UID: uid})
	} else {
		r, err = l.RUnlock(context.Background(), locker.LockArgs{UID: uid})
	}
	require.NoError(t, err, "unlock %s", uid)
	return r.OK
}
