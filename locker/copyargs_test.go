package locker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

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
	if err != nil {
		t.Fatal(err)
	}
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
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("listing:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLocalCopiesArgs(t *testing.T) {
	for _, shards := range []int{1, 0} {
		t.Run(fmt.Sprint("shards=", shards), func(t *testing.T) {
			l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, Shards: shards})
			defer l.Close()
			if !l.CopiesArgs() {
				t.Fatal("Local does not declare that it copies its arguments")
			}
			ctx := context.Background()
			s, overwrite := borrowed("uid-1", "res-a", "res-b", "host:1", "main.go:7", "uid-2", "res-c")
			if r, err := l.Lock(ctx, locker.LockArgs{UID: s[0], Resources: []string{s[1], s[2]}, Owner: s[3], Source: s[4]}); err != nil || !r.OK {
				t.Fatalf("lock: %v %v", r, err)
			}
			// A read lock on an entry that is new and one that it creates.
			if r, err := l.RLock(ctx, locker.LockArgs{UID: s[5], Resources: []string{s[6]}, Owner: s[3], Source: s[4]}); err != nil || !r.OK {
				t.Fatalf("rlock: %v %v", r, err)
			}
			overwrite()
			sameList(t, listing(t, l),
				"res-a uid-1 host:1 main.go:7 w",
				"res-b uid-1 host:1 main.go:7 w",
				"res-c uid-2 host:1 main.go:7 r")
			// The table finds its entries by their original names.
			if r, err := l.Lock(ctx, locker.LockArgs{UID: "uid-3", Resources: []string{"res-b"}}); err != nil || r.Reason != locker.ReasonConflict {
				t.Fatalf("lock of a held resource: %v %v, want a conflict", r, err)
			}
			if r, err := l.Unlock(ctx, locker.LockArgs{UID: strings.Clone("uid-1")}); err != nil || !r.OK {
				t.Fatalf("unlock with a fresh copy of the UID: %v %v", r, err)
			}
			if r, err := l.RUnlock(ctx, locker.LockArgs{UID: strings.Clone("uid-2")}); err != nil || !r.OK {
				t.Fatalf("runlock with a fresh copy of the UID: %v %v", r, err)
			}
			if st := l.Stats(); st != (locker.Stats{}) {
				t.Fatalf("table not empty: %+v", st)
			}
		})
	}
}

func TestLocalCopiesTombstoneUID(t *testing.T) {
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	s, overwrite := borrowed("late-uid")
	if r, err := l.Unlock(ctx, locker.LockArgs{UID: s[0]}); err != nil || r.OK {
		t.Fatalf("unlock before lock: %v %v", r, err)
	}
	overwrite()
	r, err := l.Lock(ctx, locker.LockArgs{UID: "late-uid", Resources: []string{"a"}})
	if err != nil || r.OK || r.Reason != locker.ReasonReleased {
		t.Fatalf("late lock: %v %v, want refused with %v", r, err, locker.ReasonReleased)
	}
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
		if r, err := f(ctx, locker.LockArgs{UID: uid, Resources: res, Owner: "o", Source: "s", PublicUID: true}); err != nil || !r.OK {
			t.Fatalf("lock %s %v: %v %v", uid, res, r, err)
		}
	}
	unlock := func(rlock bool, uid string) {
		t.Helper()
		f := l.Unlock
		if rlock {
			f = l.RUnlock
		}
		if r, err := f(ctx, locker.LockArgs{UID: uid}); err != nil || !r.OK {
			t.Fatalf("unlock %s: %v %v", uid, r, err)
		}
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
	if err != nil || len(q.Resources) != 1 || len(q.Resources[0].Holders) != 1 {
		t.Fatalf("query: %+v %v", q, err)
	}
	held := q.Resources[0].Holders[0].UID
	unlock(false, "uid-new")
	lock(false, "uid-xyz", "expiring")
	if held != "uid-new" {
		t.Fatalf("a UID that Query returned changed to %q", held)
	}
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
		if n := testing.AllocsPerRun(100, c.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", c.name, n)
		}
	}
}
