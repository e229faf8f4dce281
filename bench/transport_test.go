package bench

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/dsync-go/dsync/bench/loadgen"
	"github.com/dsync-go/dsync/locker"
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
			ctx := context.Background()
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(128)
			b.RunParallel(func(pb *testing.PB) {
				g := strconv.FormatInt(next.Add(1), 10)
				var args [64]locker.LockArgs
				for i := range args {
					args[i] = lockArgs(uid(int(next.Add(1))*1000+i), "g"+g+"/"+strconv.Itoa(i))
				}
				i := 0
				for pb.Next() {
					a := args[i%len(args)]
					i++
					if r, err := l.Lock(ctx, a); err != nil || !r.OK {
						b.Errorf("lock: %v %v", r, err)
						return
					}
					if _, err := l.Unlock(ctx, a); err != nil {
						b.Errorf("unlock: %v", err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
		})
	}
}
