package locker_test

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// listAll returns the whole listing of l, walking its pages.
func listAll(ctx context.Context, l locker.Lister) ([]locker.Entry, error) {
	var out []locker.Entry
	for e, err := range locker.Entries(ctx, l, 0) {
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// key names an entry in tests: its resource and UID.
type key struct{ resource, uid string }

func keys(entries []locker.Entry) []key {
	out := make([]key, len(entries))
	for i, e := range entries {
		out[i] = key{e.Resource, e.UID}
	}
	return out
}

func compareKeys(a, b key) int {
	return cmp.Or(cmp.Compare(a.resource, b.resource), cmp.Compare(a.uid, b.uid))
}

// fill locks n resources in l: every third with two readers, the others
// with a writer. It returns the entries' keys, in the listing's order.
func fill(t *testing.T, l *locker.Local, n int) []key {
	t.Helper()
	ctx := context.Background()
	var want []key
	for i := range n {
		res := fmt.Sprintf("bucket/%06d", (i*7919)%n) // not in the order of locking
		if i%3 == 0 {
			for _, uid := range []string{"r2-" + res, "r1-" + res} {
				r, err := l.RLock(ctx, locker.LockArgs{UID: uid, Resources: []string{res}})
				require.NoError(t, err)
				require.True(t, r.OK)
				want = append(want, key{res, uid})
			}
			continue
		}
		r, err := l.Lock(ctx, locker.LockArgs{UID: "w-" + res, Resources: []string{res}})
		require.NoError(t, err)
		require.True(t, r.OK)
		want = append(want, key{res, "w-" + res})
	}
	slices.SortFunc(want, compareKeys)
	return want
}

// Walking the pages, of any size, lists every entry once, in order.
func TestListPages(t *testing.T) {
	l, _ := newLimited(t, locker.Config{Shards: 8})
	want := fill(t, l, 300)
	ctx := context.Background()
	for _, size := range []int{1, 7, 100, len(want) - 1, len(want), 0} {
		var got []key
		pages := 0
		args := locker.ListArgs{Max: size}
		for {
			page, err := l.List(ctx, args)
			require.NoError(t, err)
			pages++
			if size > 0 {
				require.LessOrEqual(t, len(page.Entries), size)
			}
			got = append(got, keys(page.Entries)...)
			if !page.More {
				break
			}
			require.NotEmpty(t, page.Entries, "a page with More holds entries")
			args = page.Next(size)
		}
		assert.Equal(t, want, got, "pages of %d", size)
		if size > 0 {
			assert.Equal(t, (len(want)+size-1)/size, pages, "pages of %d: only the last has no More", size)
		}
	}
}

// A page is at most MaxListPage entries, whatever it asks for; a negative
// size and an over-long cursor are refused.
func TestListPageSize(t *testing.T) {
	l, _ := newLimited(t, locker.Config{})
	want := fill(t, l, locker.MaxListPage+10)
	ctx := context.Background()
	for _, size := range []int{0, locker.MaxListPage + 1, 1 << 40} {
		page, err := l.List(ctx, locker.ListArgs{Max: size})
		require.NoError(t, err)
		assert.Len(t, page.Entries, locker.MaxListPage)
		assert.True(t, page.More)
		assert.Equal(t, want[:locker.MaxListPage], keys(page.Entries))
	}
	_, err := l.List(ctx, locker.ListArgs{Max: -1})
	assert.ErrorIs(t, err, locker.ErrInvalidArgs)
	_, err = l.List(ctx, locker.ListArgs{AfterResource: string(make([]byte, locker.DefaultMaxNameLen+1))})
	assert.ErrorIs(t, err, locker.ErrInvalidArgs)
	page, err := l.List(ctx, locker.ListArgs{AfterResource: "\xff"})
	require.NoError(t, err)
	assert.Empty(t, page.Entries)
	assert.False(t, page.More)
}

// Between pages the table may change: what stays is listed exactly once,
// what comes or goes after the cursor is seen or not as it is then.
func TestListPagesWhileTheTableChanges(t *testing.T) {
	l, _ := newLimited(t, locker.Config{})
	ctx := context.Background()
	lock := func(uid, res string) {
		t.Helper()
		r, err := l.Lock(ctx, locker.LockArgs{UID: uid, Resources: []string{res}})
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	for _, res := range []string{"a", "c", "e", "g"} {
		lock("u-"+res, res)
	}
	page, err := l.List(ctx, locker.ListArgs{Max: 2})
	require.NoError(t, err)
	require.Equal(t, []key{{"a", "u-a"}, {"c", "u-c"}}, keys(page.Entries))
	// Before the cursor, after it, and the entry at it goes.
	lock("u-b", "b")
	lock("u-f", "f")
	r, err := l.Unlock(ctx, locker.LockArgs{UID: "u-c"})
	require.NoError(t, err)
	require.True(t, r.OK)
	rest, err := l.List(ctx, page.Next(0))
	require.NoError(t, err)
	assert.Equal(t, []key{{"e", "u-e"}, {"f", "u-f"}, {"g", "u-g"}}, keys(rest.Entries))
	assert.False(t, rest.More)
}

// Expired grants are not listed, and a closed table lists nothing.
func TestListLeavesOutExpired(t *testing.T) {
	l, clk := newLimited(t, locker.Config{Validity: 10 * time.Second})
	fill(t, l, 3)
	clk.Advance(10 * time.Second)
	page, err := l.List(context.Background(), locker.ListArgs{})
	require.NoError(t, err)
	assert.Empty(t, page.Entries)
	require.NoError(t, l.Close())
	_, err = l.List(context.Background(), locker.ListArgs{})
	assert.ErrorIs(t, err, locker.ErrClosed)
}

// A page of one entry of a large table costs memory for one entry, not for
// the table: List keeps the page alone while it walks the shards.
func TestListKeepsOnlyThePage(t *testing.T) {
	const n = 100_000
	l, _ := newLimited(t, locker.Config{})
	ctx := context.Background()
	for i := range n {
		res := fmt.Sprintf("bucket/object-%d", i)
		r, err := l.Lock(ctx, locker.LockArgs{UID: fmt.Sprint("uid-", i), Resources: []string{res}})
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	page, err := l.List(ctx, locker.ListArgs{Max: 1})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	assert.Equal(t, "bucket/object-0", page.Entries[0].Resource)
	assert.True(t, page.More)
	// The whole table's entries, copied and sorted, took about 100 bytes
	// each; a page of one, a few replacements of its entry.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "bytes allocated by a page of one")
}

func TestEntriesStopsAtTheFirstError(t *testing.T) {
	l, _ := newLimited(t, locker.Config{})
	fill(t, l, 3)
	require.NoError(t, l.Close())
	n := 0
	for e, err := range locker.Entries(context.Background(), l, 1) {
		n++
		assert.ErrorIs(t, err, locker.ErrClosed)
		assert.Zero(t, e)
	}
	assert.Equal(t, 1, n)
}
