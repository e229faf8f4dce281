package dsync_test

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// forceRelease removes every holder of resource from a write quorum of the
// nodes, as an operator's force-unlock would, so that the lock is lost.
func (c *cluster) forceRelease(resource string) {
	for _, n := range c.nodes[:c.ds.WriteQuorum()] {
		n.ForceUnlock(context.Background(), locker.LockArgs{Resources: []string{resource}})
	}
}

// refreshRound runs the refresher's next round on clk: it waits for the
// refresher's tick and deadline timers, then moves the clock one interval.
func refreshRound(clk *clock.Fake) {
	clk.BlockUntil(nil, 2)
	clk.Advance(dsync.DefaultRefreshInterval)
}

// held returns the resources held on any node, sorted, each once. Unlike a
// count of grants it does not depend on whether the slowest node has
// answered an acquisition yet.
func (c *cluster) held() string {
	seen := map[string]bool{}
	for _, n := range c.nodes {
		entries, _ := listAll(context.Background(), n)
		for _, e := range entries {
			seen[e.Resource] = true
		}
	}
	return strings.Join(slices.Sorted(maps.Keys(seen)), ",")
}

// listAll returns the whole listing of l, walking its pages.
func listAll(ctx context.Context, l locker.Lister) ([]locker.Entry, error) {
	var out []locker.Entry
	for e, err := range locker.Entries(ctx, l, 0) {
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
