package rest

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// fuzzSecret is the secret of the fuzzed server.
const fuzzSecret = "fuzz-secret-fuzz-secret-fuzz-sec" // MinSecretLen bytes

// seedRequests are valid requests, the seed corpus of FuzzHandler.
func seedRequests(t testing.TB) [][]byte {
	lock := lockBody(t, "u1", "a", "b")
	refresh, _ := (&locker.RefreshArgs{UIDs: []string{"u1", "u2"}}).MarshalMsg(nil)
	batch, _ := (&BatchArgs{Ops: []BatchOp{
		{Verb: VerbLock, Lock: locker.LockArgs{UID: "u2", Resources: []string{"c"}}},
		{Verb: VerbRefresh, Refresh: locker.RefreshArgs{UIDs: []string{"u2"}}},
		{Verb: VerbUnlock, Lock: locker.LockArgs{UID: "u2"}},
	}}).MarshalMsg(nil)
	return [][]byte{lock, refresh, batch}
}

// FuzzHandler feeds the server's handler arbitrary methods, paths, auth
// headers and bodies. It must never panic, and every answer must be a 200 or
// a well-formed ErrorReply whose code matches the status. When sign is true
// the request is correctly signed, so that the fuzzer reaches the decoders.
func FuzzHandler(f *testing.F) {
	seeds := seedRequests(f)
	for i, path := range []string{PathLock, PathRefresh, PathBatch} {
		f.Add("POST", path, seeds[i], true, "")
		f.Add("POST", path, seeds[i], false, "")
	}
	f.Add("POST", PathRLock+"?t=100", seeds[0], true, "")
	f.Add("POST", PathUnlock, seeds[0], true, "")
	f.Add("POST", PathForceUnlock, seeds[0], true, "")
	list, _ := (&locker.ListArgs{AfterResource: "a", AfterUID: "u", Max: 2}).MarshalMsg(nil)
	f.Add("POST", PathLocks, list, true, "")
	version, _ := (&locker.VersionArgs{Resources: []string{"a", "b"}}).MarshalMsg(nil)
	f.Add("POST", PathVersion, version, true, "")
	f.Add("GET", PathHealth, []byte(nil), false, authScheme+"lock:n:1:1:"+string(bytes.Repeat([]byte("0"), 64))+":"+string(bytes.Repeat([]byte("0"), 64)))
	f.Add("GET", PathHello+"?n="+string(bytes.Repeat([]byte("a"), 32)), []byte(nil), false, "")
	f.Add("DELETE", "/x", []byte{0xc1}, true, "")

	clk := clock.NewFake(epoch)
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, MaxResources: 8, Clock: clk})
	defer tbl.Close()
	srv, err := NewServer(tbl, ServerConfig{Secret: fuzzSecret, Clock: clk, MaxBatchOps: 16})
	require.NoError(f, err)
	var stamp int64 = epoch.UnixNano()
	f.Fuzz(func(t *testing.T, method, target string, body []byte, sign bool, auth string) {
		var req fasthttp.Request
		req.Header.SetMethod(method)
		req.SetRequestURI(target)
		req.SetBody(body)
		if sign {
			stamp++
			s := signed{role: roleLock, node: srv.node, incarnation: srv.incarnation, ts: stamp}
			auth = string(newAuthKey(fuzzSecret).appendAuth(nil, req.Header.Method(), req.RequestURI(), &s, body))
		}
		if auth != "" {
			req.Header.Set(HeaderAuth, auth)
		}
		var rc fasthttp.RequestCtx
		rc.Init(&req, nil, nil)
		srv.srv.Handler(&rc) // without the gate, which the handler then stands in for
		status := rc.Response.StatusCode()
		if status == http.StatusOK {
			return
		}
		var e ErrorReply
		left, err := e.UnmarshalMsg(rc.Response.Body())
		require.NoError(t, err, "status %d with an undecodable body %q", status, rc.Response.Body())
		require.Empty(t, left, "status %d with an undecodable body %q", status, rc.Response.Body())
		require.NotEqual(t, CodeOK, e.Code, "status %d with error reply %+v", status, e)
		require.Equal(t, status, e.Code.status(), "status %d with error reply %+v", status, e)
		require.NotEmpty(t, e.Message, "status %d with error reply %+v", status, e)
		if stamp-epoch.UnixNano() > int64(time.Second) {
			// Keep timestamps inside the replay window of the fake clock.
			clk.Advance(time.Second)
			stamp = clk.Now().UnixNano()
		}
	})
}

// FuzzParseAuth checks that the Authorization parser never panics and that
// what it accepts is exactly what a client produces.
func FuzzParseAuth(f *testing.F) {
	k := newAuthKey(fuzzSecret)
	f.Add(string(k.appendAuth(nil, []byte("POST"), []byte(PathLock), &signed{role: roleAdmin, node: "n-1.a_b", incarnation: 1 << 63, ts: 1_800_000_000_000_000_000}, []byte("body"))))
	hex := string(bytes.Repeat([]byte("f"), 64))
	f.Add(authScheme + "lock:n:0:0:" + hex + ":" + hex)
	f.Add(authScheme + "lock:n:0:0:" + hex + ":" + hex + ":")
	f.Add("")
	f.Add(authScheme)
	f.Fuzz(func(t *testing.T, v string) {
		s, sum, err := parseAuth([]byte(v), "")
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, s.ts, int64(0), "parseAuth(%q) accepted %+v", v, s)
		require.True(t, s.role == roleLock || s.role == roleAdmin, "parseAuth(%q) accepted %+v", v, s)
		require.True(t, validNodeID(s.node), "parseAuth(%q) accepted %+v", v, s)
		again := string(appendAuthValue(nil, &s, sum))
		require.True(t, bytes.EqualFold([]byte(again), []byte(v)), "parseAuth(%q) = %+v, %x, which formats as %q", v, s, sum, again)
	})
}

// FuzzClientDecode feeds the client's answer decoders arbitrary bodies.
func FuzzClientDecode(f *testing.F) {
	reply, _ := (&locker.Reply{OK: true, Fence: 7}).MarshalMsg(nil)
	batch, _ := (&BatchReply{Results: []BatchResult{{Reply: locker.Reply{OK: true}}, {Code: CodeBusy, Message: "busy"}}}).MarshalMsg(nil)
	e, _ := (&ErrorReply{Code: CodeInvalidArgs, Message: "bad"}).MarshalMsg(nil)
	for _, b := range [][]byte{reply, batch, e} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []Verb{VerbLock, VerbRefresh} {
			cl := newCall(v)
			_ = cl.decodeAnswer(body)
			putCall(cl)
		}
		var list locker.EntryList
		_ = decodeArgs(body, &list) // as callAlone decodes a page of a listing
		var reply BatchReply
		if checkBatchReply(2, &reply, body) == nil {
			require.Len(t, reply.Results, 2, "checkBatchReply accepted %d results for 2 operations", len(reply.Results))
		}
		code, err := decodeError(400, body)
		require.Error(t, err, "decodeError(%q) = %v, %v", body, code, err)
		require.NotEqual(t, CodeOK, code, "decodeError(%q) = %v, %v", body, code, err)
		if code == CodeInvalidArgs {
			require.ErrorIs(t, err, locker.ErrInvalidArgs, "code %v maps to %v", code, err)
		}
	})
}

// FuzzGate feeds the gate, which reads every request's header before its
// body, arbitrary methods, request targets and Authorization values. It
// must never panic; it lets through, with a body, only a request whose
// credentials hold, and then only for a known path of this version.
func FuzzGate(f *testing.F) {
	clk := clock.NewFake(epoch)
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, Clock: clk})
	defer tbl.Close()
	srv, err := NewServer(tbl, ServerConfig{Secret: fuzzSecret, Clock: clk})
	require.NoError(f, err)
	good := signed{role: roleLock, node: srv.node, incarnation: srv.incarnation, ts: epoch.UnixNano()}
	auth := string(newAuthKey(fuzzSecret).appendAuth(nil, []byte("POST"), []byte(PathLock), &good, []byte("body")))
	f.Add("POST", PathLock, auth)
	f.Add("POST", PathLock+"?t=5", auth)
	f.Add("GET", PathHello+"?n=00", "")
	f.Add("POST", "/dsync/v1/lock", auth)
	f.Add("POST", "/dsync/v9", "")
	f.Add("POST", PathLocks, strings.Replace(auth, "lock:", "admin:", 1))
	f.Add("GET", "/", "DSYNC2-HMAC-SHA256 :::::")
	f.Fuzz(func(t *testing.T, method, target, auth string) {
		var h fasthttp.RequestHeader
		h.SetMethod(method)
		h.SetRequestURI(target)
		if auth != "" {
			h.Set(HeaderAuth, auth)
		}
		h.SetBytesKV(gateHeader, []byte("ok:admin")) // a peer's forgery: the gate must overwrite it
		cfg := srv.headerReceived(&h)
		verdict := h.PeekBytes(gateHeader)
		require.NotNil(t, verdict, "no verdict for %s %q", method, target)
		passed := bytes.HasPrefix(verdict, gateOpen)
		if passed && bytes.Equal(verdict, []byte("ok:admin")) {
			require.True(t, auth != "" && strings.HasPrefix(auth, authScheme+"admin:"), "a forged verdict went through for %s %q %q", method, target, auth)
		}
		if !passed {
			require.Equal(t, refusedBody, cfg.MaxRequestBodySize, "refused %s %q, and allowed a body of %d", method, target, cfg.MaxRequestBodySize)
		}
		if passed && !bytes.Equal(verdict, gateOpen) {
			// Credentials held: they must verify.
			_, err := srv.verify.checkHeader([]byte(method), h.RequestURI(), []byte(auth))
			require.NoError(t, err, "let %s %q through with credentials that fail", method, target)
		}
	})
}
