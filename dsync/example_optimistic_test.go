package dsync_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/dsync-go/dsync/dsync"
)

// An optimistic reader takes no lock: it reads a version, reads the data,
// and validates the version. A write lock granted in between makes the
// validation fail, and the reader reads again.
func ExampleDRWMutex_ReadVersion() {
	ds, err := dsync.New(threeNodes(), dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()

	var mu sync.Mutex // stands in for the storage the lock protects
	price := 10
	load := func() int { mu.Lock(); defer mu.Unlock(); return price }

	reader := dsync.NewDRWMutex(ds, "shop/price")
	v, err := reader.ReadVersion(ctx)
	if err != nil {
		log.Fatal(err)
	}
	seen := load()

	// A writer comes between the read and the validation.
	writer := dsync.NewDRWMutex(ds, "shop/price")
	if _, err := writer.GetLock(ctx, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	mu.Lock()
	price = 12
	mu.Unlock()
	writer.Unlock(ctx)

	ok, err := reader.Validate(ctx, v)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("read", seen, "valid:", ok)

	// The usual pattern: a few optimistic tries, then the read lock.
	err = reader.ReadOptimistic(ctx, 3, dsync.Options{}, func(context.Context) error {
		seen = load()
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("read", seen)
	// Output:
	// read 10 valid: false
	// read 12
}
