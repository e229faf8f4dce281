package locker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

func TestLocalQuery(t *testing.T) {
	lockertest.RunQuery(t, func(t *testing.T, cfg locker.Config) locker.NetLocker {
		l := locker.New(cfg)
		t.Cleanup(func() { l.Close() })
		return l
	})
}

func ExampleLocal_Query() {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	defer tbl.Close()
	ctx := context.Background()
	tbl.RLock(ctx, locker.LockArgs{UID: "reader-1", Resources: []string{"bucket/object"}})

	r, err := tbl.Query(ctx, locker.QueryArgs{Resources: []string{"bucket/object", "bucket/other"}})
	if err != nil {
		panic(err)
	}
	for _, hs := range r.Resources {
		for _, h := range hs.Holders {
			fmt.Println(h.UID, "write:", h.Write)
		}
	}
	fmt.Println("holders of bucket/other:", len(r.Resources[1].Holders))
	// Output:
	// reader-1 write: false
	// holders of bucket/other: 0
}

func TestLocalFenceConformance(t *testing.T) {
	lockertest.RunFence(t, func(t *testing.T, cfg locker.Config) locker.NetLocker {
		l := locker.New(cfg)
		t.Cleanup(func() { l.Close() })
		return l
	})
}

func TestLocalWaitsConformance(t *testing.T) {
	lockertest.RunWaits(t, func(t *testing.T, cfg locker.Config) locker.NetLocker {
		l := locker.New(cfg)
		t.Cleanup(func() { l.Close() })
		return l
	})
}
