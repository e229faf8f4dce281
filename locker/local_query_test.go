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
	tbl.RLock(ctx, locker.LockArgs{UID: "reader-2", Resources: []string{"bucket/object"}, PublicUID: true})

	r, err := tbl.Query(ctx, locker.QueryArgs{Resources: []string{"bucket/object", "bucket/other"}})
	if err != nil {
		panic(err)
	}
	// A grant is named by its UID's tag; its UID, a capability, is told
	// only if its lock made it public.
	for _, hs := range r.Resources {
		for _, h := range hs.Holders {
			fmt.Printf("tag %s uid %q write: %v\n", h.Tag, h.UID, h.Write)
		}
	}
	fmt.Println("holders of bucket/other:", len(r.Resources[1].Holders))
	// Output:
	// tag 638272d2c60a282ab8a04228 uid "" write: false
	// tag 5196ef6dcc26a9d3e9ee3619 uid "reader-2" write: false
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
