package dsync_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

func ExampleMutex() {
	ds, err := dsync.New(threeNodes(), dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()

	m := dsync.NewMutex(ds, "shared-resource")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lockCtx, err := m.Lock(ctx)
	if err != nil {
		log.Fatal(err) // ctx's error, dsync.ErrClosed, ...
	}
	ok, _, _ := dsync.NewMutex(ds, "shared-resource").TryLock(ctx)
	fmt.Println("held:", lockCtx.Err() == nil, "second holder:", ok)
	if err := m.Unlock(context.Background()); err != nil {
		log.Print(err)
	}
	// Output:
	// held: true second holder: false
}

// LockTimeout bounds the wait for the mutex and nothing else: the lock's
// context lives on until Unlock, however long the work takes.
func ExampleMutex_LockTimeout() {
	ds, err := dsync.New(threeNodes(), dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()

	m := dsync.NewMutex(ds, "report")
	lockCtx, err := m.LockTimeout(context.Background(), 5*time.Second)
	if err != nil {
		log.Fatal(err) // wraps dsync.ErrTimeout if it was held for 5 s
	}
	// ... long work under lockCtx ...
	fmt.Println("held:", lockCtx.Err() == nil)
	if err := m.Unlock(context.Background()); err != nil {
		log.Print(err)
	}
	fmt.Println("after Unlock:", lockCtx.Err())
	// Output:
	// held: true
	// after Unlock: context canceled
}

// TestMutexLockTimeout: LockTimeout fails with ErrTimeout (wrapping the last
// attempt's ErrLocked) while another holds the mutex, and once granted its
// context outlives the wait's bound, unlike Lock under a ctx with a deadline.
func TestMutexLockTimeout(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	a, b := dsync.NewMutex(c.ds, "obj"), dsync.NewMutex(c.ds, "obj")
	_, err := a.Lock(ctx)
	require.NoError(t, err)
	_, err = b.LockTimeout(ctx, 20*time.Millisecond)
	require.ErrorIs(t, err, dsync.ErrTimeout, "LockTimeout of a held mutex, want ErrTimeout wrapping ErrLocked")
	require.ErrorIs(t, err, dsync.ErrLocked, "LockTimeout of a held mutex, want ErrTimeout wrapping ErrLocked")
	require.NoError(t, a.Unlock(ctx))
	// The trap LockTimeout avoids: a lock context under a ctx whose cancel
	// runs when the caller returns ends with it, though the mutex is held.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	trapped, err := b.Lock(wctx)
	require.NoError(t, err)
	cancel()
	require.Error(t, trapped.Err(), "Lock's context outlived its ctx")
	require.NoError(t, b.Unlock(ctx))
	// On a fake clock, move past the timeout while the mutex is held.
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	f := newCluster(t, 3, clk)
	m := dsync.NewMutex(f.ds, "obj")
	lockCtx, err := m.LockTimeout(ctx, time.Second)
	require.NoError(t, err)
	clk.Advance(2 * time.Second) // less than a refresh interval
	require.NoError(t, lockCtx.Err(), "LockTimeout's context ended past the timeout while held: %v", context.Cause(lockCtx))
	require.NoError(t, m.Unlock(ctx))
	require.Error(t, lockCtx.Err(), "LockTimeout's context outlived Unlock")
}

func ExampleMutex_Locker() {
	ds, _ := dsync.New(threeNodes(), dsync.Config{})
	defer ds.Close()

	// Five tasks, each through its own Mutex on the same resource, increment
	// a counter that only the distributed lock protects.
	var counter int
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := dsync.NewMutex(ds, "counter").Locker()
			l.Lock()
			counter++
			l.Unlock()
		}()
	}
	wg.Wait()
	fmt.Println("counter:", counter)
	// Output:
	// counter: 5
}

func TestMutexExcludes(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	a, b := dsync.NewMutex(c.ds, "obj"), dsync.NewMutex(c.ds, "obj")
	require.Equal(t, "obj", a.Name(), "Name()")
	_, err := a.Lock(ctx)
	require.NoError(t, err)
	ok, _, err := b.TryLock(ctx)
	require.NoError(t, err, "TryLock of held mutex")
	require.False(t, ok, "TryLock of held mutex")
	// A Lock that waits is released by its ctx. (Long enough for an
	// attempt to finish on a loaded machine: the error wraps its ErrLocked.)
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = b.Lock(wctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "Lock of held mutex, want DeadlineExceeded wrapping ErrLocked")
	require.ErrorIs(t, err, dsync.ErrLocked, "Lock of held mutex, want DeadlineExceeded wrapping ErrLocked")
	require.NoError(t, a.Unlock(ctx))
	ok, _, err = b.TryLock(ctx)
	require.NoError(t, err, "TryLock after Unlock")
	require.True(t, ok, "TryLock after Unlock")
	b.Unlock(ctx)
	c.ds.Close() // Unlock returns at a quorum; Close waits for the other nodes' answers
	entries, _ := listAll(ctx, c.nodes[0])
	require.Empty(t, entries, "left on node 0")
}

func TestMutexLockRecordsCallerLine(t *testing.T) {
	c := newCluster(t, 1, nil)
	ctx := context.Background()
	m := dsync.NewMutex(c.ds, "obj")
	for _, lock := range []func(){
		func() { m.Lock(ctx) },
		func() { m.Locker().Lock() },
	} {
		lock()
		entries, _ := listAll(ctx, c.nodes[0])
		require.Len(t, entries, 1, "entries %+v: source is not the caller's line", entries)
		require.Contains(t, entries[0].Source, "mutex_test.go:", "entries %+v: source is not the caller's line", entries)
		m.Unlock(ctx)
	}
}

func TestMutexNoQuorum(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.nodes[0].down.Store(true)
	c.nodes[1].down.Store(true)
	m := dsync.NewMutex(c.ds, "obj")
	ok, _, err := m.TryLock(context.Background())
	require.False(t, ok, "TryLock with 2 of 3 down: ok=%v err=%v", ok, err)
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "TryLock with 2 of 3 down")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = m.Lock(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "Lock with 2 of 3 down")
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "Lock with 2 of 3 down")
}

func TestMutexInvalidName(t *testing.T) {
	c := newCluster(t, 1, nil)
	_, err := dsync.NewMutex(c.ds, "").Lock(context.Background())
	require.ErrorIs(t, err, locker.ErrInvalidArgs, "Lock of empty name")
	mustPanic(t, "Locker().Lock of empty name", func() { dsync.NewMutex(c.ds, "").Locker().Lock() })
}

func TestLockerAdapters(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	m := dsync.NewDRWMutex(c.ds, "obj")
	r1, r2 := m.RLocker(), dsync.NewDRWMutex(c.ds, "obj").RLocker()
	r1.Lock()
	r2.Lock() // readers share
	ok, _, _ := dsync.NewDRWMutex(c.ds, "obj").TryLock(ctx)
	require.False(t, ok, "writer granted under two RLocker holders")
	r1.Unlock()
	r2.Unlock()

	w := m.Locker()
	w.Lock()
	ok, _, _ = dsync.NewDRWMutex(c.ds, "obj").TryRLock(ctx)
	require.False(t, ok, "reader granted under Locker holder")
	w.Unlock()
	c.ds.Close() // Unlock returns at a quorum; Close waits for the other nodes' answers
	require.Zero(t, c.grants(), "grants left after Unlock")

	// Misuse panics, as with sync.Mutex.
	mustPanic(t, "Unlock of unlocked Locker", func() { m.Locker().Unlock() })
	mustPanic(t, "Unlock of unlocked RLocker", func() { m.RLocker().Unlock() })
	mustPanic(t, "Lock after Close", func() { m.Locker().Lock() })
	mustPanic(t, "RLock after Close", func() { m.RLocker().Lock() })
}

func TestLockerUnlockOfLostLockDoesNotPanic(t *testing.T) {
	c := newCluster(t, 3, nil)
	m := dsync.NewMutex(c.ds, "obj")
	l := m.Locker()
	l.Lock()
	c.ds.Close() // every held lock is lost
	l.Unlock()
}

// mustPanic runs f and fails the test unless it panics with a message that
// starts with the package name.
func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		assert.True(t, r != nil && strings.HasPrefix(fmt.Sprint(r), "dsync: "), "%s: recovered %v, want a panic starting with \"dsync: \"", what, r)
	}()
	f()
}
