package bench

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsync-go/dsync/bench/loadgen"
	"github.com/dsync-go/dsync/dsync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
				require.NoError(b, err)
				ok, err := m.Validate(ctx, v)
				require.NoError(b, err, "Validate")
				require.True(b, ok, "Validate of an uncontended resource")
			}
		})
		b.Run(prefix+"/rlock", func(b *testing.B) {
			m := dsync.NewDRWMutex(ds(b), "bucket/object")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, err := m.GetRLock(ctx, dsync.Options{Timeout: 5 * time.Second})
				require.NoError(b, err)
				require.NoError(b, m.RUnlock(ctx))
			}
		})
	}
}

// BenchmarkWritersWithReaders measures how fast writers get through a
// resource that readers read at the same time, by the style of the
// readers, side by side in one run: none (the writers alone), locking
// (GetRLock, the read, RUnlock) and optimistic (ReadOptimistic: up to 3
// validated tries without a lock, then the read lock). 2 writers take the
// write lock and release it at once; 8 readers read for 1 ms each time (the
// work a read does, a sleep standing for it), again and again, on 4 nodes,
// in process and over HTTP. Each op is one write: writes/s is the writers'
// throughput; reads/s the readers', tries/read how many times an
// optimistic reader ran its read per read returned (1 if every first try
// validated), and rlock/read the share of reads that fell back to the read
// lock. The writers either write again at once (pause=0: the resource is
// nearly always written) or do other work between writes, 1 ms or 10 ms,
// which leaves readers gaps.
func BenchmarkWritersWithReaders(b *testing.B) {
	const nodes, writers, readers, readWork = 4, 2, 8, time.Millisecond
	for _, transport := range []string{loadgen.TransportLocal, loadgen.TransportHTTP} {
		for _, pause := range []time.Duration{0, time.Millisecond, 10 * time.Millisecond} {
			for _, style := range []string{"none", "locking", "optimistic"} {
				b.Run(transport+"/nodes="+strconv.Itoa(nodes)+"/pause="+pause.String()+"/readers="+style, func(b *testing.B) {
					benchWritersWithReaders(b, transport, nodes, writers, readers, readWork, pause, style)
				})
			}
		}
	}
}

// benchWritersWithReaders is one run of BenchmarkWritersWithReaders: b.N
// writes by writers (each pausing pause after its write), while readers of
// style ("none", "locking", "optimistic") read, each read lasting
// readWork, until the writes are done.
func benchWritersWithReaders(b *testing.B, transport string, nodes, writers, readers int, readWork, pause time.Duration, style string) {
	c, err := loadgen.StartCluster(loadgen.ClusterConfig{Nodes: nodes, Transport: transport})
	require.NoError(b, err)
	b.Cleanup(func() { c.Close() })
	process := func(owner string) *dsync.Dsync {
		ds, err := dsync.New(c.Lockers(), dsync.Config{Owner: owner})
		require.NoError(b, err)
		b.Cleanup(func() { ds.Close() })
		return ds
	}
	ctx := context.Background()
	opts := dsync.Options{Timeout: 30 * time.Second}
	stop := make(chan struct{})
	var reads, tries, fallbacks atomic.Int64
	var rwg sync.WaitGroup
	if style != "none" {
		rds := process("readers")
		for range readers {
			m := dsync.NewDRWMutex(rds, "bucket/object")
			rwg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					var err error
					if style == "locking" {
						if _, err = m.GetRLock(ctx, opts); err == nil {
							time.Sleep(readWork)
							err = m.RUnlock(ctx)
						}
					} else {
						err = m.ReadOptimistic(ctx, 3, opts, func(rctx context.Context) error {
							tries.Add(1)
							if rctx != ctx { // under the read lock: its context
								fallbacks.Add(1)
							}
							time.Sleep(readWork)
							return nil
						})
					}
					if !assert.NoError(b, err, "read") {
						return
					}
					reads.Add(1)
				}
			})
		}
	}
	wds := process("writers")
	var left atomic.Int64
	left.Store(int64(b.N))
	b.ResetTimer()
	start := time.Now()
	var wwg sync.WaitGroup
	for range writers {
		m := dsync.NewDRWMutex(wds, "bucket/object")
		wwg.Go(func() {
			for left.Add(-1) >= 0 {
				if _, err := m.GetLock(ctx, opts); !assert.NoError(b, err, "write") {
					return
				}
				if !assert.NoError(b, m.Unlock(ctx), "unlock") {
					return
				}
				if pause > 0 {
					time.Sleep(pause) // the writer's other work
				}
			}
		})
	}
	wwg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	r := reads.Load()
	close(stop)
	rwg.Wait()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(r)/elapsed.Seconds(), "reads/s")
	if style == "optimistic" && r > 0 {
		b.ReportMetric(float64(tries.Load())/float64(r), "tries/read")
		b.ReportMetric(float64(fallbacks.Load())/float64(r), "rlock/read")
	}
}
