package rest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"

	"github.com/dsync-go/dsync/locker"
)

// referenceBatch encodes calls as the client did before appendBatch: each
// call's arguments copied into a BatchOp, hoist, then the generated
// MarshalMsg. It is appendBatch's specification.
func referenceBatch(calls []queuedCall, sess sessionRef) ([]byte, error) {
	a := BatchArgs{Session: sess.name, Ack: sess.ack, Epoch: sess.epoch, TakeEvents: sess.take}
	for i := range calls {
		a.Ops = append(a.Ops, batchOp(&calls[i]))
	}
	a.hoist()
	return a.MarshalMsg(nil)
}

// batchOp returns the operation q sends, as a BatchOp.
func batchOp(q *queuedCall) BatchOp {
	return BatchOp{Verb: q.verb, Lock: *q.args, Refresh: locker.RefreshArgs{UIDs: q.refreshUIDs()}}
}

// checkAppendBatch fails t unless appendBatch writes for calls, after a
// prefix it must keep, the bytes referenceBatch writes, or fails as it
// does. It also checks that appendBatch changed no call. sess is the
// batch's session.
func checkAppendBatch(t *testing.T, name string, calls []queuedCall, sess sessionRef) {
	t.Helper()
	before := snapshotCalls(calls)
	want, wantErr := referenceBatch(calls, sess)
	prefix := []byte("prefix")
	got, err := appendBatch(prefix[:len(prefix):len(prefix)], calls, sess)
	require.Equal(t, wantErr != nil, err != nil, "%s: appendBatch error %v; the generated encoder's %v", name, err, wantErr)
	if err != nil {
		require.EqualError(t, err, wantErr.Error(), "%s: appendBatch error; the generated encoder's", name)
	}
	if err == nil && !bytes.Equal(got, append(prefix, want...)) {
		require.Failf(t, "appendBatch wrote other bytes", "%s: appendBatch wrote\n%x\nthe generated encoder, after hoist,\n%x\n(batch %s)", name, got[len(prefix):], want, describeCalls(calls))
	}
	require.Equal(t, before, snapshotCalls(calls), "%s: appendBatch changed the calls it encoded", name)
}

// snapshotCalls copies what appendBatch reads of calls.
func snapshotCalls(calls []queuedCall) []BatchOp {
	ops := make([]BatchOp, len(calls))
	for i := range calls {
		ops[i] = batchOp(&calls[i])
		ops[i].Lock.Resources = append([]string(nil), ops[i].Lock.Resources...)
		ops[i].Refresh.UIDs = append([]string(nil), ops[i].Refresh.UIDs...)
	}
	return ops
}

func describeCalls(calls []queuedCall) string {
	var b strings.Builder
	for i := range calls {
		q := &calls[i]
		fmt.Fprintf(&b, "\n  %s submitted=%v %+v %+v", opName(q.verb), q.cl == nil, *q.args, q.refreshUIDs())
	}
	return b.String()
}

// submitted returns a call as Client.Submit queues it.
func submitted(v Verb, a locker.LockArgs) queuedCall {
	return queuedCall{verb: v, wait: submittedWaits(v, &a), args: &a, size: argSize(a.Msgsize())}
}

// blocking returns a call as Client.Lock (and the other blocking methods)
// queues it.
func blocking(v Verb, a locker.LockArgs) queuedCall {
	return (&call{verb: v, lock: a}).queued()
}

// blockingRefresh returns a call as Client.Refresh queues it.
func blockingRefresh(uids ...string) queuedCall {
	return (&call{verb: VerbRefresh, refresh: locker.RefreshArgs{UIDs: uids}}).queued()
}

func TestAppendBatchMatchesGenerated(t *testing.T) {
	const owner, source = "storage-node-17:48213", "object_handlers.go:412"
	lock := func(uid string) locker.LockArgs {
		return locker.LockArgs{UID: uid, Resources: []string{"bucket/" + uid}, Owner: owner, Source: source, Quorum: 3}
	}
	with := func(a locker.LockArgs, f func(*locker.LockArgs)) locker.LockArgs { f(&a); return a }
	long := strings.Repeat("x", 300) // a str16
	many := make([]queuedCall, 40)   // an array16 of ops
	for i := range many {
		many[i] = submitted(VerbLock, lock(fmt.Sprint("m", i)))
	}
	for _, tc := range []struct {
		name  string
		calls []queuedCall
	}{
		{"empty", nil},
		{"single op", []queuedCall{submitted(VerbLock, lock("u1"))}},
		{"no owners", []queuedCall{
			submitted(VerbLock, locker.LockArgs{UID: "u1", Resources: []string{"a"}}),
			submitted(VerbRLock, locker.LockArgs{UID: "u2", Resources: []string{"b"}}),
		}},
		{"common owner and source", []queuedCall{
			submitted(VerbLock, lock("u1")), submitted(VerbRLock, lock("u2")), blocking(VerbLock, lock("u3")),
		}},
		{"mixed owners", []queuedCall{
			submitted(VerbLock, lock("u1")),
			submitted(VerbLock, with(lock("u2"), func(a *locker.LockArgs) { a.Owner = "other:1" })),
			submitted(VerbLock, lock("u3")),
		}},
		{"one op without source", []queuedCall{
			submitted(VerbLock, lock("u1")),
			submitted(VerbRLock, with(lock("u2"), func(a *locker.LockArgs) { a.Source = "" })),
		}},
		{"one op without owner", []queuedCall{
			submitted(VerbLock, with(lock("u1"), func(a *locker.LockArgs) { a.Owner = "" })),
			submitted(VerbRLock, lock("u2")),
		}},
		{"unlocks keep their origin", []queuedCall{
			submitted(VerbLock, lock("u1")),
			submitted(VerbUnlock, lock("u0")),
			submitted(VerbRUnlock, locker.LockArgs{UID: "u9", Owner: "other:1"}),
		}},
		{"only unlocks", []queuedCall{submitted(VerbUnlock, lock("u1")), submitted(VerbUnlock, lock("u2"))}},
		{"holders", []queuedCall{
			submitted(VerbLock, with(lock("u1"), func(a *locker.LockArgs) { a.Holder = owner + "/w1" })),
			submitted(VerbRLock, with(lock("u2"), func(a *locker.LockArgs) { a.Holder = owner + "/w2" })),
		}},
		{"PublicUID and Reclaim", []queuedCall{
			submitted(VerbRLock, with(lock("u1"), func(a *locker.LockArgs) { a.PublicUID = true })),
			submitted(VerbLock, with(lock("u2"), func(a *locker.LockArgs) { a.Reclaim, a.PublicUID = true, true })),
			submitted(VerbLock, with(lock("u3"), func(a *locker.LockArgs) { a.Reclaim, a.Incarnation = true, 0x9e3779b97f4a7c15 })),
			submitted(VerbRLock, with(lock("u4"), func(a *locker.LockArgs) { a.Reclaim, a.Incarnation = true, 7 })),
			submitted(VerbLock, locker.LockArgs{Incarnation: 1}),  // only that: the op keeps its "l"
			submitted(VerbLock, locker.LockArgs{PublicUID: true}), // only that: the op keeps its "l"
		}},
		{"NoIntent", []queuedCall{submitted(VerbLock, with(lock("u1"), func(a *locker.LockArgs) { a.NoIntent = true })), submitted(VerbLock, lock("u2"))}},
		{"quorum", []queuedCall{
			submitted(VerbLock, with(lock("u1"), func(a *locker.LockArgs) { a.Quorum = 0 })),
			submitted(VerbLock, with(lock("u2"), func(a *locker.LockArgs) { a.Quorum = 200 })),
			submitted(VerbLock, with(lock("u3"), func(a *locker.LockArgs) { a.Quorum = 1 << 40 })),
			submitted(VerbLock, with(lock("u4"), func(a *locker.LockArgs) { a.Quorum = -5 })),
		}},
		{"multi-resource", []queuedCall{
			submitted(VerbLock, with(lock("u1"), func(a *locker.LockArgs) { a.Resources = []string{"a", "b", "c", long} })),
			submitted(VerbLock, with(lock("u2"), func(a *locker.LockArgs) { a.Resources = strings.Split("abcdefghijklmnopqrst", "") })),
		}},
		{"empty resources, non-nil", []queuedCall{submitted(VerbLock, with(lock("u1"), func(a *locker.LockArgs) { a.Resources = []string{} }))}},
		{"refresh ops with UIDs", []queuedCall{
			submitted(VerbLock, lock("u1")), blockingRefresh("u1", "u2", ""), blockingRefresh(), submitted(VerbLock, lock("u2")),
		}},
		{"force-unlock", []queuedCall{
			submitted(VerbLock, lock("u1")),
			submitted(VerbForceUnlock, locker.LockArgs{Resources: []string{"bucket/u1"}}),
			blocking(VerbForceUnlock, locker.LockArgs{UID: "u2", Owner: owner}),
		}},
		{"a lock that hoisting empties", []queuedCall{
			submitted(VerbLock, locker.LockArgs{Owner: owner, Source: source}), submitted(VerbLock, lock("u1")),
		}},
		{"release of an abandoned lock", []queuedCall{
			blocking(VerbUnlock, locker.LockArgs{UID: "u1", Owner: owner, Source: source, Quorum: 3}),
		}},
		{"long origin", []queuedCall{
			submitted(VerbLock, with(lock("u1"), func(a *locker.LockArgs) { a.Owner, a.Source = long, long+"s" })),
			submitted(VerbLock, with(lock("u2"), func(a *locker.LockArgs) { a.Owner, a.Source = long, long+"s" })),
		}},
		{"40 ops", many},
		{"odd: a lock call that also carries UIDs", []queuedCall{(&call{verb: VerbLock, lock: lock("u1"), refresh: locker.RefreshArgs{UIDs: []string{"r"}}}).queued()}},
		{"odd: unknown verbs", []queuedCall{blocking(VerbNone, lock("u1")), blocking(200, lock("u2"))}},
	} {
		checkAppendBatch(t, tc.name, tc.calls, sessionRef{})
	}
}

// TestAppendBatchLimits checks that appendBatch refuses what the generated
// encoder refuses, the arrays over the //msgp:limit of their package, with
// the same error, and accepts what it accepts.
func TestAppendBatchLimits(t *testing.T) {
	strs := func(n int) []string { return make([]string, n) }
	ops := func(n int) []queuedCall {
		calls := make([]queuedCall, n)
		for i := range calls {
			calls[i] = submitted(VerbUnlock, locker.LockArgs{UID: "u"})
		}
		return calls
	}
	for _, tc := range []struct {
		name  string
		calls []queuedCall
		ok    bool
	}{
		{"resources at limit", []queuedCall{submitted(VerbLock, locker.LockArgs{UID: "u", Resources: strs(lockerArrayLimit)})}, true},
		{"resources past limit", []queuedCall{submitted(VerbUnlock, locker.LockArgs{}), submitted(VerbLock, locker.LockArgs{UID: "u", Resources: strs(lockerArrayLimit + 1)})}, false},
		{"uids at limit", []queuedCall{blockingRefresh(strs(lockerArrayLimit)...)}, true},
		{"uids past limit", []queuedCall{blockingRefresh(), blockingRefresh(strs(lockerArrayLimit + 1)...)}, false},
		{"ops at limit", ops(batchArrayLimit), true},
		{"ops past limit", ops(batchArrayLimit + 1), false},
	} {
		checkAppendBatch(t, tc.name, tc.calls, sessionRef{})
		_, err := appendBatch(nil, tc.calls, sessionRef{})
		assert.Equal(t, tc.ok, err == nil, "%s: %v", tc.name, err)
		if err != nil {
			assert.ErrorIs(t, err, msgp.ErrLimitExceeded, tc.name)
		}
	}
}

// TestAppendBatchKnowsEveryField fails when a wire type that appendBatch
// writes by hand gains or loses a field: appendBatch (and fillRandom) must
// then learn it, and this count be updated.
func TestAppendBatchKnowsEveryField(t *testing.T) {
	for _, tc := range []struct {
		typ    reflect.Type
		fields int
	}{
		{reflect.TypeFor[BatchArgs](), 7},
		{reflect.TypeFor[BatchOp](), 3},
		{reflect.TypeFor[locker.LockArgs](), 13},
		{reflect.TypeFor[locker.RefreshArgs](), 1},
	} {
		assert.Equal(t, tc.fields, tc.typ.NumField(), "fields of %v, which appendBatch writes: teach appendBatch (encode.go) the change, check it with TestAppendBatchRandom, then update this count", tc.typ)
	}
}

// batchProfile says how fillRandom draws the fields of one batch. A batch
// either mostly repeats a value per field (one process, a few call sites:
// what hoisting is for) or mostly draws fresh ones, with a rate of empty
// values of its own, so that both hoisting and its refusals happen often.
type batchProfile struct {
	common map[string]string // per field name, the value the batch repeats
	pEmpty float64           // chance that a field is zero
	pSame  float64           // chance that a string field takes the common value
}

func newBatchProfile(rng *rand.Rand) *batchProfile {
	return &batchProfile{
		common: map[string]string{},
		pEmpty: []float64{0, 0, 0.02, 0.2, 0.6}[rng.IntN(5)],
		pSame:  []float64{1, 0.9, 0.5, 0}[rng.IntN(4)],
	}
}

// randomString returns a string of a length that exercises every msgpack
// string header the tests can afford: fixstr, str8, str16.
func randomString(rng *rand.Rand) string {
	n := []int{1, 2, 7, 31, 32, 40, 255, 256, 300}[rng.IntN(9)]
	if rng.IntN(4) > 0 {
		n = 1 + rng.IntN(30)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = "abc:/.-0123456789"[rng.IntN(17)]
	}
	return string(b)
}

// fillRandom sets every field of the struct v points to, by its kind, so
// that a field added to LockArgs or RefreshArgs gets values too and
// TestAppendBatchRandom fails until appendBatch writes it. A kind it does
// not know fails the test: teach it, and appendBatch.
func fillRandom(t testing.TB, rng *rand.Rand, p *batchProfile, v reflect.Value) {
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Name()+"."+v.Type().Field(i).Name
		if rng.Float64() < p.pEmpty {
			f.SetZero()
			continue
		}
		switch {
		case f.Kind() == reflect.String:
			s, ok := p.common[name]
			if !ok {
				s = randomString(rng)
				p.common[name] = s
			}
			if rng.Float64() >= p.pSame {
				s = randomString(rng)
			}
			f.SetString(s)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			var n int
			switch r := rng.IntN(10); {
			case r == 0: // nil
				continue
			case r == 1: // empty, not nil: sent as an empty array
			case r < 9:
				n = 1 + rng.IntN(3)
			default: // an array16
				n = 16 + rng.IntN(5)
			}
			s := make([]string, n)
			for j := range s {
				s[j] = randomString(rng)
			}
			f.Set(reflect.ValueOf(s))
		case f.CanInt():
			f.SetInt([]int64{0, 1, 3, -1, -33, 127, 128, 255, 256, 1 << 16, -1 << 20, 1 << 40}[rng.IntN(12)])
		case f.CanUint():
			f.SetUint([]uint64{0, 1, 127, 128, 255, 1 << 16, 1 << 40, 1<<64 - 1}[rng.IntN(8)])
		case f.Kind() == reflect.Bool:
			f.SetBool(rng.IntN(2) == 0)
		default:
			require.Failf(t, "fillRandom does not know a field", "fillRandom does not know %s, of type %v: teach it and appendBatch", name, f.Type())
		}
	}
}

// randomBatch returns calls as the coalescer sends them: submitted calls
// and blocking calls of every verb, and now and then a call with both lock
// arguments and UIDs, which no client method makes but BatchOp can carry.
func randomBatch(t testing.TB, rng *rand.Rand) []queuedCall {
	p := newBatchProfile(rng)
	n := 1 + rng.IntN(12)
	if rng.IntN(10) == 0 {
		n = 16 + rng.IntN(24) // an array16 of ops
	}
	lockVerbs := []Verb{VerbLock, VerbLock, VerbLock, VerbRLock, VerbRLock, VerbUnlock, VerbRUnlock, VerbForceUnlock}
	calls := make([]queuedCall, n)
	for i := range calls {
		var a locker.LockArgs
		fillRandom(t, rng, p, reflect.ValueOf(&a).Elem())
		switch r := rng.IntN(20); {
		case r < 12:
			calls[i] = submitted(lockVerbs[rng.IntN(len(lockVerbs))], a)
		case r < 17:
			calls[i] = blocking(lockVerbs[rng.IntN(len(lockVerbs))], a)
		case r < 19:
			cl := &call{verb: VerbRefresh}
			fillRandom(t, rng, p, reflect.ValueOf(&cl.refresh).Elem())
			calls[i] = cl.queued()
		default:
			cl := &call{verb: Verb(rng.IntN(8)), lock: a}
			fillRandom(t, rng, p, reflect.ValueOf(&cl.refresh).Elem())
			calls[i] = cl.queued()
		}
	}
	return calls
}

// TestAppendBatchRandom holds appendBatch to the generated encoder on
// seeded random batches.
func TestAppendBatchRandom(t *testing.T) {
	hoisted := 0
	for seed := range uint64(3000) {
		rng := rand.New(rand.NewPCG(seed, 11))
		calls := randomBatch(t, rng)
		var sess sessionRef
		if rng.IntN(3) == 0 {
			sess.name = randomString(rng)
			// A client that has seen its session's events acknowledges
			// them; both, either or neither may be zero.
			sess.ack, sess.epoch = rng.Uint64N(3)*rng.Uint64(), rng.Uint64N(3)*rng.Uint64()
			sess.take = rng.IntN(2) == 0
		}
		checkAppendBatch(t, fmt.Sprint("seed ", seed), calls, sess)
		if o, s, _ := batchOrigin(calls); o != "" || s != "" {
			hoisted++
		}
	}
	// The generator must exercise both outcomes of hoisting.
	require.GreaterOrEqual(t, hoisted, 500, "of 3000 random batches, those that hoist an owner or a source")
	require.LessOrEqual(t, hoisted, 2500, "of 3000 random batches, those that hoist an owner or a source")
}

// FuzzAppendBatch holds appendBatch to the generated encoder on the
// batches that the generated decoder finds in arbitrary bodies, each
// operation sent as a submitted call or a blocking one as the bits of
// kinds say.
func FuzzAppendBatch(f *testing.F) {
	for i, s := range decodeSeeds(f) {
		f.Add(s, uint64(i)*0x9e3779b97f4a7c15)
	}
	f.Fuzz(func(t *testing.T, body []byte, kinds uint64) {
		var a BatchArgs
		if _, err := a.UnmarshalMsg(body); err != nil {
			return
		}
		a.inherit() // the operations as their callers made them
		calls := make([]queuedCall, len(a.Ops))
		for i := range a.Ops {
			op := &a.Ops[i]
			// A submitted call carries no UIDs: an operation with some is
			// sent as a blocking call whatever kinds says.
			if kinds>>(i%64)&1 == 1 && op.Refresh.UIDs == nil {
				calls[i] = submitted(op.Verb, op.Lock)
			} else {
				calls[i] = (&call{verb: op.Verb, lock: op.Lock, refresh: op.Refresh}).queued()
			}
		}
		checkAppendBatch(t, "fuzzed", calls, sessionRef{a.Session, a.Ack, a.Epoch, a.TakeEvents})
	})
}
