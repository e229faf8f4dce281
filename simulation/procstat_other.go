//go:build !linux

package simulation

// residentSet is not known here: ReadProcStat falls back on the runtime's
// own figure.
func residentSet() (uint64, bool) { return 0, false }

// openFDs is not known here.
func openFDs() int { return -1 }
