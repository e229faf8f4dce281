package rest

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

func TestQueryConformance(t *testing.T) {
	lockertest.RunQuery(t, conformanceFactory(ClientConfig{}))
}

// noQuery hides the table's Querier, as a node of an older version would.
type noQuery struct{ locker.NetLocker }

func TestQueryFailures(t *testing.T) {
	tbl := locker.New(locker.Config{SweepInterval: -1})
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
	if _, err := c.Query(ctx, args); err != nil {
		t.Fatal(err)
	}
	if queries.Load() != 1 {
		t.Fatalf("OnRequest saw %d queries, want 1", queries.Load())
	}
	if _, err := c.Query(ctx, locker.QueryArgs{}); !errors.Is(err, locker.ErrInvalidArgs) {
		t.Errorf("empty query: %v, want ErrInvalidArgs", err)
	}

	wrong := newClient(t, endpoint, ClientConfig{Secret: "not-the-secret"})
	if _, err := wrong.Query(ctx, args); !errors.Is(err, locker.ErrUnauthorized) {
		t.Errorf("wrong secret: %v, want ErrUnauthorized", err)
	}

	_, old := startServer(t, noQuery{tbl}, ServerConfig{Secret: secret})
	if _, err := newClient(t, old, ClientConfig{Secret: secret}).Query(ctx, args); !errors.Is(err, ErrProtocol) {
		t.Errorf("node without Querier: %v, want ErrProtocol", err)
	}

	resp, err := http.Get(endpoint + PathQuery)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET %s: %d, Allow %q", PathQuery, resp.StatusCode, resp.Header.Get("Allow"))
	}

	down := newClient(t, "http://127.0.0.1:1", ClientConfig{Secret: secret, CallTimeout: time.Second})
	if _, err := down.Query(ctx, args); !errors.Is(err, locker.ErrOffline) {
		t.Errorf("no server: %v, want ErrOffline", err)
	}
	if _, err := down.Query(ctx, args); !errors.Is(err, locker.ErrNotSent) {
		t.Errorf("node known offline: %v, want ErrNotSent", err)
	}
}

// FuzzQueryHandler sends the query path arbitrary, correctly signed bodies
// through the server's real handler. It must never panic, and every answer
// must be a decodable QueryReply or a well-formed ErrorReply.
func FuzzQueryHandler(f *testing.F) {
	valid, _ := (&locker.QueryArgs{Resources: []string{"a", "b", "a"}}).MarshalMsg(nil)
	f.Add(valid)
	f.Add([]byte{0x80})
	f.Add([]byte{0x81, 0xa1, 'r', 0xc0})
	f.Add([]byte{0x81, 0xa1, 'r', 0xdd, 0xff, 0xff, 0xff, 0xff})

	clk := clock.NewFake(epoch)
	tbl := locker.New(locker.Config{SweepInterval: -1, MaxResources: 8, Clock: clk})
	defer tbl.Close()
	tbl.RLock(context.Background(), locker.LockArgs{UID: "u", Resources: []string{"a"}})
	srv, err := NewServer(tbl, ServerConfig{Secret: fuzzSecret, Clock: clk})
	if err != nil {
		f.Fatal(err)
	}
	var stamp int64 = epoch.UnixNano()
	f.Fuzz(func(t *testing.T, body []byte) {
		var req fasthttp.Request
		req.Header.SetMethod("POST")
		req.SetRequestURI(PathQuery)
		req.SetBody(body)
		stamp++
		req.Header.Set(HeaderAuth, string(newAuthKey(fuzzSecret).appendAuth(nil, req.Header.Method(), req.RequestURI(), stamp, body)))
		var rc fasthttp.RequestCtx
		rc.Init(&req, nil, nil)
		srv.srv.Handler(&rc)
		status := rc.Response.StatusCode()
		if status == http.StatusOK {
			var r locker.QueryReply
			if left, err := r.UnmarshalMsg(rc.Response.Body()); err != nil || len(left) > 0 {
				t.Fatalf("200 with an undecodable reply %q", rc.Response.Body())
			}
			return
		}
		var e ErrorReply
		if left, err := e.UnmarshalMsg(rc.Response.Body()); err != nil || len(left) > 0 {
			t.Fatalf("status %d with an undecodable body %q", status, rc.Response.Body())
		}
		if e.Code == CodeOK || e.Code.status() != status || e.Message == "" {
			t.Fatalf("status %d with error reply %+v", status, e)
		}
		if stamp-epoch.UnixNano() > int64(time.Second) {
			clk.Advance(time.Second)
			stamp = clk.Now().UnixNano()
		}
	})
}

// FuzzQueryReplyDecode feeds the client's decoder of query answers arbitrary
// bodies: it must never panic, and what it accepts must encode back to an
// equal value.
func FuzzQueryReplyDecode(f *testing.F) {
	r, _ := (&locker.QueryReply{Resources: []locker.Holders{
		{Holders: []locker.Holder{{UID: "u1", Write: true, HeldFor: 5}}},
		{},
		{Holders: []locker.Holder{{UID: "r1"}, {UID: "r2", HeldFor: 1 << 40}}},
	}}).MarshalMsg(nil)
	f.Add(r)
	f.Add([]byte{0x81, 0xa1, 'r', 0x91, 0x81, 0xa1, 'h', 0xdc, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		var got locker.QueryReply
		if _, err := got.UnmarshalMsg(body); err != nil {
			return
		}
		again, err := got.MarshalMsg(nil)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", got, err)
		}
		var back locker.QueryReply
		if _, err := back.UnmarshalMsg(again); err != nil || !reflect.DeepEqual(normal(back), normal(got)) {
			t.Fatalf("round trip of %+v gave %+v (%v)", got, back, err)
		}
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
