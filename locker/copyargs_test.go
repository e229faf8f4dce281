package locker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// borrowed returns strings that alias one byte buffer, as a server decoding
// a request in place passes them, and a function that overwrites the buffer
// as the server does when it reuses it for the next request.
func borrowed(parts ...string) ([]string, func()) {
	buf := []byte(strings.Join(parts, ""))
	out := make([]string, len(parts))
	off := 0
	for i, p := range parts {
		if p != "" {
			out[i] = unsafe.String(&buf[off], len(p))
		}
		off += len(p)
	}
	return out, func() {
		for i := range buf {
			buf[i] = '#'
		}
	}
}

// listing returns the table's entries as "resource uid owner source w|r".
func listing(t *testing.T, l *locker.Local) []string {
	t.Helper()
	return format(list(t, l))
}

func list(t *testing.T, l *locker.Local) []locker.Entry {
	t.Helper()
	entries, err := listAll(context.Background(), l)
	require.NoError(t, err)
	return entries
}

func format(entries []locker.Entry) []string {
	var out []string
	for _, e := range entries {
		rw := "r"
		if e.Write {
			rw = "w"
		}
		out = append(out, strings.Join([]string{e.Resource, e.UID, e.Owner, e.Source, rw}, " "))
	}
	return out
}

func sameList(t *testing.T, got []string, want ...string) {
	t.Helper()
	require.Equal(t, strings.Join(want, "\n"), strings.Join(got, "\n"), "listing")
}

func TestLocalCopiesArgs(t *testing.T) {
	for _, shards := range []int{1, 0} {
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, Shards: shards})
			defer l.Close()
			require.True(t, l.CopiesArgs(), "Local does not declare that it copies its arguments")
			ctx := context.Background()
			s, overwrite := borrowed("uid-1", "res-a", "res-b", "host:1", "main.go:7", "uid-2", "res-c")
			r, err := l.Lock(ctx, locker.LockArgs{UID: s[0], Resources: []string{s[1], s[2]}, Owner: s[3], Source: s[4]})
			require.NoError(t, err, "lock")
			require.True(t, r.OK, "lock: %v", r)
			// A read lock on an entry that is new and one that it creates.
			r, err = l.RLock(ctx, locker.LockArgs{UID: s[5], Resources: []string{s[6]}, Owner: s[3], Source: s[4]})
			require.NoError(t, err, "rlock")
			require.True(t, r.OK, "rlock: %v", r)
			overwrite()
			sameList(t, listing(t, l),
				"res-a uid-1 host:1 main.go:7 w",
				"res-b uid-1 host:1 main.go:7 w",
				"res-c uid-2 host:1 main.go:7 r")
			// The table finds its entries by their original names.
			r, err = l.Lock(ctx, locker.LockArgs{UID: "uid-3", Resources: []string{"res-b"}})
			require.NoError(t, err, "lock of a held resource")
			require.Equal(t, locker.ReasonConflict, r.Reason, "lock of a held resource: %v, want a conflict", r)
			r, err = l.Unlock(ctx, locker.LockArgs{UID: strings.Clone("uid-1")})
			require.NoError(t, err, "unlock with a fresh copy of the UID")
			require.True(t, r.OK, "unlock with a fresh copy of the UID: %v", r)
			r, err = l.RUnlock(ctx, locker.LockArgs{UID: strings.Clone("uid-2")})
			require.NoError(t, err, "runlock with a fresh copy of the UID")
			require.True(t, r.OK, "runlock with a fresh copy of the UID: %v", r)
			require.Equal(t, locker.Stats{}, l.Stats(), "table not empty")
		})
	}
}

func TestLocalCopiesTombstoneUID(t *testing.T) {
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	s, overwrite := borrowed("late-uid")
	r, err := l.Unlock(ctx, locker.LockArgs{UID: s[0]})
	require.NoError(t, err, "unlock before lock")
	require.False(t, r.OK, "unlock before lock: %v", r)
	overwrite()
	r, err = l.Lock(ctx, locker.LockArgs{UID: "late-uid", Resources: []string{"a"}})
	require.NoError(t, err, "late lock")
	require.False(t, r.OK, "late lock: %v, want refused", r)
	require.Equal(t, locker.ReasonReleased, r.Reason, "late lock: %v", r)
}

// A grant that is gone lends its strings' memory to the next grant of its
// shard: nothing the table still uses, nor anything it handed out, may
// change.
func TestLocalReusesNoStringInUse(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, Shards: 1, Clock: clk, Validity: time.Minute})
	defer l.Close()
	ctx := context.Background()
	lock := func(rlock bool, uid string, res ...string) {
		t.Helper()
		f := l.Lock
		if rlock {
			f = l.RLock
		}
		// Public, so that Query tells the UID (a copy).
		r, err := f(ctx, locker.LockArgs{UID: uid, Resources: res, Owner: "o", Source: "s", PublicUID: true})
		require.NoError(t, err, "lock %s %v", uid, res)
		require.True(t, r.OK, "lock %s %v: %v", uid, res, r)
	}
	unlock := func(rlock bool, uid string) {
		t.Helper()
		f := l.Unlock
		if rlock {
			f = l.RUnlock
		}
		r, err := f(ctx, locker.LockArgs{UID: uid})
		require.NoError(t, err, "unlock %s", uid)
		require.True(t, r.OK, "unlock %s: %v", uid, r)
	}

	// uid-a creates "shared"; uid-b holds it too. When uid-a leaves, the
	// entry lives on with uid-a's copy of its name, which the next grant
	// must not overwrite.
	lock(true, "uid-a", "shared")
	lock(true, "uid-b", "shared")
	before := list(t, l)
	unlock(true, "uid-a")
	lock(false, "uid-c", "zzzzzz")
	sameList(t, listing(t, l), "shared uid-b o s r", "zzzzzz uid-c o s w")
	sameList(t, format(before), "shared uid-a o s r", "shared uid-b o s r")
	unlock(false, "uid-c")
	unlock(true, "uid-b")

	// Free cycles reuse the memory; what List returned stays as it was.
	var lists [][]locker.Entry
	for i := range 10 {
		lock(false, fmt.Sprint("uid-", i), fmt.Sprint("res-", i), fmt.Sprint("other-", i))
		lists = append(lists, list(t, l))
		unlock(false, fmt.Sprint("uid-", i))
	}
	for i, got := range lists {
		sameList(t, format(got), fmt.Sprintf("other-%d uid-%d o s w", i, i), fmt.Sprintf("res-%d uid-%d o s w", i, i))
	}

	// A grant that expires is removed by the lock in its way; its memory
	// goes to the next grants.
	lock(false, "uid-old", "expiring")
	clk.Advance(2 * time.Minute)
	lock(false, "uid-new", "expiring")
	lock(false, "uid-new2", "other")
	sameList(t, listing(t, l), "expiring uid-new o s w", "other uid-new2 o s w")
	q, err := l.Query(ctx, locker.QueryArgs{Resources: []string{"expiring"}})
	require.NoError(t, err, "query")
	require.Len(t, q.Resources, 1, "query: %+v", q)
	require.Len(t, q.Resources[0].Holders, 1, "query: %+v", q)
	held := q.Resources[0].Holders[0].UID
	unlock(false, "uid-new")
	lock(false, "uid-xyz", "expiring")
	require.Equal(t, "uid-new", held, "a UID that Query returned changed")
}

// Repeated lock and unlock of free resources, and the lookups that find
// what is held, allocate nothing once the table has warmed up.
func TestLocalLookupsDoNotAllocate(t *testing.T) {
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	a := locker.LockArgs{UID: "00000000-0000-4000-8000-000000000001", Resources: []string{"bucket/object-1"}, Owner: "host:1", Source: "f.go:1"}
	other := locker.LockArgs{UID: "00000000-0000-4000-8000-000000000002", Resources: []string{"bucket/object-1"}, Owner: "host:1", Source: "f.go:1"}
	cases := []struct {
		name string
		f    func()
	}{
		{"lock+unlock", func() {
			l.Lock(ctx, a)
			l.Unlock(ctx, a)
		}},
		{"rlock+runlock", func() {
			l.RLock(ctx, a)
			l.RUnlock(ctx, a)
		}},
		{"repeated lock", func() { l.Lock(ctx, a) }},
		{"conflict", func() { l.Lock(ctx, other) }},
		{"unlock of what is not held", func() { l.Unlock(ctx, other) }},
	}
	for _, c := range cases {
		c.f() // warm up: free lists, origins
		assert.Zero(t, testing.AllocsPerRun(100, c.f), "%s: allocations per run", c.name)
	}
}
