package simulation

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestMain runs the tests with the collector at GOGC=400 unless the
// environment sets GOGC, as the dsync-sim command does: a simulated run
// allocates in bursts of short-lived objects and keeps little, and at the
// default of 100 the collector takes a large share of the wall time.
func TestMain(m *testing.M) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	os.Exit(m.Run())
}
