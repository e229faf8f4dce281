package rest

import (
	"bytes"
	"reflect"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"

	"github.com/dsync-go/dsync/locker"
)

// decodeSeeds are bodies for the zero-copy decoders: real encodings of every
// verb, and hand-made ones with what a generated encoder never sends
// (unknown keys, nil values, binary keys, wider headers than needed,
// repeated keys).
func decodeSeeds(t testing.TB) [][]byte {
	enc := func(m msgp.Marshaler) []byte {
		b, err := m.MarshalMsg(nil)
		require.NoError(t, err)
		return b
	}
	lock := locker.LockArgs{UID: "4b0e6bda-8f4e-4c2b-9d4f-0a3e5f6b7c8d", Resources: []string{"bucket/a", "bucket/b"}, Owner: "node-1:4242", Source: "main.go:12", Quorum: 3, NoIntent: true, Holder: "node-1:4242/worker-7", Reclaim: true, Incarnation: 0x9e3779b97f4a7c15, PublicUID: true}
	refresh := locker.RefreshArgs{UIDs: []string{"u1", "", "u3"}}
	batch := BatchArgs{Ops: []BatchOp{
		{Verb: VerbLock, Lock: lock},
		{Verb: VerbRLock, Lock: locker.LockArgs{UID: "u2", Resources: []string{"c"}, Quorum: 2}},
		{Verb: VerbUnlock, Lock: locker.LockArgs{UID: "u1"}},
		{Verb: VerbRUnlock, Lock: locker.LockArgs{UID: "u2"}},
		{Verb: VerbRefresh, Refresh: refresh},
		{Verb: VerbForceUnlock, Lock: locker.LockArgs{Resources: []string{"bucket/a"}}},
		{Verb: 99},
	}}
	hoisted := BatchArgs{Ops: append([]BatchOp(nil), batch.Ops...), Owner: "node-1:4242", Source: "main.go:12", Session: "9f3c", Ack: 41, Epoch: 1 << 60, TakeEvents: true}
	seeds := [][]byte{
		enc(&lock), enc(&refresh), enc(&batch), enc(&hoisted),
		enc(&locker.QueryArgs{Resources: []string{"bucket/a", "b"}}), enc(&locker.WaitsArgs{Withdraw: "h", Resources: []string{"a"}}), enc(&locker.WaitsArgs{}),
		enc(&BatchArgs{}), enc(&BatchArgs{Ops: []BatchOp{{}}}),
		enc(&locker.LockArgs{}), enc(&locker.RefreshArgs{}),
		{0x80}, {0xc0}, {}, {0x81, 0xa1, 'o', 0xc0}, // {}, nil, nothing, {"o": nil}
	}

	// Unknown keys, at every level, with values of every shape; nil values
	// where they are skipped.
	var b []byte
	b = msgp.AppendMapHeader(b, 3)
	b = msgp.AppendString(b, "x")
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendNil(b)
	b = msgp.AppendMapHeader(b, 1)
	b = msgp.AppendString(b, "k")
	b = msgp.AppendFloat64(b, 1.5)
	b = msgp.AppendString(b, "o")
	b = msgp.AppendArrayHeader(b, 1)
	b = msgp.AppendMapHeader(b, 3)
	b = msgp.AppendString(b, "v")
	b = msgp.AppendUint8(b, uint8(VerbLock))
	b = msgp.AppendString(b, "zz")
	b = msgp.AppendNil(b)
	b = msgp.AppendString(b, "l")
	b = msgp.AppendMapHeader(b, 3)
	b = msgp.AppendString(b, "u")
	b = msgp.AppendString(b, "uid")
	b = msgp.AppendString(b, "extra")
	b = msgp.AppendBytes(b, []byte("bin"))
	b = msgp.AppendString(b, "r")
	b = msgp.AppendArrayHeader(b, 1)
	b = msgp.AppendString(b, "res")
	b = msgp.AppendString(b, "y")
	b = msgp.AppendNil(b)
	seeds = append(seeds, b)

	// Nil where a value is required: refused by both.
	for _, key := range []string{"u", "r", "o", "s", "q", "ni"} {
		b = msgp.AppendMapHeader(nil, 1)
		b = msgp.AppendString(b, key)
		b = msgp.AppendNil(b)
		seeds = append(seeds, b)
	}

	// Binary keys, str8/str16 strings, a map16 and an array16 header, and a
	// key given twice.
	b = []byte{0xde, 0, 3}                    // map16 of 3
	b = append(b, 0xc4, 1, 'u')               // bin8 key "u"
	b = append(b, 0xd9, 3, 'a', 'b', 'c')     // str8 "abc"
	b = append(b, 0xa1, 'r', 0xdc, 0, 2)      // "r": array16 of 2
	b = append(b, 0xda, 0, 1, 'x', 0xa1, 'y') // str16 "x", "y"
	b = append(b, 0xa1, 'u', 0xa2, 'u', '2')  // "u" again: "u2"
	seeds = append(seeds, b)

	// A batch whose array claims more operations than the body holds.
	b = msgp.AppendMapHeader(nil, 1)
	b = msgp.AppendString(b, "o")
	b = append(b, 0xdd, 0, 0, 0x10, 0) // array32 of 4096
	b = append(b, 0x80, 0x80)
	seeds = append(seeds, b)

	// The one-byte forms the decoders read inline, at their edges: maps of
	// 15 and 16 entries (fixmap, map16), arrays of 15 and 16 (fixarray,
	// array16), strings of 31 and 32 bytes (fixstr, str8), and ints of 127
	// and 128 (positive fixint, uint8).
	for _, n := range []int{7, 8, 15, 16} {
		b = msgp.AppendMapHeader(nil, uint32(n))
		b = msgp.AppendString(b, "u")
		b = msgp.AppendString(b, "uid")
		for i := 1; i < n; i++ {
			b = msgp.AppendString(b, string(rune('A'+i))) // unknown keys
			b = msgp.AppendInt(b, i)
		}
		seeds = append(seeds, b)
	}
	for _, n := range []int{15, 16} {
		names := make([]string, n)
		for i := range names {
			names[i] = string(rune('a' + i))
		}
		seeds = append(seeds, enc(&locker.LockArgs{UID: "u", Resources: names}))
		seeds = append(seeds, enc(&BatchArgs{Ops: make([]BatchOp, n)}))
	}
	for _, n := range []int{31, 32} {
		long := string(bytes.Repeat([]byte{'s'}, n))
		seeds = append(seeds, enc(&locker.LockArgs{UID: long, Resources: []string{long}, Owner: long}))
	}
	for _, q := range []int{127, 128} {
		seeds = append(seeds, enc(&BatchArgs{Ops: []BatchOp{{Verb: Verb(q), Lock: locker.LockArgs{UID: "u", Quorum: q}}}}))
	}
	return seeds
}

// FuzzDecodeZeroCopy holds the zero-copy decoders to their generated twins
// on arbitrary bodies: both accept or both refuse; what both accept decodes
// to equal values with the same bytes left; and every string the zero-copy
// decoder returns lies in the body. It decodes into fresh values and into a
// scratch that served a request before, as the server's pooled ones have.
func FuzzDecodeZeroCopy(f *testing.F) {
	for _, s := range decodeSeeds(f) {
		f.Add(s)
	}
	prev := decodeSeeds(f)[2] // a batch of every verb
	f.Fuzz(func(t *testing.T, body []byte) {
		var wb, gb BatchArgs
		compareDecoders(t, "fresh batch", body, &wb, &gb, wb.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeBatchZC(&gb, b, unboundedBudget()) })
		var wl, gl locker.LockArgs
		compareDecoders(t, "fresh lock", body, &wl, &gl, wl.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeLockZC(&gl, b, unboundedBudget()) })
		var wr, gr locker.RefreshArgs
		compareDecoders(t, "fresh refresh", body, &wr, &gr, wr.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeRefreshZC(&gr, b, unboundedBudget()) })
		var wq, gq locker.QueryArgs
		compareDecoders(t, "fresh query", body, &wq, &gq, wq.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeQueryZC(&gq, b, unboundedBudget()) })
		var ww, gw locker.WaitsArgs
		compareDecoders(t, "fresh waits", body, &ww, &gw, ww.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeWaitsZC(&gw, b, unboundedBudget()) })
		// And full of a previous request's.
		wq2, gq2 := locker.QueryArgs{Resources: []string{"old"}}, locker.QueryArgs{Resources: []string{"old"}}
		compareValues(t, "dirty query", body, &wq2, &gq2, wq2.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeQueryZC(&gq2, b, unboundedBudget()) })
		ww2, gw2 := locker.WaitsArgs{Withdraw: "w", Resources: []string{"old"}}, locker.WaitsArgs{Withdraw: "w", Resources: []string{"old"}}
		compareValues(t, "dirty waits", body, &ww2, &gw2, ww2.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeWaitsZC(&gw2, b, unboundedBudget()) })

		// Scratches that decoded prev, each with its own decoder, and were
		// reset.
		ws, gs := new(scratch), new(scratch)
		_, err := ws.batch.UnmarshalMsg(prev)
		require.NoError(t, err)
		_, err = decodeBatchZC(&gs.batch, prev, unboundedBudget())
		require.NoError(t, err)
		ws.op, gs.op = ws.batch.Ops[0], gs.batch.Ops[0]
		ws.op.Lock.Resources = append([]string(nil), ws.op.Lock.Resources...)
		gs.op.Lock.Resources = append([]string(nil), gs.op.Lock.Resources...)
		ws.reset()
		gs.reset()
		require.True(t, sameValue(reflect.ValueOf(ws), reflect.ValueOf(gs)), "reset scratches differ:\n%+v\n%+v", ws, gs)
		compareDecoders(t, "used batch", body, &ws.batch, &gs.batch, ws.batch.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeBatchZC(&gs.batch, b, unboundedBudget()) })
		compareDecoders(t, "used lock", body, &ws.op.Lock, &gs.op.Lock, ws.op.Lock.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeLockZC(&gs.op.Lock, b, unboundedBudget()) })
		compareDecoders(t, "used refresh", body, &ws.op.Refresh, &gs.op.Refresh, ws.op.Refresh.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeRefreshZC(&gs.op.Refresh, b, unboundedBudget()) })

		// Values still full of the previous request, not reset: the fields
		// the body leaves out must end the same way (cleared or kept).
		var wd, gd BatchArgs
		_, err = wd.UnmarshalMsg(prev)
		require.NoError(t, err)
		_, err = decodeBatchZC(&gd, prev, unboundedBudget())
		require.NoError(t, err)
		compareValues(t, "dirty batch", body, &wd, &gd, wd.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeBatchZC(&gd, b, unboundedBudget()) })
		wdl, gdl := ws.op.Lock, gs.op.Lock
		wdl.UID, wdl.Owner, wdl.Source, wdl.Quorum, wdl.NoIntent, wdl.Holder, wdl.Reclaim, wdl.Incarnation, wdl.PublicUID = "u", "o", "s", 3, true, "h", true, 5, true
		gdl.UID, gdl.Owner, gdl.Source, gdl.Quorum, gdl.NoIntent, gdl.Holder, gdl.Reclaim, gdl.Incarnation, gdl.PublicUID = "u", "o", "s", 3, true, "h", true, 5, true
		compareValues(t, "dirty lock", body, &wdl, &gdl, wdl.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeLockZC(&gdl, b, unboundedBudget()) })
	})
}

// compareDecoders decodes body with the generated decoder into want and
// with the zero-copy one into got, and fails t if they disagree or if a
// string of got does not alias body.
func compareDecoders(t *testing.T, what string, body []byte, want, got any, gen, zc func([]byte) ([]byte, error)) {
	t.Helper()
	if !compareValues(t, what, body, want, got, gen, zc) {
		return
	}
	forStrings(reflect.ValueOf(got), func(s string) {
		require.True(t, s == "" || inside(s, body), "%s: decoded string %q does not alias the body %x", what, s, body)
	})
}

// compareValues is compareDecoders without the check that got's strings
// alias body, for values that keep some strings of their own: fields that
// the body leaves out and the decoders do not clear. It reports whether both
// decoders accepted body.
func compareValues(t *testing.T, what string, body []byte, want, got any, gen, zc func([]byte) ([]byte, error)) bool {
	t.Helper()
	wleft, werr := gen(body)
	gleft, gerr := zc(body)
	require.Equal(t, werr == nil, gerr == nil, "%s: both decoders accept or both refuse: generated decoder: %v; zero-copy decoder: %v; body %x", what, werr, gerr, body)
	if werr != nil {
		return false
	}
	require.Equal(t, len(wleft), len(gleft), "%s: generated decoder leaves %d bytes, zero-copy decoder %d; body %x", what, len(wleft), len(gleft), body)
	require.True(t, sameValue(reflect.ValueOf(want), reflect.ValueOf(got)), "%s: generated decoder: %+v; zero-copy decoder: %+v; body %x", what, want, got, body)
	return true
}

// sameValue reports whether a and b hold equal values, as reflect.DeepEqual
// does, except that a nil slice and an empty one are the same: where the
// generated decoders set an omitted slice to nil, the zero-copy ones keep its
// memory for the next request.
func sameValue(a, b reflect.Value) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	}
	panic("sameValue: unexpected kind " + a.Kind().String())
}

// forStrings calls f with every string reachable from v through pointers,
// structs and slices (up to their lengths).
func forStrings(v reflect.Value, f func(string)) {
	switch v.Kind() {
	case reflect.String:
		f(v.String())
	case reflect.Pointer:
		if !v.IsNil() {
			forStrings(v.Elem(), f)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			forStrings(v.Field(i), f)
		}
	case reflect.Slice:
		for i := range v.Len() {
			forStrings(v.Index(i), f)
		}
	}
}

// inside reports whether the bytes of s lie within b.
func inside(s string, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	lo := uintptr(unsafe.Pointer(&b[0]))
	return lo <= p && p+uintptr(len(s)) <= lo+uintptr(len(b))
}

func TestDecodeZeroCopySeeds(t *testing.T) {
	// The fuzz target's checks on its seeds, and on every prefix of them,
	// in every test run.
	for _, s := range decodeSeeds(t) {
		for n := range len(s) + 1 {
			t.Run("", func(t *testing.T) {
				var wb, gb BatchArgs
				compareDecoders(t, "batch", s[:n], &wb, &gb, wb.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeBatchZC(&gb, b, unboundedBudget()) })
				var wl, gl locker.LockArgs
				compareDecoders(t, "lock", s[:n], &wl, &gl, wl.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeLockZC(&gl, b, unboundedBudget()) })
				var wr, gr locker.RefreshArgs
				compareDecoders(t, "refresh", s[:n], &wr, &gr, wr.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeRefreshZC(&gr, b, unboundedBudget()) })
				var wq, gq locker.QueryArgs
				compareDecoders(t, "query", s[:n], &wq, &gq, wq.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeQueryZC(&gq, b, unboundedBudget()) })
				var ww, gw locker.WaitsArgs
				compareDecoders(t, "waits", s[:n], &ww, &gw, ww.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeWaitsZC(&gw, b, unboundedBudget()) })
			})
		}
	}
}

// Both decoders accept arrays and maps up to the limits of the generated
// code and refuse them past it.
func TestDecodeZeroCopyLimits(t *testing.T) {
	strs := func(n int) []byte { // RefreshArgs of n empty UIDs
		b := msgp.AppendMapHeader(nil, 1)
		b = msgp.AppendString(b, "u")
		b = msgp.AppendArrayHeader(b, uint32(n))
		return append(b, bytes.Repeat([]byte{0xa0}, n)...)
	}
	ops := func(n int) []byte { // BatchArgs of n empty ops
		b := msgp.AppendMapHeader(nil, 1)
		b = msgp.AppendString(b, "o")
		b = msgp.AppendArrayHeader(b, uint32(n))
		return append(b, bytes.Repeat([]byte{0x80}, n)...)
	}
	keys := func(n int) []byte { // a map of n unknown keys
		b := msgp.AppendMapHeader(nil, uint32(n))
		for range n {
			b = msgp.AppendString(b, "?")
			b = msgp.AppendNil(b)
		}
		return b
	}
	for _, c := range []struct {
		name string
		body []byte
		ok   bool
	}{
		{"uids at limit", strs(lockerArrayLimit), true},
		{"uids past limit", strs(lockerArrayLimit + 1), false},
		{"ops at limit", ops(batchArrayLimit), true},
		{"ops past limit", ops(batchArrayLimit + 1), false},
		{"keys at limit", keys(wireMapLimit), true},
		{"keys past limit", keys(wireMapLimit + 1), false},
	} {
		var wb, gb BatchArgs
		var wr, gr locker.RefreshArgs
		var wl, gl locker.LockArgs
		for _, d := range []struct {
			name    string
			gen, zc func([]byte) ([]byte, error)
		}{
			{"batch", wb.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeBatchZC(&gb, b, unboundedBudget()) }},
			{"refresh", wr.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeRefreshZC(&gr, b, unboundedBudget()) }},
			{"lock", wl.UnmarshalMsg, func(b []byte) ([]byte, error) { return decodeLockZC(&gl, b, unboundedBudget()) }},
		} {
			_, werr := d.gen(c.body)
			_, gerr := d.zc(c.body)
			assert.Equal(t, werr == nil, gerr == nil, "%s as %s: both decoders accept or both refuse: generated decoder: %v; zero-copy decoder: %v", c.name, d.name, werr, gerr)
		}
		var err error
		switch c.name[:3] {
		case "uid":
			_, err = decodeRefreshZC(&gr, c.body, unboundedBudget())
		case "ops":
			_, err = decodeBatchZC(&gb, c.body, unboundedBudget())
		default:
			_, err = decodeLockZC(&gl, c.body, unboundedBudget())
		}
		assert.Equal(t, c.ok, err == nil, "%s: err %v, want ok=%v", c.name, err, c.ok)
	}
}

// An array that claims more elements than the body holds is refused before
// anything is allocated for it.
func TestDecodeZeroCopyDoesNotTrustLengths(t *testing.T) {
	b := msgp.AppendMapHeader(nil, 1)
	b = msgp.AppendString(b, "u")
	b = msgp.AppendArrayHeader(b, lockerArrayLimit)
	var r locker.RefreshArgs
	n := testing.AllocsPerRun(10, func() {
		// A plain if around require.Fail, not require.Error: the check
		// must not allocate in the function AllocsPerRun measures.
		if _, err := decodeRefreshZC(&r, b, unboundedBudget()); err == nil {
			require.Fail(t, "accepted an array longer than the body")
		}
	})
	require.Zero(t, n, "allocations for a lying array header, want 0")
}

// Decoding a batch into a warm scratch allocates nothing.
func TestDecodeZeroCopyDoesNotAllocate(t *testing.T) {
	body := decodeSeeds(t)[2]
	sc := new(scratch)
	_, err := decodeBatchZC(&sc.batch, body, unboundedBudget())
	require.NoError(t, err)
	sc.reset()
	n := testing.AllocsPerRun(100, func() {
		// A plain if around require.Fail, not require.NoError: the check
		// must not allocate in the function AllocsPerRun measures.
		if _, err := decodeBatchZC(&sc.batch, body, unboundedBudget()); err != nil {
			require.Fail(t, err.Error())
		}
		sc.reset()
	})
	require.Zero(t, n, "allocations per decode, want 0")
}

// TestScratchResetEmptiesTheBatch checks that a pooled scratch does not lend
// a batch body that leaves out its operations the length of the last batch
// it decoded.
func TestScratchResetEmptiesTheBatch(t *testing.T) {
	body, err := (&BatchArgs{Ops: []BatchOp{{Verb: VerbUnlock, Lock: locker.LockArgs{UID: "a"}}, {Verb: VerbUnlock, Lock: locker.LockArgs{UID: "b"}}}}).MarshalMsg(nil)
	require.NoError(t, err)
	for _, decode := range []func(*BatchArgs, []byte) ([]byte, error){
		func(z *BatchArgs, b []byte) ([]byte, error) { return z.UnmarshalMsg(b) },
		func(z *BatchArgs, b []byte) ([]byte, error) { return decodeBatchZC(z, b, unboundedBudget()) },
	} {
		sc := new(scratch)
		_, err := decode(&sc.batch, body)
		require.NoError(t, err, "decoded %d ops", len(sc.batch.Ops))
		require.Len(t, sc.batch.Ops, 2, "decoded ops")
		sc.reset()
		_, err = decode(&sc.batch, []byte{0x80})
		require.NoError(t, err, "an empty map after a batch of 2 decoded to %d ops", len(sc.batch.Ops))
		require.Empty(t, sc.batch.Ops, "an empty map after a batch of 2 decoded to ops")
	}
}

// unboundedBudget returns a budget as wide as the generated decoders'
// limits: the zero-copy decoders then accept what they accept.
func unboundedBudget() *decodeBudget {
	b := unbounded()
	return &b
}
