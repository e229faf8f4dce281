package dsync

import (
	"errors"

	"github.com/dsync-go/dsync/refresher"
)

// Errors returned by this package, wrapped with %w: compare with errors.Is.
// A call that gives up because its context ended returns an error wrapping
// ctx's error (context.Canceled or context.DeadlineExceeded) instead.
var (
	// ErrTimeout means Options.Timeout passed before a quorum granted the
	// lock. The error also wraps the reason of the last attempt (ErrLocked or
	// ErrNoQuorum).
	ErrTimeout = errors.New("dsync: timed out waiting for the lock")
	// ErrLocked means an attempt failed because nodes refused: another
	// client holds a conflicting lock.
	ErrLocked = errors.New("dsync: held by another")
	// ErrNoQuorum means an attempt failed because too many nodes could not
	// be reached or failed for a quorum to be possible.
	ErrNoQuorum = errors.New("dsync: quorum not reachable")
	// ErrRestarting means an attempt failed because nodes refused while in
	// their restart grace period (locker.Config.QuietPeriod). The error is
	// a *RestartingError, which says how long until enough nodes are out of
	// it; it also wraps ErrNoQuorum.
	ErrRestarting = errors.New("dsync: nodes restarting")
	// ErrLockLost is the cause (see context.Cause) of a lock context
	// cancelled because the lock was lost: more than n−quorum nodes no longer
	// hold it, or no refresh reached a quorum within the validity. It wraps
	// refresher.ErrLost. Unlock and RUnlock return an error wrapping it when
	// fewer than a quorum of nodes still held the lock when it was
	// released: the critical section may have overlapped another holder's.
	ErrLockLost = refresher.ErrLost
	// ErrUnlockPending means Unlock returned before a quorum confirmed the
	// release. The release goes on in the background for Config.UnlockRetryFor;
	// whatever is left expires on the nodes after their validity.
	ErrUnlockPending = errors.New("dsync: unlock not yet confirmed by a quorum; retrying in the background")
	// ErrClosed means the Dsync was closed.
	ErrClosed = errors.New("dsync: closed")
	// ErrBarrierClosed means Wait was called after Close.
	ErrBarrierClosed = errors.New("dsync: barrier closed")
	// ErrDeadlock means an acquisition would have waited for itself: its holder
	// waits for a lock held by a holder that waits, directly or through others,
	// for a lock its own holder holds, and its holder is the cycle's victim
	// (see WithHolder). The error names the cycle. The caller should release
	// what the holder holds.
	ErrDeadlock = errors.New("dsync: deadlock")
	// ErrHierarchy means a lock was asked for out of its hierarchy's order: at a
	// level that is not below every level the Held already has, at a level the
	// Hierarchy does not have, or at one level in two modes at once.
	ErrHierarchy = errors.New("dsync: lock hierarchy order violated")
	// ErrLeaseExpired is the cause (see context.Cause) of a Lease's context
	// cancelled because the lease reached its LeaseOptions.MaxHold. It does not
	// wrap ErrLockLost: the lock was given up on purpose, not lost.
	ErrLeaseExpired = errors.New("dsync: lease reached its maximum hold time")
	// ErrFenceUnsupported means a locker of the Dsync does not implement
	// locker.Fencer, which DRWMutex.FencingToken needs (the in-memory table
	// and the HTTP client of package rest both do).
	ErrFenceUnsupported = errors.New("dsync: a locker has no fence counter (locker.Fencer)")
	// ErrVersionUnsupported means a locker of the Dsync does not implement
	// locker.Versioner, which DRWMutex.ReadVersion and Validate need (the
	// in-memory table and the HTTP client of package rest both do).
	ErrVersionUnsupported = errors.New("dsync: a locker cannot tell the versions of resources (locker.Versioner)")
	// ErrQueryUnsupported means a locker of the Dsync does not implement
	// locker.Querier, which Barrier and Cond need to see who holds what (the
	// in-memory table and the HTTP client of package rest both do).
	ErrQueryUnsupported = errors.New("dsync: a locker cannot answer queries (locker.Querier)")
)
