package locker

import (
	"fmt"
	"runtime"
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
	// DefaultWaitExpiry is how long a refused acquisition that names a
	// holder is recorded as waiting (see WaitReporter). Like
	// DefaultWriterIntent, it is twice the quorum client's longest retry
	// wait, so that a holder that keeps retrying keeps its wait recorded.
	DefaultWaitExpiry = 10 * time.Second
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

	// QuietPeriod is the restart grace period: how long after the table
	// starts it refuses every new lock with ReasonQuiet (telling the caller
	// how long is left, Reply.Grace) while it grants reclaims
	// (LockArgs.Reclaim) of locks that clients held before it started. A
	// node that restarts has an empty table; if it granted new locks at
	// once, a second writer could gather a quorum while the first still
	// holds its lock. During the grace period the first writer's refresher
	// finds its grant missing and reclaims it, with no call from the user,
	// so that restarting nodes, any number of them at once, lose no held
	// lock. The grace must last at least the validity the node gave grants
	// before it restarted.
	//
	// If zero, one Validity, or, if a boot record in StateDir says the node
	// held no grant when it last stopped (or has never run), none. If
	// negative (NoQuietPeriod), there is no grace period: that is safe only
	// for a table that never restarts under clients that hold locks (tests,
	// a single process), since a node restarted within a validity may then
	// grant a lock that is still held.
	QuietPeriod time.Duration

	// StateDir, if set, is a directory where the table keeps its boot
	// record: whether it has run before, with which validity, and whether
	// it held grants when it stopped. It lets a node that starts for the
	// first time, or after a Close that found no grant held, skip the grace
	// period of QuietPeriod, and makes the grace of a node that crashed at
	// least the validity it had then. The directory is created if needed
	// and must keep its content across restarts of the node (on Kubernetes,
	// a persistent volume): a node whose StateDir is wiped counts as new.
	// Only Open accepts it; New panics if it is set.
	StateDir string

	// MaxResources is how many resources one request may name. If zero,
	// DefaultMaxResources.
	MaxResources int

	// MaxWaiters bounds the calls waiting for one of the table's shards.
	// Past it, Lock and RLock fail at once with ErrBusy rather than pile up.
	// Unlocks and refreshes are never refused. If zero, DefaultMaxWaiters.
	MaxWaiters int

	// Shards is how many independently locked parts the table has: a power
	// of two from 1 to MaxShards. More shards let more cores work on the
	// table at once; fewer keep its hot memory small, and a table that shares
	// its machine's caches with much else runs faster with few. If zero,
	// four per GOMAXPROCS at New, rounded up to a power of two, at least 8 and
	// at most 256.
	Shards int

	// WriterIntent is how long a write lock refused because of readers
	// keeps new readers out of the resource (they are refused with
	// ReasonWriterWaiting); readers that hold the lock keep it. Each retry of
	// the writer renews the intent, and the writer's grant ends it, as does
	// an Unlock of the writer's UID that names the resources (a writer that
	// gives up; see NetLocker.Unlock). Without
	// it, a steady stream of readers can keep a writer out for ever. If zero,
	// DefaultWriterIntent. If negative, readers are never held back.
	WriterIntent time.Duration

	// WaitExpiry is how long a lock refused because of a conflict, whose
	// LockArgs name a holder, records that the holder waits for its
	// resources, for deadlock detection across processes (see
	// WaitReporter). Each refused retry renews the wait; a grant to the
	// holder, or a withdrawal, ends it; a holder that gives up without
	// withdrawing is forgotten after WaitExpiry. If zero, DefaultWaitExpiry.
	// If negative, no wait is recorded: the node reports no edges.
	WaitExpiry time.Duration

	// Clock is the source of time. If nil, the real clock (time.Now).
	Clock Clock
}

// Validate reports the first field of c that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Validity < 0:
		return fmt.Errorf("locker: Config.Validity %v is negative", c.Validity)
	case c.MaxResources < 0:
		return fmt.Errorf("locker: Config.MaxResources %d is negative", c.MaxResources)
	case c.MaxWaiters < 0:
		return fmt.Errorf("locker: Config.MaxWaiters %d is negative", c.MaxWaiters)
	case c.Shards < 0 || c.Shards > MaxShards || c.Shards&(c.Shards-1) != 0:
		return fmt.Errorf("locker: Config.Shards %d is not a power of two from 1 to %d", c.Shards, MaxShards)
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
	if c.QuietPeriod == 0 {
		c.QuietPeriod = c.Validity
	}
	if c.MaxResources == 0 {
		c.MaxResources = DefaultMaxResources
	}
	if c.MaxWaiters == 0 {
		c.MaxWaiters = DefaultMaxWaiters
	}
	if c.Shards == 0 {
		c.Shards = defaultShards(runtime.GOMAXPROCS(0))
	}
	if c.WriterIntent == 0 {
		c.WriterIntent = DefaultWriterIntent
	}
	if c.WaitExpiry == 0 {
		c.WaitExpiry = DefaultWaitExpiry
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	return c
}

// NoQuietPeriod, as Config.QuietPeriod, turns the restart grace period off.
// See Config.QuietPeriod for when that is safe.
const NoQuietPeriod time.Duration = -1

// MaxShards is the most shards a table may have (Config.Shards).
const MaxShards = 1 << 12

// defaultShards is the default of Config.Shards for procs processors: four
// each, so that cores rarely meet on one shard's mutex, but few enough that
// a small table's shards stay in cache. With 256 shards, 16 tables in one
// process on 2 cores spent 640 ns on a lock where 16 shards spent 400 ns.
func defaultShards(procs int) int {
	n := 8
	for n < 4*procs && n < 256 {
		n *= 2
	}
	return n
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Since reads only the monotonic clock (see Local.now).
func (realClock) Since(t time.Time) time.Duration { return time.Since(t) }

// MaxHolderLen bounds LockArgs.Holder: a longer one is refused with
// ErrInvalidArgs. A holder is a name (dsync sends the Dsync's Owner, a slash
// and the id given to dsync.WithHolder), and a table keeps its length in two
// bytes.
const MaxHolderLen = 1<<16 - 1
