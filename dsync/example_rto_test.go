package dsync_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/dsync-go/dsync/dsync"
)

func ExampleMutex_LockWith() {
	ds, err := dsync.New(threeNodes(), dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()
	deletes, err := dsync.NewAdaptiveTimeout(dsync.AdaptiveConfig{Initial: 10 * time.Second, Min: time.Second, Max: time.Minute})
	if err != nil {
		log.Fatal(err)
	}

	// Mutex.Lock takes no Options; LockWith does, as Barrier.WaitWith and
	// Cond.WaitWith do for theirs.
	m := dsync.NewMutex(ds, "bucket")
	if _, err := m.LockWith(ctx, dsync.Options{Adaptive: deletes}); err != nil {
		log.Fatal(err) // wraps dsync.ErrTimeout if others held it for deletes.Timeout()
	}
	fmt.Println("locked", m.Name())
	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	// Output: locked bucket
}

func ExampleDsync_RTO() {
	ds, err := dsync.New(threeNodes(), dsync.Config{CallTimeout: 2 * time.Second, MinCallTimeout: 50 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()

	// Before any answer is measured, a lock call to a node may take
	// CallTimeout.
	fmt.Println("before:", ds.RTO(0))

	// Answers measured (here from tables in this process, in microseconds)
	// bring each node's call timeout down to its round trips, plus four
	// deviations, but not below MinCallTimeout: a node that stops answering
	// costs an attempt that long, not CallTimeout.
	m := dsync.NewMutex(ds, "obj")
	if _, err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after:", ds.RTO(0))
	// Output:
	// before: 2s
	// after: 50ms
}
