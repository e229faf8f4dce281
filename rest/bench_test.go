package rest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/dsync-go/dsync/locker"
)

// BenchmarkLockArgsCodec encodes and decodes a typical LockArgs.
func BenchmarkLockArgsCodec(b *testing.B) {
	a := locker.LockArgs{
		UID:       "4b0e6bda-8f4e-4c2b-9d4f-0a3e5f6b7c8d",
		Resources: []string{"bucket/prefix/object-000123"},
		Owner:     "storage-node-17:48213",
		Source:    "object_handlers.go:412",
		Quorum:    3,
	}
	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 256)
		for b.Loop() {
			buf, _ = a.MarshalMsg(buf[:0])
		}
	})
	b.Run("EncodeDecode", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 256)
		var out locker.LockArgs
		for b.Loop() {
			buf, _ = a.MarshalMsg(buf[:0])
			if _, err := out.UnmarshalMsg(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRoundTrip measures lock+unlock pairs over loopback HTTP with
// authentication, one pair at a time (Serial) and from many goroutines on
// distinct resources (Parallel, with and without batching). It reports
// pairs/s and HTTP requests per operation (lock or unlock).
func BenchmarkRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name       string
		goroutines int
		batching   bool
	}{
		{"Serial", 1, false},
		{"Parallel256/Unbatched", 256, false},
		{"Parallel256/Batched", 256, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
			defer tbl.Close()
			var requests atomic.Int64
			secret := newSecret(b)
			_, endpoint := startServer(b, tbl, ServerConfig{Secret: secret, OnRequest: func([]byte) { requests.Add(1) }})
			c := newClient(b, endpoint, ClientConfig{Secret: secret, DisableBatching: !bc.batching, MaxConns: 512})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism((bc.goroutines + 1) / 2) // of GOMAXPROCS (2 here)
			requests.Store(0)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					a := locker.LockArgs{UID: fmt.Sprint("u", i), Resources: []string{fmt.Sprint("r", i)}, Quorum: 1}
					if r, err := c.Lock(ctx, a); err != nil || !r.OK {
						b.Fatalf("lock: %v %v", r, err)
					}
					if r, err := c.Unlock(ctx, a); err != nil || !r.OK {
						b.Fatalf("unlock: %v %v", r, err)
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
			b.ReportMetric(float64(requests.Load())/float64(2*b.N), "req/op")
		})
	}
}

// BenchmarkDecodeBatch decodes a batch of 16 operations (8 locks, 8
// unlocks, as a busy client sends) into a reused scratch, with the
// generated decoder and with the zero-copy one the server uses for a table
// that copies what it keeps.
func BenchmarkDecodeBatch(b *testing.B) {
	var args BatchArgs
	for i := range 8 {
		a := locker.LockArgs{
			UID:       fmt.Sprintf("4b0e6bda-8f4e-4c2b-9d4f-0a3e5f6b%04d", i),
			Resources: []string{fmt.Sprintf("bucket/prefix/object-%06d", i)},
			Owner:     "storage-node-17:48213",
			Source:    "object_handlers.go:412",
			Quorum:    3,
		}
		args.Ops = append(args.Ops, BatchOp{Verb: VerbLock, Lock: a}, BatchOp{Verb: VerbUnlock, Lock: locker.LockArgs{UID: a.UID}})
	}
	body, err := args.MarshalMsg(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range []struct {
		name   string
		decode func(*scratch) error
	}{
		{"Generated", func(sc *scratch) error { _, err := sc.batch.UnmarshalMsg(body); return err }},
		{"ZeroCopy", func(sc *scratch) error { _, err := decodeBatchZC(&sc.batch, body, unboundedBudget()); return err }},
	} {
		b.Run(d.name, func(b *testing.B) {
			sc := new(scratch)
			b.ReportAllocs()
			for b.Loop() {
				if err := d.decode(sc); err != nil {
					b.Fatal(err)
				}
				sc.reset()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(args.Ops)), "ns/op-in-batch")
		})
	}
}

// BenchmarkEncodeBatchFromCalls encodes a batch of 96 submitted lock calls
// of one process and call site, as the coalescer does before sending it:
// Copy copies each call's arguments into a BatchOp, hoists the common owner
// and source and runs the generated MarshalMsg (the client before
// appendBatch); Direct is appendBatch. Both reuse their buffers, as the
// client's pooled exchanges do.
func BenchmarkEncodeBatchFromCalls(b *testing.B) {
	calls := make([]queuedCall, 96)
	for i := range calls {
		a := &locker.LockArgs{
			UID:       fmt.Sprintf("4b0e6bda-8f4e-4c2b-9d4f-0a3e5f6b%04d", i),
			Resources: []string{fmt.Sprintf("bucket/prefix/object-%06d", i)},
			Owner:     "storage-node-17:48213",
			Source:    "object_handlers.go:412",
			Quorum:    9,
		}
		calls[i] = queuedCall{verb: VerbLock, args: a, size: argSize(a.Msgsize())}
	}
	b.Run("Copy", func(b *testing.B) {
		b.ReportAllocs()
		var batch BatchArgs
		var buf []byte
		for b.Loop() {
			for i := range calls {
				batch.Ops = append(batch.Ops, BatchOp{Verb: calls[i].verb, Lock: *calls[i].args})
			}
			batch.hoist()
			var err error
			if buf, err = batch.MarshalMsg(buf[:0]); err != nil {
				b.Fatal(err)
			}
			clear(batch.Ops) // as putExchange did
			batch.Ops = batch.Ops[:0]
			batch.Owner, batch.Source = "", ""
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("Direct", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = appendBatch(buf[:0], calls, sessionRef{}); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
}
