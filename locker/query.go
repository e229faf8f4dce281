package locker

import "context"

// Querier is implemented by lockers that can tell who holds given resources,
// changing nothing. It is an optional capability, found by type assertion:
// package dsync's Barrier and Cond need it, because a refused lock attempt
// cannot tell "held" from "another attempt collided with mine", and writer
// intent refuses reads of a resource nobody holds. Every other use of the
// node set needs only NetLocker.
//
// Query is safe for concurrent use. It returns, for each resource of args in
// order, the grants the node holds on it at the moment it looks: never an
// expired grant, never a tombstone, each with its mode (Holder.Mode, and
// Holder.Write for X, as nodes that predate modes tell it). It names each grant by the tag of its
// UID (UIDTag), and tells the UID itself only of a grant whose lock made it
// public (LockArgs.PublicUID): a UID is a capability. Each resource is read atomically, but
// several resources are not read at one instant. A query does not refresh,
// and grants nothing. It fails with ErrInvalidArgs for no resources, too
// many, or an empty name, and, like the other calls, with ErrClosed, ErrBusy
// or a transport error.
type Querier interface {
	Query(ctx context.Context, args QueryArgs) (QueryReply, error)
}
