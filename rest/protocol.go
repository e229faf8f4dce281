package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/dsync-go/dsync/locker"
)

// ProtocolVersion is the version of the wire protocol this package speaks
// (see doc.go). It is in the path of every request (PathPrefix) and in the
// HeaderProtocol header of every answer; a node and a client of different
// versions refuse each other's messages with an error wrapping ErrVersion.
const ProtocolVersion = 2

// Paths of the protocol, version 2. See doc.go for what each carries.
const (
	PathPrefix      = "/dsync/v2/"
	PathLock        = PathPrefix + "lock"         // POST LockArgs -> Reply
	PathRLock       = PathPrefix + "rlock"        // POST LockArgs -> Reply
	PathUnlock      = PathPrefix + "unlock"       // POST LockArgs -> Reply
	PathRUnlock     = PathPrefix + "runlock"      // POST LockArgs -> Reply
	PathRefresh     = PathPrefix + "refresh"      // POST RefreshArgs -> RefreshReply
	PathForceUnlock = PathPrefix + "force-unlock" // POST LockArgs -> Reply
	PathBatch       = PathPrefix + "batch"        // POST BatchArgs -> BatchReply
	PathLocks       = PathPrefix + "locks"        // POST locker.ListArgs -> locker.EntryList (one page)
	PathHealth      = PathPrefix + "health"       // GET -> empty body
	PathHello       = PathPrefix + "hello"        // GET ?n=nonce, no credentials -> HelloReply
)

// Headers and query parameters of the protocol.
const (
	// HeaderAuth carries the request's timestamp and MAC; see auth.go.
	HeaderAuth = "Authorization"
	// HeaderProtocol carries, in every answer of a node, the version of
	// the protocol it speaks, in decimal.
	HeaderProtocol = "Dsync-Protocol"
	// QueryTimeout is the query parameter in which a client tells the node, in
	// milliseconds, how long it will wait for the answer. The node gives up on
	// the request (and grants nothing) once that much time has passed on its
	// own clock.
	QueryTimeout = "t"
	// ContentType is the media type of every request and response body.
	ContentType = "application/msgpack"
)

// Errors of this package, besides the locker sentinels that the client maps
// node answers back to. Compare with errors.Is.
var (
	// ErrProtocol means the node answered something the client does not
	// understand, or refused a request as not found or with a wrong method:
	// client and node speak different versions, or one has a bug.
	ErrProtocol = errors.New("rest: protocol error")
	// ErrRemote means the node's table failed in a way that has no locker
	// sentinel. The outcome of the call is unknown.
	ErrRemote = errors.New("rest: node error")
	// ErrVersion means the client and the node speak different versions of
	// the protocol: the node refused the request unread, or answered in a
	// version this client does not read. Errors that wrap it are
	// *VersionError, which names both versions; they wrap ErrProtocol too.
	ErrVersion = errors.New("rest: protocol version mismatch")
	// ErrLayout means the node's hello told another layout of lock sets
	// than the client's ClientConfig.Layout: the client sends it nothing.
	ErrLayout = errors.New("rest: the node belongs to another layout")
)

// VersionError reports a client and a node of different protocol versions.
type VersionError struct {
	// Endpoint is the node's URL.
	Endpoint string
	// Client is the version the client speaks: ProtocolVersion.
	Client int
	// Node is the version the node speaks, as its answer says; zero if the
	// answer carried no version (a node of protocol 1, or not a dsync node).
	Node int
}

// Error names the node, both versions, and which side to upgrade.
func (e *VersionError) Error() string {
	if e.Node == 0 {
		return fmt.Sprintf("rest: %s answered without a %s header: it speaks protocol 1 or is not a dsync node; this client speaks protocol %d (upgrade the node)",
			e.Endpoint, HeaderProtocol, e.Client)
	}
	advice := "upgrade the node"
	if e.Node > e.Client {
		advice = "upgrade the client"
	}
	return fmt.Sprintf("rest: %s speaks protocol %d, this client speaks protocol %d (%s)", e.Endpoint, e.Node, e.Client, advice)
}

// Is makes errors.Is(err, ErrVersion) and errors.Is(err, ErrProtocol) true.
func (e *VersionError) Is(target error) bool { return target == ErrVersion || target == ErrProtocol }

// status returns the HTTP status of a response that carries code.
func (c Code) status() int {
	switch c {
	case CodeOK:
		return http.StatusOK
	case CodeInvalidArgs, CodeMalformed:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethod:
		return http.StatusMethodNotAllowed
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeBusy, CodeClosed:
		return http.StatusServiceUnavailable
	case CodeCanceled:
		return http.StatusRequestTimeout
	case CodeUnsupported:
		return http.StatusNotImplemented
	case CodeVersion:
		return http.StatusBadRequest
	case CodeIdentity:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// String names the code.
func (c Code) String() string {
	switch c {
	case CodeOK:
		return "ok"
	case CodeInvalidArgs:
		return "invalid arguments"
	case CodeBusy:
		return "busy"
	case CodeClosed:
		return "closed"
	case CodeUnauthorized:
		return "unauthorized"
	case CodeMalformed:
		return "malformed request"
	case CodeTooLarge:
		return "request too large"
	case CodeNotFound:
		return "not found"
	case CodeMethod:
		return "method not allowed"
	case CodeCanceled:
		return "canceled"
	case CodeInternal:
		return "internal error"
	case CodeUnsupported:
		return "unsupported"
	case CodeVersion:
		return "protocol version mismatch"
	case CodeIdentity:
		return "signed for another node or start"
	case CodeForbidden:
		return "forbidden to this role"
	}
	return fmt.Sprintf("code %d", uint8(c))
}

// codeOf returns the code that reports err, an error of a NetLocker.
func codeOf(err error) Code {
	switch {
	case err == nil:
		return CodeOK
	case errors.Is(err, locker.ErrInvalidArgs):
		return CodeInvalidArgs
	case errors.Is(err, errTooManyNames), errors.Is(err, errTooManyOps):
		return CodeTooLarge
	case errors.Is(err, locker.ErrBusy):
		return CodeBusy
	case errors.Is(err, locker.ErrClosed), errors.Is(err, locker.ErrOffline):
		return CodeClosed
	case errors.Is(err, locker.ErrUnauthorized):
		return CodeUnauthorized
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return CodeCanceled
	}
	return CodeInternal
}

// sentinel returns the error a client reports for a node's code.
func (c Code) sentinel() error {
	switch c {
	case CodeInvalidArgs, CodeMalformed, CodeTooLarge:
		return locker.ErrInvalidArgs
	case CodeBusy:
		return locker.ErrBusy
	case CodeClosed:
		return locker.ErrOffline
	case CodeUnauthorized, CodeIdentity, CodeForbidden:
		return locker.ErrUnauthorized
	case CodeCanceled:
		return context.DeadlineExceeded
	case CodeInternal:
		return ErrRemote
	}
	return ErrProtocol
}

// connBufferSize is the size of the buffer through which a node reads
// requests, on each connection. fasthttp's default, 4 KiB, is smaller than
// a busy batch (about 50 bytes per lock operation, up to DefaultMaxBatch of
// them), which then took two reads on the node; 16 KiB holds a full batch
// of locks with its headers. (The client writes each request in one piece,
// whatever its size: see transport.go.)
const connBufferSize = 16 << 10
