package rest

//go:generate go tool msgp -file wire.go -o wire_gen.go

import (
	"time"

	"github.com/dsync-go/dsync/locker"
)

// The types in this file travel only over the HTTP transport; the lock
// arguments and replies themselves are the locker package's wire types. They
// are encoded with MessagePack by code that github.com/tinylib/msgp generates
// into wire_gen.go; run `go generate ./rest` after changing them and commit the
// result. See doc.go for where each one is sent. Fields that are usually zero
// are left out when they are (omitempty, omitzero): a decoder sets a field it
// does not find to its zero value.
//
//msgp:clearomitted
//
// Decoders of network input bound every array and map they allocate. The
// arrays of this file are batches, so their bound is MaxBatchLimit; the
// arrays inside the locker types keep that package's bound.
//msgp:limit arrays:4096 maps:64 marshal:true

// Code says why a node rejected a request. It travels in an ErrorReply and in
// a BatchResult and maps back to the locker package's sentinel errors.
type Code uint8

// Rejection codes. The zero value means success.
const (
	CodeOK           Code = iota // no error
	CodeInvalidArgs              // locker.ErrInvalidArgs: the table refused the arguments
	CodeBusy                     // locker.ErrBusy: too many waiting calls (or a full replay cache)
	CodeClosed                   // the node's table is closed (the node is stopping)
	CodeUnauthorized             // locker.ErrUnauthorized: missing, wrong, stale or replayed credentials
	CodeMalformed                // the body is not a valid message for the path
	CodeTooLarge                 // the body or the batch is over the server's limit
	CodeNotFound                 // unknown path
	CodeMethod                   // wrong method for the path
	CodeCanceled                 // the node gave up: the request's timeout passed or the server is closing
	CodeInternal                 // any other failure of the node's table
	CodeUnsupported              // the node's table cannot do this (e.g. listing)
	CodeVersion                  // the request's path names another protocol version (see ProtocolVersion)
	CodeIdentity                 // the request was signed for another node, or another start of this one: ask its hello again
	CodeForbidden                // the request's role may not do this (force-unlock of a resource, listings: the admin role)
)

// ErrorReply is the body of every response whose status is not 200.
type ErrorReply struct {
	Code    Code   `msg:"c"` // what went wrong, for programs
	Message string `msg:"m"` // what went wrong, in words, for people
}

// Verb names the operation of one entry of a batch.
type Verb uint8

// Verbs of a batch. Each does what the single-operation path of the same name
// does.
const (
	VerbNone        Verb = iota // never valid
	VerbLock                    // LockArgs -> Reply
	VerbRLock                   // LockArgs -> Reply
	VerbUnlock                  // LockArgs -> Reply
	VerbRUnlock                 // LockArgs -> Reply
	VerbRefresh                 // RefreshArgs -> RefreshReply
	VerbForceUnlock             // LockArgs -> Reply
)

// BatchOp is one operation of a batch. Lock is used by every verb but
// VerbRefresh, which uses Refresh.
type BatchOp struct {
	Verb    Verb               `msg:"v"`
	Lock    locker.LockArgs    `msg:"l,omitzero"`
	Refresh locker.RefreshArgs `msg:"r,omitzero"`
}

// BatchArgs is the body of a batch request: operations that the node runs
// one after another, in order, each independently of the others.
type BatchArgs struct {
	Ops []BatchOp `msg:"o"`
	// Owner and Source, when set, are the Owner and Source of every lock
	// and rlock operation of Ops that leaves its own empty: a client names
	// its process and a common call site once per batch, not once per lock
	// (they were about a third of a lock's bytes). A client sets Owner
	// (Source) only if every lock and rlock operation of the batch has a
	// non-empty one, so an operation inherits only what it had. See
	// appendBatch (encode.go), and inherit (hoist.go).
	Owner  string `msg:"bo,omitempty"`
	Source string `msg:"bs,omitempty"`
	// Session, if set, names the client's session for the lock and rlock
	// operations of the batch that ask to wait (LockArgs.Wait): a queued
	// one's outcome comes later as an event of that session (see PathEvents
	// and events.go). Without it, operations do not wait. A client draws its
	// session at random, and keeps it while it lives.
	Session string `msg:"ss,omitempty"`
	// Ack and Epoch, with Session, acknowledge the session's events as
	// EventsArgs.Ack and EventsArgs.Epoch do: the node forgets the events
	// up to Ack if Epoch is the session's. A client sends them in every
	// batch that names its session, so that the events the batch answers
	// carry (BatchReply.Events) need no poll to be forgotten.
	Ack   uint64 `msg:"sa,omitempty"`
	Epoch uint64 `msg:"se,omitempty"`
	// TakeEvents, with Session, says that the client takes the session's
	// events from the batch's answer (BatchReply.Events). Only then does
	// the node carry them there, and leave the session's polls asleep for
	// the events the batch causes: a client that does not know of
	// BatchReply.Events (an older one, in a rolling upgrade) hears of them
	// by its poll, at once, as before.
	TakeEvents bool `msg:"te,omitempty"`
}

// BatchResult is the outcome of one operation of a batch: Code is CodeOK and
// Reply (or Refresh, for VerbRefresh) holds the answer, or Code and Message
// say why the operation failed.
type BatchResult struct {
	Code    Code                `msg:"c,omitempty"`
	Message string              `msg:"m,omitempty"`
	Reply   locker.Reply        `msg:"p,omitzero"`
	Refresh locker.RefreshReply `msg:"s,omitzero"`
}

// BatchReply answers BatchArgs: Results[i] is the outcome of Ops[i].
type BatchReply struct {
	Results []BatchResult `msg:"r"`
	// Events, in the answer to a batch that names a session and takes
	// its events (BatchArgs.TakeEvents), are the session's events that no answer has carried yet, oldest first, at
	// most MaxEventsPerReply, with the session's Epoch (as in EventsReply):
	// among them those that the batch's own operations caused, such as the
	// grant that a release hands to a waiter of the same client. The node
	// keeps them until acknowledged, and gives them again to a poll of
	// PathEvents, so that an answer lost on its way loses no event.
	Events []Event `msg:"e,omitempty"`
	Epoch  uint64  `msg:"ep,omitempty"`
}

// HelloReply answers a hello (GET PathHello?n=<nonce>): which node answers,
// in which of its starts, so that a client can sign its requests for that
// node alone. The hello is the one request that needs no credentials; its
// answer is signed instead, with the node's secrets over the client's nonce,
// so that a client can tell its node from an impostor.
type HelloReply struct {
	// Node is the node's ID (ServerConfig.NodeID).
	Node string `msg:"n"`
	// Incarnation is drawn anew at every start of the node.
	Incarnation uint64 `msg:"i"`
	// MAC is the HMAC-SHA256, keyed by the lock secret, of "DSYNC2-HELLO"
	// "\n" nonce "\n" node "\n" incarnation (decimal), and, if Layout is
	// set, "\n" Layout; AdminMAC the same keyed by the admin secret. Empty
	// on an insecure node, and AdminMAC on a node without an admin secret.
	MAC      []byte `msg:"m,omitempty"`
	AdminMAC []byte `msg:"a,omitempty"`
	// Layout is the fingerprint of the node's layout of lock sets
	// (ServerConfig.Layout), or empty if it was given none.
	Layout string `msg:"l,omitempty"`
}

// EventsArgs asks for the events of a session (POST PathEvents): the
// outcomes of its queued lock requests.
type EventsArgs struct {
	// Session is the session of the client (BatchArgs.Session).
	Session string `msg:"s"`
	// Ack is the highest sequence number the client has received: the node
	// forgets the events up to it, and answers the others again.
	Ack uint64 `msg:"a,omitempty"`
	// Wait is how long the node may hold the request while it has no event
	// to give (a long poll), at most MaxEventsWait.
	Wait time.Duration `msg:"w,omitempty"`
	// Epoch is the epoch of the session that Ack counts in (the last
	// EventsReply.Epoch the client saw). If it is not the session's, Ack
	// is ignored: the session is a new one (the node restarted, or forgot
	// the session after SessionTTL), whose events count from 1 again.
	Epoch uint64 `msg:"ep,omitempty"`
}

// Event is the outcome of one queued lock request of a session.
type Event struct {
	// Seq numbers the session's events, from 1.
	Seq uint64 `msg:"q"`
	// UID is the request's.
	UID string `msg:"u"`
	// Reply is its outcome: a grant, or a refusal (its wait passed, or its
	// UID was released), if Code is CodeOK; else Code and Message say why it
	// failed (the node is closing, say).
	Reply   locker.Reply `msg:"p,omitzero"`
	Code    Code         `msg:"c,omitempty"`
	Message string       `msg:"m,omitempty"`
	// Wound, if not zero, makes the event a wound rather than an outcome:
	// the grant of UID, a request of the session that asked to wait, has
	// an older request (of this ticket) queued behind it
	// (locker.WaitHooks.Wounded).
	Wound uint64 `msg:"w,omitempty"`
}

// EventsReply answers EventsArgs: the events after Ack, oldest first, at
// most MaxEventsPerReply; empty if none came within Wait.
type EventsReply struct {
	Events []Event `msg:"e"`
	// Epoch names this life of the session on the node: a random number
	// drawn when the node made it. A client that sees it change starts
	// counting the session's events (Event.Seq) again from zero.
	Epoch uint64 `msg:"ep,omitempty"`
}
