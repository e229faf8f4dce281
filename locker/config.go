package locker

import (
	"fmt"
	"runtime"
	"time"
)

// Defaults for the zero values of Config.
const (
	// DefaultMaxQueued is how many lock requests may wait on a table at
	// once: about 30 MB of waiters.
	DefaultMaxQueued = 100_000
	// DefaultValidity is how long a grant lives on a node without a refresh.
	DefaultValidity = time.Minute
	// DefaultMaxResources is how many resources one request may name.
	DefaultMaxResources = 1000
	// DefaultMaxNameLen bounds a resource name: room for any S3 object
	// name (a bucket of up to 63 bytes, a slash and a key of up to 1024)
	// with a prefix or suffix of the application's (package dsync's Cond
	// adds "/waiters").
	DefaultMaxNameLen = 2048
	// DefaultMaxUIDLen bounds a UID: package dsync's are about 20 bytes, a
	// UUID's text 36.
	DefaultMaxUIDLen = 128
	// DefaultMaxLabelLen bounds each of a lock's Owner, Source and Holder:
	// a process's name, a file:line, and the two joined with a holder's id.
	DefaultMaxLabelLen = 256
	// DefaultMaxWaiters is how many calls may wait for one shard of the table.
	DefaultMaxWaiters = 1000
	// DefaultMaxGrants bounds the resources the grants of a table hold. A
	// held lock on one resource costs about 252 bytes with the names and
	// UIDs of bench/memory_test.go (a million of them took 241 MB), and
	// 3,587 bytes with the longest name, UID and labels the defaults allow,
	// labels of its own (not shared with other grants) and a holder: at
	// most about 3.6 GB.
	DefaultMaxGrants = 1_000_000
	// DefaultMaxTombstones bounds the tombstones of a table. A tombstone
	// costs about 143 bytes with a UID of 20 bytes (package dsync's), 182
	// with a UUID's 36, and 284 with the longest the defaults allow: 36 MB,
	// 45 MB, and at most 71 MB.
	DefaultMaxTombstones = 250_000
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

	// MaxNameLen bounds, in bytes, each resource name of every call that
	// names resources (Lock, RLock, Unlock and RUnlock that name them,
	// ForceUnlock, Query, Waits); a longer one is refused with
	// ErrInvalidArgs. If zero, DefaultMaxNameLen.
	MaxNameLen int

	// MaxUIDLen bounds, in bytes, the UID of every call that takes one
	// (Lock, RLock, Unlock, RUnlock, ForceUnlock, and each of a Refresh's,
	// which is refused whole if one is longer); a longer one is refused
	// with ErrInvalidArgs. If zero, DefaultMaxUIDLen.
	MaxUIDLen int

	// MaxLabelLen bounds, in bytes, each of the labels of a lock request
	// (LockArgs.Owner, Source and Holder) and the holder a Waits
	// withdrawal names; a longer one is refused with ErrInvalidArgs. It
	// may not exceed MaxHolderLen. If zero, DefaultMaxLabelLen.
	MaxLabelLen int

	// MaxGrants bounds what the table's grants hold, in resources: a grant
	// on k resources counts k, as a listing shows one Entry for each. Past
	// it, Lock and RLock fail with an error wrapping ErrFull (and so
	// ErrBusy: the call changed nothing, and a quorum client treats the
	// node as busy), and Stats.Refused counts them; a repeated request for
	// a grant the UID already has is answered as always. Grants that have
	// expired count until they are reclaimed, which a lock refused for room
	// does first.
	//
	// The cap is enforced per shard, as MaxGrants/Shards rounded up, so
	// that counting costs nothing shared on the lock path: a shard is full
	// on its own, while the table as a whole may hold a little less than
	// MaxGrants (with random UIDs, a few percent less once it is nearly
	// full; a table of one shard holds exactly MaxGrants). If zero,
	// DefaultMaxGrants.
	MaxGrants int

	// MaxTombstones bounds the tombstones the table keeps: the UIDs of
	// unlocks that found nothing to release, kept for one Validity so that
	// a lock request overtaken by its own release is refused when it
	// arrives. Past it, each new tombstone evicts the oldest of its shard
	// (MaxTombstones/Shards, rounded up, per shard), and Stats.Evicted
	// counts them. An eviction costs little: only if the evicted UID's lock
	// request still arrives is it granted, a leftover grant that nobody
	// refreshes, which blocks its resources until it expires after
	// Validity. Tombstones are evicted oldest first, so at a rate of r
	// unlocks of unknown UIDs a second a tombstone lives at least about
	// MaxTombstones/r seconds. If zero, DefaultMaxTombstones.
	MaxTombstones int

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

	// MaxQueued bounds the lock requests waiting on the table at once
	// (LockArgs.Wait; see queue.go). Past it a request that must wait is
	// refused, as one without Wait is, and its client backs off. A waiter
	// costs about 300 bytes and the strings of its request. If zero,
	// DefaultMaxQueued.
	MaxQueued int

	// Clock is the source of time. If nil, the real clock (time.Now). A
	// clock that also has a method AfterFunc(d time.Duration, f func()) (stop
	// func() bool), as those of package clock do, also times the waits of
	// queued requests; otherwise the real clock's timers do.
	Clock Clock
}

// Validate reports the first field of c that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Validity < 0:
		return fmt.Errorf("locker: Config.Validity %v is negative", c.Validity)
	case c.MaxQueued < 0:
		return fmt.Errorf("locker: Config.MaxQueued %d is negative", c.MaxQueued)
	case c.MaxResources < 0:
		return fmt.Errorf("locker: Config.MaxResources %d is negative", c.MaxResources)
	case c.MaxNameLen < 0:
		return fmt.Errorf("locker: Config.MaxNameLen %d is negative", c.MaxNameLen)
	case c.MaxUIDLen < 0:
		return fmt.Errorf("locker: Config.MaxUIDLen %d is negative", c.MaxUIDLen)
	case c.MaxLabelLen < 0 || c.MaxLabelLen > MaxHolderLen:
		return fmt.Errorf("locker: Config.MaxLabelLen %d is not within 0..%d (MaxHolderLen)", c.MaxLabelLen, MaxHolderLen)
	case c.MaxWaiters < 0:
		return fmt.Errorf("locker: Config.MaxWaiters %d is negative", c.MaxWaiters)
	case c.MaxGrants < 0:
		return fmt.Errorf("locker: Config.MaxGrants %d is negative", c.MaxGrants)
	case c.MaxTombstones < 0:
		return fmt.Errorf("locker: Config.MaxTombstones %d is negative", c.MaxTombstones)
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
	if c.MaxNameLen == 0 {
		c.MaxNameLen = DefaultMaxNameLen
	}
	if c.MaxUIDLen == 0 {
		c.MaxUIDLen = DefaultMaxUIDLen
	}
	if c.MaxLabelLen == 0 {
		c.MaxLabelLen = DefaultMaxLabelLen
	}
	if c.MaxWaiters == 0 {
		c.MaxWaiters = DefaultMaxWaiters
	}
	if c.MaxGrants == 0 {
		c.MaxGrants = DefaultMaxGrants
	}
	if c.MaxTombstones == 0 {
		c.MaxTombstones = DefaultMaxTombstones
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
	if c.MaxQueued == 0 {
		c.MaxQueued = DefaultMaxQueued
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

// MaxHolderLen is the most Config.MaxLabelLen may be, and so the longest
// LockArgs.Holder a table accepts: a table keeps a holder's length in two
// bytes.
const MaxHolderLen = 1<<16 - 1
