package rest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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

// signed returns a request signed with secret at time ts.
func signed(secret, method, target string, ts time.Time, body []byte) rawRequest {
	var auth string
	if secret != "" {
		auth = string(newAuthKey(secret).appendAuth(nil, []byte(method), []byte(target), ts.UnixNano(), body))
	}
	return rawRequest{method: method, target: target, body: body, auth: auth}
}

// send sends r to endpoint and returns the status and the decoded error
// reply (zero for a 200).
func send(t *testing.T, endpoint string, r rawRequest) (int, ErrorReply, []byte) {
	t.Helper()
	req, err := http.NewRequest(r.method, endpoint+r.target, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.auth != "" {
		req.Header.Set(HeaderAuth, r.auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e ErrorReply
	if resp.StatusCode != http.StatusOK {
		if left, err := e.UnmarshalMsg(body); err != nil || len(left) > 0 {
			t.Fatalf("%s %s: status %d with undecodable error body %q", r.method, r.target, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, e, body
}

func lockBody(t testing.TB, uid string, resources ...string) []byte {
	a := locker.LockArgs{UID: uid, Resources: resources, Owner: "test", Source: "auth_test.go", Quorum: 1}
	b, err := a.MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// authFixture is a table behind a server with a fake clock.
type authFixture struct {
	tbl      *locker.Local
	clk      *clock.Fake
	secret   string
	endpoint string
	stamps   int64 // nanoseconds added to the fake time to make requests distinct
}

// now returns the fake time plus a nanosecond more at every call, so that
// the requests of a test never share a MAC by accident.
func (f *authFixture) now() time.Time {
	f.stamps++
	return f.clk.Now().Add(time.Duration(f.stamps))
}

func newAuthFixture(t *testing.T, cfg ServerConfig) *authFixture {
	f := &authFixture{clk: clock.NewFake(epoch), secret: newSecret(t)}
	f.tbl = locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, MaxResources: 3})
	t.Cleanup(func() { f.tbl.Close() })
	cfg.Secret, cfg.Clock = f.secret, f.clk
	_, f.endpoint = startServer(t, f.tbl, cfg)
	return f
}

func (f *authFixture) expectEmpty(t *testing.T, step string) {
	t.Helper()
	if st := f.tbl.Stats(); st.Grants != 0 {
		t.Fatalf("%s: table holds %d grants, want none", step, st.Grants)
	}
}

func (f *authFixture) expectHealthy(t *testing.T) {
	t.Helper()
	if status, e, _ := send(t, f.endpoint, signed(f.secret, "GET", PathHealth, f.now(), nil)); status != http.StatusOK {
		t.Fatalf("health after a bad request = %d %v", status, e)
	}
}

func TestAuthRejects(t *testing.T) {
	f := newAuthFixture(t, ServerConfig{})
	body := lockBody(t, "u1", "a")
	now := f.clk.Now()
	good := signed(f.secret, "POST", PathLock, now, body)

	tampered := good
	tampered.body = lockBody(t, "u2", "a")
	wrongPath := good
	wrongPath.target = PathRLock
	withQuery := good
	withQuery.target = PathLock + "?t=1000"
	flipped := good
	flipped.auth = good.auth[:len(good.auth)-1] + map[bool]string{true: "0", false: "1"}[strings.HasSuffix(good.auth, "1")]

	cases := []struct {
		name string
		req  rawRequest
		want string
	}{
		{"missing", rawRequest{method: "POST", target: PathLock, body: body}, "missing Authorization"},
		{"garbage", rawRequest{method: "POST", target: PathLock, body: body, auth: "Bearer xyz"}, "malformed Authorization"},
		{"wrong secret", signed("not-the-secret", "POST", PathLock, now, body), "MAC does not match"},
		{"tampered body", tampered, "MAC does not match"},
		{"tampered path", wrongPath, "MAC does not match"},
		{"added query", withQuery, "MAC does not match"},
		{"flipped MAC bit", flipped, "MAC does not match"},
		{"stale", signed(f.secret, "POST", PathLock, now.Add(-DefaultReplayWindow-time.Millisecond), body), "outside the replay window"},
		{"future", signed(f.secret, "POST", PathLock, now.Add(DefaultReplayWindow+time.Millisecond), body), "outside the replay window"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, e, _ := send(t, f.endpoint, tc.req)
			if status != http.StatusUnauthorized || e.Code != CodeUnauthorized || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("status %d, %v %q; want 401 with %q", status, e.Code, e.Message, tc.want)
			}
			f.expectEmpty(t, tc.name)
			f.expectHealthy(t)
		})
	}

	// At the edge of the window the request is still good.
	edge := signed(f.secret, "POST", PathLock, now.Add(-DefaultReplayWindow), body)
	if status, e, _ := send(t, f.endpoint, edge); status != http.StatusOK {
		t.Fatalf("request at the window's edge: %d %v", status, e)
	}
}

func TestAuthReplay(t *testing.T) {
	f := newAuthFixture(t, ServerConfig{})
	lock := signed(f.secret, "POST", PathLock, f.clk.Now(), lockBody(t, "u1", "a"))
	if status, e, _ := send(t, f.endpoint, lock); status != http.StatusOK {
		t.Fatalf("lock: %d %v", status, e)
	}
	unlock := signed(f.secret, "POST", PathUnlock, f.now(), lockBody(t, "u1"))
	if status, e, _ := send(t, f.endpoint, unlock); status != http.StatusOK {
		t.Fatalf("unlock: %d %v", status, e)
	}
	f.expectEmpty(t, "after unlock")
	// Replaying the lock would re-grant a lock its holder has released.
	for _, after := range []time.Duration{0, DefaultReplayWindow} {
		f.clk.Advance(after)
		status, e, _ := send(t, f.endpoint, lock)
		if status != http.StatusUnauthorized || (!strings.Contains(e.Message, "replayed") && !strings.Contains(e.Message, "replay window")) {
			t.Fatalf("replay %v later: %d %v %q, want 401", after, status, e.Code, e.Message)
		}
		f.expectEmpty(t, "after replay")
	}
}

func TestParseAuth(t *testing.T) {
	k := newAuthKey("secret")
	good := k.appendAuth(nil, []byte("POST"), []byte(PathLock), 1234, []byte("body"))
	ts, sum, err := parseAuth(good)
	if err != nil || ts != 1234 || sum != k.mac([]byte("POST"), []byte(PathLock), 1234, []byte("body")) {
		t.Fatalf("parseAuth(%q) = %d, %x, %v", good, ts, sum, err)
	}
	hexMAC := strings.Repeat("ab", macSize)
	for _, bad := range []string{
		"",
		authScheme,
		authScheme + "1234",
		authScheme + ":" + hexMAC,
		authScheme + "-1:" + hexMAC,
		authScheme + "12a4:" + hexMAC,
		authScheme + "99999999999999999999:" + hexMAC,
		authScheme + "9999999999999999999:" + hexMAC, // overflows int64
		authScheme + "1234:" + hexMAC[:63],
		authScheme + "1234:" + hexMAC[:63] + "g",
		authScheme + "1234;" + hexMAC,
		strings.ToLower(authScheme) + "1234:" + hexMAC,
	} {
		if _, _, err := parseAuth([]byte(bad)); err == nil {
			t.Errorf("parseAuth(%q) succeeded", bad)
		}
	}
}

func TestClientAuthErrors(t *testing.T) {
	f := newAuthFixture(t, ServerConfig{})
	ctx := context.Background()
	wrong := newClient(t, f.endpoint, ClientConfig{Secret: "wrong", Clock: f.clk})
	_, err := wrong.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{"a"}})
	if !errors.Is(err, locker.ErrUnauthorized) {
		t.Fatalf("lock with a wrong secret: %v, want ErrUnauthorized", err)
	}
	if !wrong.IsOnline() {
		t.Fatal("a 401 marked the node offline")
	}
	insecure := newClient(t, f.endpoint, ClientConfig{Insecure: true})
	if _, err := insecure.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{"a"}}); !errors.Is(err, locker.ErrUnauthorized) {
		t.Fatalf("lock without auth: %v, want ErrUnauthorized", err)
	}
	// A client whose clock is off by more than the window is refused.
	skewed := newClient(t, f.endpoint, ClientConfig{Secret: f.secret, Clock: clock.NewFake(epoch.Add(time.Minute))})
	if _, err := skewed.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{"a"}}); !errors.Is(err, locker.ErrUnauthorized) || !strings.Contains(err.Error(), "replay window") {
		t.Fatalf("lock from a skewed clock: %v", err)
	}
	f.expectEmpty(t, "after refused clients")
	// A client with a fake clock that never moves still sends distinct MACs.
	good := newClient(t, f.endpoint, ClientConfig{Secret: f.secret, Clock: f.clk, DisableBatching: true})
	for i := range 3 {
		if r, err := good.Refresh(ctx, locker.RefreshArgs{UIDs: []string{"x"}}); err != nil || len(r.Status) != 1 {
			t.Fatalf("refresh %d: %v, %v", i, r, err)
		}
	}
	_ = fmt.Sprint
}

func TestInsecureServer(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	_, endpoint := startServer(t, tbl, ServerConfig{Insecure: true})
	c := newClient(t, endpoint, ClientConfig{Insecure: true})
	r, err := c.Lock(context.Background(), locker.LockArgs{UID: "u", Resources: []string{"a"}})
	if err != nil || !r.OK {
		t.Fatalf("lock on an insecure server: %v, %v", r, err)
	}
}

func BenchmarkMAC(b *testing.B) {
	k := newAuthKey("secret")
	body := lockBody(b, "4b0e6bda-8f4e-4c2b-9d4f-0a3e5f6b7c8d", "bucket/prefix/object-000123")
	method, target := []byte("POST"), []byte(PathLock+"?t=1000")
	b.ReportAllocs()
	for b.Loop() {
		k.mac(method, target, 1_800_000_000_000_000_000, body)
	}
}
