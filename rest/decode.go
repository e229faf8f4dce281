package rest

import (
	"fmt"
	"unsafe"

	"github.com/tinylib/msgp/msgp"

	"github.com/dsync-go/dsync/locker"
)

// Zero-copy decoders of the request bodies a node decodes on every call.
//
// The generated UnmarshalMsg methods allocate every string they decode: a
// lock operation costs five allocations, most of them for strings the table
// only looks up. The decoders here are their twins, except that every string
// they decode aliases the body (unsafe.String over the bytes of the
// msgpack str), so that decoding allocates nothing once the scratch's slices
// have grown. The server uses them only for a table that copies what it keeps
// (locker.ArgCopier), and only while the body is alive: until the handler
// returns, after which fasthttp reuses it; for another table, the server
// copies the strings it passes on.
//
// Each takes a decodeBudget that bounds what it allocates (see budget.go):
// with the budget of unbounded, it accepts exactly the inputs its generated
// twin accepts, and decodes
// them into equal values with the same bytes left over; it rejects the same
// inputs, though not always with the same error. Like its twin, it reuses
// the slices it finds in the value it decodes into, resizes them to the
// length on the wire, sets a field tagged omitempty or omitzero that the
// input leaves out to its zero value (//msgp:clearomitted) and leaves other
// absent fields as they were, skips unknown keys and lets a repeated key
// overwrite. One difference: where the twin sets an omitted slice to nil,
// these keep its memory, emptied, for the next request. FuzzDecodeZeroCopy
// holds them to that. With a server's budget it refuses, before allocating
// for them, batches and requests that carry more than the budget allows,
// and reads a lock's resources over the table's limit without keeping
// them, noting the operation in the budget (decodeBudget.over).

// The size limits of the generated decoders (the //msgp:limit directives of
// rest/wire.go and locker/wire.go). TestDecodeZeroCopyLimits checks that
// both decoders agree on them.
const (
	batchArrayLimit  = MaxBatchLimit // arrays of rest/wire.go
	lockerArrayLimit = 100_000       // arrays of locker/wire.go
	wireMapLimit     = 64            // maps of both
)

// decodeBatchZC decodes a BatchArgs from b into z as z.UnmarshalMsg does,
// with strings that alias b, within lim. See above.
func decodeBatchZC(z *BatchArgs, b []byte, lim *decodeBudget) ([]byte, error) {
	n, b, err := readMapHeader(b)
	if err != nil {
		return nil, msgp.WrapError(err)
	}
	var seenOwner, seenSource, seenSession, seenAck, seenEpoch, seenTake bool // the omitempty fields
	defer func() {
		if !seenOwner {
			z.Owner = ""
		}
		if !seenSource {
			z.Source = ""
		}
		if !seenSession {
			z.Session = ""
		}
		if !seenAck {
			z.Ack = 0
		}
		if !seenEpoch {
			z.Epoch = 0
		}
		if !seenTake {
			z.TakeEvents = false
		}
	}()
	for ; n > 0; n-- {
		var key []byte
		key, b, err = readKeyZC(b)
		if err != nil {
			return nil, msgp.WrapError(err)
		}
		switch string(key) {
		case "o":
			var m uint32
			m, b, err = readArrayHeader(b, batchArrayLimit)
			if err != nil {
				return nil, msgp.WrapError(err, "Ops")
			}
			if m > lim.ops {
				return nil, fmt.Errorf("%w: batch of %d operations, more than the limit of %d", errTooManyOps, m, lim.ops)
			}
			if cap(z.Ops) >= int(m) {
				z.Ops = z.Ops[:m]
			} else {
				z.Ops = make([]BatchOp, m)
			}
			for i := range z.Ops {
				lim.op = i
				b, err = decodeOpZC(&z.Ops[i], b, lim)
				if err != nil {
					return nil, msgp.WrapError(err, "Ops", i)
				}
			}
		case "bo":
			seenOwner = true
			z.Owner, b, err = readStringZC(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Owner")
			}
		case "bs":
			seenSource = true
			z.Source, b, err = readStringZC(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Source")
			}
		case "ss":
			seenSession = true
			z.Session, b, err = readStringZC(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Session")
			}
		case "sa":
			seenAck = true
			z.Ack, b, err = msgp.ReadUint64Bytes(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Ack")
			}
		case "se":
			seenEpoch = true
			z.Epoch, b, err = msgp.ReadUint64Bytes(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Epoch")
			}
		case "te":
			seenTake = true
			z.TakeEvents, b, err = msgp.ReadBoolBytes(b)
			if err != nil {
				return nil, msgp.WrapError(err, "TakeEvents")
			}
		default:
			b, err = msgp.Skip(b)
			if err != nil {
				return nil, msgp.WrapError(err)
			}
		}
	}
	return b, nil
}

// decodeOpZC decodes a BatchOp from b into z as z.UnmarshalMsg does, with
// strings that alias b, within lim.
func decodeOpZC(z *BatchOp, b []byte, lim *decodeBudget) ([]byte, error) {
	n, b, err := readMapHeader(b)
	if err != nil {
		return nil, err
	}
	var seenLock, seenRefresh bool // the omitzero fields
	defer func() {
		if !seenLock {
			z.Lock = locker.LockArgs{Resources: z.Lock.Resources[:0]}
		}
		if !seenRefresh {
			z.Refresh = locker.RefreshArgs{UIDs: z.Refresh.UIDs[:0]}
		}
	}()
	for ; n > 0; n-- {
		var key []byte
		key, b, err = readKeyZC(b)
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "v":
			var v uint8
			v, b, err = readUint8(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Verb")
			}
			z.Verb = Verb(v)
		case "l":
			seenLock = true
			b, err = decodeLockZC(&z.Lock, b, lim)
			if err != nil {
				return nil, msgp.WrapError(err, "Lock")
			}
		case "r":
			seenRefresh = true
			b, err = decodeRefreshZC(&z.Refresh, b, lim)
			if err != nil {
				return nil, msgp.WrapError(err, "Refresh")
			}
		default:
			b, err = msgp.Skip(b)
			if err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// decodeLockZC decodes a locker.LockArgs from b into z as z.UnmarshalMsg
// does, with strings that alias b, within lim: resources over lim.resources
// are read but not kept, and the operation noted in lim.over.
func decodeLockZC(z *locker.LockArgs, b []byte, lim *decodeBudget) ([]byte, error) {
	n, b, err := readMapHeader(b)
	if err != nil {
		return nil, err
	}
	lim.forget() // what an earlier value of the operation's LockArgs left
	// The omitempty fields: those not on the wire are cleared.
	const (
		seenResources = 1 << iota
		seenOwner
		seenSource
		seenQuorum
		seenNoIntent
		seenHolder
		seenReclaim
		seenIncarnation
		seenPublicUID
		seenWait
		seenTicket
		seenMode
	)
	var seen uint16
	defer func() {
		if seen&seenResources == 0 {
			z.Resources = z.Resources[:0]
		}
		if seen&seenOwner == 0 {
			z.Owner = ""
		}
		if seen&seenSource == 0 {
			z.Source = ""
		}
		if seen&seenQuorum == 0 {
			z.Quorum = 0
		}
		if seen&seenNoIntent == 0 {
			z.NoIntent = false
		}
		if seen&seenHolder == 0 {
			z.Holder = ""
		}
		if seen&seenReclaim == 0 {
			z.Reclaim = false
		}
		if seen&seenIncarnation == 0 {
			z.Incarnation = 0
		}
		if seen&seenPublicUID == 0 {
			z.PublicUID = false
		}
		if seen&seenWait == 0 {
			z.Wait = 0
		}
		if seen&seenTicket == 0 {
			z.Ticket = 0
		}
		if seen&seenMode == 0 {
			z.Mode = 0
		}
	}()
	for ; n > 0; n-- {
		var key []byte
		key, b, err = readKeyZC(b)
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "u":
			z.UID, b, err = readStringZC(b)
			if err != nil {
				return nil, msgp.WrapError(err, "UID")
			}
		case "r":
			seen |= seenResources
			lim.forget() // a key given twice: the last counts
			z.Resources, b, err = readNamesZC(z.Resources, b, lim, lim.resources)
			if err != nil {
				return nil, msgp.WrapError(err, "Resources")
			}
		case "o":
			seen |= seenOwner
			z.Owner, b, err = readStringZC(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Owner")
			}
		case "s":
			seen |= seenSource
			z.Source, b, err = readStringZC(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Source")
			}
		case "q":
			seen |= seenQuorum
			z.Quorum, b, err = readInt(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Quorum")
			}
		case "ni":
			seen |= seenNoIntent
			z.NoIntent, b, err = msgp.ReadBoolBytes(b)
			if err != nil {
				return nil, msgp.WrapError(err, "NoIntent")
			}
		case "h":
			seen |= seenHolder
			z.Holder, b, err = readStringZC(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Holder")
			}
		case "rc":
			seen |= seenReclaim
			z.Reclaim, b, err = msgp.ReadBoolBytes(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Reclaim")
			}
		case "in":
			seen |= seenIncarnation
			z.Incarnation, b, err = msgp.ReadUint64Bytes(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Incarnation")
			}
		case "wt":
			seen |= seenWait
			z.Wait, b, err = msgp.ReadDurationBytes(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Wait")
			}
		case "tk":
			seen |= seenTicket
			z.Ticket, b, err = msgp.ReadUint64Bytes(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Ticket")
			}
		case "md":
			seen |= seenMode
			var m uint8
			m, b, err = msgp.ReadUint8Bytes(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Mode")
			}
			z.Mode = locker.Mode(m)
		case "pu":
			seen |= seenPublicUID
			z.PublicUID, b, err = msgp.ReadBoolBytes(b)
			if err != nil {
				return nil, msgp.WrapError(err, "PublicUID")
			}
		default:
			b, err = msgp.Skip(b)
			if err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// decodeRefreshZC decodes a locker.RefreshArgs from b into z as
// z.UnmarshalMsg does, with strings that alias b, within lim.
func decodeRefreshZC(z *locker.RefreshArgs, b []byte, lim *decodeBudget) ([]byte, error) {
	n, b, err := readMapHeader(b)
	if err != nil {
		return nil, err
	}
	for ; n > 0; n-- {
		var key []byte
		key, b, err = readKeyZC(b)
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "u":
			z.UIDs, b, err = readNamesZC(z.UIDs, b, lim, lockerArrayLimit)
			if err != nil {
				return nil, msgp.WrapError(err, "UIDs")
			}
		default:
			b, err = msgp.Skip(b)
			if err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// decodeQueryZC decodes a locker.QueryArgs from b into z as z.UnmarshalMsg
// does, with strings that alias b, within lim: resources over
// lim.resources are read but not kept, and noted in lim.over.
func decodeQueryZC(z *locker.QueryArgs, b []byte, lim *decodeBudget) ([]byte, error) {
	n, b, err := readMapHeader(b)
	if err != nil {
		return nil, msgp.WrapError(err)
	}
	for ; n > 0; n-- {
		var key []byte
		key, b, err = readKeyZC(b)
		if err != nil {
			return nil, msgp.WrapError(err)
		}
		switch string(key) {
		case "r":
			lim.forget() // a key given twice: the last counts
			z.Resources, b, err = readNamesZC(z.Resources, b, lim, lim.resources)
			if err != nil {
				return nil, msgp.WrapError(err, "Resources")
			}
		default:
			b, err = msgp.Skip(b)
			if err != nil {
				return nil, msgp.WrapError(err)
			}
		}
	}
	return b, nil
}

// decodeWaitsZC decodes a locker.WaitsArgs from b into z as z.UnmarshalMsg
// does, with strings that alias b, within lim: resources over
// lim.resources are read but not kept, and noted in lim.over. Like the
// other decoders here, it keeps the memory of an omitted Resources,
// emptied, where its twin sets it to nil.
func decodeWaitsZC(z *locker.WaitsArgs, b []byte, lim *decodeBudget) ([]byte, error) {
	n, b, err := readMapHeader(b)
	if err != nil {
		return nil, msgp.WrapError(err)
	}
	var seenWithdraw, seenResources bool // the omitempty fields
	defer func() {
		if !seenWithdraw {
			z.Withdraw = ""
		}
		if !seenResources {
			z.Resources = z.Resources[:0]
		}
	}()
	for ; n > 0; n-- {
		var key []byte
		key, b, err = readKeyZC(b)
		if err != nil {
			return nil, msgp.WrapError(err)
		}
		switch string(key) {
		case "w":
			seenWithdraw = true
			z.Withdraw, b, err = readStringZC(b)
			if err != nil {
				return nil, msgp.WrapError(err, "Withdraw")
			}
		case "r":
			seenResources = true
			lim.forget()
			z.Resources, b, err = readNamesZC(z.Resources, b, lim, lim.resources)
			if err != nil {
				return nil, msgp.WrapError(err, "Resources")
			}
		default:
			b, err = msgp.Skip(b)
			if err != nil {
				return nil, msgp.WrapError(err)
			}
		}
	}
	return b, nil
}

// The readers below are msgp's, with a fast path first for the one-byte
// forms (fixmap, fixarray, fixstr, positive fixint) that this module's
// encoders write for nearly every header, key and small number: decoding a
// batch spends most of its time reading those.

// readMapHeader reads a map header of at most wireMapLimit entries.
func readMapHeader(b []byte) (uint32, []byte, error) {
	if len(b) > 0 && b[0]&0xf0 == 0x80 { // fixmap: at most 15, under the limit
		return uint32(b[0] & 0x0f), b[1:], nil
	}
	n, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return 0, nil, err
	}
	if n > wireMapLimit {
		return 0, nil, msgp.ErrLimitExceeded
	}
	return n, b, nil
}

// readArrayHeader reads an array header of at most limit elements. It
// refuses a length that the rest of b cannot hold, at least a byte per
// element, before the caller allocates for it: such an array cannot be
// decoded anyway.
func readArrayHeader(b []byte, limit uint32) (uint32, []byte, error) {
	var n uint32
	var err error
	if len(b) > 0 && b[0]&0xf0 == 0x90 { // fixarray
		n, b = uint32(b[0]&0x0f), b[1:]
	} else if n, b, err = msgp.ReadArrayHeaderBytes(b); err != nil {
		return 0, nil, err
	}
	if n > limit {
		return 0, nil, msgp.ErrLimitExceeded
	}
	if int(n) > len(b) {
		return 0, nil, msgp.ErrShortBytes
	}
	return n, b, nil
}

// readNamesZC reads an array of strings that alias b into dst, reusing
// dst's memory if it has room, and returns dst resized to the array. An
// array of more than bound strings is read but not kept: dst is returned
// empty, and the operation noted in lim.over. The strings kept are taken
// from lim's names.
func readNamesZC(dst []string, b []byte, lim *decodeBudget, bound uint32) ([]string, []byte, error) {
	n, b, err := readArrayHeader(b, lockerArrayLimit)
	if err != nil {
		return dst, nil, err
	}
	if n > bound {
		for i := range n {
			if _, b, err = readStringZC(b); err != nil {
				return dst, nil, msgp.WrapError(err, i)
			}
		}
		lim.over = append(lim.over, overNames{op: lim.op, n: n})
		return dst[:0], b, nil
	}
	if err := lim.take(n); err != nil {
		return dst, nil, err
	}
	if cap(dst) >= int(n) {
		dst = dst[:n]
	} else {
		dst = make([]string, n)
	}
	for i := range dst {
		dst[i], b, err = readStringZC(b)
		if err != nil {
			return dst, nil, msgp.WrapError(err, i)
		}
	}
	return dst, b, nil
}

// readStringZC reads a msgpack str as a string that aliases b: it is valid
// only while b's memory is neither changed nor reused.
func readStringZC(b []byte) (string, []byte, error) {
	if len(b) > 0 && b[0]&0xe0 == 0xa0 { // fixstr
		n := int(b[0] & 0x1f)
		if n < len(b) {
			if n == 0 {
				return "", b[1:], nil
			}
			return unsafe.String(&b[1], n), b[1+n:], nil
		}
	}
	v, b, err := msgp.ReadStringZC(b)
	if err != nil || len(v) == 0 {
		return "", b, err
	}
	return unsafe.String(&v[0], len(v)), b, nil
}

// readKeyZC reads a map key as msgp.ReadMapKeyZC does: bytes that alias b.
func readKeyZC(b []byte) ([]byte, []byte, error) {
	if len(b) > 0 && b[0]&0xe0 == 0xa0 { // fixstr, as every key of this module
		n := int(b[0] & 0x1f)
		if n < len(b) {
			return b[1 : 1+n], b[1+n:], nil
		}
	}
	return msgp.ReadMapKeyZC(b)
}

// readUint8 reads a uint8 as msgp.ReadUint8Bytes does.
func readUint8(b []byte) (uint8, []byte, error) {
	if len(b) > 0 && b[0] < 0x80 { // positive fixint
		return b[0], b[1:], nil
	}
	return msgp.ReadUint8Bytes(b)
}

// readInt reads an int as msgp.ReadIntBytes does.
func readInt(b []byte) (int, []byte, error) {
	if len(b) > 0 && b[0] < 0x80 { // positive fixint
		return int(b[0]), b[1:], nil
	}
	return msgp.ReadIntBytes(b)
}
