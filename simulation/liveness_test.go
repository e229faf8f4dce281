package simulation

import (
	"testing"
	"time"
)

// TestLivenessBoundCoversWriterIntent checks that the bound waits out the
// longer of the two kinds of state a crashed client leaves behind: its
// grants (Validity) and its writer intents (WriterIntent).
func TestLivenessBoundCoversWriterIntent(t *testing.T) {
	base := Config{Validity: 2 * time.Second, WriterIntent: time.Second}
	long := base
	long.WriterIntent = 10 * time.Second
	off := base
	off.WriterIntent = -1
	if got, want := LivenessBound(long)-LivenessBound(base), 8*time.Second; got != want {
		t.Errorf("an intent of 10s instead of 1s, with a validity of 2s, adds %v to the bound, want %v", got, want)
	}
	if LivenessBound(off) != LivenessBound(base) {
		t.Errorf("intent off: bound %v, want %v as with an intent shorter than the validity", LivenessBound(off), LivenessBound(base))
	}
}
