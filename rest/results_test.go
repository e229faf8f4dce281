package rest

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// resultCases are results of every shape: the fast paths' and their near
// misses, which must go to the generated code.
func resultCases() []BatchResult {
	cases := []BatchResult{
		{},
		{Reply: locker.Reply{OK: true}},
		{Reply: locker.Reply{OK: true, Reason: locker.ReasonQuiet}},
		{Reply: locker.Reply{Reason: locker.ReasonConflict}},
		{Reply: locker.Reply{Fence: 9}},
		{Reply: locker.Reply{OK: true, Fence: 7}, Code: CodeBusy},
		{Reply: locker.Reply{OK: true, Fence: 7}, Message: "m"},
		{Reply: locker.Reply{OK: true, Fence: 7}, Refresh: locker.RefreshReply{Status: []locker.RefreshStatus{locker.RefreshRefreshed}}},
		{Code: CodeMalformed, Message: "bad"},
		{Refresh: locker.RefreshReply{Status: []locker.RefreshStatus{locker.RefreshNotHeld, locker.RefreshRefreshed}}},
	}
	for _, f := range []uint64{1, 127, 128, 255, 256, 1 << 16, 1<<32 - 1, 1 << 32, 1 << 62, math.MaxUint64} {
		cases = append(cases, BatchResult{Reply: locker.Reply{OK: true, Fence: f}})
	}
	return cases
}

// randomReply returns a reply of n results drawn from resultCases, mostly
// the fast paths' shapes, with random fences.
func randomReply(rng *rand.Rand, n int) BatchReply {
	cases := resultCases()
	var z BatchReply
	for range n {
		r := cases[rng.IntN(len(cases))]
		if rng.IntN(2) == 0 {
			r = BatchResult{Reply: locker.Reply{OK: true, Fence: rng.Uint64() >> rng.IntN(64)}}
		}
		z.Results = append(z.Results, r)
	}
	// The events of a session, in one answer of three: sometimes none in
	// a present (empty) array, or an epoch alone.
	switch rng.IntN(6) {
	case 0:
		z.Events, z.Epoch = eventCases()[:rng.IntN(len(eventCases())+1)], rng.Uint64()
	case 1:
		z.Events = []Event{}
	case 2:
		z.Epoch = rng.Uint64N(3)
	}
	return z
}

// eventCases are events of every shape.
func eventCases() []Event {
	return []Event{
		{Seq: 1, UID: "u1", Reply: locker.Reply{OK: true, Fence: 1 << 40, Validity: 5e9}},
		{Seq: 2, UID: "u2", Reply: locker.Reply{Reason: locker.ReasonConflict}},
		{Seq: 3, UID: "u3", Code: CodeClosed, Message: "closed"},
		{Seq: 1 << 40, UID: "u4", Wound: 77},
	}
}

func TestResultFastPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	replies := []BatchReply{{}, {Results: resultCases()}, {Results: resultCases(), Events: eventCases(), Epoch: 1}}
	for range 500 {
		replies = append(replies, randomReply(rng, rng.IntN(40)))
	}
	for _, z := range replies {
		want, err := z.MarshalMsg(nil)
		require.NoError(t, err)
		got, err := appendBatchReply([]byte{0xff}, &z)
		require.NoError(t, err)
		require.True(t, bytes.Equal(got[1:], want), "appendBatchReply(%+v)\n= % x\nwant % x (MarshalMsg)", z, got, want)
		require.Equal(t, byte(0xff), got[0], "appendBatchReply(%+v) overwrote the buffer's byte", z)
		for _, extra := range [][]byte{nil, {0xc0}} {
			in := append(append([]byte(nil), want...), extra...)
			checkDecodeBatchReply(t, in)
		}
	}
}

// checkDecodeBatchReply fails t unless decodeBatchReply and UnmarshalMsg
// agree on b: both fail, or both decode the same value (into scratch values
// that held an earlier reply) with the same bytes left over.
func checkDecodeBatchReply(t *testing.T, b []byte) {
	t.Helper()
	prev := BatchReply{Results: resultCases(), Events: eventCases(), Epoch: 9}
	var want, got BatchReply
	want.Results = append([]BatchResult(nil), prev.Results...)
	got.Results = append([]BatchResult(nil), prev.Results...)
	want.Events, want.Epoch = append([]Event(nil), prev.Events...), prev.Epoch
	got.Events, got.Epoch = append([]Event(nil), prev.Events...), prev.Epoch
	wantLeft, wantErr := want.UnmarshalMsg(b)
	gotLeft, gotErr := decodeBatchReply(&got, b)
	require.Equal(t, wantErr == nil, gotErr == nil, "on % x: decodeBatchReply error %v, UnmarshalMsg error %v", b, gotErr, wantErr)
	if wantErr != nil {
		return
	}
	// bytes.Equal, not require.Equal, which tells nil from empty.
	require.True(t, bytes.Equal(gotLeft, wantLeft), "on % x: decodeBatchReply left % x, UnmarshalMsg % x", b, gotLeft, wantLeft)
	require.Equal(t, want, got, "on % x: decodeBatchReply", b)
}

func TestDecodeBatchReplyNearMisses(t *testing.T) {
	granted, _ := (&BatchReply{Results: []BatchResult{{Reply: locker.Reply{OK: true, Fence: 1 << 40}}}}).MarshalMsg(nil)
	released, _ := (&BatchReply{Results: []BatchResult{{Reply: locker.Reply{OK: true}}}}).MarshalMsg(nil)
	inputs := [][]byte{
		// A granted prefix whose fence is not an unsigned integer, or cut.
		{0x81, 0xa1, 'r', 0x91, 0x81, 0xa1, 'p', 0x82, 0xa1, 'k', 0xc3, 0xa1, 'f', 0xa1, 'x'},
		{0x81, 0xa1, 'r', 0x91, 0x81, 0xa1, 'p', 0x82, 0xa1, 'k', 0xc3, 0xa1, 'f', 0xff},
		{0x81, 0xa1, 'r', 0x91, 0x81, 0xa1, 'p', 0x82, 0xa1, 'k', 0xc3, 0xa1, 'f'},
		// A negative fixint as the fence.
		{0x81, 0xa1, 'r', 0x91, 0x81, 0xa1, 'p', 0x82, 0xa1, 'k', 0xc3, 0xa1, 'f', 0xe0},
		// OK false spelled out, and a repeated key.
		{0x81, 0xa1, 'r', 0x91, 0x81, 0xa1, 'p', 0x81, 0xa1, 'k', 0xc2},
		{0x81, 0xa1, 'r', 0x91, 0x82, 0xa1, 'p', 0x81, 0xa1, 'k', 0xc3, 0xa1, 'p', 0x80},
		// An unknown key before the results, and a map 16 header.
		{0x82, 0xa1, 'z', 0x01, 0xa1, 'r', 0x91, 0x80},
		{0xde, 0x00, 0x01, 0xa1, 'r', 0x90},
	}
	for cut := range granted {
		inputs = append(inputs, granted[:cut])
	}
	for cut := range released {
		inputs = append(inputs, released[:cut])
	}
	for _, in := range inputs {
		checkDecodeBatchReply(t, in)
	}
}

// FuzzDecodeBatchReply holds decodeBatchReply, which decodes what nodes
// answer, to the generated decoder on arbitrary bytes.
func FuzzDecodeBatchReply(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 8 {
		z := randomReply(rng, rng.IntN(6))
		b, _ := z.MarshalMsg(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeBatchReply(t, b)
	})
}

func BenchmarkBatchReplyCodec(b *testing.B) {
	var z BatchReply
	for i := range 96 {
		z.Results = append(z.Results, BatchResult{Reply: locker.Reply{OK: true, Fence: 1<<60 + uint64(i)}})
	}
	enc, _ := z.MarshalMsg(nil)
	b.Run("encode/generated", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf, _ = z.MarshalMsg(buf[:0])
		}
	})
	b.Run("encode/fast", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf, _ = appendBatchReply(buf[:0], &z)
		}
	})
	b.Run("decode/generated", func(b *testing.B) {
		b.ReportAllocs()
		var out BatchReply
		for b.Loop() {
			_, _ = out.UnmarshalMsg(enc)
		}
	})
	b.Run("decode/fast", func(b *testing.B) {
		b.ReportAllocs()
		var out BatchReply
		for b.Loop() {
			_, _ = decodeBatchReply(&out, enc)
		}
	})
}
