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

	// An intention lock: a writer of another object of the bucket.
	tbl.RLock(ctx, locker.LockArgs{UID: "writer-1", Resources: []string{"bucket"}, Mode: locker.ModeIX})

	r, err := tbl.Query(ctx, locker.QueryArgs{Resources: []string{"bucket/object", "bucket/other", "bucket"}})
	if err != nil {
		panic(err)
	}
	// A grant is named by its UID's tag; its UID, a capability, is told
	// only if its lock made it public. Each has its mode.
	for _, hs := range r.Resources {
		for _, h := range hs.Holders {
			fmt.Printf("tag %s uid %q mode %v write: %v\n", h.Tag, h.UID, h.Mode, h.Write)
		}
	}
	fmt.Println("holders of bucket/other:", len(r.Resources[1].Holders))
	// Output:
	// tag 638272d2c60a282ab8a04228 uid "" mode S write: false
	// tag 5196ef6dcc26a9d3e9ee3619 uid "reader-2" mode S write: false
	// tag 0beb760a1e27209b1db14021 uid "" mode IX write: false
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
