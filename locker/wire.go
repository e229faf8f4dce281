package locker

import "time"

//go:generate go tool msgp -file wire.go -o wire_gen.go

// The types in this file travel between a client and a node. They are encoded
// with MessagePack by code that github.com/tinylib/msgp generates into
// wire_gen.go; run `go generate ./locker` after changing them and commit the
// result. Field tags are short because they are sent with every request, and
// fields that are usually zero are left out when they are (omitempty): a
// decoder sets a field it does not find to its zero value.
//
//msgp:clearomitted
//
// Decoders of network input bound every array and map they allocate:
//msgp:limit arrays:100000 maps:64 marshal:true

// LockArgs names one acquisition and what it covers. The same LockArgs, with
// the same UID, is sent to every node of the locker set.
type LockArgs struct {
	// UID identifies this acquisition. It is chosen by the client, is the same
	// on every node, and must not be reused for another acquisition.
	UID string `msg:"u"`
	// Resources are the names locked, sorted and without duplicates. A write
	// lock on several resources is granted on a node for all or none.
	Resources []string `msg:"r,omitempty"`
	// Owner names the process that asked (for listings and force-unlock).
	Owner string `msg:"o,omitempty"`
	// Source is the caller's file:line, for debugging stale locks.
	Source string `msg:"s,omitempty"`
	// Quorum is how many nodes the client needs to grant the lock. Nodes keep
	// it for listings; it does not change a node's decision.
	Quorum int `msg:"q,omitempty"`
	// NoIntent, on a write lock, says the client will not retry if refused
	// (a TryLock): a node that refuses it because of readers does not hold
	// new readers back for it (see Config.WriterIntent). Nodes that predate
	// the field ignore it.
	NoIntent bool `msg:"ni,omitempty"`
	// Holder, if not empty, names the holder of the acquisition across
	// processes, for deadlock detection (see WaitReporter): package dsync
	// sends the Dsync's Owner, a slash and the id given to dsync.WithHolder.
	// A node keeps it with the grant, and a lock refused because of a
	// conflict (unless NoIntent is set) records that this holder waits for
	// the resources. Nodes treat it as opaque. Empty for acquisitions without
	// a holder, and then left off the wire; nodes that predate the field
	// ignore it. At most MaxHolderLen bytes.
	Holder string `msg:"h,omitempty"`
	// Reclaim, on a Lock or RLock, re-asserts a grant that the client held
	// before the node restarted (see Config.QuietPeriod): the same UID,
	// resources, mode, owner, source and holder as the acquisition that won
	// it, and the node's incarnation (Incarnation). A node refuses a
	// reclaim that names another incarnation than its own
	// (ReasonStaleReclaim), during its grace period or after it. Otherwise
	// it grants a reclaim during its restart grace period, when it refuses
	// every other new lock, unless it conflicts with a grant it holds (one
	// reclaimed already); after the grace period a reclaim is an ordinary
	// lock request. Writer intent does not hold a reclaim back, and a
	// refused reclaim declares none.
	//
	// A client may reclaim a UID only on a node whose refresh answer, in
	// its grace period, said it does not hold it, and only if that node
	// counted for the lock's current deadline: it granted the acquisition,
	// or refreshed or reclaimed the lock in the refresh round that set the
	// deadline, so that its grant lived until the deadline at least and
	// only a restart can have taken it. A node that never held the lock
	// may have granted it to another before it restarted: reclaiming there
	// would grant it twice. The refresher of package refresher sends
	// reclaims by itself, by these rules; nothing else should.
	Reclaim bool `msg:"rc,omitempty"`
	// Incarnation, on a reclaim, names the run of the node's table whose
	// refresh answer asked for it: RefreshReply.Incarnation of the answer
	// that said, in the node's grace period, that it does not hold the
	// UID. A node refuses a reclaim that names another incarnation than
	// its own (ReasonStaleReclaim), zero included: a reclaim asked for
	// before the node restarted once more may arrive in the grace period
	// of its next run, which protects only grants of the run just before,
	// and the run in between may have granted the resource to another.
	// Nodes that predate the field ignore it; clients that predate it send
	// none, and their reclaims are refused. Ignored without Reclaim. Zero
	// is left off the wire.
	Incarnation uint64 `msg:"in,omitempty"`
	// PublicUID, on a Lock or RLock, makes the UID of the grant public:
	// Query reports it (Holder.UID) to anyone who may query the node, and
	// so lets them refresh and release the grant. Without it a node
	// reports only the UID's tag (UIDTag), since a UID is a capability.
	// Package dsync's Cond sets it on the registration of a waiter, which
	// a signaller in another process must be able to release. Nodes that
	// predate the field ignore it.
	PublicUID bool `msg:"pu,omitempty"`
	// Wait, on a Lock or RLock, asks the node to queue the request, for at
	// most Wait on the node's clock (and never more than its validity,
	// Config.Validity), if it cannot be granted at once because
	// another holder, or an older waiter, is in the way: the node answers it
	// queued (ReasonQueued), hands it the lock as soon as it is its turn,
	// and tells the caller then (see Waiter). Zero: refuse at once, as
	// always. A node that queues nothing (see Config.MaxQueued) refuses.
	// A wait that ends unanswered is a refusal (ReasonConflict) like one
	// made at once: a writer that readers kept out declares its intent then
	// (Config.WriterIntent), and an Unlock of its UID withdraws it.
	Wait time.Duration `msg:"wt,omitempty"`
	// Ticket orders the waiters of a resource, on every node alike: the
	// lower first (an older acquisition), ties broken by UID. The quorum
	// client gives one ticket to all the attempts of one acquisition: the
	// time its first attempt started, on its clock. A request without one
	// (0) comes after every waiter in its way. A grant keeps its ticket,
	// so that a request in its way can tell whether it is older (see
	// Reply.Ahead).
	Ticket uint64 `msg:"tk,omitempty"`
	// Mode, on an RLock, asks for an intention lock or a shared lock of
	// multi-granularity locking (see Mode): ModeIS, ModeIX, ModeS or
	// ModeSIX, released by RUnlock; on a Lock, only ModeX. Zero means the
	// op's own mode: ModeX for Lock, ModeS for RLock; and is left off the
	// wire. Another mode is refused with ErrInvalidArgs. Nodes that predate
	// the field ignore it, and so treat every RLock as ModeS.
	Mode Mode `msg:"md,omitempty"`
}

// IsZero reports whether a is the zero LockArgs (an encoder may leave it
// out).
func (a *LockArgs) IsZero() bool {
	return a.UID == "" && len(a.Resources) == 0 && a.Owner == "" && a.Source == "" && a.Quorum == 0 && !a.NoIntent && a.Holder == "" && !a.Reclaim &&
		a.Incarnation == 0 && !a.PublicUID && a.Wait == 0 && a.Ticket == 0 && a.Mode == 0
}

// Mode is a lock mode of multi-granularity locking (Gray et al., 1976):
// intention locks on a container (ModeIS, ModeIX) announce shared or
// exclusive locks on what it contains. ModeS is the read lock of RLock and
// ModeX the write lock of Lock. Two grants of one resource may coexist if
// their modes are compatible (Compatible):
//
//	      IS   IX   S    SIX  X
//	IS    yes  yes  yes  yes  no
//	IX    yes  yes  no   no   no
//	S     yes  no   yes  no   no
//	SIX   yes  no   no   no   no
//	X     no   no   no   no   no
type Mode uint8

// The modes. The zero Mode, in LockArgs, means the op's own mode.
const (
	ModeIS  Mode = iota + 1 // intention shared: S locks below
	ModeIX                  // intention exclusive: X (or S) locks below
	ModeS                   // shared: the read lock
	ModeSIX                 // shared, with X locks below
	ModeX                   // exclusive: the write lock
)

// Reason says why a node refused a lock.
type Reason uint8

// Refusal reasons. The zero value means the request was not refused.
const (
	ReasonNone          Reason = iota // granted, or the operation succeeded
	ReasonConflict                    // another holder has an incompatible lock
	ReasonQuiet                       // the node is in its restart grace period (Reply.Grace says how long it lasts)
	ReasonUIDInUse                    // the UID already names a different grant
	ReasonReleased                    // the UID was released before this lock arrived
	ReasonWriterWaiting               // a read refused because a writer waits for the resource
	ReasonQueued                      // the request waits on the node (LockArgs.Wait): its answer comes when it is granted or its wait ends
	ReasonStaleReclaim                // a reclaim that names another incarnation of the node (LockArgs.Incarnation): the node restarted since it asked for it
)

// String returns the reason in words.
func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonConflict:
		return "held by another"
	case ReasonQuiet:
		return "node restarting (in its grace period)"
	case ReasonUIDInUse:
		return "uid in use by another grant"
	case ReasonReleased:
		return "uid already released"
	case ReasonWriterWaiting:
		return "a writer is waiting"
	case ReasonQueued:
		return "queued"
	case ReasonStaleReclaim:
		return "reclaim names another incarnation of the node"
	}
	return "unknown reason"
}

// Reply answers Lock, RLock, Unlock, RUnlock and ForceUnlock.
type Reply struct {
	// OK reports whether the operation took effect: the lock was granted (or
	// was already granted to this UID), or something was released.
	OK bool `msg:"k,omitempty"`
	// Reason says why a lock was refused when OK is false.
	Reason Reason `msg:"w,omitempty"`
	// Fence is the node's sequence number for a grant: strictly greater than
	// every fence this node process issued before. Zero when nothing was granted.
	Fence uint64 `msg:"f,omitempty"`
	// Validity is, on a grant, how long the node keeps it without a
	// refresh (its Config.Validity), counted from when the node received
	// the request. A client must stop relying on the grant before then, on
	// its own clock, less what the clocks' rates may differ by. Zero when
	// nothing was granted.
	Validity time.Duration `msg:"v,omitempty"`
	// Grace is, while the node is in its restart grace period, how much of
	// it is left: set on a lock refused with ReasonQuiet (retry after it)
	// and on an unlock of a UID the node does not hold (the node has
	// granted nothing but reclaims since it started, so a grant it lost in
	// the restart cannot have gone to another holder). Zero otherwise.
	Grace time.Duration `msg:"g,omitempty"`
	// Ahead is, on a lock queued or refused because others are in its way,
	// the lowest ticket (LockArgs.Ticket) among them: the holders in its
	// way and the waiters queued before it. A quorum client whose ticket is
	// higher, and that cannot yet complete its quorum, gives back what it
	// holds, so that two acquisitions that split the nodes between them do
	// not wait for each other for ever. Zero if nobody in the way has a
	// ticket.
	Ahead uint64 `msg:"ah,omitempty"`
}

// IsZero reports whether r is the zero Reply (an encoder may leave it out).
func (r Reply) IsZero() bool { return r == Reply{} }

// RefreshArgs asks a node to extend the validity of several grants at once.
// A client refreshes everything it holds with one request per node.
type RefreshArgs struct {
	UIDs []string `msg:"u"`
}

// IsZero reports whether a names no UID (an encoder may leave it out).
func (a RefreshArgs) IsZero() bool { return len(a.UIDs) == 0 }

// RefreshStatus is the outcome of refreshing one UID on one node.
type RefreshStatus uint8

// Refresh outcomes. A call that fails as a whole returns an error instead.
const (
	RefreshUnknown   RefreshStatus = iota // never sent by a node; the zero value
	RefreshRefreshed                      // the node holds the grant and extended it
	RefreshNotHeld                        // the node does not hold this UID
)

// String returns the status in words.
func (s RefreshStatus) String() string {
	switch s {
	case RefreshRefreshed:
		return "refreshed"
	case RefreshNotHeld:
		return "not held"
	}
	return "unknown"
}

// RefreshReply answers RefreshArgs: Status[i] is the outcome for UIDs[i].
type RefreshReply struct {
	Status []RefreshStatus `msg:"s"`
	// Validity is how long the node keeps each grant it refreshed, counted
	// from when it received the request: its Config.Validity.
	Validity time.Duration `msg:"v,omitempty"`
	// Grace is, while the node is in its restart grace period, how much of
	// it is left; zero otherwise. A UID the node does not hold during its
	// grace may have been lost in the restart, and its holder may reclaim
	// it (LockArgs.Reclaim).
	Grace time.Duration `msg:"g,omitempty"`
	// Incarnation is, while the node is in its restart grace period (Grace
	// is set), the identity of this run of its table
	// (BootInfo.Incarnation): a number drawn at random, never zero, when
	// the table is made. A reclaim that this answer asks for must name it
	// (LockArgs.Incarnation). Zero outside the grace period, and then left
	// off the wire.
	Incarnation uint64 `msg:"i,omitempty"`
}

// IsZero reports whether r holds no status (an encoder may leave it out).
func (r RefreshReply) IsZero() bool {
	return len(r.Status) == 0 && r.Validity == 0 && r.Grace == 0 && r.Incarnation == 0
}

// Entry describes one holder of one resource, for listings. Ages are measured
// on the node's own clock and sent as durations, never as timestamps, so that
// nothing compares clocks of different machines.
type Entry struct {
	Resource string `msg:"r"` // the resource held
	UID      string `msg:"u"` // the grant's UID
	Owner    string `msg:"o"` // LockArgs.Owner: the process that holds it
	Source   string `msg:"s"` // LockArgs.Source: the call site that took it
	Write    bool   `msg:"w"` // a write lock (Mode is ModeX)
	Quorum   int    `msg:"q"` // LockArgs.Quorum: how many nodes the client needed
	Fence    uint64 `msg:"f"` // the grant's fence (Reply.Fence)
	// HeldFor is how long ago the node granted the lock, in nanoseconds.
	HeldFor int64 `msg:"h"`
	// SinceRefresh is how long ago the node last refreshed it, in nanoseconds.
	SinceRefresh int64 `msg:"a"`
	// Holder is the holder the lock request named (LockArgs.Holder), if
	// any: who, across processes, holds it for deadlock detection.
	Holder string `msg:"hn,omitempty"`
	// Mode is the grant's mode (see Mode): ModeX for a write lock (Write
	// is set), ModeS for a classic read lock, or an intention mode. Nodes
	// that predate the field leave it zero.
	Mode Mode `msg:"md,omitempty"`
}

// ListArgs asks a node for one page of its listing; see Lister. The zero
// ListArgs asks for the first page, of MaxListPage entries.
type ListArgs struct {
	// AfterResource and AfterUID are the cursor: the page holds the
	// entries after the entry of that resource and UID, in the listing's
	// order (by resource, then UID), whether or not that entry is still
	// there. Both empty for the first page; EntryList.Next sets them.
	AfterResource string `msg:"ar,omitempty"`
	AfterUID      string `msg:"au,omitempty"`
	// Max is the most entries the page holds: MaxListPage if zero or
	// more. A negative Max is refused with ErrInvalidArgs.
	Max int `msg:"m,omitempty"`
}

// EntryList is one page of a listing.
type EntryList struct {
	Entries []Entry `msg:"e"`
	// More reports that the listing has entries after the last of
	// Entries: ask for them with Next.
	More bool `msg:"m,omitempty"`
}

// QueryArgs asks a node who holds some resources; see Querier. Names may
// repeat and need not be sorted.
type QueryArgs struct {
	Resources []string `msg:"r"`
}

// Holder is one grant of a resource, in a QueryReply.
type Holder struct {
	// Tag names the grant's UID (UIDTag): the same on every node, so that
	// callers can tell which grants of different nodes are one
	// acquisition, but not the UID itself, which is a capability.
	Tag string `msg:"t"`
	// UID is the grant's UID if its lock made it public
	// (LockArgs.PublicUID), and otherwise empty.
	UID string `msg:"u,omitempty"`
	// Write reports a write lock (Mode is ModeX). It is kept beside Mode
	// for callers and nodes that predate modes.
	Write bool `msg:"w"`
	// HeldFor is how long ago the node granted the lock, in nanoseconds on
	// the node's own clock.
	HeldFor int64 `msg:"h"`
	// Mode is the grant's mode (see Mode): ModeX for a write lock (Write
	// is set), ModeS for a classic read lock, or an intention mode (IS,
	// IX, SIX). Nodes that predate the field leave it zero: then Write
	// tells X from S. Use HolderMode to read it either way.
	Mode Mode `msg:"md,omitempty"`
}

// HolderMode returns h's mode: h.Mode if set, and otherwise, for a node
// that predates modes, ModeX for a write lock and ModeS for a read lock.
func HolderMode(h Holder) Mode {
	switch {
	case h.Mode != 0:
		return h.Mode
	case h.Write:
		return ModeX
	}
	return ModeS
}

// Holders is who holds one resource: its write holder, or its read holders,
// or nobody.
type Holders struct {
	Holders []Holder `msg:"h"`
}

// QueryReply answers QueryArgs: Resources[i] is who holds the i-th resource
// of the request.
type QueryReply struct {
	Resources []Holders `msg:"r"`
}

// FenceArgs asks a node to raise its fence counter; see Fencer.
type FenceArgs struct {
	// Floor is the least value the counter must have afterwards. Zero reads
	// the counter and changes nothing.
	Floor uint64 `msg:"f"`
}

// FenceReply answers FenceArgs with the node's fence counter after the
// raise.
type FenceReply struct {
	Fence uint64 `msg:"f"`
}

// WaitsArgs asks a node for the wait-for edges it sees, or withdraws a
// holder's wait; see WaitReporter.
type WaitsArgs struct {
	// Withdraw, if not empty, names a holder whose recorded wait for exactly
	// Resources the node forgets (its acquisition was granted or given up).
	// The reply of a withdrawal holds no edges.
	Withdraw  string   `msg:"w,omitempty"`
	Resources []string `msg:"r,omitempty"`
}

// WaitEdge is one wait-for edge seen by one node: holder Waiter was refused
// Resource, and recorded as waiting for it, because of a live grant of it to
// Holder, whose tag (UIDTag of its UID) and quorum are given.
type WaitEdge struct {
	Waiter   string `msg:"a"`
	Resource string `msg:"r"`
	Holder   string `msg:"h"`
	Tag      string `msg:"t"`
	// Quorum is the quorum the holder's client asked for (LockArgs.Quorum):
	// a grant is real only if that many nodes hold it.
	Quorum int `msg:"q"`
}

// WaitsReply answers WaitsArgs.
type WaitsReply struct {
	Edges []WaitEdge `msg:"e"`
	// Truncated reports that the node had more edges than MaxWaitEdges and
	// left the rest out.
	Truncated bool `msg:"t,omitempty"`
}

// VersionArgs asks a node what it knows of the write grants of Resources;
// see Versioner.
type VersionArgs struct {
	Resources []string `msg:"r"`
}

// VersionReply answers VersionArgs; see Versioner. Writes and WriteHeld have
// one element per resource of the request, in its order.
type VersionReply struct {
	// Incarnation identifies this life of the node's table: drawn, nonzero,
	// when the table is made, so that a node that restarted, and forgot what
	// it knew, answers with another one.
	Incarnation uint64 `msg:"i"`
	// Counter is the node's fence counter, read before any resource: every
	// grant the node makes after the read has a fence above it.
	Counter uint64 `msg:"c"`
	// Writes[i] is at least the fence of the last write grant the node made
	// on Resources[i] in this incarnation, 0 if it is sure it made none. It
	// may be more (the node keeps a bounded memory of resources nobody
	// holds): never less.
	Writes []uint64 `msg:"w"`
	// WriteHeld[i] reports that an unexpired write grant holds
	// Resources[i] now.
	WriteHeld []bool `msg:"h"`
	// Grace is, while the node is in its restart grace period, how much of
	// it is left; zero otherwise. During it the node may have forgotten a
	// write grant that a client still holds: its answer vouches for
	// nothing.
	Grace time.Duration `msg:"g,omitempty"`
}
