package bench

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/dsync-go/dsync/locker"
)

// newTable returns a table with no background sweep, closed when b ends.
func newTable(b *testing.B) *locker.Local {
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	b.Cleanup(func() { l.Close() })
	return l
}

// lockArgs returns a request as the quorum client sends it: a 36-byte UID
// (the length of a UUID) and one resource.
func lockArgs(uid, resource string) locker.LockArgs {
	return locker.LockArgs{UID: uid, Resources: []string{resource}, Owner: "bench-host:4242", Source: "bench/table_test.go:30", Quorum: 3}
}

func uid(i int) string {
	const pad = "00000000-0000-4000-8000-000000000000"
	s := strconv.Itoa(i)
	return pad[:len(pad)-len(s)] + s
}

// BenchmarkTableLockUnlockFree is one lock and one unlock of a free resource
// on one goroutine: the cost of the node table alone per pair. Target: under
// 300 ns and no allocation.
func BenchmarkTableLockUnlockFree(b *testing.B) {
	l := newTable(b)
	ctx := context.Background()
	args := lockArgs(uid(1), "bucket/object-1")
	b.ReportAllocs()
	for b.Loop() {
		if r, err := l.Lock(ctx, args); err != nil || !r.OK {
			b.Fatalf("lock: %v %v", r, err)
		}
		if r, err := l.Unlock(ctx, args); err != nil || !r.OK {
			b.Fatalf("unlock: %v %v", r, err)
		}
	}
}

// BenchmarkTableLockUnlockBurst is BenchmarkTableLockUnlockFree with the
// locks made as a node runs a batch request: under a locker.Burst, started
// anew every 48 pairs (a batch of 96 operations, the size the load
// generator's batches reach), so that locks read the table's clock once per
// locker.BurstCalls instead of once each.
func BenchmarkTableLockUnlockBurst(b *testing.B) {
	l := newTable(b)
	args := lockArgs(uid(1), "bucket/object-1")
	var burst locker.Burst
	var ctx context.Context
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%48 == 0 {
			ctx = l.StartBurst(context.Background(), &burst)
		}
		if r, err := l.Lock(ctx, args); err != nil || !r.OK {
			b.Fatalf("lock: %v %v", r, err)
		}
		if r, err := l.Unlock(ctx, args); err != nil || !r.OK {
			b.Fatalf("unlock: %v %v", r, err)
		}
	}
}

// BenchmarkTableRLockRUnlockFree is the read-lock twin of
// BenchmarkTableLockUnlockFree.
func BenchmarkTableRLockRUnlockFree(b *testing.B) {
	l := newTable(b)
	ctx := context.Background()
	args := lockArgs(uid(1), "bucket/object-1")
	b.ReportAllocs()
	for b.Loop() {
		if r, err := l.RLock(ctx, args); err != nil || !r.OK {
			b.Fatalf("rlock: %v %v", r, err)
		}
		if r, err := l.RUnlock(ctx, args); err != nil || !r.OK {
			b.Fatalf("runlock: %v %v", r, err)
		}
	}
}

// BenchmarkTableLockUnlockParallel is lock+unlock pairs from GOMAXPROCS
// goroutines, each on resources of its own, on a table that already holds
// 10,000 other locks: how the shards scale.
func BenchmarkTableLockUnlockParallel(b *testing.B) {
	l := newTable(b)
	ctx := context.Background()
	for i := range 10_000 {
		if _, err := l.Lock(ctx, lockArgs(uid(1_000_000+i), "held/"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		lockUnlockOwn(b, pb, l, int(next.Add(1)))
	})
}

// lockUnlockOwn runs lock+unlock pairs on l for one RunParallel goroutine,
// number g, cycling through 64 resources of its own.
func lockUnlockOwn(b *testing.B, pb *testing.PB, l locker.NetLocker, g int) {
	ctx := context.Background()
	var args [64]locker.LockArgs
	for i := range args {
		args[i] = lockArgs(uid(g*1000+i), "bucket/g"+strconv.Itoa(g)+"/"+strconv.Itoa(i))
	}
	for i := 0; pb.Next(); i++ {
		a := args[i%len(args)]
		if r, err := l.Lock(ctx, a); err != nil || !r.OK {
			b.Errorf("lock: %v %v", r, err)
			return
		}
		if _, err := l.Unlock(ctx, a); err != nil {
			b.Errorf("unlock: %v", err)
			return
		}
	}
}

// BenchmarkTableContended is GOMAXPROCS goroutines trying to write-lock the
// same resource: one wins, the others are refused (ReasonConflict) until it
// unlocks. It measures the cost of an operation on one hot resource; a
// refused attempt counts as an operation.
func BenchmarkTableContended(b *testing.B) {
	l := newTable(b)
	ctx := context.Background()
	var next, granted, refused atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		args := lockArgs(uid(int(next.Add(1))), "bucket/hot")
		for pb.Next() {
			r, err := l.Lock(ctx, args)
			if err != nil {
				b.Errorf("lock: %v", err)
				return
			}
			if !r.OK {
				refused.Add(1)
				continue
			}
			granted.Add(1)
			if _, err := l.Unlock(ctx, args); err != nil {
				b.Errorf("unlock: %v", err)
				return
			}
		}
	})
	if total := granted.Load() + refused.Load(); total > 0 {
		b.ReportMetric(float64(granted.Load())/float64(total), "granted/op")
	}
}

// BenchmarkTableRefresh10k refreshes 10,000 held grants in one call, as the
// refresher does for a process that holds 10,000 locks.
func BenchmarkTableRefresh10k(b *testing.B) {
	l := newTable(b)
	ctx := context.Background()
	uids := make([]string, 10_000)
	for i := range uids {
		uids[i] = uid(i)
		if _, err := l.Lock(ctx, lockArgs(uids[i], "bucket/"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	args := locker.RefreshArgs{UIDs: uids}
	b.ReportAllocs()
	for b.Loop() {
		r, err := l.Refresh(ctx, args)
		if err != nil || r.Status[len(uids)-1] != locker.RefreshRefreshed {
			b.Fatalf("refresh: %v", err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(uids)), "ns/uid")
}
