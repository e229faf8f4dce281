// Package dsync takes read and write locks on a set of nodes by quorum,
// without consensus and without a leader.
//
// Every node embeds a lock table (package [locker]) and serves it, for
// example over HTTP (package [github.com/dsync-go/dsync/rest]). A process creates one Dsync over the n nodes and
// locks resources with a DRWMutex:
//
//	ds, err := dsync.New(lockers, dsync.Config{})
//	...
//	m := dsync.NewDRWMutex(ds, "bucket/object")
//	lockCtx, err := m.GetLock(ctx, dsync.Options{Timeout: 5 * time.Second})
//	if err != nil {
//		return err // errors.Is(err, dsync.ErrTimeout), context.Canceled, ...
//	}
//	defer m.Unlock(context.Background())
//	return writeObject(lockCtx) // stops when the lock is lost
//
// # Quorum
//
// An attempt asks all n nodes at once. A write lock is held when
// W = floor(n/2)+1 nodes grant it, a read lock when R = ceil(n/2) do. Since
// W+W > n and W+R > n, two write grants, or a write and a read grant, share a
// node, and that node refuses the second one. Up to n−W nodes may be down for
// writes and n−R for reads:
//
//	 n   R   W   nodes that may fail (read / write)
//	 1   1   1   0 / 0
//	 2   1   2   1 / 0
//	 3   2   2   1 / 1
//	 4   2   3   2 / 1
//	 5   3   3   2 / 2
//	 8   4   5   4 / 3
//	16   8   9   8 / 7
//
// An attempt decides as soon as the outcome is known: a quorum granted, or
// more than n−quorum nodes refused or failed. A failed attempt releases
// whatever it was granted, and grants that arrive after the client gave up are
// released too. Retries wait a random time that grows with each attempt (see
// Config.RetryMin), so contending clients spread out instead of storming the
// nodes.
//
// # Lock sets
//
// Every lock of a Dsync made by New goes to all n nodes, so the cost of a
// lock grows with n. NewSets takes the nodes as sets of equal size (MinIO's
// erasure sets, usually 4 to 16 nodes) and locks each resource on one set,
// SetIndex(name, sets), with that set's quorum: a cluster of 64 nodes in 16
// sets of 4 costs each lock what 4 nodes cost. The table above then holds
// per set: with sets of 4, one node of every set may be down at once for
// writes, but two of one set stop the writes of that set's resources (and
// of locks across it), whatever the other sets' health. A lock on resources
// of several sets takes them set by set in ascending order, all or nothing,
// which cannot deadlock (see NewSets). A node may serve several sets; the
// refresher still sends it one request per interval. A cluster changes
// layout (grows) without stopping its clients by rolling them through
// NewTransition, whose locks exclude those of the old layout and those of
// the new.
//
// # Holding a lock
//
// A held lock is refreshed on every node every Config.RefreshInterval (more
// often if the nodes' validity needs it), with one request per node for all
// the locks of the process (package [refresher]). Every grant and refresh
// answer carries the node's validity, and the lock's deadline is the time
// its last quorum was reached plus the smallest validity among a quorum of
// its nodes, less a fiftieth for the rates of the clocks; Config.Validity
// only ever shortens it. The lock is lost when more than n−quorum nodes
// answer that they no longer hold it (a node in its restart grace period is
// sent a reclaim instead: see below), or when its deadline passes without a
// refresh that reached a quorum. Then the context returned by GetLock is
// cancelled with cause ErrLockLost, and what is left of the lock is
// force-released. Do the protected work under that context.
//
// A node that restarts has an empty table, and a grace period of one
// validity (locker.Config.QuietPeriod) in which it refuses new locks
// (ErrRestarting, with how long to wait) and grants reclaims: the refresher
// finds the lock missing there and re-asserts it, with nothing asked of the
// caller, so a restart of any number of nodes loses no held lock. It
// reclaims only on nodes that held the lock until its current deadline (they
// granted the acquisition, or refreshed it in the round that set the
// deadline), and each reclaim names the restarted node's incarnation, so
// that no reclaim grants a lock that the node may have given to another:
// see package [refresher].
//
// Unlock asks every node to release the lock and returns once a quorum has
// confirmed the release, or can no longer, at most Config.CallTimeout later:
// a slow node does not hold up every unlock. It returns ErrLockLost if more
// than n−quorum nodes no longer held the lock (out of their grace period):
// the critical section may have overlapped another holder's. The other
// answers are awaited without the caller; nodes that failed are retried in
// the background, and whatever is left expires on the nodes after their
// validity.
//
// # What is guaranteed, and what is not
//
// At most one client holds a write lock on a resource, or any number hold
// read locks and none a write lock, and a holder's context is cancelled
// before any conflicting grant, whatever its Config says, as long as
//   - at most n−W nodes (for writes; n−R for reads) are down or cut off from
//     the holder at a time, in any pattern; nodes may restart, any number of
//     them at once, with their default grace period (a node whose grace is
//     turned off, or shorter than the validity it gave before it restarted,
//     counts as failed while a grant it forgot lives);
//   - the clocks of every node and client run at the same rate within 2% (a
//     fiftieth of the validity is the margin); no clock is ever compared with
//     another machine's;
//   - a holder does not stall (GC pause, swap, a stopped VM) between a check
//     of its lock context and the write it guards for longer than what is
//     left of its validity at the check. A stalled holder cannot notice that
//     its lock context was cancelled; storage must reject stale writers with
//     a fencing token: DRWMutex.FencingToken returns one that is larger than
//     every earlier holder's, without consensus (see its doc for why).
//
// The module's docs/guarantees.md states the same in full, with the faults
// it does not survive; the README's "Guarantees" lists the simulation's
// evidence for each.
//
// Locks are held in memory only. Every resource must always be locked through
// the same set of nodes: two Dsyncs over different node sets do not exclude
// each other.
//
// # Primitives
//
// Built on DRWMutex, and exactly as safe as the quorum locks under them, each
// in the file named after it:
//   - Mutex: the write side of a DRWMutex shaped like sync.Mutex, with
//     Locker and RLocker adapters to sync.Locker;
//   - Semaphore: n permits, permit i a write lock on name/permit/i;
//   - Hierarchy: locks taken outermost level first, all or nothing, and
//     ErrHierarchy for a level out of order, which rules out deadlock among
//     holders that use it;
//   - Lease: a lock with a maximum hold (MaxHold, MaxRenewals) and a
//     validity check (Valid, and Verify, which asks the nodes);
//   - WithHolder: deadlock detection, within a process and across
//     processes: when holders wait for each other in a cycle, the
//     acquisition of the cycle's largest holder fails with ErrDeadlock, and
//     its caller releases what it holds. Across processes the nodes hold the
//     wait-for graph (the optional locker.WaitReporter capability); a waiter
//     reads it after a refusal and counts an edge only if the holder's
//     quorum of nodes reports it. Best effort: a cycle it misses ends at
//     Options.Timeout; a Hierarchy prevents cycles instead;
//   - Barrier and Cond, which also read the node tables through the optional
//     locker.Querier capability (ErrQueryUnsupported without it).
//
// And one that is not a lock: AdaptiveTimeout, an acquisition timeout per
// class of lock (Options.Adaptive) that grows when many acquisitions time
// out while others hold the lock, and shrinks toward what they took when
// none do, between a floor and a ceiling. It changes how long callers wait,
// never what is safe.
//
// # Speed
//
// An attempt submits its calls to the nodes without a goroutine per call
// when a locker can take them so ([locker.Submitter]; the in-memory table
// and the HTTP client of package [github.com/dsync-go/dsync/rest] both can),
// and the caller is woken once per decision, not once per answer.
//
// # Metrics
//
// Config.Observer hears of every acquisition, lost lock and refresh round;
// package [github.com/dsync-go/dsync/dsyncprom] implements it for
// Prometheus. The path of one acquisition through this package's files is
// told at the top of acquire.go.
package dsync
