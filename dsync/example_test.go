package dsync_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// threeNodes returns three in-memory lock tables. In production each is a
// rest.Client talking to another node.
func threeNodes() []locker.NetLocker {
	var nodes []locker.NetLocker
	for range 3 {
		nodes = append(nodes, locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod}))
	}
	return nodes
}

func ExampleNewDRWMutex() {
	ds, err := dsync.New(threeNodes(), dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()

	m := dsync.NewDRWMutex(ds, "bucket/object")
	lockCtx, err := m.GetLock(context.Background(), dsync.Options{Timeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Unlock(context.Background())

	// Do the protected work under lockCtx: it is cancelled if the lock is lost.
	fmt.Println("write lock held:", lockCtx.Err() == nil)
	fmt.Println("write quorum:", ds.WriteQuorum(), "of", ds.Lockers())
	// Output:
	// write lock held: true
	// write quorum: 2 of 3
}

// TryLock makes one attempt and does not wait: a lock held by another
// client is a false with a nil error, not a failure.
func ExampleDRWMutex_TryLock() {
	ds, err := dsync.New(threeNodes(), dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()

	holder := dsync.NewDRWMutex(ds, "bucket/object")
	if _, err := holder.GetLock(ctx, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	m := dsync.NewDRWMutex(ds, "bucket/object")
	ok, _, err := m.TryLock(ctx)
	fmt.Println("while held:", ok, err)

	holder.Unlock(ctx)
	ok, lockCtx, err := m.TryLock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Unlock(ctx)
	fmt.Println("once released:", ok, lockCtx.Err() == nil)
	// Output:
	// while held: false <nil>
	// once released: true true
}

func ExampleDRWMutex_GetRLock() {
	ds, _ := dsync.New(threeNodes(), dsync.Config{})
	defer ds.Close()
	ctx := context.Background()

	// Readers share the lock.
	r1 := dsync.NewDRWMutex(ds, "bucket/object")
	r2 := dsync.NewDRWMutex(ds, "bucket/object")
	if _, err := r1.GetRLock(ctx, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	if _, err := r2.GetRLock(ctx, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	// A writer waits for them.
	w := dsync.NewDRWMutex(ds, "bucket/object")
	ok, _, _ := w.TryLock(ctx)
	fmt.Println("writer while read-locked:", ok)
	r1.RUnlock(ctx)
	r2.RUnlock(ctx)
	ok, _, _ = w.TryLock(ctx)
	fmt.Println("writer after readers left:", ok)
	w.Unlock(ctx)
	// Output:
	// writer while read-locked: false
	// writer after readers left: true
}

func ExampleDRWMutex_GetLock_timeout() {
	ds, _ := dsync.New(threeNodes(), dsync.Config{RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond})
	defer ds.Close()
	ctx := context.Background()

	holder := dsync.NewDRWMutex(ds, "bucket/object")
	holder.GetLock(ctx, dsync.Options{})
	defer holder.Unlock(ctx)

	_, err := dsync.NewDRWMutex(ds, "bucket/object").GetLock(ctx, dsync.Options{Timeout: 50 * time.Millisecond})
	fmt.Println("timed out:", errors.Is(err, dsync.ErrTimeout))
	fmt.Println("because it is held:", errors.Is(err, dsync.ErrLocked))
	// Output:
	// timed out: true
	// because it is held: true
}

func ExampleDRWMutex_multipleResources() {
	ds, _ := dsync.New(threeNodes(), dsync.Config{})
	defer ds.Close()
	ctx := context.Background()

	// One lock over several resources is all-or-nothing on every node.
	m := dsync.NewDRWMutex(ds, "bucket/b", "bucket/a")
	if _, err := m.GetLock(ctx, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Names())
	ok, _, _ := dsync.NewDRWMutex(ds, "bucket/a").TryRLock(ctx)
	fmt.Println("bucket/a readable:", ok)
	m.Unlock(ctx)
	// Output:
	// [bucket/a bucket/b]
	// bucket/a readable: false
}

// store is storage that keeps the largest fencing token it has seen and
// refuses writes that carry a smaller one.
type store struct {
	token uint64
	data  string
}

func (s *store) write(token uint64, data string) error {
	if token < s.token {
		return fmt.Errorf("stale writer: token %d, already saw %d", token, s.token)
	}
	s.token, s.data = token, data
	return nil
}

func ExampleDRWMutex_FencingToken() {
	ds, err := dsync.New(threeNodes(), dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()
	var s store

	first := dsync.NewDRWMutex(ds, "bucket/object")
	if _, err := first.GetLock(ctx, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	old, err := first.FencingToken(ctx)
	if err != nil {
		log.Fatal(err)
	}
	first.Unlock(ctx)

	second := dsync.NewDRWMutex(ds, "bucket/object")
	if _, err := second.GetLock(ctx, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	defer second.Unlock(ctx)
	token, err := second.FencingToken(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("second holder's write:", s.write(token, "new"))
	// A first holder that stalled and wakes up late is refused by the store.
	fmt.Println("stalled holder's write refused:", s.write(old, "old") != nil)
	fmt.Println("data:", s.data)
	// Output:
	// second holder's write: <nil>
	// stalled holder's write refused: true
	// data: new
}

func ExampleAdaptiveTimeout() {
	ds, err := dsync.New(threeNodes(), dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()

	// One AdaptiveTimeout per class of lock, shared by every acquisition of
	// that class in the process.
	objectWrites, err := dsync.NewAdaptiveTimeout(dsync.AdaptiveConfig{Initial: 30 * time.Second, Min: time.Second, Max: 2 * time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("timeout at first:", objectWrites.Timeout())

	// Each acquisition waits at most objectWrites.Timeout() and reports how
	// it went. A window (16 by default) of quick successes, none timed out,
	// shrinks the timeout by a quarter, the most one window may take away.
	for i := range 16 {
		m := dsync.NewDRWMutex(ds, fmt.Sprintf("bucket/object-%d", i))
		if _, err := m.GetLock(ctx, dsync.Options{Adaptive: objectWrites}); err != nil {
			log.Fatal(err) // wraps dsync.ErrTimeout if held by others for the whole timeout
		}
		m.Unlock(ctx)
	}
	fmt.Println("after 16 quick acquisitions:", objectWrites.Timeout())
	// Output:
	// timeout at first: 30s
	// after 16 quick acquisitions: 22.5s
}
