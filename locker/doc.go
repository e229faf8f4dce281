// Package locker is one node's lock table, and the contract every locker
// implements.
//
// A node holds, for each locked resource, either one writer or any number of
// readers, each identified by the UID of the acquisition. The quorum client
// (package [github.com/dsync-go/dsync/dsync]) sends the same request, with the same UID, to every node and
// counts the grants; this package knows nothing of quorums, networks or other
// nodes, and imports nothing else of this module.
//
// # The table
//
// New returns a Local: an in-memory table split into shards (Config.Shards), each under
// its own mutex, so that a surge on some resources does not queue every caller
// behind one lock. How many callers may wait for one shard is bounded
// (Config.MaxWaiters); past it a lock call fails at once with ErrBusy.
//
//	tbl := locker.New(locker.Config{Validity: time.Minute})
//	defer tbl.Close()
//	reply, err := tbl.Lock(ctx, locker.LockArgs{UID: uid, Resources: []string{"bucket/object"}})
//
// A write lock over several resources is granted for all of them or none.
// Unlocking what is not held answers OK=false, never an error, so that no
// client retries it forever; it also leaves a tombstone for the UID, so that a
// lock request overtaken by its own release is refused when it arrives.
//
// # Bounds
//
// Whatever its clients send, a table's memory is bounded by its Config:
// each request by MaxResources, MaxNameLen, MaxUIDLen and MaxLabelLen
// (refused with ErrInvalidArgs past them), the grants by MaxGrants (a lock
// past it fails with ErrFull, which wraps ErrBusy), the tombstones by
// MaxTombstones (the oldest is evicted), a listing by the page it asks for
// (at most MaxListPage), and the waiters of a shard by MaxWaiters. Fences
// stop at MaxFence rather than wrap around (ErrFenceExhausted). The
// defaults bound a table to a few hundred MB with the names of an object
// store, and 3.6 GB at most (see DefaultMaxGrants); Stats counts what the
// caps refused and evicted.
//
// # Expiry
//
// A grant not refreshed within Config.Validity is gone: it no longer blocks
// other lockers, and a refresh of it answers "not held". Time is read from the
// node's own clock (Config.Clock; the monotonic clock by default), never
// compared with another machine's. Each shard keeps its grants in order of
// their last refresh, so refresh, expiry and reclaiming cost O(1) per grant
// and never scan the table.
//
// A caller that makes many lock calls in a row, as a node serving a batch
// request does, may pass a Burst (StartBurst) as their context: the calls
// then share readings of the clock, one per BurstCalls calls, and check the
// context only when they renew it. A grant is never stamped earlier than the
// start of the burst, after its request arrived, so none expires before its
// client expects it to.
//
// # Restarts
//
// The table lives in memory. A node that restarts has forgotten every lock
// it held; Config.QuietPeriod makes it refuse new locks for a while after
// it starts, so that it cannot help a second writer to a quorum while the first
// still holds the lock on the other nodes.
//
// # Holders and waits
//
// A lock request may name its holder across processes (LockArgs.Holder); the
// table keeps it with the grant. A request that names a holder and is refused
// because of a conflicting grant records that the holder waits for the
// resources, for Config.WaitExpiry unless a retry renews it, a grant to the
// holder ends it, or the client withdraws it. Local's Waits (the optional
// WaitReporter capability) reports the wait-for edges this gives: who waits
// for a resource held by whom. Package dsync reads them from every node to
// find deadlocks across processes; the table decides nothing from them.
//
// # Wire types
//
// The request and reply types in wire.go are encoded with MessagePack by
// generated code (wire_gen.go); package [github.com/dsync-go/dsync/rest] sends them over HTTP.
// Subpackage [github.com/dsync-go/dsync/locker/lockertest] is the conformance suite every
// NetLocker must pass.
package locker
