package cluster_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dsync-go/dsync/cluster"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/layout"
)

func ExampleCluster_LockerSets() {
	// Six nodes in two lock sets of three: every node is told the layout.
	c, err := cluster.Start(cluster.Config{Nodes: 6, SetSize: 3})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	// Clients in the nodes' sets, checked against the nodes' layout.
	sets, err := c.LockerSets(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		for _, set := range sets {
			for _, l := range set {
				l.Close()
			}
		}
	}()
	ds, err := dsync.NewSets(sets, dsync.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	m := dsync.NewDRWMutex(ds, "bucket/object")
	if _, err := m.GetLock(ctx, dsync.Options{}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("locked on set", dsync.SetIndex("bucket/object", ds.Sets()), "of", ds.Sets())
	m.Unlock(ctx)

	// A client that takes the six nodes as one set is refused.
	ls, err := c.Lockers()
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	one, _ := layout.Parse(c.Endpoints(), 0)
	err = layout.Check(ctx, one, ls)
	fmt.Println("one set refused:", err != nil)
	// Output:
	// locked on set 1 of 2
	// one set refused: true
}
