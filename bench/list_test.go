package bench

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	"github.com/dsync-go/dsync/locker"
)

// BenchmarkListPageOfOne asks a table of a million (and three million)
// held locks for the first page of its listing, of one entry: the cost of
// walking the table, which List pays whatever the page, without sorting it
// (an admin's "dsync locks -max 1"). It reports the heap's growth across
// the calls; B/op is what one page allocates. The setup takes seconds: run
// it with -benchtime=3x.
func BenchmarkListPageOfOne(b *testing.B) {
	for _, n := range []int{1_000_000, 3_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			ctx := context.Background()
			// Room for every lock whatever the shards they fall in (the
			// cap is per shard; see locker.Config.MaxGrants).
			l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, MaxGrants: 2 * n})
			defer l.Close()
			for i := range n {
				if r, err := l.Lock(ctx, lockArgs(uid(i), "bucket/object-"+strconv.Itoa(i))); err != nil || !r.OK {
					b.Fatal(r, err)
				}
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			for b.Loop() {
				if p, err := l.List(ctx, locker.ListArgs{Max: 1}); err != nil || len(p.Entries) != 1 {
					b.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapInuse)/(1<<20)-float64(before.HeapInuse)/(1<<20), "heap-growth-MB")
		})
	}
}
