package lockertest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
		require.NoError(t, err, "Query(%q)", names)
		require.Len(t, r.Resources, len(names), "Query(%q): answers", names)
		out := make([][]locker.Holder, len(names))
		for i, hs := range r.Resources {
			out[i] = slices.SortedFunc(slices.Values(hs.Holders), func(a, b locker.Holder) int {
				return strings.Compare(a.Tag, b.Tag)
			})
		}
		return out
	}

	require.Empty(t, query("free")[0], "free resource")
	h.mustGrant(true, "w1", "a")
	h.mustGrant(false, "r1", "b")
	clk.Advance(5 * time.Second)
	h.mustGrant(false, "r2", "b")
	got := query("a", "b", "free", "a") // in order; names may repeat
	// Grants are named by their UIDs' tags, never by the UIDs, which are
	// capabilities.
	tag := locker.UIDTag
	readers := []locker.Holder{{Tag: tag("r1"), HeldFor: int64(5 * time.Second), Mode: locker.ModeS}, {Tag: tag("r2"), Mode: locker.ModeS}}
	if readers[0].Tag > readers[1].Tag {
		readers[0], readers[1] = readers[1], readers[0]
	}
	want := [][]locker.Holder{
		{{Tag: tag("w1"), Write: true, HeldFor: int64(5 * time.Second), Mode: locker.ModeX}},
		readers,
		nil,
		{{Tag: tag("w1"), Write: true, HeldFor: int64(5 * time.Second), Mode: locker.ModeX}},
	}
	for i := range want {
		// slices.Equal, not require.Equal: a nil and an empty answer are
		// both right.
		require.True(t, slices.Equal(got[i], want[i]), "query answer %d: %+v, want %+v", i, got[i], want[i])
	}
	// A lock that makes its UID public has it told, with its tag.
	pub := locker.LockArgs{UID: "p1", Resources: []string{"pub"}, Quorum: 1, PublicUID: true}
	r, err := l.RLock(ctx, pub)
	require.NoError(t, err, "RLock with a public UID")
	require.True(t, r.OK, "RLock with a public UID: %+v", r)
	require.Equal(t, []locker.Holder{{Tag: tag("p1"), UID: "p1", Mode: locker.ModeS}}, query("pub")[0], "a grant with a public UID")

	// Each holder carries its grant's mode: the intention modes of
	// multi-granularity locking (taken by RLock) as well as S and X.
	// IS, IX and IS again share "bucket"; SIX shares "six" with IS.
	for _, g := range []struct {
		uid, name string
		mode      locker.Mode
	}{{"is1", "bucket", locker.ModeIS}, {"ix1", "bucket", locker.ModeIX}, {"ix2", "bucket", locker.ModeIX}, {"six1", "six", locker.ModeSIX}, {"is2", "six", locker.ModeIS}} {
		a := args(g.uid, g.name)
		a.Mode = g.mode
		r := h.lock(false, a)
		require.True(t, r.OK, "RLock of %s in %v: %+v", g.name, g.mode, r)
	}
	byTag := func(hs []locker.Holder) map[string]locker.Mode {
		m := make(map[string]locker.Mode, len(hs))
		for _, x := range hs {
			assert.Equal(t, x.Mode == locker.ModeX, x.Write, "holder %+v: Write says X", x)
			assert.Equal(t, x.Mode, locker.HolderMode(x), "holder %+v", x)
			m[x.Tag] = x.Mode
		}
		return m
	}
	modes := query("bucket", "six")
	assert.Equal(t, map[string]locker.Mode{tag("is1"): locker.ModeIS, tag("ix1"): locker.ModeIX, tag("ix2"): locker.ModeIX}, byTag(modes[0]), "holders of bucket")
	assert.Equal(t, map[string]locker.Mode{tag("six1"): locker.ModeSIX, tag("is2"): locker.ModeIS}, byTag(modes[1]), "holders of six")
	for _, uid := range []string{"is1", "ix1", "ix2", "six1", "is2"} {
		require.True(t, h.unlock(false, uid), "RUnlock %s", uid)
	}

	// A query changes nothing: it refreshes nothing, so w1 expires on time,
	// and it grants nothing, so a free resource stays free.
	clk.Advance(Validity - 5*time.Second - time.Nanosecond)
	query("a", "free")
	clk.Advance(time.Nanosecond)
	require.Empty(t, query("a")[0], "expired grant reported")
	h.mustGrant(true, "w2", "free")
	h.unlock(true, "w2")
	require.Empty(t, query("free")[0], "released grant reported")

	for _, bad := range [][]string{nil, {"a", ""}} {
		_, err := q.Query(ctx, locker.QueryArgs{Resources: bad})
		assert.ErrorIs(t, err, locker.ErrInvalidArgs, "Query(%q)", bad)
	}
	many := make([]string, locker.DefaultMaxResources+1)
	for i := range many {
		many[i] = "r"
	}
	_, err = q.Query(ctx, locker.QueryArgs{Resources: many})
	assert.ErrorIs(t, err, locker.ErrInvalidArgs, "Query of %d names", len(many))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = q.Query(cctx, locker.QueryArgs{Resources: []string{"a"}})
	assert.Error(t, err, "Query with a cancelled ctx succeeded")
	l.Close()
	_, err = q.Query(ctx, locker.QueryArgs{Resources: []string{"a"}})
	assert.Error(t, err, "Query after Close succeeded")
}
