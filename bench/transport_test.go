package bench

import (
	"sync/atomic"
	"testing"

	"github.com/dsync-go/dsync/bench/loadgen"
)

// BenchmarkTransportLockUnlock is lock+unlock pairs sent straight to one
// node through its NetLocker, without the quorum client, from 256
// goroutines: what one node call costs over each transport, so that the
// quorum client's own cost can be told apart (a dsync pair on n nodes makes
// 2n such calls).
func BenchmarkTransportLockUnlock(b *testing.B) {
	for _, transport := range []string{loadgen.TransportLocal, loadgen.TransportHTTP} {
		b.Run(transport, func(b *testing.B) {
			c, err := loadgen.StartCluster(loadgen.ClusterConfig{Nodes: 1, Transport: transport})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			l := c.Lockers()[0]
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(128)
			b.RunParallel(func(pb *testing.PB) {
				lockUnlockOwn(b, pb, l, int(next.Add(1)))
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
		})
	}
}
