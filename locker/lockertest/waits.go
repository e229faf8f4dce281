package lockertest

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
		if err != nil {
			t.Fatalf("lock(write=%v, %s by %q %v): %v", write, uid, holder, resources, err)
		}
		return r
	}
	grant := func(write bool, uid, holder string, resources ...string) {
		t.Helper()
		if r := lock(write, uid, holder, false, resources...); !r.OK {
			t.Fatalf("lock(write=%v, %s by %q %v) refused (%v)", write, uid, holder, resources, r.Reason)
		}
	}
	refuse := func(write bool, uid, holder string, resources ...string) {
		t.Helper()
		if r := lock(write, uid, holder, false, resources...); r.OK {
			t.Fatalf("lock(write=%v, %s by %q %v) granted, want refused", write, uid, holder, resources)
		}
	}
	// edges returns the node's edges as "waiter resource holder uid/quorum",
	// sorted, with the UID that the edge's tag stands for: a node names a
	// holder's grant only by its tag.
	edges := func() []string {
		t.Helper()
		r, err := wr.Waits(ctx, locker.WaitsArgs{})
		if err != nil {
			t.Fatalf("Waits: %v", err)
		}
		if r.Truncated {
			t.Fatalf("Waits truncated %d edges", len(r.Edges))
		}
		var out []string
		for _, e := range r.Edges {
			uid, ok := uidOf[e.Tag]
			if !ok {
				t.Fatalf("edge %+v: the tag is none of the UIDs locked", e)
			}
			out = append(out, e.Waiter+" "+e.Resource+" "+e.Holder+" "+uid+"/"+strconv.Itoa(e.Quorum))
		}
		slices.Sort(out)
		return out
	}
	want := func(step string, w ...string) {
		t.Helper()
		if got := edges(); !slices.Equal(got, w) {
			t.Fatalf("%s: edges\n%s\nwant\n%s", step, strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
	}
	withdraw := func(holder string, resources ...string) {
		t.Helper()
		if r, err := wr.Waits(ctx, locker.WaitsArgs{Withdraw: holder, Resources: resources}); err != nil || len(r.Edges) != 0 {
			t.Fatalf("withdraw %q %v: %+v, %v", holder, resources, r, err)
		}
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
	if !unlockOK(t, l, true, "ua") {
		t.Fatal("unlock ua reported false")
	}
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
	if r := lock(true, "w2", "W2", true, "x"); r.OK {
		t.Fatal("TryLock-style write granted over readers")
	}
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
	if got := edges(); slices.ContainsFunc(got, func(e string) bool { return strings.Contains(e, " w4/") }) {
		t.Fatalf("an expired grant gives an edge: %q", got)
	}

	l.Close()
	if _, err := wr.Waits(ctx, locker.WaitsArgs{}); err == nil {
		t.Error("Waits after Close succeeded")
	}
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
	if err != nil {
		t.Fatalf("unlock %s: %v", uid, err)
	}
	return r.OK
}
