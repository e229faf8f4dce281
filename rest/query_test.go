package rest

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

func TestQueryConformance(t *testing.T) {
	lockertest.RunQuery(t, conformanceFactory(ClientConfig{}))
}

func TestFenceConformance(t *testing.T) {
	lockertest.RunFence(t, conformanceFactory(ClientConfig{}))
}

func TestFenceFailures(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	secret := newSecret(t)
	_, endpoint := startServer(t, tbl, ServerConfig{Secret: secret})
	ctx := context.Background()
	wrong := newClient(t, endpoint, ClientConfig{Secret: newSecret(t)})
	_, err := wrong.RaiseFence(ctx, locker.FenceArgs{Floor: 1 << 62})
	assert.ErrorIs(t, err, locker.ErrUnauthorized, "wrong secret: want ErrUnauthorized")
	r, _ := tbl.RaiseFence(ctx, locker.FenceArgs{})
	assert.Less(t, r.Fence, uint64(1<<62), "an unauthenticated request raised the counter to %d", r.Fence)
	_, old := startServer(t, noQuery{tbl}, ServerConfig{Secret: secret})
	_, err = newClient(t, old, ClientConfig{Secret: secret}).RaiseFence(ctx, locker.FenceArgs{})
	assert.ErrorIs(t, err, ErrProtocol, "node without Fencer: want ErrProtocol")
}

// noQuery hides the table's optional capabilities (Querier, Fencer, Versioner,
// WaitReporter), as a node of an older version would.
type noQuery struct{ locker.NetLocker }

func TestQueryFailures(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	secret := newSecret(t)
	var queries atomic.Int32
	_, endpoint := startServer(t, tbl, ServerConfig{Secret: secret, OnRequest: func(p []byte) {
		if string(p) == PathQuery {
			queries.Add(1)
		}
	}})
	ctx := context.Background()
	args := locker.QueryArgs{Resources: []string{"a"}}

	c := newClient(t, endpoint, ClientConfig{Secret: secret})
	_, err := c.Query(ctx, args)
	require.NoError(t, err)
	require.EqualValues(t, 1, queries.Load(), "OnRequest saw queries, want 1")
	_, err = c.Query(ctx, locker.QueryArgs{})
	assert.ErrorIs(t, err, locker.ErrInvalidArgs, "empty query: want ErrInvalidArgs")

	wrong := newClient(t, endpoint, ClientConfig{Secret: newSecret(t)})
	_, err = wrong.Query(ctx, args)
	assert.ErrorIs(t, err, locker.ErrUnauthorized, "wrong secret: want ErrUnauthorized")

	_, old := startServer(t, noQuery{tbl}, ServerConfig{Secret: secret})
	_, err = newClient(t, old, ClientConfig{Secret: secret}).Query(ctx, args)
	assert.ErrorIs(t, err, ErrProtocol, "node without Querier: want ErrProtocol")

	expectPostOnly(t, endpoint, secret, PathQuery)

	down := newClient(t, "http://127.0.0.1:1", ClientConfig{Secret: secret, CallTimeout: time.Second})
	_, err = down.Query(ctx, args)
	assert.ErrorIs(t, err, locker.ErrOffline, "no server: want ErrOffline")
	_, err = down.Query(ctx, args)
	assert.ErrorIs(t, err, locker.ErrNotSent, "node known offline: want ErrNotSent")
}

// FuzzAloneHandlers sends the query and fence paths (the calls that go
// alone, alone.go) arbitrary, correctly signed bodies through the server's
// real handler. It must never panic, and every answer must be a decodable
// reply of the path, or a well-formed ErrorReply.
func FuzzAloneHandlers(f *testing.F) {
	query, _ := (&locker.QueryArgs{Resources: []string{"a", "b", "a"}}).MarshalMsg(nil)
	fence, _ := (&locker.FenceArgs{Floor: 1 << 62}).MarshalMsg(nil)
	for _, path := range []uint8{0, 1} {
		f.Add(path, query)
		f.Add(path, fence)
		f.Add(path, []byte{0x80})
		f.Add(path, []byte{0x81, 0xa1, 'r', 0xc0})
		f.Add(path, []byte{0x81, 0xa1, 'f', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		f.Add(path, []byte{0x81, 0xa1, 'r', 0xdd, 0xff, 0xff, 0xff, 0xff})
	}

	clk := clock.NewFake(epoch)
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, MaxResources: 8, Clock: clk})
	defer tbl.Close()
	tbl.RLock(context.Background(), locker.LockArgs{UID: "u", Resources: []string{"a"}})
	srv, err := NewServer(tbl, ServerConfig{Secret: fuzzSecret, Clock: clk})
	require.NoError(f, err)
	stamper := &fuzzStamper{clk: clk, stamp: epoch.UnixNano()}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path, reply := PathQuery, msgp.Unmarshaler(new(locker.QueryReply))
		if which%2 == 1 {
			path, reply = PathFence, new(locker.FenceReply)
		}
		serveSignedFuzz(t, srv, stamper, path, body, reply)
	})
}

// fuzzStamper hands out increasing request timestamps for a fuzz target's
// signed requests, kept within the replay window of its fake clock.
type fuzzStamper struct {
	clk   *clock.Fake
	stamp int64
}

func (st *fuzzStamper) next() int64 {
	if st.stamp-epoch.UnixNano() > int64(time.Second) {
		st.clk.Advance(time.Second)
		st.stamp = st.clk.Now().UnixNano()
	}
	st.stamp++
	return st.stamp
}

// serveSignedFuzz sends body to path on srv's handler, signed with
// fuzzSecret, and fails t unless the answer is a 200 whose body decodes
// whole into reply, or an error status with a matching, decodable
// ErrorReply.
func serveSignedFuzz(t *testing.T, srv *Server, st *fuzzStamper, path string, body []byte, reply msgp.Unmarshaler) {
	t.Helper()
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI(path)
	req.SetBody(body)
	s := signed{role: roleLock, node: srv.node, incarnation: srv.incarnation, ts: st.next()}
	req.Header.Set(HeaderAuth, string(newAuthKey(fuzzSecret).appendAuth(nil, req.Header.Method(), req.RequestURI(), &s, body)))
	var rc fasthttp.RequestCtx
	rc.Init(&req, nil, nil)
	srv.srv.Handler(&rc)
	status := rc.Response.StatusCode()
	if status == http.StatusOK {
		left, err := reply.UnmarshalMsg(rc.Response.Body())
		require.NoError(t, err, "%s: 200 with an undecodable reply %q", path, rc.Response.Body())
		require.Empty(t, left, "%s: 200 with an undecodable reply %q", path, rc.Response.Body())
		return
	}
	var e ErrorReply
	left, err := e.UnmarshalMsg(rc.Response.Body())
	require.NoError(t, err, "%s: status %d with an undecodable body %q", path, status, rc.Response.Body())
	require.Empty(t, left, "%s: status %d with an undecodable body %q", path, status, rc.Response.Body())
	require.NotEqual(t, CodeOK, e.Code, "%s: status %d with error reply %+v", path, status, e)
	require.Equal(t, status, e.Code.status(), "%s: status %d with error reply %+v", path, status, e)
	require.NotEmpty(t, e.Message, "%s: status %d with error reply %+v", path, status, e)
}

// FuzzQueryReplyDecode feeds the client's decoder of query answers arbitrary
// bodies: it must never panic, and what it accepts must encode back to an
// equal value.
func FuzzQueryReplyDecode(f *testing.F) {
	r, _ := (&locker.QueryReply{Resources: []locker.Holders{
		{Holders: []locker.Holder{{Tag: locker.UIDTag("u1"), Write: true, HeldFor: 5}}},
		{},
		{Holders: []locker.Holder{{Tag: locker.UIDTag("r1")}, {Tag: locker.UIDTag("r2"), UID: "r2", HeldFor: 1 << 40}}},
	}}).MarshalMsg(nil)
	f.Add(r)
	f.Add([]byte{0x81, 0xa1, 'r', 0x91, 0x81, 0xa1, 'h', 0xdc, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		var got locker.QueryReply
		if _, err := got.UnmarshalMsg(body); err != nil {
			return
		}
		again, err := got.MarshalMsg(nil)
		require.NoError(t, err, "re-encoding %+v", got)
		var back locker.QueryReply
		_, err = back.UnmarshalMsg(again)
		require.NoError(t, err, "round trip of %+v gave %+v", got, back)
		require.Equal(t, normal(got), normal(back), "round trip of %+v gave %+v", got, back)
	})
}

// normal makes empty and nil holder lists compare equal.
func normal(r locker.QueryReply) locker.QueryReply {
	for i := range r.Resources {
		if len(r.Resources[i].Holders) == 0 {
			r.Resources[i].Holders = nil
		}
	}
	if len(r.Resources) == 0 {
		r.Resources = nil
	}
	return r
}

// expectPostOnly checks that a GET of path is refused with 405 and an Allow
// header naming POST.
func expectPostOnly(t *testing.T, endpoint, secret, path string) {
	t.Helper()
	c := newClient(t, endpoint, ClientConfig{Secret: secret})
	id, err := c.identity(time.Now().Add(time.Second))
	require.NoError(t, err)
	r := sign(secret, roleLock, id.node, id.incarnation, "GET", path, time.Now(), nil)
	req, err := http.NewRequest("GET", endpoint+path, nil)
	require.NoError(t, err)
	req.Header.Set(HeaderAuth, r.auth)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "GET %s", path)
	assert.Equal(t, "POST", resp.Header.Get("Allow"), "GET %s", path)
	// Without credentials, nothing is said but that they are missing.
	resp, err = http.Get(endpoint + path)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "GET %s without credentials", path)
}
