package rest

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/locker"
)

// DefaultMaxRequestNames bounds the names (resource names and UIDs) one
// request may carry in all: twice the decoders' bound on one array, so that
// a refresh of 100,000 UIDs fits with room for the rest of a batch. The
// decoders allocate 16 bytes for each (the string's header; its bytes stay
// in the body), so a request costs at most about 3.2 MB of them.
const DefaultMaxRequestNames = 2 * lockerArrayLimit

// A decodeBudget bounds what the zero-copy decoders allocate for one
// request, before they allocate it: the operations of a batch
// (ServerConfig.MaxBatchOps), the names of one lock (the table's
// MaxResources), and the names of the whole request
// (ServerConfig.MaxRequestNames). Past the first and the last, the request
// is refused whole (413). A lock that names more resources than the table
// allows is not the request's fault but its own: its names are read, not
// kept, and the operation alone is refused (400 CodeInvalidArgs), as the
// table would refuse it.
type decodeBudget struct {
	ops       uint32 // operations a batch may hold
	resources uint32 // names one LockArgs.Resources may hold
	names     int    // names the rest of the request may hold

	op   int         // the operation being decoded: its index in a batch, 0 alone
	over []overNames // operations whose resources were over the bound, in order
}

// overNames is an operation whose resources were over the bound: n names,
// not decoded.
type overNames struct {
	op int
	n  uint32
}

// Sentinels of the budget's refusals; the errors that wrap them say more.
var (
	errTooManyOps   = errors.New("too many operations")
	errTooManyNames = errors.New("too many names")
)

// unbounded returns the budget of the generated decoders: arrays up to
// their limits, and no bound on the whole.
func unbounded() decodeBudget {
	return decodeBudget{ops: batchArrayLimit, resources: lockerArrayLimit, names: math.MaxInt}
}

// budget readies b for a request to s, keeping the memory of its list of
// operations over the bound.
func (s *Server) budget(b *decodeBudget) *decodeBudget {
	resources := uint32(lockerArrayLimit)
	if lr, ok := s.l.(locker.LimitReporter); ok {
		resources = uint32(min(max(lr.Limits().MaxResources, 0), lockerArrayLimit))
	}
	over := b.over[:0]
	if cap(over) > 64 { // a hostile batch's: not kept in the pool
		over = nil
	}
	*b = decodeBudget{ops: uint32(s.cfg.MaxBatchOps), resources: resources, names: s.cfg.MaxRequestNames, over: over}
	return b
}

// take accounts for an array of n names, or refuses it.
func (b *decodeBudget) take(n uint32) error {
	if int(n) > b.names {
		return fmt.Errorf("%w: an array of %d names, more than the %d left of the request's limit (MaxRequestNames)", errTooManyNames, n, b.names)
	}
	b.names -= int(n)
	return nil
}

// forget drops what b noted of the operation being decoded, whose
// LockArgs are decoded anew (a key given twice).
func (b *decodeBudget) forget() {
	if k := len(b.over); k > 0 && b.over[k-1].op == b.op {
		b.over = b.over[:k-1]
	}
}

// overAt returns, of the operations over the bound, the first at or after
// op i, and the rest: walk a batch's results in order with it.
func overAt(over []overNames, i int) (n uint32, found bool, rest []overNames) {
	for len(over) > 0 && over[0].op < i {
		over = over[1:]
	}
	if len(over) > 0 && over[0].op == i {
		return over[0].n, true, over[1:]
	}
	return 0, false, over
}

// tooManyResources describes an operation whose lock named n resources,
// more than limit.
func tooManyResources(v Verb, n, limit uint32) string {
	return fmt.Sprintf("rest: %s: %d resources, more than the limit of %d (MaxResources)", opName(v), n, limit)
}

// usesLock reports whether an operation of verb v reads its LockArgs.
func usesLock(v Verb) bool {
	switch v {
	case VerbLock, VerbRLock, VerbUnlock, VerbRUnlock, VerbForceUnlock:
		return true
	}
	return false
}

// decoded reports whether a request body decoded, leaving left over, with
// err; if not, it answers rc: 413 for a request over the budget, 400
// otherwise. what names the request in the message.
func (s *Server) decoded(rc *fasthttp.RequestCtx, what string, left []byte, err error) bool {
	msg := decodeProblem(left, err)
	switch {
	case msg == "":
		return true
	case errors.Is(err, errTooManyOps), errors.Is(err, errTooManyNames):
		s.fail(rc, CodeTooLarge, "rest: "+what+": "+err.Error())
	default:
		s.fail(rc, CodeMalformed, "rest: "+what+": "+msg)
	}
	return false
}

// decodeAlone decodes the body of a request for a path of its own (a query,
// waits) with decode, within a budget of s's, and returns what the
// resources of its single operation were over the table's limit by, if
// they were: the error to answer, or nil. A body that does not decode is
// an errMalformed; one over the budget is an error that codeOf maps to
// CodeTooLarge.
func (s *Server) decodeAlone(op string, body []byte, decode func([]byte, *decodeBudget) ([]byte, error)) error {
	var lim decodeBudget
	left, err := decode(body, s.budget(&lim))
	switch msg := decodeProblem(left, err); {
	case msg == "":
	case errors.Is(err, errTooManyNames):
		return err
	default:
		return errMalformed(msg)
	}
	if n, over, _ := overAt(lim.over, 0); over {
		return fmt.Errorf("%w: %s: %d resources, more than the limit of %d (MaxResources)", locker.ErrInvalidArgs, op, n, lim.resources)
	}
	return nil
}

// ownLock replaces every string of a, decoded in place, with a copy: for a
// table that may keep them (one that is not a locker.ArgCopier).
func ownLock(a *locker.LockArgs) {
	a.UID, a.Owner, a.Source, a.Holder = strings.Clone(a.UID), strings.Clone(a.Owner), strings.Clone(a.Source), strings.Clone(a.Holder)
	ownNames(a.Resources)
}

// ownNames replaces every string of names with a copy.
func ownNames(names []string) {
	for i, n := range names {
		names[i] = strings.Clone(n)
	}
}
