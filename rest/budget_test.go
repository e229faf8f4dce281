package rest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/locker"
)

// names returns n names, "n0", "n1"...
func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint("n", i)
	}
	return out
}

func encode(t testing.TB, m msgp.Marshaler) []byte {
	t.Helper()
	b, err := m.MarshalMsg(nil)
	require.NoError(t, err)
	return b
}

// Where the budget is tighter than the generated decoders' limits, the
// zero-copy decoders differ from their twins, and say so: they refuse
// batches of more operations than the budget, and requests of more names,
// and they read a lock's resources over the table's limit without keeping
// them, noting the operation.
func TestDecodeBudgetDiffersFromTheGeneratedDecoders(t *testing.T) {
	batch := BatchArgs{Ops: []BatchOp{
		{Verb: VerbLock, Lock: locker.LockArgs{UID: "u1", Resources: names(3)}},
		{Verb: VerbLock, Lock: locker.LockArgs{UID: "u2", Resources: names(4)}},
		{Verb: VerbRefresh, Refresh: locker.RefreshArgs{UIDs: names(5)}},
	}}
	body := encode(t, &batch)
	var want BatchArgs
	_, err := want.UnmarshalMsg(body)
	require.NoError(t, err, "the generated decoder accepts it all")

	t.Run("operations", func(t *testing.T) {
		lim := unbounded()
		lim.ops = 2
		var got BatchArgs
		_, err := decodeBatchZC(&got, body, &lim)
		require.ErrorIs(t, err, errTooManyOps)
		assert.Contains(t, err.Error(), "batch of 3 operations, more than the limit of 2")
	})
	t.Run("names", func(t *testing.T) {
		lim := unbounded()
		lim.names = 3 + 4 + 4 // one short
		var got BatchArgs
		_, err := decodeBatchZC(&got, body, &lim)
		require.ErrorIs(t, err, errTooManyNames)
		lim = unbounded()
		lim.names = 3 + 4 + 5
		_, err = decodeBatchZC(&got, body, &lim)
		require.NoError(t, err, "just enough")
		assert.Zero(t, lim.names)
	})
	t.Run("resources of one lock", func(t *testing.T) {
		lim := unbounded()
		lim.resources = 3
		var got BatchArgs
		left, err := decodeBatchZC(&got, body, &lim)
		require.NoError(t, err)
		assert.Empty(t, left)
		assert.Equal(t, []overNames{{op: 1, n: 4}}, lim.over, "the second operation's four resources")
		assert.Empty(t, got.Ops[1].Lock.Resources, "not kept")
		assert.Equal(t, "u2", got.Ops[1].Lock.UID, "the rest of the operation decoded")
		assert.Equal(t, want.Ops[0], got.Ops[0])
		assert.Equal(t, want.Ops[2], got.Ops[2])
		assert.Equal(t, int(^uint(0)>>1)-3-5, lim.names, "the names not kept cost nothing")
	})
	t.Run("a key given twice", func(t *testing.T) {
		// {"u": "u", "r": [4 names], "r": [1 name]}: the last counts, as
		// for the generated decoder.
		b := msgp.AppendMapHeader(nil, 3)
		b = msgp.AppendString(b, "u")
		b = msgp.AppendString(b, "u")
		b = msgp.AppendString(b, "r")
		b = msgp.AppendArrayHeader(b, 4)
		for _, n := range names(4) {
			b = msgp.AppendString(b, n)
		}
		b = msgp.AppendString(b, "r")
		b = msgp.AppendArrayHeader(b, 1)
		b = msgp.AppendString(b, "x")
		lim := unbounded()
		lim.resources = 3
		var got locker.LockArgs
		_, err := decodeLockZC(&got, b, &lim)
		require.NoError(t, err)
		assert.Empty(t, lim.over)
		assert.Equal(t, []string{"x"}, got.Resources)
	})
}

// A lock over the table's limit, of 100,000 names, costs no allocation: its
// names are read, not kept.
func TestDecodeOverLimitDoesNotAllocate(t *testing.T) {
	body := encode(t, &BatchArgs{Ops: []BatchOp{{Verb: VerbLock, Lock: locker.LockArgs{UID: "u", Resources: make([]string, lockerArrayLimit)}}}})
	sc := new(scratch)
	lim := unbounded()
	lim.resources = locker.DefaultMaxResources
	_, err := decodeBatchZC(&sc.batch, body, &lim)
	require.NoError(t, err)
	sc.reset()
	n := testing.AllocsPerRun(20, func() {
		lim := decodeBudget{ops: batchArrayLimit, resources: locker.DefaultMaxResources, names: DefaultMaxRequestNames, over: lim.over[:0]}
		// A plain if around require.Fail, not require.NoError and
		// require.Len: the check must not allocate in the function
		// AllocsPerRun measures.
		if _, err := decodeBatchZC(&sc.batch, body, &lim); err != nil || len(lim.over) != 1 {
			require.Failf(t, "decode over the limit", "err %v, over %v; want no error and one name over", err, lim.over)
		}
		sc.reset()
	})
	assert.Zero(t, n)
}

// handleRaw serves one request through srv's whole handler.
func handleRaw(t *testing.T, srv *Server, path string, body []byte) (int, ErrorReply, []byte) {
	t.Helper()
	var req fasthttp.Request
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(path)
	req.SetBody(body)
	var rc fasthttp.RequestCtx
	rc.Init(&req, nil, nil)
	srv.srv.Handler(&rc)
	status := rc.Response.StatusCode()
	var e ErrorReply
	if status != http.StatusOK {
		_, err := e.UnmarshalMsg(rc.Response.Body())
		require.NoError(t, err)
	}
	return status, e, bytes.Clone(rc.Response.Body())
}

// What the server answers past each bound, for a table that copies its
// arguments (decoded in place) and for one that does not (copied).
func TestServerBudget(t *testing.T) {
	for _, wrapped := range []bool{false, true} {
		t.Run(fmt.Sprint("wrapped=", wrapped), func(t *testing.T) {
			tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, MaxResources: 4})
			defer tbl.Close()
			var l locker.NetLocker = tbl
			if wrapped { // not an ArgCopier, nor a LimitReporter: the generated decoders' limits
				l = struct {
					locker.NetLocker
					locker.Querier
				}{tbl, tbl}
			}
			srv, err := NewServer(l, ServerConfig{Insecure: true, MaxBatchOps: 8, MaxRequestNames: 20})
			require.NoError(t, err)
			limit := uint32(4)
			if wrapped {
				limit = lockerArrayLimit
			}

			// A batch whose one lock names too many resources: that lock is
			// refused, the others are done.
			ops := []BatchOp{
				{Verb: VerbLock, Lock: locker.LockArgs{UID: "ok", Resources: names(2)}},
				{Verb: VerbLock, Lock: locker.LockArgs{UID: "many", Resources: []string{"a", "b", "c", "d", "e"}}},
				{Verb: VerbRLock, Lock: locker.LockArgs{UID: "ok2", Resources: []string{"z"}}},
			}
			status, _, out := handleRaw(t, srv, PathBatch, encode(t, &BatchArgs{Ops: ops}))
			require.Equal(t, http.StatusOK, status)
			var reply BatchReply
			_, err = reply.UnmarshalMsg(out)
			require.NoError(t, err)
			require.Len(t, reply.Results, 3)
			assert.True(t, reply.Results[0].Reply.OK)
			assert.Equal(t, CodeInvalidArgs, reply.Results[1].Code)
			assert.Contains(t, reply.Results[1].Message, "5 resources, more than the limit of 4")
			assert.True(t, reply.Results[2].Reply.OK)
			if !wrapped {
				assert.Equal(t, fmt.Sprintf("rest: lock: 5 resources, more than the limit of %d (MaxResources)", limit), reply.Results[1].Message)
			}

			// Alone, it is refused with 400.
			status, e, _ := handleRaw(t, srv, PathLock, encode(t, &locker.LockArgs{UID: "many", Resources: names(5)}))
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, CodeInvalidArgs, e.Code)
			assert.Contains(t, e.Message, "5 resources, more than the limit of 4")

			// More names in all than the request may carry: 413.
			ops = nil
			for i := range 6 {
				ops = append(ops, BatchOp{Verb: VerbRefresh, Refresh: locker.RefreshArgs{UIDs: names(4 + i%2)}})
			}
			status, e, _ = handleRaw(t, srv, PathBatch, encode(t, &BatchArgs{Ops: ops}))
			assert.Equal(t, http.StatusRequestEntityTooLarge, status)
			assert.Equal(t, CodeTooLarge, e.Code)
			assert.Contains(t, e.Message, "MaxRequestNames")
			status, e, _ = handleRaw(t, srv, PathRefresh, encode(t, &locker.RefreshArgs{UIDs: names(21)}))
			assert.Equal(t, http.StatusRequestEntityTooLarge, status)
			assert.Equal(t, CodeTooLarge, e.Code)

			// More operations than MaxBatchOps: 413, before they are decoded.
			status, e, _ = handleRaw(t, srv, PathBatch, encode(t, &BatchArgs{Ops: make([]BatchOp, 9)}))
			assert.Equal(t, http.StatusRequestEntityTooLarge, status)
			assert.Contains(t, e.Message, "batch of 9 operations, more than the limit of 8")

			// Queries too.
			status, e, _ = handleRaw(t, srv, PathQuery, encode(t, &locker.QueryArgs{Resources: names(5)}))
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, CodeInvalidArgs, e.Code)
			status, e, _ = handleRaw(t, srv, PathQuery, encode(t, &locker.QueryArgs{Resources: append(names(21), "")[:21]}))
			if !wrapped {
				assert.Equal(t, http.StatusBadRequest, status, "over the table's limit first")
			} else {
				assert.Equal(t, http.StatusRequestEntityTooLarge, status)
				assert.Equal(t, CodeTooLarge, e.Code)
			}
			status, _, out = handleRaw(t, srv, PathQuery, encode(t, &locker.QueryArgs{Resources: []string{"n0"}}))
			require.Equal(t, http.StatusOK, status)
			var q locker.QueryReply
			_, err = q.UnmarshalMsg(out)
			require.NoError(t, err)
			require.Len(t, q.Resources, 1)
			require.Len(t, q.Resources[0].Holders, 1)
			assert.Equal(t, locker.UIDTag("ok"), q.Resources[0].Holders[0].Tag)
		})
	}
}

// keeper is a table that keeps the strings of its arguments, and so is no
// locker.ArgCopier.
type keeper struct {
	locker.NetLocker
	kept []string
}

func (k *keeper) Lock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	k.kept = append(k.kept, args.UID, args.Owner)
	k.kept = append(k.kept, args.Resources...)
	return locker.Reply{OK: true, Fence: 1}, nil
}

// A table that keeps its arguments' strings gets copies of its own: the
// request's memory, which the server reuses, may change under the
// decoded-in-place strings.
func TestServerCopiesForTablesThatKeep(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	k := &keeper{NetLocker: tbl}
	srv, err := NewServer(k, ServerConfig{Insecure: true})
	require.NoError(t, err)
	for _, tc := range []struct {
		path string
		body []byte
	}{
		{PathLock, encode(t, &locker.LockArgs{UID: "uid-1", Owner: "owner", Resources: []string{"res-1"}})},
		{PathBatch, encode(t, &BatchArgs{Ops: []BatchOp{{Verb: VerbLock, Lock: locker.LockArgs{UID: "uid-1", Resources: []string{"res-1"}}}}, Owner: "owner"})},
	} {
		k.kept = nil
		var req fasthttp.Request
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(tc.path)
		req.SetBody(tc.body)
		var rc fasthttp.RequestCtx
		rc.Init(&req, nil, nil)
		srv.srv.Handler(&rc)
		require.Equal(t, http.StatusOK, rc.Response.StatusCode(), "%s", tc.path)
		clear(rc.Request.Body()) // as the next request on the connection would
		assert.Equal(t, []string{"uid-1", "owner", "res-1"}, k.kept, "%s", tc.path)
	}
}
