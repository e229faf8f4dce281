package rest

import (
	"github.com/tinylib/msgp/msgp"

	"github.com/dsync-go/dsync/locker"
)

// appendBatch appends to dst the body of the batch request that carries
// calls, in order, and returns the extended buffer.
//
// The bytes are exactly those that BatchArgs.MarshalMsg gives for the
// batch whose Ops[i] is
//
//	BatchOp{Verb: calls[i].verb, Lock: *calls[i].args, Refresh: locker.RefreshArgs{UIDs: calls[i].refreshUIDs()}}
//
// once hoist (in hoist_test.go) has moved the common Owner and Source into
// the batch: the generated code of rest/wire_gen.go and locker/wire_gen.go
// is the specification, and encode_test.go holds appendBatch to it, field by
// field and byte by byte. What differs is the work: appendBatch reads each
// call's arguments where they are, copies none of them into a BatchOp, and
// passes over the calls twice, once to choose the batch's Owner and Source
// and once to write. It writes with msgp's Append functions, except the
// headers of strings up to 255 bytes and quorums up to 127, the common case,
// which it writes inline, the same bytes for less work.
//
// Like MarshalMsg it fails, with an error wrapping msgp.ErrLimitExceeded,
// if the batch or one of its arrays is longer than the generated decoders
// accept.
//
// sess is the batch's Session, Ack and Epoch: zero unless an operation
// waits or the client has calls waiting (see coalescer.send).
func appendBatch(dst []byte, calls []queuedCall, sess sessionRef) ([]byte, error) {
	owner, source, size := batchOrigin(calls)
	session := sess.name
	dst = msgp.Require(dst, size+len(session)+4+2*(3+msgp.Uint64Size)+4)

	// BatchArgs: "o" always, then "bo", "bs", "ss", "sa", "se" and "te"
	// unless empty.
	fields := 1 + oneIf(owner != "") + oneIf(source != "") + oneIf(session != "") + oneIf(sess.ack != 0) + oneIf(sess.epoch != 0) + oneIf(sess.take)
	dst = append(dst, 0x80|fields, 0xa1, 'o')
	dst = msgp.AppendArrayHeader(dst, uint32(len(calls)))
	if uint32(len(calls)) > batchArrayLimit {
		return nil, msgp.ErrLimitExceeded
	}
	for i := range calls {
		var err error
		if dst, err = appendOp(dst, &calls[i], owner, source); err != nil {
			return nil, msgp.WrapError(err, "Ops", i)
		}
	}
	if owner != "" {
		dst = append(dst, 0xa2, 'b', 'o')
		dst = appendString(dst, owner)
	}
	if source != "" {
		dst = append(dst, 0xa2, 'b', 's')
		dst = appendString(dst, source)
	}
	if session != "" {
		dst = append(dst, 0xa2, 's', 's')
		dst = appendString(dst, session)
	}
	if sess.ack != 0 {
		dst = append(dst, 0xa2, 's', 'a')
		dst = msgp.AppendUint64(dst, sess.ack)
	}
	if sess.epoch != 0 {
		dst = append(dst, 0xa2, 's', 'e')
		dst = msgp.AppendUint64(dst, sess.epoch)
	}
	if sess.take {
		dst = append(dst, 0xa2, 't', 'e', 0xc3)
	}
	return dst, nil
}

// batchOrigin returns the Owner and Source that a batch of calls names once
// for all its lock and rlock operations, by hoist's rule: the first such
// operation's owner (source), if every such operation names one. It also
// returns a bound on the batch's encoded size, a hint for the buffer.
func batchOrigin(calls []queuedCall) (owner, source string, size int) {
	// An operation without an owner (source) would inherit the batch's:
	// then that field stays on every operation.
	everyOwner, everySource := true, true
	size = 1 + 2 + msgp.ArrayHeaderSize
	for i := range calls {
		q := &calls[i]
		// Map header, "v", the verb, "l" or "r", and the arguments, whose
		// bound every queued call carries (see argSize).
		size += 1 + 2 + msgp.Uint8Size + 2 + int(q.size)
		if !namesOrigin(q.verb) {
			continue
		}
		a := q.args
		if a.Owner == "" {
			everyOwner = false
		} else if owner == "" {
			owner = a.Owner
		}
		if a.Source == "" {
			everySource = false
		} else if source == "" {
			source = a.Source
		}
	}
	if !everyOwner {
		owner = ""
	}
	if !everySource {
		source = ""
	}
	size += 3 + msgp.StringPrefixSize + len(owner) + 3 + msgp.StringPrefixSize + len(source)
	return owner, source, size
}

// appendOp appends the BatchOp of q in a batch whose Owner and Source are
// owner and source.
func appendOp(dst []byte, q *queuedCall, owner, source string) ([]byte, error) {
	a := q.args
	// What hoist leaves in the operation's Lock.
	opOwner, opSource := a.Owner, a.Source
	if namesOrigin(q.verb) {
		if owner != "" && opOwner == owner {
			opOwner = ""
		}
		if source != "" && opSource == source {
			opSource = ""
		}
	}
	// "l" and "r" are omitzero: left out when IsZero.
	hasLock := a.UID != "" || len(a.Resources) != 0 || opOwner != "" || opSource != "" ||
		a.Quorum != 0 || a.NoIntent || a.Holder != "" || a.Reclaim || a.Incarnation != 0 || a.PublicUID || a.Wait != 0 || a.Ticket != 0 || a.Mode != 0
	uids := q.refreshUIDs()
	hasRefresh := len(uids) != 0

	dst = append(dst, 0x80|(1+oneIf(hasLock)+oneIf(hasRefresh)), 0xa1, 'v')
	dst = msgp.AppendUint8(dst, uint8(q.verb))
	if hasLock {
		dst = append(dst, 0xa1, 'l')
		var err error
		if dst, err = appendLockArgs(dst, a, opOwner, opSource); err != nil {
			return nil, msgp.WrapError(err, "Lock")
		}
	}
	if hasRefresh {
		// RefreshArgs: "u" always.
		dst = append(dst, 0xa1, 'r', 0x81, 0xa1, 'u')
		dst = msgp.AppendArrayHeader(dst, uint32(len(uids)))
		if uint32(len(uids)) > lockerArrayLimit {
			return nil, msgp.WrapError(msgp.ErrLimitExceeded, "Refresh")
		}
		for _, u := range uids {
			dst = appendString(dst, u)
		}
	}
	return dst, nil
}

// appendLockArgs appends a as LockArgs.MarshalMsg does, but with owner and
// source in place of a.Owner and a.Source.
func appendLockArgs(dst []byte, a *locker.LockArgs, owner, source string) ([]byte, error) {
	// "u" always; the others are omitempty. Resources is left out only
	// when nil, as the generated code does: an empty slice is sent.
	n := 1 + oneIf(a.Resources != nil) + oneIf(owner != "") + oneIf(source != "") +
		oneIf(a.Quorum != 0) + oneIf(a.NoIntent) + oneIf(a.Holder != "") + oneIf(a.Reclaim) + oneIf(a.Incarnation != 0) +
		oneIf(a.PublicUID) + oneIf(a.Wait != 0) + oneIf(a.Ticket != 0) + oneIf(a.Mode != 0)
	dst = append(dst, 0x80|n, 0xa1, 'u')
	dst = appendString(dst, a.UID)
	if a.Resources != nil {
		dst = append(dst, 0xa1, 'r')
		dst = msgp.AppendArrayHeader(dst, uint32(len(a.Resources)))
		if uint32(len(a.Resources)) > lockerArrayLimit {
			return nil, msgp.ErrLimitExceeded
		}
		for _, r := range a.Resources {
			dst = appendString(dst, r)
		}
	}
	if owner != "" {
		dst = append(dst, 0xa1, 'o')
		dst = appendString(dst, owner)
	}
	if source != "" {
		dst = append(dst, 0xa1, 's')
		dst = appendString(dst, source)
	}
	if a.Quorum != 0 {
		dst = append(dst, 0xa1, 'q')
		if 0 < a.Quorum && a.Quorum <= 127 { // a positive fixint, as msgp.AppendInt writes it
			dst = append(dst, uint8(a.Quorum))
		} else {
			dst = msgp.AppendInt(dst, a.Quorum)
		}
	}
	if a.NoIntent {
		dst = append(dst, 0xa2, 'n', 'i')
		dst = msgp.AppendBool(dst, true)
	}
	if a.Holder != "" {
		dst = append(dst, 0xa1, 'h')
		dst = appendString(dst, a.Holder)
	}
	if a.Reclaim {
		dst = append(dst, 0xa2, 'r', 'c')
		dst = msgp.AppendBool(dst, true)
	}
	if a.Incarnation != 0 {
		dst = append(dst, 0xa2, 'i', 'n')
		dst = msgp.AppendUint64(dst, a.Incarnation)
	}
	if a.PublicUID {
		dst = append(dst, 0xa2, 'p', 'u')
		dst = msgp.AppendBool(dst, true)
	}
	if a.Wait != 0 {
		dst = append(dst, 0xa2, 'w', 't')
		dst = msgp.AppendDuration(dst, a.Wait)
	}
	if a.Ticket != 0 {
		dst = append(dst, 0xa2, 't', 'k')
		dst = msgp.AppendUint64(dst, a.Ticket)
	}
	if a.Mode != 0 {
		dst = append(dst, 0xa2, 'm', 'd')
		dst = msgp.AppendUint8(dst, uint8(a.Mode))
	}
	return dst, nil
}

// oneIf returns 1 if b, else 0: a count of fields for a map header.
func oneIf(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// appendString appends s as msgp.AppendString does, with the headers of
// strings up to 255 bytes (UIDs, names, origins) written inline: a fixstr
// up to 31 bytes, a str8 above.
func appendString(dst []byte, s string) []byte {
	switch {
	case len(s) <= 31:
		dst = append(dst, 0xa0|uint8(len(s)))
	case len(s) <= 255:
		dst = append(dst, 0xd9, uint8(len(s)))
	default:
		return msgp.AppendString(dst, s)
	}
	return append(dst, s...)
}
