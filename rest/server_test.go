package rest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

func TestBadRequests(t *testing.T) {
	f := newAuthFixture(t, ServerConfig{MaxBodyBytes: 1024, MaxBatchOps: 2})
	okBody := lockBody(t, "u1", "a")
	batch := func(n int) []byte {
		var b BatchArgs
		for i := range n {
			b.Ops = append(b.Ops, BatchOp{Verb: VerbLock, Lock: locker.LockArgs{UID: string(rune('a' + i)), Resources: []string{"r"}}})
		}
		out, err := b.MarshalMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		name   string
		method string
		target string
		body   []byte
		status int
		code   Code
		want   string
	}{
		{"oversize body", "POST", PathLock, bytes.Repeat([]byte{0xc0}, 2000), 413, CodeTooLarge, "over the limit of 1024 bytes"},
		{"too many resources", "POST", PathLock, lockBody(t, "u1", "a", "b", "c", "d"), 400, CodeInvalidArgs, "4 resources, more than the limit of 3"},
		{"empty uid", "POST", PathRLock, lockBody(t, "", "a"), 400, CodeInvalidArgs, "empty uid"},
		{"malformed msgpack", "POST", PathLock, []byte{0x81, 0xa1, 'u', 0xcc}, 400, CodeMalformed, "malformed msgpack"},
		{"not msgpack at all", "POST", PathRefresh, []byte("{\"u\":[\"x\"]}"), 400, CodeMalformed, "malformed msgpack"},
		{"trailing garbage", "POST", PathLock, append(append([]byte{}, okBody...), 0xc0), 400, CodeMalformed, "1 bytes of trailing garbage"},
		{"empty body", "POST", PathLock, nil, 400, CodeMalformed, "malformed msgpack"},
		{"huge array header", "POST", PathRefresh, []byte{0x81, 0xa1, 'u', 0xdd, 0xff, 0xff, 0xff, 0xff}, 400, CodeMalformed, "malformed"},
		{"unknown path", "POST", "/dsync/v1/nope", okBody, 404, CodeNotFound, "no such path"},
		{"old version", "POST", "/dsync/v0/lock", okBody, 404, CodeNotFound, "no such path"},
		{"GET on lock", "GET", PathLock, nil, 405, CodeMethod, "use POST"},
		{"POST on health", "POST", PathHealth, nil, 405, CodeMethod, "use GET"},
		{"batch too long", "POST", PathBatch, batch(3), 413, CodeTooLarge, "batch of 3 operations, more than the limit of 2"},
		{"batch over the decoder's limit", "POST", PathBatch, []byte{0x81, 0xa1, 'o', 0xdd, 0, 0, 0x10, 0x01}, 400, CodeMalformed, "malformed"},
		{"batch bad verb", "POST", PathBatch, func() []byte {
			b, _ := (&BatchArgs{Ops: []BatchOp{{Verb: 99}}}).MarshalMsg(nil)
			return b
		}(), 200, CodeOK, ""},
		{"bad max", "GET", PathLocks + "?max=x", nil, 400, CodeMalformed, "bad max"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, e, body := send(t, f.endpoint, signed(f.secret, tc.method, tc.target, f.now(), tc.body))
			if status != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("got %d %v %q; want %d %v containing %q", status, e.Code, e.Message, tc.status, tc.code, tc.want)
			}
			if tc.name == "batch bad verb" {
				var r BatchReply
				if _, err := r.UnmarshalMsg(body); err != nil || len(r.Results) != 1 || r.Results[0].Code != CodeMalformed {
					t.Fatalf("batch with a bad verb answered %+v, %v", r, err)
				}
			}
			f.expectEmpty(t, tc.name)
			f.expectHealthy(t)
		})
	}
}

func TestServerCloseAndServeAgain(t *testing.T) {
	tbl := locker.New(locker.Config{SweepInterval: -1})
	defer tbl.Close()
	srv, err := NewServer(tbl, ServerConfig{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c := newClient(t, "http://"+ln.Addr().String(), ClientConfig{Insecure: true})
	if _, err := c.Lock(context.Background(), locker.LockArgs{UID: "u", Resources: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Close = %v, want nil", err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln2); err != nil {
		t.Fatalf("Serve on a closed server = %v, want nil", err)
	}
	if tbl.IsOnline() != true {
		t.Fatal("server Close closed the table")
	}
}

// blockingLocker is a table whose Lock and RLock wait, after they are
// called, until the test releases them or their context ends.
type blockingLocker struct {
	*locker.Local
	entered  chan struct{} // receives when a Lock starts waiting
	release  chan struct{} // closed by the test to let Locks proceed
	unlocked chan string   // receives the UID of every Unlock
}

func newBlockingLocker(cfg locker.Config) *blockingLocker {
	return &blockingLocker{
		Local:    locker.New(cfg),
		entered:  make(chan struct{}, 16),
		release:  make(chan struct{}),
		unlocked: make(chan string, 16),
	}
}

func (b *blockingLocker) Lock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return b.Local.Lock(ctx, args)
}

func (b *blockingLocker) Unlock(ctx context.Context, args locker.LockArgs) (locker.Reply, error) {
	r, err := b.Local.Unlock(ctx, args)
	b.unlocked <- args.UID
	return r, err
}

func TestCancelWhileNodeHoldsRequest(t *testing.T) {
	for _, batching := range []bool{false, true} {
		t.Run(map[bool]string{false: "Unbatched", true: "Batched"}[batching], func(t *testing.T) {
			bl := newBlockingLocker(locker.Config{SweepInterval: -1})
			defer bl.Close()
			_, endpoint := startServer(t, bl, ServerConfig{Insecure: true})
			c := newClient(t, endpoint, ClientConfig{Insecure: true, DisableBatching: !batching})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := c.Lock(ctx, locker.LockArgs{UID: "u1", Resources: []string{"a"}})
				done <- err
			}()
			<-bl.entered // the node holds the request
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Lock returned %v, want context.Canceled", err)
			}
			if !c.IsOnline() {
				t.Fatal("a cancelled call marked the node offline")
			}
			// The node now grants the lock nobody waits for; the client
			// releases it.
			close(bl.release)
			if uid := <-bl.unlocked; uid != "u1" {
				t.Fatalf("unlocked %q, want u1", uid)
			}
			if st := bl.Stats(); st.Grants != 0 {
				t.Fatalf("table holds %d grants after the abandoned grant was released", st.Grants)
			}
		})
	}
}

func TestDeadlineWhileNodeHoldsRequest(t *testing.T) {
	for _, batching := range []bool{false, true} {
		t.Run(map[bool]string{false: "Unbatched", true: "Batched"}[batching], func(t *testing.T) {
			bl := newBlockingLocker(locker.Config{SweepInterval: -1})
			defer bl.Close()
			defer close(bl.release)
			_, endpoint := startServer(t, bl, ServerConfig{Insecure: true})
			c := newClient(t, endpoint, ClientConfig{Insecure: true, DisableBatching: !batching})
			clk := clock.NewFake(epoch)
			ctx, cancel := clock.WithTimeout(context.Background(), clk, time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := c.Lock(ctx, locker.LockArgs{UID: "u1", Resources: []string{"a"}})
				done <- err
			}()
			<-bl.entered
			clk.Advance(time.Second) // the caller's deadline passes
			if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Lock past its deadline = %v, want DeadlineExceeded", err)
			}
		})
	}
}

func TestNodeGivesUpAfterClientTimeout(t *testing.T) {
	clk := clock.NewFake(epoch)
	bl := newBlockingLocker(locker.Config{SweepInterval: -1})
	defer bl.Close()
	_, endpoint := startServer(t, bl, ServerConfig{Insecure: true, Clock: clk})
	c := newClient(t, endpoint, ClientConfig{Insecure: true, DisableBatching: true, CallTimeout: time.Minute})
	done := make(chan error, 1)
	go func() {
		_, err := c.Lock(context.Background(), locker.LockArgs{UID: "u1", Resources: []string{"a"}})
		done <- err
	}()
	<-bl.entered
	// The request carries the client's timeout (a minute); once that has
	// passed on the node's clock, the node must not grant.
	clk.BlockUntil(nil, 1)
	clk.Advance(time.Minute)
	err := <-done
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "408") {
		t.Fatalf("Lock after the node's timeout = %v, want a 408 wrapping DeadlineExceeded", err)
	}
	if st := bl.Stats(); st.Grants != 0 {
		t.Fatalf("the node granted a lock after its client's timeout: %d grants", st.Grants)
	}
}

func TestServerCloseCancelsWaitingCalls(t *testing.T) {
	bl := newBlockingLocker(locker.Config{SweepInterval: -1})
	defer bl.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := serveOn(t, ln, bl, ServerConfig{Insecure: true})
	c := newClient(t, "http://"+ln.Addr().String(), ClientConfig{Insecure: true, DisableBatching: true})
	done := make(chan error, 1)
	go func() {
		_, err := c.Lock(context.Background(), locker.LockArgs{UID: "u1", Resources: []string{"a"}})
		done <- err
	}()
	<-bl.entered
	if err := srv.Close(); err != nil {
		t.Fatalf("Close with a request in flight: %v", err)
	}
	if err := <-done; err == nil {
		t.Fatal("Lock in flight during Close succeeded")
	}
	if st := bl.Stats(); st.Grants != 0 {
		t.Fatalf("%d grants after Close", st.Grants)
	}
}

func TestOfflineOnline(t *testing.T) {
	tbl := locker.New(locker.Config{SweepInterval: -1})
	defer tbl.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv1 := serveOn(t, ln, tbl, ServerConfig{Insecure: true})

	clk := clock.NewFake(epoch)
	probes := make(chan bool, 16)
	c := newClient(t, "http://"+addr, ClientConfig{
		Insecure: true, Clock: clk, HealthInterval: time.Second, DisableBatching: true,
		probed: func(ok bool) { probes <- ok },
	})
	ctx := context.Background()
	args := locker.LockArgs{UID: "u", Resources: []string{"a"}}
	if _, err := c.Lock(ctx, args); err != nil || !c.IsOnline() {
		t.Fatalf("lock = %v, online %v", err, c.IsOnline())
	}

	srv1.Close()
	if _, err := c.Unlock(ctx, args); !errors.Is(err, locker.ErrOffline) || errors.Is(err, locker.ErrNotSent) {
		t.Fatalf("unlock on a stopped node = %v, want ErrOffline, not ErrNotSent (it was sent)", err)
	}
	if c.IsOnline() {
		t.Fatal("node still online after a transport failure")
	}
	// Calls now fail at once, without a request.
	if _, err := c.Lock(ctx, args); !errors.Is(err, locker.ErrOffline) || !errors.Is(err, locker.ErrNotSent) {
		t.Fatalf("lock while offline = %v, want ErrOffline and ErrNotSent (failed fast)", err)
	}
	// A probe while the node is still down fails.
	clk.BlockUntil(nil, 1)
	clk.Advance(time.Second)
	if ok := <-probes; ok {
		t.Fatal("probe of a stopped node succeeded")
	}

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	serveOn(t, ln2, tbl, ServerConfig{Insecure: true})
	clk.BlockUntil(nil, 1)
	clk.Advance(time.Second)
	if ok := <-probes; !ok {
		t.Fatal("probe of the restarted node failed")
	}
	if !c.IsOnline() {
		t.Fatal("node not online after a good probe")
	}
	if r, err := c.Unlock(ctx, args); err != nil || !r.OK {
		t.Fatalf("unlock after the node came back = %v, %v", r, err)
	}
	// The prober sleeps again only when the node goes offline.
	if n := clk.Pending(); n != 0 {
		t.Fatalf("%d timers pending while online", n)
	}
	c.Close()
	if _, err := c.Lock(ctx, args); !errors.Is(err, locker.ErrClosed) {
		t.Fatalf("lock after Close = %v, want ErrClosed", err)
	}
	if c.IsOnline() {
		t.Fatal("closed client reports online")
	}
}

func TestListOverHTTP(t *testing.T) {
	tbl := locker.New(locker.Config{SweepInterval: -1})
	defer tbl.Close()
	secret := newSecret(t)
	_, endpoint := startServer(t, tbl, ServerConfig{Secret: secret})
	c := newClient(t, endpoint, ClientConfig{Secret: secret})
	ctx := context.Background()
	for _, uid := range []string{"u1", "u2", "u3"} {
		if _, err := c.Lock(ctx, locker.LockArgs{UID: uid, Resources: []string{"r-" + uid}}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.List(ctx, 0)
	if err != nil || len(all) != 3 || all[0].UID != "u1" {
		t.Fatalf("List = %+v, %v", all, err)
	}
	two, err := c.List(ctx, 2)
	if err != nil || len(two) != 2 {
		t.Fatalf("List(2) = %+v, %v", two, err)
	}
	// A table that cannot list answers 501.
	_, endpoint2 := startServer(t, struct{ locker.NetLocker }{tbl}, ServerConfig{Secret: secret})
	c2 := newClient(t, endpoint2, ClientConfig{Secret: secret})
	if _, err := c2.List(ctx, 0); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "501") {
		t.Fatalf("List on a table without Lister = %v", err)
	}
}

func TestManyCallersFewConnections(t *testing.T) {
	tbl := locker.New(locker.Config{SweepInterval: -1})
	defer tbl.Close()
	_, endpoint := startServer(t, tbl, ServerConfig{Insecure: true})
	c := newClient(t, endpoint, ClientConfig{Insecure: true, DisableBatching: true, MaxConns: 1})
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			a := locker.LockArgs{UID: fmt.Sprint("u", i), Resources: []string{fmt.Sprint("r", i)}}
			r, err := c.Lock(context.Background(), a)
			if err == nil && !r.OK {
				err = errors.New("refused")
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatalf("lock through one connection: %v", err)
		}
	}
	if !c.IsOnline() {
		t.Fatal("waiting for a connection marked the node offline")
	}
}

var _ = http.StatusOK

func TestShortCallerDeadlineKeepsNodeOnline(t *testing.T) {
	bl := newBlockingLocker(locker.Config{SweepInterval: -1})
	defer bl.Close()
	defer close(bl.release)
	_, endpoint := startServer(t, bl, ServerConfig{Insecure: true})
	c := newClient(t, endpoint, ClientConfig{Insecure: true, DisableBatching: true})
	ex := getExchange()
	defer putExchange(ex)
	ex.buf = lockBody(t, "u1", "a")
	// The node holds the request past the caller's last few milliseconds.
	err := c.roundTrip(ex, "POST", PathLock, 0, time.Now().Add(20*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, locker.ErrOffline) {
		t.Fatalf("round trip past a short deadline = %v, want DeadlineExceeded and not ErrOffline", err)
	}
	if !c.IsOnline() {
		t.Fatal("a caller's short deadline marked a healthy node offline")
	}
}

// failingLocker fails every Lock with err.
type failingLocker struct {
	locker.NetLocker
	err error
}

func (f failingLocker) Lock(context.Context, locker.LockArgs) (locker.Reply, error) {
	return locker.Reply{}, f.err
}

func TestTableErrorsMapBack(t *testing.T) {
	tbl := locker.New(locker.Config{SweepInterval: -1})
	defer tbl.Close()
	cases := []struct {
		err     error
		want    error
		status  string
		offline bool
	}{
		{fmt.Errorf("%w: lock: empty uid", locker.ErrInvalidArgs), locker.ErrInvalidArgs, "400", false},
		{fmt.Errorf("%w: lock \"a\"", locker.ErrBusy), locker.ErrBusy, "503", false},
		{locker.ErrClosed, locker.ErrOffline, "503", true},
		{errors.New("disk on fire"), ErrRemote, "500", false},
		{fmt.Errorf("locker: lock: %w", context.Canceled), context.DeadlineExceeded, "408", false},
	}
	for _, batching := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("batching=%v/%v", batching, tc.err), func(t *testing.T) {
				_, endpoint := startServer(t, failingLocker{tbl, tc.err}, ServerConfig{Insecure: true})
				c := newClient(t, endpoint, ClientConfig{Insecure: true, DisableBatching: !batching})
				_, err := c.Lock(context.Background(), locker.LockArgs{UID: "u", Resources: []string{"a"}})
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.err.Error()) {
					t.Fatalf("Lock = %v; want an error wrapping %v that carries the node's message", err, tc.want)
				}
				if !batching && !strings.Contains(err.Error(), tc.status) {
					t.Fatalf("Lock = %v; want status %s in the message", err, tc.status)
				}
				if c.IsOnline() == tc.offline {
					t.Fatalf("after %v the node is online=%v", tc.err, c.IsOnline())
				}
			})
		}
	}
}
