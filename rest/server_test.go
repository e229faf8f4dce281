package rest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

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
		require.NoError(t, err)
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
		{"unknown path", "POST", PathPrefix + "nope", okBody, 404, CodeNotFound, "no such path"},
		{"other path", "POST", "/nope", okBody, 404, CodeNotFound, "no such path"},
		{"old version", "POST", "/dsync/v1/lock", okBody, 400, CodeVersion, "the request speaks dsync protocol 1 (path \"/dsync/v1/lock\"); this node speaks protocol 2: upgrade the client"},
		{"newer version", "POST", "/dsync/v3/batch", okBody, 400, CodeVersion, "protocol 3"},
		{"odd version", "GET", "/dsync/vx", nil, 400, CodeVersion, `protocol "x"`},
		{"GET on lock", "GET", PathLock, nil, 405, CodeMethod, "use POST"},
		{"POST on health", "POST", PathHealth, nil, 405, CodeMethod, "use GET"},
		{"batch too long", "POST", PathBatch, batch(3), 413, CodeTooLarge, "batch of 3 operations, more than the limit of 2"},
		{"batch over the decoder's limit", "POST", PathBatch, []byte{0x81, 0xa1, 'o', 0xdd, 0, 0, 0x10, 0x01}, 400, CodeMalformed, "malformed"},
		{"batch bad verb", "POST", PathBatch, func() []byte {
			b, _ := (&BatchArgs{Ops: []BatchOp{{Verb: 99}}}).MarshalMsg(nil)
			return b
		}(), 200, CodeOK, ""},
		{"GET on locks", "GET", PathLocks, nil, 405, CodeMethod, "use POST"},
		{"locks with a bad body", "POST", PathLocks, []byte{0xc1}, 400, CodeMalformed, "locks"},
		{"locks with a negative page", "POST", PathLocks, func() []byte {
			b, _ := (&locker.ListArgs{Max: -1}).MarshalMsg(nil)
			return b
		}(), 400, CodeInvalidArgs, "negative page size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, e, body := send(t, f.endpoint, f.signedAdmin(tc.method, tc.target, f.now(), tc.body))
			require.Equal(t, tc.status, status, "got %d %v %q; want %d %v containing %q", status, e.Code, e.Message, tc.status, tc.code, tc.want)
			require.Equal(t, tc.code, e.Code, "got %d %v %q; want %d %v containing %q", status, e.Code, e.Message, tc.status, tc.code, tc.want)
			require.Contains(t, e.Message, tc.want, "got %d %v %q; want %d %v containing %q", status, e.Code, e.Message, tc.status, tc.code, tc.want)
			if tc.name == "batch bad verb" {
				var r BatchReply
				_, err := r.UnmarshalMsg(body)
				require.NoError(t, err, "batch with a bad verb answered %+v", r)
				require.Len(t, r.Results, 1, "batch with a bad verb answered %+v", r)
				require.Equal(t, CodeMalformed, r.Results[0].Code, "batch with a bad verb answered %+v", r)
			}
			f.expectEmpty(t, tc.name)
			f.expectHealthy(t)
		})
	}
}

func TestServerCloseAndServeAgain(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	srv, err := NewServer(tbl, ServerConfig{Insecure: true})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c := newClient(t, "http://"+ln.Addr().String(), ClientConfig{Insecure: true})
	_, err = c.Lock(context.Background(), locker.LockArgs{UID: "u", Resources: []string{"a"}})
	require.NoError(t, err)
	require.NoError(t, srv.Close(), "Close")
	require.NoError(t, <-served, "Serve after Close = want nil")
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, srv.Serve(ln2), "Serve on a closed server = want nil")
	require.True(t, tbl.IsOnline(), "server Close closed the table")
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
	b.unlocked <- strings.Clone(args.UID) // args alias the request body (locker.ArgCopier)
	return r, err
}

func TestCancelWhileNodeHoldsRequest(t *testing.T) {
	for _, batching := range []bool{false, true} {
		t.Run(map[bool]string{false: "Unbatched", true: "Batched"}[batching], func(t *testing.T) {
			bl := newBlockingLocker(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
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
			require.ErrorIs(t, <-done, context.Canceled, "cancelled Lock returned want context.Canceled")
			require.True(t, c.IsOnline(), "a cancelled call marked the node offline")
			// The node now grants the lock nobody waits for; the client
			// releases it.
			close(bl.release)
			require.Equal(t, "u1", <-bl.unlocked, "unlocked")
			require.Zero(t, bl.Stats().Grants, "table holds grants after the abandoned grant was released")
		})
	}
}

func TestDeadlineWhileNodeHoldsRequest(t *testing.T) {
	for _, batching := range []bool{false, true} {
		t.Run(map[bool]string{false: "Unbatched", true: "Batched"}[batching], func(t *testing.T) {
			bl := newBlockingLocker(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
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
			require.ErrorIs(t, <-done, context.DeadlineExceeded, "Lock past its deadline = want DeadlineExceeded")
		})
	}
}

func TestNodeGivesUpAfterClientTimeout(t *testing.T) {
	clk := clock.NewFake(epoch)
	bl := newBlockingLocker(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
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
	require.ErrorIs(t, err, context.DeadlineExceeded, "Lock after the node's timeout, want a 408 wrapping DeadlineExceeded")
	require.ErrorContains(t, err, "408", "Lock after the node's timeout, want a 408 wrapping DeadlineExceeded")
	require.Zero(t, bl.Stats().Grants, "the node granted a lock after its client's timeout")
}

func TestServerCloseCancelsWaitingCalls(t *testing.T) {
	bl := newBlockingLocker(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
	defer bl.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := serveOn(t, ln, bl, ServerConfig{Insecure: true})
	c := newClient(t, "http://"+ln.Addr().String(), ClientConfig{Insecure: true, DisableBatching: true})
	done := make(chan error, 1)
	go func() {
		_, err := c.Lock(context.Background(), locker.LockArgs{UID: "u1", Resources: []string{"a"}})
		done <- err
	}()
	<-bl.entered
	require.NoError(t, srv.Close(), "Close with a request in flight")
	require.Error(t, <-done, "Lock in flight during Close succeeded")
	require.Zero(t, bl.Stats().Grants, "grants after Close")
}

func TestOfflineOnline(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
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
	_, err = c.Lock(ctx, args)
	require.NoError(t, err, "lock")
	require.True(t, c.IsOnline(), "online after a lock")

	srv1.Close()
	_, err = c.Unlock(ctx, args)
	require.ErrorIs(t, err, locker.ErrOffline, "unlock on a stopped node")
	require.NotErrorIs(t, err, locker.ErrNotSent, "unlock on a stopped node: not ErrNotSent (it was sent)")
	require.False(t, c.IsOnline(), "node still online after a transport failure")
	// Calls now fail at once, without a request.
	_, err = c.Lock(ctx, args)
	require.ErrorIs(t, err, locker.ErrOffline, "lock while offline")
	require.ErrorIs(t, err, locker.ErrNotSent, "lock while offline: want ErrNotSent too (failed fast)")
	// A probe while the node is still down fails.
	clk.BlockUntil(nil, 1)
	clk.Advance(time.Second)
	require.False(t, <-probes, "probe of a stopped node succeeded")

	ln2, err := net.Listen("tcp", addr)
	require.NoError(t, err, "listen again on %s", addr)
	serveOn(t, ln2, tbl, ServerConfig{Insecure: true})
	clk.BlockUntil(nil, 1)
	clk.Advance(time.Second)
	require.True(t, <-probes, "probe of the restarted node failed")
	require.True(t, c.IsOnline(), "node not online after a good probe")
	r, err := c.Unlock(ctx, args)
	require.NoError(t, err, "unlock after the node came back = %v", r)
	require.True(t, r.OK, "unlock after the node came back = %v", r)
	// The prober sleeps again only when the node goes offline.
	require.Zero(t, clk.Pending(), "timers pending while online")
	c.Close()
	_, err = c.Lock(ctx, args)
	require.ErrorIs(t, err, locker.ErrClosed, "lock after Close = want ErrClosed")
	require.False(t, c.IsOnline(), "closed client reports online")
}

func TestListOverHTTP(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	admin := newSecret(t)
	_, endpoint := startServer(t, tbl, ServerConfig{Secret: newSecret(t), AdminSecret: admin})
	c := newClient(t, endpoint, ClientConfig{AdminSecret: admin})
	ctx := context.Background()
	for _, uid := range []string{"u1", "u2", "u3"} {
		_, err := c.Lock(ctx, locker.LockArgs{UID: uid, Resources: []string{"r-" + uid}})
		require.NoError(t, err)
	}
	all, err := listAll(ctx, c)
	require.NoError(t, err, "List = %+v", all)
	require.Len(t, all, 3, "List = %+v", all)
	require.Equal(t, "u1", all[0].UID, "List = %+v", all)
	two, err := c.List(ctx, locker.ListArgs{Max: 2})
	require.NoError(t, err, "List(2) = %+v", two)
	require.Len(t, two.Entries, 2, "List(2) = %+v", two)
	require.True(t, two.More, "List(2) = %+v", two)
	last, err := c.List(ctx, two.Next(2))
	require.NoError(t, err, "the page after %+v = %+v", two, last)
	require.Len(t, last.Entries, 1, "the page after %+v = %+v", two, last)
	require.False(t, last.More, "the page after %+v = %+v", two, last)
	require.Equal(t, "u3", last.Entries[0].UID, "the page after %+v = %+v", two, last)
	// A table that cannot list answers 501.
	_, endpoint2 := startServer(t, struct{ locker.NetLocker }{tbl}, ServerConfig{Secret: newSecret(t), AdminSecret: admin})
	c2 := newClient(t, endpoint2, ClientConfig{AdminSecret: admin})
	_, err = listAll(ctx, c2)
	require.ErrorIs(t, err, ErrProtocol, "List on a table without Lister")
	require.ErrorContains(t, err, "501", "List on a table without Lister")
}

func TestManyCallersFewConnections(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
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
		require.NoError(t, <-errs, "lock through one connection")
	}
	require.True(t, c.IsOnline(), "waiting for a connection marked the node offline")
}

var _ = http.StatusOK

func TestShortCallerDeadlineKeepsNodeOnline(t *testing.T) {
	bl := newBlockingLocker(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
	defer bl.Close()
	defer close(bl.release)
	_, endpoint := startServer(t, bl, ServerConfig{Insecure: true})
	c := newClient(t, endpoint, ClientConfig{Insecure: true, DisableBatching: true})
	ex := getExchange()
	defer putExchange(ex)
	ex.buf = lockBody(t, "u1", "a")
	// The node holds the request past the caller's last few milliseconds.
	err := c.roundTrip(ex, "POST", PathLock, time.Now().Add(20*time.Millisecond))
	require.ErrorIs(t, err, context.DeadlineExceeded, "round trip past a short deadline, want DeadlineExceeded and not ErrOffline")
	require.NotErrorIs(t, err, locker.ErrOffline, "round trip past a short deadline, want DeadlineExceeded and not ErrOffline")
	require.True(t, c.IsOnline(), "a caller's short deadline marked a healthy node offline")
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
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
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
				require.ErrorIs(t, err, tc.want, "Lock: want an error wrapping %v that carries the node's message", tc.want)
				require.ErrorContains(t, err, tc.err.Error(), "Lock: want an error wrapping %v that carries the node's message", tc.want)
				if !batching {
					require.ErrorContains(t, err, tc.status, "Lock: want status %s in the message", tc.status)
				}
				require.Equal(t, !tc.offline, c.IsOnline(), "after %v the node's online state", tc.err)
			})
		}
	}
}

// noCopier is a table that does not promise to copy its arguments.
type noCopier struct{ *locker.Local }

func (noCopier) CopiesArgs() bool { return false }

// A server decodes requests in place for a table that copies what it keeps,
// and fasthttp reuses the request buffers: after many requests of varied
// sizes on every path, from several connections, the table must hold exactly
// the names that were locked, unchanged.
func TestServerInPlaceDecodingKeepsNamesIntact(t *testing.T) {
	for _, inPlace := range []bool{true, false} {
		t.Run(fmt.Sprint("inPlace=", inPlace), func(t *testing.T) {
			tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
			defer tbl.Close()
			var l locker.NetLocker = tbl
			if !inPlace {
				l = noCopier{tbl}
			}
			srv, endpoint := startServer(t, l, ServerConfig{Insecure: true})
			require.Equal(t, inPlace, srv.inPlace, "server decodes in place")
			const workers, rounds = 4, 60
			models := make([]map[string]string, workers) // "resource uid" -> "owner source w|r"
			errs := make(chan error, workers)
			for w := range workers {
				models[w] = map[string]string{}
				go func() { errs <- inPlaceWorker(endpoint, w, rounds, models[w]) }()
			}
			for range workers {
				require.NoError(t, <-errs)
			}
			var want []string
			for _, m := range models {
				for k, v := range m {
					want = append(want, k+" "+v)
				}
			}
			slices.Sort(want)
			entries, err := listAll(context.Background(), tbl)
			require.NoError(t, err)
			var got []string
			for _, e := range entries {
				rw := "r"
				if e.Write {
					rw = "w"
				}
				got = append(got, strings.Join([]string{e.Resource, e.UID, e.Owner, e.Source, rw}, " "))
			}
			slices.Sort(got)
			require.Equal(t, want, got, "the table holds %d entries, want %d:\n%s\nwant:\n%s", len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
		})
	}
}

// inPlaceWorker sends rounds of requests to endpoint, each round a batch
// of locks, read locks, unlocks and refreshes and a few single-operation
// requests, with names of varied lengths that are worker w's own, and
// records in model what worker w holds afterwards.
func inPlaceWorker(endpoint string, w, rounds int, model map[string]string) error {
	pad := func(n int) string { return strings.Repeat("abcdefghij", 4)[:n%37] }
	uidOf := func(k, i int) string { return fmt.Sprintf("w%d-k%d-i%d-%s", w, k, i, pad(k*7+i)) }
	resOf := func(k, i, j int) string { return fmt.Sprintf("bucket/w%d/k%d/i%d/%d/%s", w, k, i, j, pad(k*3+i+j)) }
	readerOf := func(k int) string { return fmt.Sprintf("w%d-reader-%d-%s", w, k, pad(k)) }
	shared := func(k int) string { return fmt.Sprint("shared/", k%4, "/", pad(k%4*11)) }
	post := func(path string, body []byte) ([]byte, error) {
		resp, err := http.Post(endpoint+path, ContentType, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: status %d: %q", path, resp.StatusCode, out)
		}
		return out, err
	}
	const perRound = 5
	held := map[string][]string{} // uid -> its model keys
	for k := range rounds {
		var ops []BatchOp
		var keys [][]string // model keys each op adds, in order
		for i := range perRound {
			a := locker.LockArgs{UID: uidOf(k, i), Owner: fmt.Sprintf("owner-%d-%d", w, k%3), Source: fmt.Sprintf("src-%d.go:%d", k%5, i), Quorum: 2}
			var ks []string
			for j := range 1 + (k+i)%3 {
				a.Resources = append(a.Resources, resOf(k, i, j))
				ks = append(ks, resOf(k, i, j)+" "+a.UID)
			}
			slices.Sort(a.Resources)
			ops = append(ops, BatchOp{Verb: VerbLock, Lock: a})
			keys = append(keys, ks)
		}
		r := locker.LockArgs{UID: readerOf(k), Resources: []string{shared(k)}, Owner: "reader", Source: "r.go:1"}
		ops = append(ops, BatchOp{Verb: VerbRLock, Lock: r})
		keys = append(keys, []string{shared(k) + " " + r.UID})
		if k > 0 { // release half of the last round's locks, and its reader
			for i := 0; i < perRound; i += 2 {
				ops = append(ops, BatchOp{Verb: VerbUnlock, Lock: locker.LockArgs{UID: uidOf(k-1, i)}})
				keys = append(keys, nil)
			}
			ops = append(ops, BatchOp{Verb: VerbRUnlock, Lock: locker.LockArgs{UID: readerOf(k - 1)}})
			keys = append(keys, nil)
			ops = append(ops, BatchOp{Verb: VerbRefresh, Refresh: locker.RefreshArgs{UIDs: []string{uidOf(k-1, 1), "w-none-" + pad(k)}}})
			keys = append(keys, nil)
		}
		body, err := (&BatchArgs{Ops: ops}).MarshalMsg(nil)
		if err != nil {
			return err
		}
		out, err := post(PathBatch, body)
		if err != nil {
			return err
		}
		var reply BatchReply
		if _, err := reply.UnmarshalMsg(out); err != nil || len(reply.Results) != len(ops) {
			return fmt.Errorf("batch reply %+v, %v", reply, err)
		}
		for i, res := range reply.Results {
			op := ops[i]
			if res.Code != CodeOK {
				return fmt.Errorf("op %d (%v %s) failed: %v %s", i, op.Verb, op.Lock.UID, res.Code, res.Message)
			}
			switch op.Verb {
			case VerbLock, VerbRLock:
				if !res.Reply.OK {
					return fmt.Errorf("op %d (%v %s) refused: %v", i, op.Verb, op.Lock.UID, res.Reply.Reason)
				}
				rw := map[Verb]string{VerbLock: "w", VerbRLock: "r"}[op.Verb]
				for _, key := range keys[i] {
					model[key] = op.Lock.Owner + " " + op.Lock.Source + " " + rw
				}
				held[op.Lock.UID] = keys[i]
			case VerbUnlock, VerbRUnlock:
				if !res.Reply.OK {
					return fmt.Errorf("op %d (%v %s) found nothing to release", i, op.Verb, op.Lock.UID)
				}
				for _, key := range held[op.Lock.UID] {
					delete(model, key)
				}
				delete(held, op.Lock.UID)
			case VerbRefresh:
				if s := res.Refresh.Status; len(s) != 2 || s[0] != locker.RefreshRefreshed || s[1] != locker.RefreshNotHeld {
					return fmt.Errorf("refresh answered %v", s)
				}
			}
		}
		// The single-operation paths: lock and unlock a UID of its own, and
		// release the last lock of this round's batch there.
		single := locker.LockArgs{UID: fmt.Sprintf("w%d-single-%d-%s", w, k, pad(k*5)), Resources: []string{resOf(k, 99, 0)}, Owner: "single", Source: "s.go:1"}
		for _, path := range []string{PathLock, PathUnlock} {
			body, _ := single.MarshalMsg(nil)
			out, err := post(path, body)
			if err != nil {
				return err
			}
			var rep locker.Reply
			if _, err := rep.UnmarshalMsg(out); err != nil || !rep.OK {
				return fmt.Errorf("%s %s: %+v %v", path, single.UID, rep, err)
			}
		}
		body, _ = (&locker.RefreshArgs{UIDs: []string{uidOf(k, perRound-1)}}).MarshalMsg(nil)
		if out, err = post(PathRefresh, body); err != nil {
			return err
		}
		var rr locker.RefreshReply
		if _, err := rr.UnmarshalMsg(out); err != nil || len(rr.Status) != 1 || rr.Status[0] != locker.RefreshRefreshed {
			return fmt.Errorf("refresh %s: %+v %v", uidOf(k, perRound-1), rr, err)
		}
	}
	return nil
}

// TestCloseWhileServeStarts: Close may run while Serve is starting, before
// fasthttp has taken the listener (a server closed right after it was
// started). Serve must then return nil, with the listener closed, not block
// in Accept for ever. Found as a hang of TestConformance's cleanup on a
// loaded machine (1 run in about 20).
func TestCloseWhileServeStarts(t *testing.T) {
	for i := range 500 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
		srv, err := NewServer(tbl, ServerConfig{Insecure: true})
		require.NoError(t, err)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		if i%2 == 0 {
			runtime.Gosched() // vary where Close lands in Serve's start
		}
		require.NoError(t, srv.Close())
		select {
		case err := <-served:
			require.NoError(t, err, "round %d: Serve returned after Close, want nil", i)
		case <-time.After(10 * time.Second):
			require.Failf(t, "Serve still running", "round %d: Serve still running 10 s after Close", i)
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		require.Error(t, err, "round %d: the listener still accepts after Close", i)
		tbl.Close()
	}
}

// noBurst is a table that cannot take a batch as a burst.
type noBurst struct{ locker.NetLocker }

// The operations of a batch run as a locker.Burst: the table reads its
// clock once per locker.BurstCalls lock operations, not once for each, and
// every operation is still granted.
func TestBatchRunsAsBurst(t *testing.T) {
	const ops = 2 * locker.BurstCalls
	var batch BatchArgs
	for i := range ops {
		batch.Ops = append(batch.Ops, BatchOp{Verb: VerbLock, Lock: locker.LockArgs{
			UID: fmt.Sprintf("u%d", i), Resources: []string{fmt.Sprintf("r%d", i)}, Quorum: 1}})
	}
	body, err := batch.MarshalMsg(nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		wrap  func(*locker.Local) locker.NetLocker
		reads int64
	}{
		{"Local", func(l *locker.Local) locker.NetLocker { return l }, ops / locker.BurstCalls},
		{"NotABurster", func(l *locker.Local) locker.NetLocker { return noBurst{l} }, ops},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(epoch)
			tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, Clock: clk})
			defer tbl.Close()
			srv, err := NewServer(tc.wrap(tbl), ServerConfig{Insecure: true})
			require.NoError(t, err)
			defer srv.Close()
			var req fasthttp.Request
			req.Header.SetMethod("POST")
			req.SetRequestURI(PathBatch + "?t=60000")
			req.SetBody(body)
			var rc fasthttp.RequestCtx
			rc.Init(&req, nil, nil)
			before := clk.Reads()
			srv.handle(&rc)
			reads := clk.Reads() - before
			require.Equal(t, http.StatusOK, rc.Response.StatusCode(), "status: %q", rc.Response.Body())
			var reply BatchReply
			_, err = reply.UnmarshalMsg(rc.Response.Body())
			require.NoError(t, err)
			for i, r := range reply.Results {
				require.Equal(t, CodeOK, r.Code, "operation %d: %+v", i, r)
				require.True(t, r.Reply.OK, "operation %d: %+v", i, r)
			}
			require.Len(t, reply.Results, ops, "%d results, %d grants; want %d", len(reply.Results), tbl.Stats().Grants, ops)
			require.Equal(t, ops, tbl.Stats().Grants, "%d results, %d grants; want %d", len(reply.Results), tbl.Stats().Grants, ops)
			require.Equal(t, tc.reads, reads, "a batch of %d locks read the table's clock, want %d", ops, tc.reads)
		})
	}
}
