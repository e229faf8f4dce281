package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/dsync-go/dsync/bench/loadgen"
	"github.com/dsync-go/dsync/dsync"
)

// BenchmarkOptimisticRead compares, on a resource nobody writes, an
// optimistic read (DRWMutex.ReadVersion then Validate: two rounds of calls
// that change nothing on the nodes) with a read lock (GetRLock then RUnlock:
// a grant and a release on a quorum), in process and over HTTP, on 4 nodes.
func BenchmarkOptimisticRead(b *testing.B) {
	for _, transport := range []string{loadgen.TransportLocal, loadgen.TransportHTTP} {
		const nodes = 4
		ds := func(b *testing.B) *dsync.Dsync { return newDsync(b, nodes, transport) }
		prefix := transport + "/nodes=" + strconv.Itoa(nodes)
		b.Run(prefix+"/optimistic", func(b *testing.B) {
			m := dsync.NewDRWMutex(ds(b), "bucket/object")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				v, err := m.ReadVersion(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if ok, err := m.Validate(ctx, v); err != nil || !ok {
					b.Fatalf("Validate: %v, %v", ok, err)
				}
			}
		})
		b.Run(prefix+"/rlock", func(b *testing.B) {
			m := dsync.NewDRWMutex(ds(b), "bucket/object")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.GetRLock(ctx, dsync.Options{Timeout: 5 * time.Second}); err != nil {
					b.Fatal(err)
				}
				if err := m.RUnlock(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
