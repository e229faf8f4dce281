package rest

import (
	"bytes"

	"github.com/tinylib/msgp/msgp"

	"github.com/dsync-go/dsync/locker"
)

// Fast paths for the batch results that make up nearly every answer: a
// granted lock ({"p": {"k": true, "f": fence, "v": validity}}), a release
// ({"p": {"k": true}}) and an empty result ({}). For those, appendBatchReply writes the
// bytes the generated BatchReply.MarshalMsg writes, and decodeBatchReply
// decodes the values its UnmarshalMsg decodes, without the generated code's
// per-field bookkeeping; every other result goes through the generated code.
// At 16 nodes a client decodes 32 results per lock+unlock pair, and a node
// encodes 2: the generated code was 5% of the CPU a pair cost.
// TestResultFastPaths and FuzzDecodeBatchReply hold them to their twins.

var (
	// grantedPrefix is a granted lock's result, up to its fence; the
	// validity follows the fence, after validityKey.
	grantedPrefix = []byte{0x81, 0xa1, 'p', 0x83, 0xa1, 'k', 0xc3, 0xa1, 'f'}
	validityKey   = []byte{0xa1, 'v'}
	// releasedResult is the result of an operation that took effect and
	// carries no fence: a release.
	releasedResult = []byte{0x81, 0xa1, 'p', 0x81, 0xa1, 'k', 0xc3}
)

// emptyResult is the encoding of the zero BatchResult.
const emptyResult = 0x80

// plain reports whether r is a result of the fast paths: an operation that
// took effect, with no refusal and no grace.
func (r *BatchResult) plain() bool {
	return r.Code == CodeOK && r.Message == "" && r.Refresh.IsZero() && r.Reply.OK && r.Reply.Reason == locker.ReasonNone && r.Reply.Grace == 0
}

// appendBatchReply appends z's encoding to b, as z.MarshalMsg does.
func appendBatchReply(b []byte, z *BatchReply) ([]byte, error) {
	if uint32(len(z.Results)) > batchArrayLimit {
		return nil, msgp.ErrLimitExceeded
	}
	// "r" always, then "e" unless nil and "ep" unless zero.
	b = append(b, 0x80|(1+oneIf(z.Events != nil)+oneIf(z.Epoch != 0)), 0xa1, 'r')
	b = msgp.AppendArrayHeader(b, uint32(len(z.Results)))
	for i := range z.Results {
		r := &z.Results[i]
		switch {
		case r.plain() && r.Reply.Fence != 0 && r.Reply.Validity != 0:
			b = append(b, grantedPrefix...)
			b = msgp.AppendUint64(b, r.Reply.Fence)
			b = append(b, validityKey...)
			b = msgp.AppendDuration(b, r.Reply.Validity)
		case r.plain() && r.Reply.Fence == 0 && r.Reply.Validity == 0:
			b = append(b, releasedResult...)
		default:
			var err error
			if b, err = r.MarshalMsg(b); err != nil {
				return nil, msgp.WrapError(err, "Results", i)
			}
		}
	}
	if z.Events != nil {
		if uint32(len(z.Events)) > batchArrayLimit {
			return nil, msgp.ErrLimitExceeded
		}
		b = append(b, 0xa1, 'e')
		b = msgp.AppendArrayHeader(b, uint32(len(z.Events)))
		for i := range z.Events {
			var err error
			if b, err = z.Events[i].MarshalMsg(b); err != nil {
				return nil, msgp.WrapError(err, "Events", i)
			}
		}
	}
	if z.Epoch != 0 {
		b = append(b, 0xa2, 'e', 'p')
		b = msgp.AppendUint64(b, z.Epoch)
	}
	return b, nil
}

// decodeBatchReply decodes a BatchReply from b into z as z.UnmarshalMsg
// does.
func decodeBatchReply(z *BatchReply, b []byte) ([]byte, error) {
	n, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return nil, msgp.WrapError(err)
	}
	if n > wireMapLimit {
		return nil, msgp.ErrLimitExceeded
	}
	var seenEvents, seenEpoch bool // the omitempty fields
	for ; n > 0; n-- {
		var key []byte
		key, b, err = msgp.ReadMapKeyZC(b)
		if err != nil {
			return nil, msgp.WrapError(err)
		}
		switch string(key) {
		case "r":
			b, err = decodeResults(z, b)
		case "e":
			seenEvents = true
			if b, err = decodeEvents(z, b); err != nil {
				err = msgp.WrapError(err, "Events")
			}
		case "ep":
			seenEpoch = true
			if z.Epoch, b, err = msgp.ReadUint64Bytes(b); err != nil {
				err = msgp.WrapError(err, "Epoch")
			}
		default:
			if b, err = msgp.Skip(b); err != nil {
				err = msgp.WrapError(err)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if !seenEvents {
		z.Events = nil
	}
	if !seenEpoch {
		z.Epoch = 0
	}
	return b, nil
}

// decodeResults decodes a BatchReply's Results from b into z, as the
// generated UnmarshalMsg does, the common shapes by the fast paths.
func decodeResults(z *BatchReply, b []byte) ([]byte, error) {
	m, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return nil, msgp.WrapError(err, "Results")
	}
	if m > batchArrayLimit {
		return nil, msgp.ErrLimitExceeded
	}
	if cap(z.Results) >= int(m) {
		z.Results = z.Results[:m]
	} else {
		z.Results = make([]BatchResult, m)
	}
	for i := range z.Results {
		if b, err = decodeResult(&z.Results[i], b); err != nil {
			return nil, msgp.WrapError(err, "Results", i)
		}
	}
	return b, nil
}

// decodeEvents decodes a BatchReply's Events from b into z, as the
// generated UnmarshalMsg does. The events' strings are copies: they outlive
// the answer's body (wait.go keeps an early event).
func decodeEvents(z *BatchReply, b []byte) ([]byte, error) {
	m, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return nil, err
	}
	if m > batchArrayLimit {
		return nil, msgp.ErrLimitExceeded
	}
	if cap(z.Events) >= int(m) {
		z.Events = z.Events[:m]
	} else {
		z.Events = make([]Event, m)
	}
	for i := range z.Events {
		if b, err = z.Events[i].UnmarshalMsg(b); err != nil {
			return nil, msgp.WrapError(err, i)
		}
	}
	return b, nil
}

// decodeResult decodes one BatchResult from b into r as r.UnmarshalMsg
// does.
func decodeResult(r *BatchResult, b []byte) ([]byte, error) {
	switch {
	case len(b) > 0 && b[0] == emptyResult:
		*r = BatchResult{}
		return b[1:], nil
	case bytes.HasPrefix(b, releasedResult):
		*r = BatchResult{Reply: locker.Reply{OK: true}}
		return b[len(releasedResult):], nil
	case bytes.HasPrefix(b, grantedPrefix):
		if fence, left, err := msgp.ReadUint64Bytes(b[len(grantedPrefix):]); err == nil && bytes.HasPrefix(left, validityKey) {
			if v, left, err := msgp.ReadDurationBytes(left[len(validityKey):]); err == nil {
				*r = BatchResult{Reply: locker.Reply{OK: true, Fence: fence, Validity: v}}
				return left, nil
			}
		}
	}
	return r.UnmarshalMsg(b)
}
