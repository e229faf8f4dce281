package dsync_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

func ExampleNewSets() {
	// Twelve nodes as three sets of four. In production each is a
	// rest.Client talking to another node, and the layout comes from
	// configuration (see package cluster).
	sets := make([][]locker.NetLocker, 3)
	for s := range sets {
		for range 4 {
			sets[s] = append(sets[s], locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod}))
		}
	}
	ds, err := dsync.NewSets(sets, dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()

	// One resource: locked on its set alone, by a quorum of its four nodes.
	m := dsync.NewDRWMutex(ds, "bucket/object")
	if _, err := m.GetLock(ctx, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("set of bucket/object:", dsync.SetIndex("bucket/object", ds.Sets()))
	fmt.Println("write quorum:", ds.WriteQuorum(), "of a set of 4;", ds.Lockers(), "nodes")
	m.Unlock(ctx)

	// Resources of several sets: all or nothing, set by set.
	both := dsync.NewDRWMutex(ds, "bucket/a", "bucket/c")
	if _, err := both.GetLock(ctx, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sets of bucket/a and bucket/c:", dsync.SetIndex("bucket/a", 3), dsync.SetIndex("bucket/c", 3))
	both.Unlock(ctx)
	// Output:
	// set of bucket/object: 0
	// write quorum: 3 of a set of 4; 12 nodes
	// sets of bucket/a and bucket/c: 0 2
}
