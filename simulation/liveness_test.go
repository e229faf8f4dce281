package simulation

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// crashedWriterIntent is random seed 118 reduced to its cause: a reader
// holds the lock, a writer asks, is refused because of the reader (which
// leaves a writer intent on the nodes, locker.Config.WriterIntent), and
// crashes while it waits; the reader leaves and another reader asks. Nothing
// will ever retry for the intent, so the second reader waits until it lapses
// on the nodes: that wait must fit in the liveness bound, counted from the
// crash (the last fault).
func crashedWriterIntent() Scenario {
	return Scenario{
		Name:   "crashed-writer-intent",
		Faults: "a writer refused because of a reader crashes while it waits",
		Expect: Safe,
		Setup: func(cfg *Config) {
			if cfg.Validity == 0 {
				cfg.Validity = 2 * time.Second // as the random scenario
			}
		},
		Drive: func(c *Cluster) (time.Duration, error) {
			h0, err := c.acquire(0, false)
			if err != nil {
				return 0, err
			}
			c.spawn(func() { c.Client(1).Acquire(resource, true) })
			c.Advance(c.Cfg.Hold) // the writer is refused, and retries, meanwhile
			crashAt := c.Now()
			c.CrashClient(1)
			if err := c.await(c.spawn(func() { h0.Release() }), time.Minute, "c0 release"); err != nil {
				return crashAt, err
			}
			h2, err := c.acquire(2, false)
			if err != nil {
				return crashAt, err
			}
			// The check proves something only if the second reader did meet
			// the crashed writer's intent.
			if waited := c.Now() - crashAt; waited < c.Cfg.WriterIntent-c.Cfg.Hold {
				return crashAt, fmt.Errorf("c2 granted %v after the writer crashed: it did not meet the writer's intent (%v)", waited, c.Cfg.WriterIntent)
			}
			return crashAt, c.await(c.useAndRelease(h2, c.Cfg.Hold), time.Minute, "c2 section")
		},
	}
}

// TestCrashedWriterIntent checks that a crashed writer's intent lapses
// within the liveness bound, as the random scenario's schedules need: they
// crash clients, some of them writers refused because of readers.
func TestCrashedWriterIntent(t *testing.T) {
	r := runScenario(t, crashedWriterIntent(), Config{Seed: 1})
	t.Log(r.Summary())
	for _, n := range r.Notes {
		t.Log(n)
	}
	for _, u := range r.Unexpected() {
		assert.Fail(t, u)
	}
}

// TestLivenessBoundCoversWriterIntent checks that the bound waits out the
// longer of the two kinds of state a crashed client leaves behind: its
// grants (Validity) and its writer intents (WriterIntent).
func TestLivenessBoundCoversWriterIntent(t *testing.T) {
	base := Config{Validity: 2 * time.Second, WriterIntent: time.Second}
	long := base
	long.WriterIntent = 10 * time.Second
	off := base
	off.WriterIntent = -1
	assert.Equal(t, 8*time.Second, LivenessBound(long)-LivenessBound(base), "an intent of 10s instead of 1s, with a validity of 2s, adds to the bound")
	assert.Equal(t, LivenessBound(base), LivenessBound(off), "intent off: bound, want as with an intent shorter than the validity")
}
