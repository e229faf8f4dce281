package lockertest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// RunQuery checks the locker.Querier contract of lockers made by f: it skips
// if they do not implement it.
func RunQuery(t *testing.T, f Factory) {
	t.Helper()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	l := f(t, locker.Config{Validity: Validity, Clock: clk, SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
	q, ok := l.(locker.Querier)
	if !ok {
		t.Skip("locker does not implement Querier")
	}
	ctx := context.Background()
	h := &harness{t: t, l: l, clk: clk, ctx: ctx}
	query := func(names ...string) [][]locker.Holder {
		t.Helper()
		r, err := q.Query(ctx, locker.QueryArgs{Resources: names})
		if err != nil {
			t.Fatalf("Query(%q): %v", names, err)
		}
		if len(r.Resources) != len(names) {
			t.Fatalf("Query(%q): %d answers", names, len(r.Resources))
		}
		out := make([][]locker.Holder, len(names))
		for i, hs := range r.Resources {
			out[i] = slices.SortedFunc(slices.Values(hs.Holders), func(a, b locker.Holder) int {
				return strings.Compare(a.Tag, b.Tag)
			})
		}
		return out
	}

	if got := query("free"); len(got[0]) != 0 {
		t.Fatalf("free resource: %+v", got)
	}
	h.mustGrant(true, "w1", "a")
	h.mustGrant(false, "r1", "b")
	clk.Advance(5 * time.Second)
	h.mustGrant(false, "r2", "b")
	got := query("a", "b", "free", "a") // in order; names may repeat
	// Grants are named by their UIDs' tags, never by the UIDs, which are
	// capabilities.
	tag := locker.UIDTag
	readers := []locker.Holder{{Tag: tag("r1"), HeldFor: int64(5 * time.Second)}, {Tag: tag("r2")}}
	if readers[0].Tag > readers[1].Tag {
		readers[0], readers[1] = readers[1], readers[0]
	}
	want := [][]locker.Holder{
		{{Tag: tag("w1"), Write: true, HeldFor: int64(5 * time.Second)}},
		readers,
		nil,
		{{Tag: tag("w1"), Write: true, HeldFor: int64(5 * time.Second)}},
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Fatalf("query answer %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// A lock that makes its UID public has it told, with its tag.
	pub := locker.LockArgs{UID: "p1", Resources: []string{"pub"}, Quorum: 1, PublicUID: true}
	if r, err := l.RLock(ctx, pub); err != nil || !r.OK {
		t.Fatalf("RLock with a public UID: %+v, %v", r, err)
	}
	if got := query("pub"); !slices.Equal(got[0], []locker.Holder{{Tag: tag("p1"), UID: "p1"}}) {
		t.Fatalf("a grant with a public UID: %+v", got[0])
	}

	// A query changes nothing: it refreshes nothing, so w1 expires on time,
	// and it grants nothing, so a free resource stays free.
	clk.Advance(Validity - 5*time.Second - time.Nanosecond)
	query("a", "free")
	clk.Advance(time.Nanosecond)
	if got := query("a"); len(got[0]) != 0 {
		t.Fatalf("expired grant reported: %+v", got[0])
	}
	h.mustGrant(true, "w2", "free")
	h.unlock(true, "w2")
	if got := query("free"); len(got[0]) != 0 {
		t.Fatalf("released grant reported: %+v", got[0])
	}

	for _, bad := range [][]string{nil, {"a", ""}} {
		if _, err := q.Query(ctx, locker.QueryArgs{Resources: bad}); !errors.Is(err, locker.ErrInvalidArgs) {
			t.Errorf("Query(%q): %v, want ErrInvalidArgs", bad, err)
		}
	}
	many := make([]string, locker.DefaultMaxResources+1)
	for i := range many {
		many[i] = "r"
	}
	if _, err := q.Query(ctx, locker.QueryArgs{Resources: many}); !errors.Is(err, locker.ErrInvalidArgs) {
		t.Errorf("Query of %d names: %v, want ErrInvalidArgs", len(many), err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := q.Query(cctx, locker.QueryArgs{Resources: []string{"a"}}); err == nil {
		t.Error("Query with a cancelled ctx succeeded")
	}
	l.Close()
	if _, err := q.Query(ctx, locker.QueryArgs{Resources: []string{"a"}}); err == nil {
		t.Error("Query after Close succeeded")
	}
}
