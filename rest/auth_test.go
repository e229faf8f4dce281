package rest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

var epoch = time.Unix(1_800_000_000, 0)

// rawRequest is a request built by hand, to send what a client would not.
type rawRequest struct {
	method, target string
	body           []byte
	auth           string // Authorization header; empty = none
}

// sign returns a request signed with secret, for role, node and incarnation,
// at time ts.
func sign(secret, role, node string, incarnation uint64, method, target string, ts time.Time, body []byte) rawRequest {
	var auth string
	if secret != "" {
		s := signed{role: role, node: node, incarnation: incarnation, ts: ts.UnixNano()}
		auth = string(newAuthKey(secret).appendAuth(nil, []byte(method), []byte(target), &s, body))
	}
	return rawRequest{method: method, target: target, body: body, auth: auth}
}

// send sends r to endpoint and returns the status and the decoded error
// reply (zero for a 200).
func send(t *testing.T, endpoint string, r rawRequest) (int, ErrorReply, []byte) {
	t.Helper()
	req, err := http.NewRequest(r.method, endpoint+r.target, bytes.NewReader(r.body))
	require.NoError(t, err)
	if r.auth != "" {
		req.Header.Set(HeaderAuth, r.auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var e ErrorReply
	if resp.StatusCode != http.StatusOK {
		left, err := e.UnmarshalMsg(body)
		require.NoError(t, err, "%s %s: status %d with undecodable error body %q", r.method, r.target, resp.StatusCode, body)
		require.Empty(t, left)
	}
	return resp.StatusCode, e, body
}

func lockBody(t testing.TB, uid string, resources ...string) []byte {
	a := locker.LockArgs{UID: uid, Resources: resources, Owner: "test", Source: "auth_test.go", Quorum: 1}
	b, err := a.MarshalMsg(nil)
	require.NoError(t, err)
	return b
}

// authFixture is a table behind a server with a fake clock, and a lock and
// an admin secret.
type authFixture struct {
	tbl           *locker.Local
	srv           *Server
	clk           *clock.Fake
	secret, admin string
	endpoint      string
	stamps        int64 // nanoseconds added to the fake time to make requests distinct
}

// now returns the fake time plus a nanosecond more at every call, so that
// the requests of a test never share a MAC by accident.
func (f *authFixture) now() time.Time {
	f.stamps++
	return f.clk.Now().Add(time.Duration(f.stamps))
}

// signed returns a request signed for this node with the lock secret.
func (f *authFixture) signed(method, target string, ts time.Time, body []byte) rawRequest {
	return sign(f.secret, roleLock, f.srv.node, f.srv.incarnation, method, target, ts, body)
}

// signedAdmin returns a request signed for this node with the admin secret.
func (f *authFixture) signedAdmin(method, target string, ts time.Time, body []byte) rawRequest {
	return sign(f.admin, roleAdmin, f.srv.node, f.srv.incarnation, method, target, ts, body)
}

func newAuthFixture(t *testing.T, cfg ServerConfig) *authFixture {
	f := &authFixture{clk: clock.NewFake(epoch), secret: newSecret(t), admin: newSecret(t)}
	f.tbl = locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, MaxResources: 3})
	t.Cleanup(func() { f.tbl.Close() })
	cfg.Secret, cfg.AdminSecret, cfg.Clock = f.secret, f.admin, f.clk
	f.srv, f.endpoint = startServer(t, f.tbl, cfg)
	return f
}

func (f *authFixture) expectEmpty(t *testing.T, step string) {
	t.Helper()
	assert.Zero(t, f.tbl.Stats().Grants, "%s: the table holds grants", step)
}

func (f *authFixture) expectHealthy(t *testing.T) {
	t.Helper()
	status, e, _ := send(t, f.endpoint, f.signed("GET", PathHealth, f.now(), nil))
	require.Equal(t, http.StatusOK, status, "health after a bad request: %v", e)
}

// TestAuthRejects: every missing, wrong, malformed, stale, tampered or
// misdirected signature is refused, and changes nothing.
func TestAuthRejects(t *testing.T) {
	f := newAuthFixture(t, ServerConfig{})
	body := lockBody(t, "u1", "a")
	now := f.clk.Now()
	good := f.signed("POST", PathLock, now, body)

	tampered := good
	tampered.body = lockBody(t, "u2", "a")
	wrongPath := good
	wrongPath.target = PathRLock
	withQuery := good
	withQuery.target = PathLock + "?t=1000"
	flipped := good
	flipped.auth = good.auth[:len(good.auth)-1] + map[bool]string{true: "0", false: "1"}[strings.HasSuffix(good.auth, "1")]
	asAdminWithLockSecret := sign(f.secret, roleAdmin, f.srv.node, f.srv.incarnation, "POST", PathLock, now, body)

	cases := []struct {
		name string
		req  rawRequest
		code Code
		want string
	}{
		{"missing", rawRequest{method: "POST", target: PathLock, body: body}, CodeUnauthorized, "missing Authorization"},
		{"garbage", rawRequest{method: "POST", target: PathLock, body: body, auth: "Bearer xyz"}, CodeUnauthorized, "malformed Authorization"},
		{"version 1 header", rawRequest{method: "POST", target: PathLock, body: body, auth: "DSYNC1-HMAC-SHA256 1:" + strings.Repeat("ab", 32)}, CodeUnauthorized, "malformed Authorization"},
		{"wrong secret", sign(newSecret(t), roleLock, f.srv.node, f.srv.incarnation, "POST", PathLock, now, body), CodeUnauthorized, "MAC does not match"},
		{"admin role, lock secret", asAdminWithLockSecret, CodeUnauthorized, "MAC does not match"},
		{"tampered body", tampered, CodeUnauthorized, "body does not match"},
		{"tampered path", wrongPath, CodeUnauthorized, "MAC does not match"},
		{"added query", withQuery, CodeUnauthorized, "MAC does not match"},
		{"flipped MAC bit", flipped, CodeUnauthorized, "MAC does not match"},
		{"other node", sign(f.secret, roleLock, "other-node", f.srv.incarnation, "POST", PathLock, now, body), CodeIdentity, `signed for node "other-node"`},
		{"other start", sign(f.secret, roleLock, f.srv.node, f.srv.incarnation+1, "POST", PathLock, now, body), CodeIdentity, "ask its hello again"},
		{"stale", f.signed("POST", PathLock, now.Add(-DefaultReplayWindow-time.Millisecond), body), CodeUnauthorized, "outside the replay window"},
		{"future", f.signed("POST", PathLock, now.Add(DefaultReplayWindow+time.Millisecond), body), CodeUnauthorized, "outside the replay window"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, e, _ := send(t, f.endpoint, tc.req)
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, tc.code, e.Code)
			assert.Contains(t, e.Message, tc.want)
			f.expectEmpty(t, tc.name)
			f.expectHealthy(t)
		})
	}

	// At the edge of the window the request is still good.
	edge := f.signed("POST", PathLock, now.Add(-DefaultReplayWindow), body)
	status, e, _ := send(t, f.endpoint, edge)
	assert.Equal(t, http.StatusOK, status, "request at the window's edge: %v", e)
}

// TestAuthReplay: a request is accepted once, by one node.
func TestAuthReplay(t *testing.T) {
	f := newAuthFixture(t, ServerConfig{})
	lock := f.signed("POST", PathLock, f.clk.Now(), lockBody(t, "u1", "a"))
	status, e, _ := send(t, f.endpoint, lock)
	require.Equal(t, http.StatusOK, status, "lock: %v", e)
	unlock := f.signed("POST", PathUnlock, f.now(), lockBody(t, "u1"))
	status, e, _ = send(t, f.endpoint, unlock)
	require.Equal(t, http.StatusOK, status, "unlock: %v", e)
	f.expectEmpty(t, "after unlock")
	// Replaying the lock would re-grant a lock its holder has released.
	for _, after := range []time.Duration{0, DefaultReplayWindow} {
		f.clk.Advance(after)
		status, e, _ := send(t, f.endpoint, lock)
		assert.Equal(t, http.StatusUnauthorized, status, "replay %v later", after)
		assert.True(t, strings.Contains(e.Message, "replayed") || strings.Contains(e.Message, "replay window"), "replay %v later: %q", after, e.Message)
		f.expectEmpty(t, "after replay")
	}
}

// TestAuthOtherNodeAndRestart: a request recorded on its way to one node is
// refused by another node with the same secret, and by the same node after
// a restart (a new server on the same table and address).
func TestAuthOtherNodeAndRestart(t *testing.T) {
	a := newAuthFixture(t, ServerConfig{})
	bTbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer bTbl.Close()
	_, bEndpoint := startServer(t, bTbl, ServerConfig{Secret: a.secret, AdminSecret: a.admin, Clock: a.clk})
	force := a.signed("POST", PathForceUnlock, a.now(), lockBody(t, "u1"))
	lock := a.signed("POST", PathLock, a.now(), lockBody(t, "u1", "a"))

	status, e, _ := send(t, bEndpoint, lock)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, CodeIdentity, e.Code, "a request for node A at node B")
	status, _, _ = send(t, bEndpoint, force)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Zero(t, bTbl.Stats().Grants)

	// The same table served again, as after a restart of the process.
	_, again := startServer(t, a.tbl, ServerConfig{Secret: a.secret, Clock: a.clk})
	status, e, _ = send(t, again, lock)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, CodeIdentity, e.Code, "a request for the previous start")
	a.expectEmpty(t, "after replays to other nodes")
}

// TestAuthRoles: listings and force-unlock of a resource's holders need
// the admin role; the lock role may force-unlock a UID.
func TestAuthRoles(t *testing.T) {
	f := newAuthFixture(t, ServerConfig{})
	status, e, _ := send(t, f.endpoint, f.signed("POST", PathLock, f.now(), lockBody(t, "u1", "a")))
	require.Equal(t, http.StatusOK, status, "%v", e)

	list, err := (&locker.ListArgs{}).MarshalMsg(nil)
	require.NoError(t, err)
	status, e, _ = send(t, f.endpoint, f.signed("POST", PathLocks, f.now(), list))
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, CodeForbidden, e.Code)
	assert.Contains(t, e.Message, "needs the admin role")
	status, _, _ = send(t, f.endpoint, f.signedAdmin("POST", PathLocks, f.now(), list))
	assert.Equal(t, http.StatusOK, status)

	byResource, err := (&locker.LockArgs{Resources: []string{"a"}}).MarshalMsg(nil)
	require.NoError(t, err)
	status, e, _ = send(t, f.endpoint, f.signed("POST", PathForceUnlock, f.now(), byResource))
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, CodeForbidden, e.Code)
	assert.Equal(t, 1, f.tbl.Stats().Grants, "a refused force-unlock removed nothing")
	batch, err := (&BatchArgs{Ops: []BatchOp{{Verb: VerbForceUnlock, Lock: locker.LockArgs{Resources: []string{"a"}}}}}).MarshalMsg(nil)
	require.NoError(t, err)
	status, _, body := send(t, f.endpoint, f.signed("POST", PathBatch, f.now(), batch))
	require.Equal(t, http.StatusOK, status)
	var r BatchReply
	_, err = r.UnmarshalMsg(body)
	require.NoError(t, err)
	require.Len(t, r.Results, 1)
	assert.Equal(t, CodeForbidden, r.Results[0].Code, "in a batch too")
	assert.Equal(t, 1, f.tbl.Stats().Grants)

	status, _, _ = send(t, f.endpoint, f.signed("POST", PathForceUnlock, f.now(), lockBody(t, "u1")))
	assert.Equal(t, http.StatusOK, status, "the lock role force-unlocks a UID")
	f.expectEmpty(t, "after the force-unlock of u1")

	// A node without an admin secret serves nobody the admin role.
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	srv, endpoint := startServer(t, tbl, ServerConfig{Secret: f.secret, Clock: f.clk})
	status, e, _ = send(t, endpoint, sign(f.admin, roleAdmin, srv.node, srv.incarnation, "POST", PathLocks, f.now(), list))
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Contains(t, e.Message, "no admin secret")
}

// TestGateReadsNoBodyWithoutCredentials: a request refused by its header
// is answered without its body being read, and its connection closed.
func TestGateReadsNoBodyWithoutCredentials(t *testing.T) {
	f := newAuthFixture(t, ServerConfig{})
	conn, err := netDial(f.endpoint)
	require.NoError(t, err)
	defer conn.Close()
	// Declares 8 MiB and sends none of it: the answer comes at once.
	_, err = io.WriteString(conn, "POST "+PathBatch+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nothing\r\nContent-Length: 8388608\r\n\r\nx")
	require.NoError(t, err)
	var body []byte
	a, err := readResponse(bufioReader(conn), &body, 1<<20)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, a.status)
	assert.True(t, a.closing, "the connection of a peer without credentials is closed")
	var e ErrorReply
	_, err = e.UnmarshalMsg(body)
	require.NoError(t, err)
	assert.Contains(t, e.Message, "malformed Authorization")
}

func TestParseAuth(t *testing.T) {
	k := newAuthKey(strings.Repeat("k", 32))
	s := signed{role: roleLock, node: "node-1", incarnation: 99, ts: 1234}
	good := k.appendAuth(nil, []byte("POST"), []byte(PathLock), &s, []byte("body"))
	got, sum, err := parseAuth(good, "")
	require.NoError(t, err)
	assert.Equal(t, s, got)
	assert.Equal(t, k.mac([]byte("POST"), []byte(PathLock), &s), sum)
	hex := strings.Repeat("ab", macSize)
	for _, bad := range []string{
		"",
		authScheme,
		authScheme + "lock:n:1:1234:" + hex,
		authScheme + "root:n:1:1234:" + hex + ":" + hex,
		authScheme + "lock::1:1234:" + hex + ":" + hex,
		authScheme + "lock:n/1:1:1234:" + hex + ":" + hex,
		authScheme + "lock:" + strings.Repeat("n", MaxNodeIDLen+1) + ":1:1234:" + hex + ":" + hex,
		authScheme + "lock:n:01:1234:" + hex + ":" + hex,
		authScheme + "lock:n:1:-1:" + hex + ":" + hex,
		authScheme + "lock:n:1:12a4:" + hex + ":" + hex,
		authScheme + "lock:n:1:9999999999999999999:" + hex + ":" + hex,  // overflows int64
		authScheme + "lock:n:99999999999999999999:1:" + hex + ":" + hex, // overflows uint64
		authScheme + "lock:n:1:1234:" + hex[:63] + ":" + hex,
		authScheme + "lock:n:1:1234:" + hex + ":" + hex[:63] + "g",
		authScheme + "lock:n:1:1234:" + hex + ":" + hex + ":",
		strings.ToLower(authScheme) + "lock:n:1:1234:" + hex + ":" + hex,
	} {
		_, _, err := parseAuth([]byte(bad), "")
		assert.Error(t, err, "parseAuth(%q)", bad)
	}
}

func TestSecretsAreChecked(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	good := newSecret(t)
	for _, tc := range []struct {
		cfg  ServerConfig
		want string
	}{
		{ServerConfig{Secret: " "}, "at least 32"},
		{ServerConfig{Secret: strings.Repeat("x", 31)}, "at least 32"},
		{ServerConfig{Secret: good + "\n"}, "white space"},
		{ServerConfig{Secret: " " + good}, "white space"},
		{ServerConfig{Secret: good, AdminSecret: "short"}, "AdminSecret is 5 bytes"},
		{ServerConfig{Secret: good, AdminSecret: good}, "needs a secret of its own"},
		{ServerConfig{Secret: good, NodeID: "a b"}, "NodeID"},
		{ServerConfig{Insecure: true, AdminSecret: good}, "both a secret and Insecure"},
	} {
		_, err := NewServer(tbl, tc.cfg)
		if assert.Error(t, err, "%+v", tc.cfg) {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
	for _, cc := range []ClientConfig{{Secret: "s3cret"}, {AdminSecret: " "}, {Secret: good, AdminSecret: newSecret(t)}} {
		_, err := NewClient("http://127.0.0.1:1", cc)
		assert.Error(t, err, "%+v", cc)
	}
}

func TestClientAuthErrors(t *testing.T) {
	f := newAuthFixture(t, ServerConfig{})
	ctx := context.Background()
	wrong := newClient(t, f.endpoint, ClientConfig{Secret: newSecret(t), Clock: f.clk})
	_, err := wrong.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{"a"}})
	require.ErrorIs(t, err, locker.ErrUnauthorized)
	assert.Contains(t, err.Error(), "not signed with this client's lock secret", "the hello tells a wrong secret")
	assert.True(t, wrong.IsOnline(), "a 401 marked the node offline")
	insecure := newClient(t, f.endpoint, ClientConfig{Insecure: true})
	_, err = insecure.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{"a"}})
	assert.ErrorIs(t, err, locker.ErrUnauthorized, "lock without auth")
	// A client whose clock is off by more than the window is refused.
	skewed := newClient(t, f.endpoint, ClientConfig{Secret: f.secret, Clock: clock.NewFake(epoch.Add(time.Minute))})
	_, err = skewed.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{"a"}})
	require.ErrorIs(t, err, locker.ErrUnauthorized)
	assert.Contains(t, err.Error(), "replay window")
	f.expectEmpty(t, "after refused clients")
	// A client with a fake clock that never moves still sends distinct MACs.
	good := newClient(t, f.endpoint, ClientConfig{Secret: f.secret, Clock: f.clk, DisableBatching: true})
	for i := range 3 {
		r, err := good.Refresh(ctx, locker.RefreshArgs{UIDs: []string{"x"}})
		require.NoError(t, err, "refresh %d", i)
		assert.Len(t, r.Status, 1)
	}
	// An admin client lists; a lock client may not.
	admin := newClient(t, f.endpoint, ClientConfig{AdminSecret: f.admin, Clock: f.clk})
	_, err = admin.List(ctx, locker.ListArgs{})
	assert.NoError(t, err)
	_, err = good.List(ctx, locker.ListArgs{})
	require.ErrorIs(t, err, locker.ErrUnauthorized)
	assert.Contains(t, err.Error(), "needs the admin role")
}

// TestClientFollowsARestartedNode: a client signs for the node's current
// start; after the node restarts it is refused once (CodeIdentity), asks the
// hello again and goes on, with no error for the caller.
func TestClientFollowsARestartedNode(t *testing.T) {
	f := newAuthFixture(t, ServerConfig{})
	c := newClient(t, f.endpoint, ClientConfig{Secret: f.secret, Clock: f.clk, DisableBatching: true})
	ctx := context.Background()
	_, err := c.Refresh(ctx, locker.RefreshArgs{UIDs: []string{"x"}})
	require.NoError(t, err)
	before := c.ident.Load()
	// Another server for the table, on a new address that the client is
	// pointed at: as a restart behind a service address.
	srv2, endpoint2 := startServer(t, f.tbl, ServerConfig{Secret: f.secret, Clock: f.clk})
	c.addr = strings.TrimPrefix(endpoint2, "http://")
	c.tr = newTransport(c.addr, nil, 4, maxAnswerBytes)
	_, err = c.Refresh(ctx, locker.RefreshArgs{UIDs: []string{"x"}})
	require.NoError(t, err)
	after := c.ident.Load()
	assert.NotEqual(t, before.incarnation, after.incarnation)
	assert.Equal(t, srv2.incarnation, after.incarnation)
}

func TestInsecureServer(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	_, endpoint := startServer(t, tbl, ServerConfig{Insecure: true})
	c := newClient(t, endpoint, ClientConfig{Insecure: true})
	r, err := c.Lock(context.Background(), locker.LockArgs{UID: "u", Resources: []string{"a"}})
	require.NoError(t, err)
	assert.True(t, r.OK)
}

func BenchmarkMAC(b *testing.B) {
	k := newAuthKey(strings.Repeat("k", 32))
	body := lockBody(b, "4b0e6bda-8f4e-4c2b-9d4f-0a3e5f6b7c8d", "bucket/prefix/object-000123")
	method, target := []byte("POST"), []byte(PathLock+"?t=1000")
	s := signed{role: roleLock, node: "0123456789abcdef", incarnation: 1 << 60, ts: 1_800_000_000_000_000_000}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = k.appendAuth(buf[:0], method, target, &s, body)
	}
}
