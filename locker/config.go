package locker

import (
	"fmt"
	"time"
)

// Defaults for the zero values of Config.
const (
	// DefaultValidity is how long a grant lives on a node without a refresh.
	DefaultValidity = time.Minute
	// DefaultMaxResources is how many resources one request may name.
	DefaultMaxResources = 1000
	// DefaultMaxWaiters is how many calls may wait for one shard of the table.
	DefaultMaxWaiters = 1000
	// DefaultWriterIntent is how long a writer refused because of readers
	// keeps new readers out. It is twice the quorum client's longest retry
	// wait, so that a writer that keeps retrying keeps its intent alive.
	DefaultWriterIntent = 10 * time.Second
)

// Clock tells the table the time. Durations are taken as differences of Now,
// so an implementation backed by time.Now measures them on the monotonic
// clock. *clock.Fake from this module's clock package implements it.
type Clock interface {
	Now() time.Time
}

// Config configures a Local table. The zero value is valid and gives the
// documented defaults.
type Config struct {
	// Validity is how long a grant lives without a refresh. A grant not
	// refreshed for Validity is treated as absent at once (it no longer blocks
	// other lockers and answers "not held" to a refresh) and its memory is
	// reclaimed by the next sweep. If zero, DefaultValidity.
	Validity time.Duration

	// SweepInterval is how often the background sweep reclaims expired grants.
	// If zero, Validity/2. If negative, no background sweep runs and expired
	// grants are reclaimed only when they are found in the way of a new lock
	// or when Expire is called.
	SweepInterval time.Duration

	// QuietPeriod is how long after New the table refuses every new lock with
	// ReasonQuiet. A node restarts with an empty table; if it granted locks
	// again at once, a second writer could gather a quorum while the first
	// still holds its lock on the nodes that did not restart. Setting
	// QuietPeriod to at least the clients' validity closes that hole, at the
	// price of a node that grants nothing for that long after it starts. If
	// zero, there is no quiet period.
	QuietPeriod time.Duration

	// MaxResources is how many resources one request may name. If zero,
	// DefaultMaxResources.
	MaxResources int

	// MaxWaiters bounds the calls waiting for one of the table's shards.
	// Past it, Lock and RLock fail at once with ErrBusy rather than pile up.
	// Unlocks and refreshes are never refused. If zero, DefaultMaxWaiters.
	MaxWaiters int

	// WriterIntent is how long a write lock refused because of readers
	// keeps new readers out of the resource (they are refused with
	// ReasonWriterWaiting); readers that hold the lock keep it. Each retry of
	// the writer renews the intent, and the writer's grant ends it. Without
	// it, a steady stream of readers can keep a writer out for ever. If zero,
	// DefaultWriterIntent. If negative, readers are never held back.
	WriterIntent time.Duration

	// Clock is the source of time. If nil, the real clock (time.Now).
	Clock Clock
}

// Validate reports the first field of c that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Validity < 0:
		return fmt.Errorf("locker: Config.Validity %v is negative", c.Validity)
	case c.QuietPeriod < 0:
		return fmt.Errorf("locker: Config.QuietPeriod %v is negative", c.QuietPeriod)
	case c.MaxResources < 0:
		return fmt.Errorf("locker: Config.MaxResources %d is negative", c.MaxResources)
	case c.MaxWaiters < 0:
		return fmt.Errorf("locker: Config.MaxWaiters %d is negative", c.MaxWaiters)
	}
	return nil
}

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	if c.Validity == 0 {
		c.Validity = DefaultValidity
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = c.Validity / 2
	}
	if c.MaxResources == 0 {
		c.MaxResources = DefaultMaxResources
	}
	if c.MaxWaiters == 0 {
		c.MaxWaiters = DefaultMaxWaiters
	}
	if c.WriterIntent == 0 {
		c.WriterIntent = DefaultWriterIntent
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	return c
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Since reads only the monotonic clock (see Local.now).
func (realClock) Since(t time.Time) time.Duration { return time.Since(t) }
