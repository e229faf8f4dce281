package locker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

func TestBusyRefusesPastMaxWaiters(t *testing.T) {
	l := New(Config{QuietPeriod: NoQuietPeriod, MaxWaiters: 1, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	// Hold the shard of "a", so that a lock of "a" waits for it.
	sa := &l.shards[l.shardOf(l.hash("a"))]
	sa.mu.Lock()
	// The second caller's UID must not sort before "a"'s shard, or it could
	// wait on a shard the first caller holds rather than be refused on "a"'s.
	u2 := "u2"
	for i := 0; l.shardOf(l.hash(u2)) < l.shardOf(l.hash("a")); i++ {
		u2 = fmt.Sprint("u2-", i)
	}

	first := make(chan error, 1)
	go func() {
		r, err := l.Lock(ctx, LockArgs{UID: "u1", Resources: []string{"a"}})
		if err == nil && !r.OK {
			err = errors.New("refused")
		}
		first <- err
	}()
	// Wait until the goroutine counts as a waiter on one of those shards.
	for sa.waiters.Load() == 0 {
		runtime.Gosched()
	}
	_, err := l.Lock(ctx, LockArgs{UID: u2, Resources: []string{"a"}})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second waiter: err %v, want ErrBusy", err)
	}
	// Unlocks are never refused: ErrBusy must not apply to them.
	sa.mu.Unlock()
	if err := <-first; err != nil {
		t.Fatalf("first waiter: %v", err)
	}
	if r, err := l.Unlock(ctx, LockArgs{UID: "u1"}); err != nil || !r.OK {
		t.Fatalf("unlock: %v %v", r, err)
	}
	if st := l.Stats(); st != (Stats{}) {
		t.Fatalf("busy call left state behind: %+v", st)
	}
}

// Names whose hashes collide are told apart by name. Real collisions of
// 64-bit hashes do not happen in tests, so drive a shard with one hash for
// several names.
func TestShardHashCollisions(t *testing.T) {
	var s shard
	s.init()
	const h = 42
	a, b, c := &grant{uid: "a"}, &grant{uid: "b"}, &grant{uid: "c"}
	for _, g := range []*grant{a, b, c} {
		s.putGrant(h, g)
	}
	for _, g := range []*grant{a, b, c} {
		if s.grant(h, g.uid) != g {
			t.Fatalf("grant(%s) not found", g.uid)
		}
	}
	if s.grant(h, "d") != nil {
		t.Fatal("found a grant never added")
	}
	s.dropGrant(h, b) // middle of the probe run
	if s.grant(h, "b") != nil || s.grant(h, "a") != a || s.grant(h, "c") != c {
		t.Fatal("dropping the middle of the run broke it")
	}
	s.dropGrant(h, a) // its start
	s.dropGrant(h, c)
	if s.grants.len() != 0 {
		t.Fatalf("grants index keeps %d entries", s.grants.len())
	}

	x, y := &grant{uid: "x"}, &grant{uid: "y"}
	s.newResource(h, "r1").writer = x
	s.newResource(h, "r2").addReader(y)
	if s.resource(h, "r1").writer != x || len(s.resource(h, "r2").readerGrants()) != 1 {
		t.Fatal("colliding resources mixed up")
	}
	s.release(s.resource(h, "r1"), x, func() int64 { return 0 })
	if s.resource(h, "r1") != nil || s.resource(h, "r2") == nil {
		t.Fatal("releasing one colliding resource disturbed the other")
	}
	s.release(s.resource(h, "r2"), y, func() int64 { return 0 })
	if s.resources.len() != 0 {
		t.Fatalf("resources index keeps %d entries", s.resources.len())
	}
}

func TestOriginsAreInternedAndForgotten(t *testing.T) {
	l := New(Config{QuietPeriod: NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	for i := range 100 {
		a := LockArgs{UID: fmt.Sprint("u", i), Resources: []string{fmt.Sprint("r", i)}, Owner: "host:1", Source: fmt.Sprint("f.go:", i%3)}
		if r, err := l.Lock(ctx, a); err != nil || !r.OK {
			t.Fatal(r, err)
		}
	}
	distinct := 0
	for i := range l.shards {
		distinct += len(l.shards[i].origins)
	}
	if distinct > 3*len(l.shards) || distinct < 3 {
		t.Fatalf("%d interned origins for 3 distinct ones", distinct)
	}
	entries, _ := listAll(ctx, l)
	for _, e := range entries {
		if e.Owner != "host:1" || e.Source == "" {
			t.Fatalf("entry %+v lost its origin", e)
		}
	}
	for i := range 100 {
		l.Unlock(ctx, LockArgs{UID: fmt.Sprint("u", i)})
	}
	l.Expire() // the sweep forgets unused origins
	for i := range l.shards {
		if n := len(l.shards[i].origins); n != 0 {
			t.Fatalf("shard %d keeps %d origins after every grant left", i, n)
		}
	}
}

func TestDefaultShards(t *testing.T) {
	for _, c := range []struct{ procs, want int }{
		{1, 8}, {2, 8}, {3, 16}, {4, 16}, {16, 64}, {64, 256}, {1000, 256},
	} {
		if got := defaultShards(c.procs); got != c.want {
			t.Errorf("defaultShards(%d) = %d, want %d", c.procs, got, c.want)
		}
	}
	l := New(Config{QuietPeriod: NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	if want := defaultShards(runtime.GOMAXPROCS(0)); len(l.shards) != want {
		t.Errorf("New(Config{}) has %d shards, want %d", len(l.shards), want)
	}
}

// TestSweepGivesBackIndexSlots checks that the slots a surge of locks took
// are given back by the sweep once the locks are gone, and not before: a
// table whose locks come and go in waves keeps its indexes' size between
// sweeps instead of resizing them on every wave.
func TestSweepGivesBackIndexSlots(t *testing.T) {
	l := New(Config{QuietPeriod: NoQuietPeriod, SweepInterval: -1, Shards: 1})
	defer l.Close()
	ctx := context.Background()
	s := &l.shards[0]
	for i := range 1000 {
		a := LockArgs{UID: fmt.Sprint("u", i), Resources: []string{fmt.Sprint("r", i)}}
		if r, err := l.Lock(ctx, a); err != nil || !r.OK {
			t.Fatal(r, err)
		}
	}
	peak := len(s.grants.slots)
	for i := range 999 {
		if r, err := l.Unlock(ctx, LockArgs{UID: fmt.Sprint("u", i)}); err != nil || !r.OK {
			t.Fatal(r, err)
		}
	}
	// Unlocked grants leave no tombstone; the resources' index is as big.
	if len(s.grants.slots) != peak || len(s.resources.slots) < peak {
		t.Fatalf("unlocks resized the indexes: %d and %d slots, peak %d", len(s.grants.slots), len(s.resources.slots), peak)
	}
	l.Expire()
	if g, r := len(s.grants.slots), len(s.resources.slots); g != minIndexSize || r != minIndexSize {
		t.Fatalf("after the sweep, %d and %d slots for one lock; want %d", g, r, minIndexSize)
	}
	if r, err := l.Unlock(ctx, LockArgs{UID: "u999"}); err != nil || !r.OK {
		t.Fatal(r, err)
	}
	l.Expire()
	if s.grants.slots != nil || s.resources.slots != nil {
		t.Fatalf("an empty table keeps %d and %d slots", len(s.grants.slots), len(s.resources.slots))
	}
}

// A grant is kept to 96 bytes and a resource entry to 48, size classes of
// the allocator (see their doc comments): a node holding a million locks
// holds a million of each.
func TestEntrySizes(t *testing.T) {
	if n := unsafe.Sizeof(grant{}); n > 104 {
		t.Errorf("a grant takes %d bytes, more than 104", n)
	}
	if n := unsafe.Sizeof(resource{}); n > 48 {
		t.Errorf("a resource entry takes %d bytes, more than 48", n)
	}
}

// A grant keeps the holder its request named in its own buffer, after its
// UID, and interns only the owner and call site: holders of their own per
// lock share one origin. Grants recycled into new ones with UIDs, holders
// and names of other lengths must each list exactly what they were given,
// and the lists and wait edges must hold copies.
func TestHolderKeptWithGrant(t *testing.T) {
	l := New(Config{QuietPeriod: NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	type held struct{ holder, resource string }
	model := map[string]held{}
	for round := range 4 {
		for i := range 50 {
			uid := fmt.Sprintf("u%d-%s", i, strings.Repeat("x", (i*7+round)%23))
			h := held{resource: fmt.Sprintf("r%d-%d-%s", round, i, strings.Repeat("n", i%5))}
			if i%3 != 0 {
				h.holder = fmt.Sprintf("host:1/%s", strings.Repeat("h", (i+round)%40))
			}
			a := LockArgs{UID: uid, Resources: []string{h.resource, h.resource + "/more"}, Owner: "host:1", Source: "f.go:1", Holder: h.holder}
			if r, err := l.Lock(ctx, a); err != nil || !r.OK {
				t.Fatal(r, err)
			}
			model[uid] = h
		}
		entries, err := listAll(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2*len(model) {
			t.Fatalf("round %d: %d entries for %d grants on two resources", round, len(entries), len(model))
		}
		for _, e := range entries {
			h := model[e.UID]
			if e.Holder != h.holder || (e.Resource != h.resource && e.Resource != h.resource+"/more") || e.Owner != "host:1" {
				t.Fatalf("round %d: entry %+v, want holder %q on %q", round, e, h.holder, h.resource)
			}
		}
		// Release two thirds, so that their buffers go to the next round's
		// grants.
		for uid := range model {
			if len(uid)%3 != 0 {
				if r, err := l.Unlock(ctx, LockArgs{UID: uid}); err != nil || !r.OK {
					t.Fatal(r, err)
				}
				delete(model, uid)
			}
		}
	}
	distinct := 0
	for i := range l.shards {
		distinct += len(l.shards[i].origins)
	}
	if distinct > len(l.shards) {
		t.Fatalf("%d interned origins for one owner and call site", distinct)
	}
}

func TestHolderLimit(t *testing.T) {
	// The most a table may be configured to accept, which its grants keep
	// the length of in two bytes.
	l := New(Config{QuietPeriod: NoQuietPeriod, SweepInterval: -1, MaxLabelLen: MaxHolderLen})
	defer l.Close()
	a := LockArgs{UID: "u", Resources: []string{"r"}, Holder: strings.Repeat("h", MaxHolderLen+1)}
	if _, err := l.Lock(context.Background(), a); !errors.Is(err, ErrInvalidArgs) || !strings.Contains(err.Error(), "holder of 65536 bytes") {
		t.Fatalf("Lock with a holder over the limit = %v, want ErrInvalidArgs naming its length", err)
	}
	a.Holder = a.Holder[1:]
	if r, err := l.Lock(context.Background(), a); err != nil || !r.OK {
		t.Fatalf("Lock with a holder at the limit = %+v, %v", r, err)
	}
	entries, _ := listAll(context.Background(), l)
	if len(entries) != 1 || entries[0].Holder != a.Holder {
		t.Fatalf("the holder at the limit is not kept whole")
	}
}

// listAll returns the whole listing of l, walking its pages.
func listAll(ctx context.Context, l Lister) ([]Entry, error) {
	var out []Entry
	for e, err := range Entries(ctx, l, 0) {
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
