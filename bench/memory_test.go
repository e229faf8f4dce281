package bench

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	"github.com/dsync-go/dsync/locker"
)

// heldLocks is how many locks BenchmarkMemoryPerHeldLock puts in one table.
const heldLocks = 1_000_000

// BenchmarkMemoryPerHeldLock fills one table with 1,000,000 write locks on
// distinct resources and reports the heap it takes per held lock
// (runtime.MemStats.HeapInuse after a GC, minus the same before the table
// existed). Each request is decoded from its msgp encoding first, so the
// strings the table keeps are separate allocations as on a real node, and are
// counted. Target: under 300 bytes per held lock.
//
// One iteration takes seconds; run it with -benchtime=1x.
func BenchmarkMemoryPerHeldLock(b *testing.B) { memoryPerHeldLock(b, nil) }

// BenchmarkMemoryPerHeldLockWithHolder is BenchmarkMemoryPerHeldLock with
// every lock naming a holder of its own (dsync.WithHolder, for deadlock
// detection): the grant keeps the holder's bytes in its own buffer, after
// its UID, so each lock costs the holder's length more (it cost an interned
// origin of its own, 320 bytes, before).
func BenchmarkMemoryPerHeldLockWithHolder(b *testing.B) {
	memoryPerHeldLock(b, func(i int) string { return "bench-host:4242/request-" + strconv.Itoa(i) })
}

// memoryPerHeldLock is the memory benchmarks' body; holder, if not nil,
// names the holder of lock i.
func memoryPerHeldLock(b *testing.B, holder func(i int) string) {
	ctx := context.Background()
	// Encode every request up front, so that only what the table keeps (and
	// the decoded strings it holds) is live when the heap is measured.
	wire := make([][]byte, heldLocks)
	for i := range wire {
		a := lockArgs(uid(i), "bucket/object-"+strconv.Itoa(i))
		if holder != nil {
			a.Holder = holder(i)
		}
		wire[i], _ = a.MarshalMsg(nil)
	}
	b.ReportAllocs()
	var perLock, perResource float64
	for b.Loop() {
		before := heapInuse()
		// Room for every lock whatever the shards they fall in (the cap is
		// per shard; see locker.Config.MaxGrants).
		l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, MaxGrants: 2 * heldLocks})
		for _, msg := range wire {
			var a locker.LockArgs
			if _, err := a.UnmarshalMsg(msg); err != nil {
				b.Fatal(err)
			}
			if r, err := l.Lock(ctx, a); err != nil || !r.OK {
				b.Fatalf("lock: %v %v", r, err)
			}
		}
		after := heapInuse()
		if st := l.Stats(); st.Grants != heldLocks {
			b.Fatalf("table holds %d grants, want %d", st.Grants, heldLocks)
		}
		perLock = float64(after-before) / heldLocks
		// The strings every design must keep per lock: the UID and the
		// resource name, each rounded up to its allocation size class (the
		// owner and source are few per process and can be shared).
		a := lockArgs(uid(1), "bucket/object-100000")
		perResource = float64(sizeClass(len(a.UID)) + sizeClass(len(a.Resources[0])))
		runtime.KeepAlive(l)
		l.Close()
	}
	b.ReportMetric(perLock, "bytes/lock")
	b.ReportMetric(perResource, "uid+name-bytes/lock")
	b.ReportMetric(0, "ns/op") // the time is setup, not a measurement
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// sizeClass rounds n up to the small-object size class the Go allocator
// uses for a string of n bytes (classes up to 64 bytes; enough here).
func sizeClass(n int) int {
	for _, c := range []int{8, 16, 24, 32, 48, 64, 80, 96, 112, 128} {
		if n <= c {
			return c
		}
	}
	return n
}
