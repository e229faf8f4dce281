package dsync_test

import (
	"slices"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

func ExampleHierarchy() {
	ds, err := dsync.New(threeNodes(), dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()

	h, err := dsync.NewHierarchy("global", "bucket", "object")
	if err != nil {
		log.Fatal(err)
	}
	// Read the global lock, read the bucket, write the object: outermost first.
	held, err := h.Lock(ctx, ds, dsync.Options{Timeout: 5 * time.Second},
		dsync.LevelLock{Level: "global", Read: true},
		dsync.LevelLock{Level: "bucket", Name: "photos", Read: true},
		dsync.LevelLock{Level: "object", Name: "photos/cat.jpg"},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("all held:", held.Context().Err() == nil)

	// Going back up through the same Held is refused: that order could deadlock.
	err = held.Lock(ctx, dsync.Options{}, dsync.LevelLock{Level: "bucket", Name: "videos"})
	fmt.Println("bucket after object:", errors.Is(err, dsync.ErrHierarchy))

	// Released innermost first.
	if err := held.Release(ctx); err != nil {
		log.Print(err)
	}
	fmt.Println("released:", held.Context().Err() != nil)
	// Output:
	// all held: true
	// bucket after object: true
	// released: true
}

func TestNewHierarchyRejects(t *testing.T) {
	for _, levels := range [][]string{nil, {""}, {"a", ""}, {"a", "b", "a"}} {
		_, err := dsync.NewHierarchy(levels...)
		if assert.Error(t, err, "levels %q", levels) {
			assert.True(t, strings.HasPrefix(err.Error(), "dsync: "), "levels %q: %v", levels, err)
		}
	}
	h, _ := dsync.NewHierarchy("a", "b")
	l := h.Levels()
	if assert.Len(t, l, 2, "Levels() = %q", l) {
		assert.Equal(t, "a", l[0], "Levels() = %q", l)
	}
}

var threeLevels, _ = dsync.NewHierarchy("global", "bucket", "object")

func TestHierarchyOrder(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	held, err := threeLevels.Lock(ctx, c.ds, dsync.Options{}, dsync.LevelLock{Level: "bucket", Name: "b1", Read: true})
	require.NoError(t, err)
	for name, locks := range map[string][]dsync.LevelLock{
		"outer level":           {{Level: "global"}},
		"same level":            {{Level: "bucket", Name: "b2"}},
		"unknown level":         {{Level: "shard", Name: "s"}},
		"one good, one outer":   {{Level: "object", Name: "o"}, {Level: "global"}},
		"mixed modes one level": {{Level: "object", Name: "o1"}, {Level: "object", Name: "o2", Read: true}},
	} {
		assert.ErrorIs(t, held.Lock(ctx, dsync.Options{}, locks...), dsync.ErrHierarchy, "%s", name)
	}
	require.Equal(t, "b1", c.held(), "held after refused calls, want only b1")
	// Several resources of one level are one all-or-nothing lock.
	require.NoError(t, held.Lock(ctx, dsync.Options{}, dsync.LevelLock{Level: "object", Name: "o2"}, dsync.LevelLock{Level: "object", Name: "o1"}))
	var entries []locker.Entry
	waitUntil(t, "node 0 holds three grants", func() bool {
		entries, _ = listAll(ctx, c.nodes[0])
		return len(entries) == 3
	})
	require.Equal(t, "o1", entries[1].Resource, "node 0 holds %+v", entries)
	require.Equal(t, entries[1].UID, entries[2].UID, "node 0 holds %+v", entries)
	require.False(t, entries[0].Write, "node 0 holds %+v", entries)
	require.True(t, entries[1].Write, "node 0 holds %+v", entries)
	require.NoError(t, held.Release(ctx))
	c.ds.Close() // Release returns at a quorum; Close waits for the other nodes' answers
	require.Zero(t, c.grants(), "grants left after Release")
	mustPanic(t, "second Release", func() { held.Release(ctx) })
	mustPanic(t, "Lock after Release", func() { held.Lock(ctx, dsync.Options{}, dsync.LevelLock{Level: "object", Name: "o3"}) })
}

func TestHierarchyReleasesInnermostFirst(t *testing.T) {
	c := newCluster(t, 3, nil)
	for _, n := range c.nodes {
		n.locked = make(chan string, 3)
	}
	ctx := context.Background()
	held, err := threeLevels.Lock(ctx, c.ds, dsync.Options{},
		dsync.LevelLock{Level: "object", Name: "b/o"},
		dsync.LevelLock{Level: "global", Read: true}, // the order given does not matter
		dsync.LevelLock{Level: "bucket", Name: "b", Read: true},
	)
	require.NoError(t, err)
	for _, n := range c.nodes {
		for range 3 { // each level returns at quorum: wait until every node answered all
			<-n.locked
		}
	}
	entries, _ := listAll(ctx, c.nodes[0])
	resourceOf := map[string]string{}
	for _, e := range entries {
		resourceOf[e.UID] = e.Resource
	}
	for _, n := range c.nodes {
		n.mu.Lock()
		n.unlocks = make(chan string, 10)
		n.mu.Unlock()
	}
	require.NoError(t, held.Release(ctx))
	// Each level's Unlock returns once a quorum has released it, before the
	// next level's is sent: a node left behind may see two levels' unlocks
	// the other way round, but a majority of the nodes sees each pair of
	// levels in the order Release sent them.
	var orders [][]string
	for _, n := range c.nodes {
		var order []string
		for range 3 {
			order = append(order, resourceOf[<-n.unlocks])
		}
		orders = append(orders, order)
	}
	want := []string{"b/o", "b", "global"}
	for i := 1; i < len(want); i++ {
		inOrder := 0
		for _, order := range orders {
			if slices.Index(order, want[i-1]) < slices.Index(order, want[i]) {
				inOrder++
			}
		}
		assert.GreaterOrEqual(t, inOrder, 2, "%s released before %s on a majority of nodes: %v", want[i], want[i-1], orders)
	}
}

func TestHierarchyAllOrNothing(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	other := dsync.NewDRWMutex(c.ds, "b/o")
	_, err := other.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	locks := []dsync.LevelLock{{Level: "global", Read: true}, {Level: "bucket", Name: "b"}, {Level: "object", Name: "b/o"}}

	_, err = threeLevels.Lock(ctx, c.ds, dsync.Options{Timeout: 20 * time.Millisecond}, locks...)
	require.ErrorIs(t, err, dsync.ErrTimeout, "object held by another, want ErrTimeout wrapping ErrLocked")
	require.ErrorIs(t, err, dsync.ErrLocked, "object held by another, want ErrTimeout wrapping ErrLocked")
	// Its releases return at a quorum: the last node may answer later.
	waitUntil(t, "the failed call's grants are released", func() bool { return c.held() == "b/o" })

	cctx, cancel := context.WithCancel(ctx)
	go cancel()
	_, err = threeLevels.Lock(cctx, c.ds, dsync.Options{}, locks...)
	require.ErrorIs(t, err, context.Canceled, "cancelled")
	require.NotErrorIs(t, err, dsync.ErrTimeout, "cancelled")
	// An attempt cut short by ctx is released in the background.
	waitUntil(t, "the cancelled call's grants are released", func() bool { return c.held() == "b/o" })

	// An extension that fails releases what it took, and keeps what was
	// held before.
	held, err := threeLevels.Lock(ctx, c.ds, dsync.Options{}, locks[0])
	require.NoError(t, err)
	require.ErrorIs(t, held.Lock(ctx, dsync.Options{Timeout: 20 * time.Millisecond}, locks[1:]...), dsync.ErrTimeout, "extension")
	// The release returns at a quorum: the last node may answer later.
	waitUntil(t, "the failed extension's grants are released", func() bool { return c.held() == "b/o,global" })
	require.NoError(t, held.Context().Err(), "the held levels' context ended with the failed extension")
	// The failed call did not move the Held down the hierarchy.
	other.Unlock(ctx)
	require.NoError(t, held.Lock(ctx, dsync.Options{}, locks[1:]...))
	held.Release(ctx)
}

func TestHierarchyNoQuorum(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.nodes[0].down.Store(true)
	c.nodes[1].down.Store(true)
	_, err := threeLevels.Lock(context.Background(), c.ds, dsync.Options{Timeout: 20 * time.Millisecond}, dsync.LevelLock{Level: "global"})
	require.ErrorIs(t, err, dsync.ErrTimeout, "2 of 3 down")
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "2 of 3 down")
}

func TestHierarchyLostLevelCancelsHeld(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := newCluster(t, 3, clk)
	for _, n := range c.nodes {
		n.locked = make(chan string, 2)
	}
	ctx := context.Background()
	held, err := threeLevels.Lock(ctx, c.ds, dsync.Options{},
		dsync.LevelLock{Level: "bucket", Name: "b"}, dsync.LevelLock{Level: "object", Name: "b/o"})
	require.NoError(t, err)
	for _, n := range c.nodes {
		<-n.locked
		<-n.locked
	}
	c.forceRelease("b") // as an operator would
	refreshRound(clk)
	<-held.Context().Done()
	cause := context.Cause(held.Context())
	require.ErrorIs(t, cause, dsync.ErrLockLost, "cause, want ErrLockLost naming the bucket level")
	require.ErrorContains(t, cause, `level "bucket"`, "cause, want ErrLockLost naming the bucket level")
	require.ErrorIs(t, held.Release(ctx), dsync.ErrLockLost, "Release after a loss: want it to report ErrLockLost")
}

func TestHierarchyExtensionCarriesHolder(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := dsync.WithHolder(context.Background(), "A")
	held, err := threeLevels.Lock(ctx, c.ds, dsync.Options{}, dsync.LevelLock{Level: "bucket", Name: "b"})
	require.NoError(t, err)
	defer held.Release(ctx)
	// The same holder asking for its own bucket through a plain mutex
	// would wait for itself.
	_, err = dsync.NewDRWMutex(c.ds, "b").GetLock(ctx, dsync.Options{Timeout: time.Minute})
	require.ErrorIs(t, err, dsync.ErrDeadlock)
}

func ExampleHeld_Lock() {
	ds, _ := dsync.New(threeNodes(), dsync.Config{})
	defer ds.Close()
	ctx := context.Background()
	h, _ := dsync.NewHierarchy("bucket", "object")

	// Take the bucket first, decide which objects later.
	held, _ := h.Lock(ctx, ds, dsync.Options{}, dsync.LevelLock{Level: "bucket", Name: "photos", Read: true})
	defer held.Release(ctx)
	err := held.Lock(ctx, dsync.Options{},
		dsync.LevelLock{Level: "object", Name: "photos/a.jpg"},
		dsync.LevelLock{Level: "object", Name: "photos/b.jpg"})
	fmt.Println(err)
	// Output:
	// <nil>
}
