package simulation

import (
	"runtime"
	"runtime/debug"
	"time"
)

// ProcStat is what a soak samples of its own process: the resources that
// grow when something leaks.
type ProcStat struct {
	// RSS is the process's resident set in bytes as it was found: VmRSS of
	// /proc/self/status on Linux. Elsewhere it is runtime.MemStats.Sys
	// less HeapReleased, the memory the Go runtime holds from the operating
	// system, a stand-in that misses memory allocated outside the runtime;
	// RSSFromOS then is false.
	RSS       uint64
	RSSFromOS bool
	// HeldRSS is the same measure right after debug.FreeOSMemory (a
	// garbage collection that returns every free page to the operating
	// system): the memory the process holds. RSS also counts memory the
	// runtime freed but has not yet returned, which it returns over minutes
	// (its scavenger is paced), so RSS stays up for a while after a burst
	// of allocation (a fault's); HeldRSS comes down with the live heap, and
	// a leak keeps it up.
	HeldRSS uint64
	// HeapInuse is runtime.MemStats.HeapInuse after that collection: bytes
	// in in-use heap spans, about the live heap.
	HeapInuse uint64
	// Goroutines is runtime.NumGoroutine, the least of several readings
	// (see ReadProcStat).
	Goroutines int
	// FDs is how many file descriptors the process has open (the entries
	// of /proc/self/fd, less the one that reads it), the least of several
	// readings, or -1 where that is not known (outside Linux).
	FDs int
}

// procReadings is how many times ReadProcStat counts goroutines and file
// descriptors, procReadingGap apart, keeping the least count of each: a
// goroutine or a connection that lives for one call (hundreds of them
// come and go every second under load) is then rarely counted, while one
// that leaks is counted every time. A single reading moves by ±10% of
// the soak's hundred goroutines with the calls in flight at that instant.
const (
	procReadings   = 5
	procReadingGap = 10 * time.Millisecond
)

// ReadProcStat samples the process, over procReadings×procReadingGap. It
// forces a garbage collection and stops the world briefly (it reads
// runtime.MemStats), so call it seconds apart, not in a loop.
func ReadProcStat() ProcStat {
	st := ProcStat{Goroutines: runtime.NumGoroutine(), FDs: openFDs()}
	for range procReadings - 1 {
		time.Sleep(procReadingGap)
		st.Goroutines, st.FDs = min(st.Goroutines, runtime.NumGoroutine()), min(st.FDs, openFDs())
	}
	var ms runtime.MemStats
	rss, fromOS := residentSet()
	if !fromOS {
		runtime.ReadMemStats(&ms)
		rss = ms.Sys - ms.HeapReleased
	}
	st.RSS, st.RSSFromOS = rss, fromOS
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	st.HeapInuse = ms.HeapInuse
	if st.HeldRSS, fromOS = residentSet(); !fromOS {
		st.HeldRSS = ms.Sys - ms.HeapReleased
	}
	return st
}
