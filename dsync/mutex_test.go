package dsync_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

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
	if _, err := a.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.LockTimeout(ctx, 20*time.Millisecond); !errors.Is(err, dsync.ErrTimeout) || !errors.Is(err, dsync.ErrLocked) {
		t.Fatalf("LockTimeout of a held mutex: %v, want ErrTimeout wrapping ErrLocked", err)
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	// The trap LockTimeout avoids: a lock context under a ctx whose cancel
	// runs when the caller returns ends with it, though the mutex is held.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	trapped, err := b.Lock(wctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if trapped.Err() == nil {
		t.Fatal("Lock's context outlived its ctx")
	}
	if err := b.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	// On a fake clock, move past the timeout while the mutex is held.
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	f := newCluster(t, 3, clk)
	m := dsync.NewMutex(f.ds, "obj")
	lockCtx, err := m.LockTimeout(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second) // less than a refresh interval
	if err := lockCtx.Err(); err != nil {
		t.Fatalf("LockTimeout's context ended past the timeout while held: %v", context.Cause(lockCtx))
	}
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if lockCtx.Err() == nil {
		t.Fatal("LockTimeout's context outlived Unlock")
	}
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
	if a.Name() != "obj" {
		t.Fatalf("Name() = %q", a.Name())
	}
	if _, err := a.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := b.TryLock(ctx); ok || err != nil {
		t.Fatalf("TryLock of held mutex: ok=%v err=%v", ok, err)
	}
	// A Lock that waits is released by its ctx. (Long enough for an
	// attempt to finish on a loaded machine: the error wraps its ErrLocked.)
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(wctx); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, dsync.ErrLocked) {
		t.Fatalf("Lock of held mutex: %v, want DeadlineExceeded wrapping ErrLocked", err)
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := b.TryLock(ctx); !ok || err != nil {
		t.Fatalf("TryLock after Unlock: ok=%v err=%v", ok, err)
	}
	b.Unlock(ctx)
	c.ds.Close() // Unlock returns at a quorum; Close waits for the other nodes' answers
	entries, _ := listAll(ctx, c.nodes[0])
	if len(entries) != 0 {
		t.Fatalf("left on node 0: %+v", entries)
	}
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
		if len(entries) != 1 || !strings.Contains(entries[0].Source, "mutex_test.go:") {
			t.Fatalf("entries %+v: source is not the caller's line", entries)
		}
		m.Unlock(ctx)
	}
}

func TestMutexNoQuorum(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.nodes[0].down.Store(true)
	c.nodes[1].down.Store(true)
	m := dsync.NewMutex(c.ds, "obj")
	if ok, _, err := m.TryLock(context.Background()); ok || !errors.Is(err, dsync.ErrNoQuorum) {
		t.Fatalf("TryLock with 2 of 3 down: ok=%v err=%v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := m.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, dsync.ErrNoQuorum) {
		t.Fatalf("Lock with 2 of 3 down: %v", err)
	}
}

func TestMutexInvalidName(t *testing.T) {
	c := newCluster(t, 1, nil)
	if _, err := dsync.NewMutex(c.ds, "").Lock(context.Background()); !errors.Is(err, locker.ErrInvalidArgs) {
		t.Fatalf("Lock of empty name: %v", err)
	}
	mustPanic(t, "Locker().Lock of empty name", func() { dsync.NewMutex(c.ds, "").Locker().Lock() })
}

func TestLockerAdapters(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	m := dsync.NewDRWMutex(c.ds, "obj")
	r1, r2 := m.RLocker(), dsync.NewDRWMutex(c.ds, "obj").RLocker()
	r1.Lock()
	r2.Lock() // readers share
	if ok, _, _ := dsync.NewDRWMutex(c.ds, "obj").TryLock(ctx); ok {
		t.Fatal("writer granted under two RLocker holders")
	}
	r1.Unlock()
	r2.Unlock()

	w := m.Locker()
	w.Lock()
	if ok, _, _ := dsync.NewDRWMutex(c.ds, "obj").TryRLock(ctx); ok {
		t.Fatal("reader granted under Locker holder")
	}
	w.Unlock()
	c.ds.Close() // Unlock returns at a quorum; Close waits for the other nodes' answers
	if g := c.grants(); g != 0 {
		t.Fatalf("%d grants left after Unlock", g)
	}

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
		if s := fmt.Sprint(r); r == nil || !strings.HasPrefix(s, "dsync: ") {
			t.Errorf("%s: recovered %v, want a panic starting with \"dsync: \"", what, r)
		}
	}()
	f()
}
