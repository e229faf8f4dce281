package simulation

import (
	"bytes"
	"runtime"
	"runtime/metrics"
)

// Heuristic returns a Quiesce function for runs outside a testing/synctest
// bubble, such as the dsync-sim command's. It takes a dump of every
// goroutine of the process and calls the run quiescent when none but the
// caller is running, runnable or in a system call, after the scheduler's
// counts (runtime/metrics) have shown nothing runnable for three yields. That is what synctest.Wait knows exactly; the dump is a
// snapshot, so on a loaded machine it can still be fooled by a goroutine
// woken between two looks. The virtual clock then moves on early, which the
// system under test sees as a slow process: the run stays a valid run and
// every check on it stays sound, but it may not replay exactly.
//
// It watches the whole process: runs that use it must not overlap with other
// work in the same process (dsync-sim runs them one at a time).
func Heuristic(c *Cluster) func() {
	buf := make([]byte, 1<<20)
	samples := []metrics.Sample{
		{Name: "/sched/goroutines/running:goroutines"},
		{Name: "/sched/goroutines/runnable:goroutines"},
	}
	// cheapBusy reads the scheduler's approximate counts: far cheaper than
	// a dump, and enough to skip dumps while work is obviously going on.
	cheapBusy := func() bool {
		metrics.Read(samples)
		return samples[0].Value.Uint64() > 1 || samples[1].Value.Uint64() > 0
	}
	return func() {
		quiet := 0
		for i := range 10_000_000 { // bounded: a run that never settles still advances
			runtime.Gosched()
			// The counts are approximate and include the runtime's own
			// goroutines, so they can stay "busy" on a quiet run: every
			// 64th look is a dump whatever they say.
			if cheapBusy() && i%64 != 63 {
				quiet = 0
				continue
			}
			if quiet++; quiet < 3 && i%64 != 63 {
				continue
			}
			if !busy(&buf) {
				return
			}
			quiet = 0
		}
	}
}

// busy reports whether any goroutine but the caller is running, runnable or
// in a system call.
func busy(buf *[]byte) bool {
	n := runtime.Stack(*buf, true)
	for n == len(*buf) {
		*buf = make([]byte, 2*len(*buf))
		n = runtime.Stack(*buf, true)
	}
	dump := (*buf)[:n]
	first := true
	for len(dump) > 0 {
		line := dump
		if i := bytes.IndexByte(dump, '\n'); i >= 0 {
			line, dump = dump[:i], dump[i+1:]
		} else {
			dump = nil
		}
		if !bytes.HasPrefix(line, []byte("goroutine ")) {
			continue
		}
		if first { // the caller
			first = false
			continue
		}
		i, j := bytes.IndexByte(line, '['), bytes.IndexByte(line, ']')
		if i < 0 || j < i {
			continue
		}
		state := line[i+1 : j]
		if k := bytes.IndexByte(state, ','); k >= 0 {
			state = state[:k]
		}
		switch string(state) {
		case "running", "runnable", "syscall":
			return true
		}
	}
	return false
}
