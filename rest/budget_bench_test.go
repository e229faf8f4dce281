package rest

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/locker"
)

// hostileBatch returns the body of a batch of ops lock operations, each
// naming names empty resource names (one byte each on the wire).
func hostileBatch(ops, names int) []byte {
	b := msgp.AppendMapHeader(nil, 1)
	b = msgp.AppendString(b, "o")
	b = msgp.AppendArrayHeader(b, uint32(ops))
	for range ops {
		b = msgp.AppendMapHeader(b, 2)
		b = msgp.AppendString(b, "v")
		b = msgp.AppendUint8(b, 1)
		b = msgp.AppendString(b, "l")
		b = msgp.AppendMapHeader(b, 2)
		b = msgp.AppendString(b, "u")
		b = msgp.AppendString(b, "u")
		b = msgp.AppendString(b, "r")
		b = msgp.AppendArrayHeader(b, uint32(names))
		for range names {
			b = append(b, 0xa0)
		}
	}
	return b
}

// BenchmarkHostileBatch sends, 16 at once, batches of ops lock
// operations of names one-byte names each, through the server's handler
// (authentication aside), and reports the peak of the heap above what the
// bodies themselves take.
func BenchmarkHostileBatch(b *testing.B) {
	for _, c := range []struct {
		name       string
		ops, names int
	}{
		{"83x100000", 83, 100_000},
		{"4096x1000", 4096, 1000},
	} {
		b.Run(c.name, func(b *testing.B) {
			tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
			defer tbl.Close()
			srv, err := NewServer(tbl, ServerConfig{Insecure: true})
			if err != nil {
				b.Fatal(err)
			}
			body := hostileBatch(c.ops, c.names)
			const conc = 16
			ctxs := make([]*fasthttp.RequestCtx, conc)
			for i := range ctxs {
				var req fasthttp.Request
				req.Header.SetMethod(fasthttp.MethodPost)
				req.SetRequestURI(PathBatch)
				req.SetBody(body)
				ctxs[i] = new(fasthttp.RequestCtx)
				ctxs[i].Init(&req, nil, nil)
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapInuse
			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				var ms runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
				}
			}()
			status := 0
			b.ReportAllocs()
			for b.Loop() {
				var wg sync.WaitGroup
				for _, rc := range ctxs {
					wg.Go(func() {
						rc.Response.Reset()
						srv.handle(rc)
						status = rc.Response.StatusCode()
					})
				}
				wg.Wait()
			}
			close(stop)
			<-sampled
			b.ReportMetric(float64(peak.Load()-min(peak.Load(), base))/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(len(body))/(1<<20), "body-MB")
			b.ReportMetric(float64(status), "status")
		})
	}
}
