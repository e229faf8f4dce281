package locker

import (
	"context"
	"errors"
	"fmt"
)

// NetLocker is one node's lock table as a client sees it: the in-memory table
// of this package, the HTTP client of package rest, or a simulated node. The
// quorum client in package dsync talks to every node through this interface
// and knows nothing of how a call travels.
//
// All methods are safe for concurrent use. Arguments are owned by the caller
// and not retained after the call returns, except that an implementation may
// keep the strings it was given, unless it is an ArgCopier that reports it
// copies them.
//
// Outcomes come in three kinds, and callers must keep them apart:
//   - Reply.OK true: the operation took effect on the node.
//   - Reply.OK false with a nil error: the node answered and refused (for a
//     lock: it is held by another, see Reply.Reason) or had nothing to do (for
//     an unlock: the UID is not held there; this is not an error, and callers
//     must not retry it).
//   - A non-nil error: the outcome is unknown (the node may be down, slow or
//     overloaded). If ctx was cancelled or its deadline passed while a lock
//     call was in flight, the node may still have granted it: a caller that
//     gives up must release the UID, as package dsync does.
type NetLocker interface {
	// Lock grants a write lock on every resource of args to args.UID, or on
	// none. Calling it again with a UID that already holds the same write lock
	// grants it again (the call is idempotent).
	Lock(ctx context.Context, args LockArgs) (Reply, error)
	// RLock grants a read lock on every resource of args to args.UID, or on
	// none. Read locks share; a write lock excludes all others.
	RLock(ctx context.Context, args LockArgs) (Reply, error)
	// Unlock releases the write lock held by args.UID. Reply.OK is false if the
	// node holds no write lock for that UID. Only the UID is needed. If
	// args.Resources is set too (and valid, as for Lock) and the UID holds
	// nothing on the node, Unlock also withdraws the writer intent (see
	// Config.WriterIntent) that a refused Lock of that UID declared on those
	// resources, unless a later refused writer has renewed it: a writer that
	// gives up sends it, so that readers are not held back for nobody.
	Unlock(ctx context.Context, args LockArgs) (Reply, error)
	// RUnlock releases the read lock held by args.UID. Reply.OK is false if
	// the node holds no read lock for that UID.
	RUnlock(ctx context.Context, args LockArgs) (Reply, error)
	// Refresh extends the validity of each UID in args and reports, per UID,
	// whether the node holds it.
	Refresh(ctx context.Context, args RefreshArgs) (RefreshReply, error)
	// ForceUnlock removes the grant of args.UID if it is set; otherwise it
	// removes every holder of args.Resources. Reply.OK reports whether
	// anything was removed.
	ForceUnlock(ctx context.Context, args LockArgs) (Reply, error)
	// IsOnline reports whether the node was reachable at the last attempt. A
	// client may fail calls at once while its node is offline.
	IsOnline() bool
	// String names the node, for errors and logs (an address, or "local").
	String() string
	// Close releases the resources of the client side. Calls after Close fail
	// with ErrClosed.
	Close() error
}

// Lister is implemented by lockers that can list what they hold, one page
// at a time. It is an optional capability, found by type assertion, for
// admin views: a listing tells the UIDs of the grants, which are
// capabilities (see UIDTag).
type Lister interface {
	// List returns a page of the listing: the entries, one per holder of
	// each resource, ordered by resource then UID, that come after the
	// cursor of args, at most args.Max of them (MaxListPage if zero or
	// more), with EntryList.More set if more follow. It changes nothing,
	// and is safe for concurrent use. Each page is read anew; Entries
	// walks them all.
	List(ctx context.Context, args ListArgs) (EntryList, error)
}

// Errors returned by lockers. Implementations wrap them with %w; compare with
// errors.Is.
var (
	// ErrInvalidArgs means the request was malformed: an empty UID, no
	// resources, too many of them, an empty or duplicate resource name.
	ErrInvalidArgs = errors.New("locker: invalid arguments")
	// ErrBusy means the node refused the call because too many calls were
	// already waiting for the same part of its table, or because the table
	// is full (ErrFull). The call changed nothing.
	ErrBusy = errors.New("locker: too many waiting calls")
	// ErrFull means the table holds as many grants as it may
	// (Config.MaxGrants) and refused a new one. It wraps ErrBusy: to a
	// client the node is busy. The call changed nothing.
	ErrFull = fmt.Errorf("locker: table full (%w)", ErrBusy)
	// ErrFenceExhausted means the node's fence counter has reached
	// MaxFence: it grants no lock, since the fence of the grant could not
	// exceed every fence before it. The call changed nothing. A node whose
	// counter reached MaxFence must be started again with a counter below
	// it (a new table starts it at the wall-clock time in nanoseconds).
	ErrFenceExhausted = errors.New("locker: fence counter exhausted")
	// ErrClosed means the locker was closed.
	ErrClosed = errors.New("locker: closed")
	// ErrOffline means the node could not be reached; the call was not sent,
	// or its outcome is unknown.
	ErrOffline = errors.New("locker: node offline")
	// ErrUnauthorized means the node rejected the caller's credentials.
	ErrUnauthorized = errors.New("locker: unauthorized")
	// ErrNotSent means the call never left the caller (the client was
	// closed, the node was known to be offline, or the client's own queue or
	// connections were full): it changed nothing on the node, so a caller
	// that gives up has nothing to release there. Implementations wrap it
	// alongside the reason, e.g. ErrOffline.
	ErrNotSent = errors.New("locker: call not sent")
)
