package rest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

func readString(s string, maxBody int) (status int, closing bool, body []byte, err error) {
	br := bufio.NewReaderSize(strings.NewReader(s), 64)
	a, err := readResponse(br, &body, maxBody)
	return a.status, a.closing, body, err
}

func TestReadResponse(t *testing.T) {
	long := "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("x", 100) + "\r\nContent-Length: 0\r\n\r\n"
	many := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", maxHeaderLines) + "Content-Length: 0\r\n\r\n"
	for _, tc := range []struct {
		name, in string
		status   int
		closing  bool
		body     string
		err      string // substring; "" for success
	}{
		{name: "ok", in: "HTTP/1.1 200 OK\r\nContent-Type: application/msgpack\r\nContent-Length: 3\r\n\r\nabc", status: 200, body: "abc"},
		{name: "no reason", in: "HTTP/1.1 503\r\nContent-Length: 1\r\n\r\nx", status: 503, body: "x"},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", status: 200, body: "hi"},
		{name: "header case", in: "HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh:  2 \r\nCONNECTION: Close\r\n\r\nhi", status: 200, closing: true, body: "hi"},
		{name: "close among tokens", in: "HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n", status: 200, closing: true},
		{name: "1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200, closing: true},
		{name: "1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "1.0 keep-alive then close", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status: 200, closing: true},
		{name: "same length twice", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", status: 200, body: "x"},
		{name: "identity", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 1\r\n\r\nx", status: 200, body: "x"},
		{name: "204", in: "HTTP/1.1 204 No Content\r\n\r\n", status: 204},
		{name: "at the limit", in: "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n12345678", status: 200, body: "12345678"},

		{name: "empty", in: "", err: "EOF"},
		{name: "not http", in: "SSH-2.0-OpenSSH\r\n\r\n", err: "status line"},
		{name: "http/2", in: "HTTP/2.0 200 OK\r\n\r\n", err: "status line"},
		{name: "letters in status", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: "status line"},
		{name: "four digits", in: "HTTP/1.1 2000 OK\r\n\r\n", err: "status line"},
		{name: "status 099", in: "HTTP/1.1 099 OK\r\n\r\n", err: "status line"},
		{name: "cut in status line", in: "HTTP/1.1 200", err: "unexpected EOF"},
		{name: "no colon", in: "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", err: "header line"},
		{name: "no length", in: "HTTP/1.1 200 OK\r\n\r\n", err: "no Content-Length"},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", err: "Transfer-Encoding"},
		{name: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: "Content-Length"},
		{name: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy", err: "Content-Length"},
		{name: "huge length", in: "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n", err: "Content-Length"},
		{name: "over the limit", in: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789", err: "more than the limit"},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", err: "unexpected EOF"},
		{name: "cut in headers", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", err: "EOF"},
		{name: "line over the buffer", in: long, err: "longer than"},
		{name: "too many lines", in: many, err: "header lines"},
		{name: "body on 204", in: "HTTP/1.1 204 No Content\r\nContent-Length: 1\r\n\r\nx", err: "status 204"},
		{name: "interim answer", in: "HTTP/1.1 100 Continue\r\n\r\n", err: "status 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, closing, body, err := readString(tc.in, 8)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err, "readResponse = %d; want an error with %q", status, tc.err)
				return
			}
			msg := fmt.Sprintf("readResponse = %d, closing %v, %q, %v; want %d, %v, %q", status, closing, body, err, tc.status, tc.closing, tc.body)
			require.NoError(t, err, msg)
			require.Equal(t, tc.status, status, msg)
			require.Equal(t, tc.closing, closing, msg)
			require.Equal(t, tc.body, string(body), msg)
		})
	}
}

// A node's answers are read back to back from one connection: each read
// takes exactly its own bytes.
func TestReadResponseKeepsTheNext(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nz"
	br := bufio.NewReader(strings.NewReader(in))
	var body []byte
	for _, want := range []struct {
		status int
		body   string
	}{{200, "abc"}, {404, "z"}} {
		a, err := readResponse(br, &body, 1<<10)
		require.NoError(t, err, "readResponse = %d %q, want %d %q", a.status, body, want.status, want.body)
		require.Equal(t, want.status, a.status, "readResponse = %d %q, want %d %q", a.status, body, want.status, want.body)
		require.Equal(t, want.body, string(body), "readResponse = %d %q, want %d %q", a.status, body, want.status, want.body)
	}
	_, err := readResponse(br, &body, 1<<10)
	require.ErrorIs(t, err, io.EOF, "after the last answer: want EOF")
}

func TestAppendRequest(t *testing.T) {
	got := string(appendRequest(nil, "POST", []byte("/dsync/v1/lock?t=5"), "127.0.0.1:9000", []byte("A b"), []byte("xyz")))
	want := "POST /dsync/v1/lock?t=5 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nAuthorization: A b\r\nContent-Type: application/msgpack\r\nContent-Length: 3\r\n\r\nxyz"
	require.Equal(t, want, got, "POST:\n%q\nwant\n%q", got, want)
	got = string(appendRequest(nil, "GET", []byte("/dsync/v1/health"), "h:1", nil, nil))
	want = "GET /dsync/v1/health HTTP/1.1\r\nHost: h:1\r\n\r\n"
	require.Equal(t, want, got, "GET:\n%q\nwant\n%q", got, want)
}

// deadlineConn records the deadlines set on it.
type deadlineConn struct {
	net.Conn
	set []time.Time
}

func (c *deadlineConn) SetDeadline(d time.Time) error {
	c.set = append(c.set, d)
	return nil
}

func TestSetDeadlineSlack(t *testing.T) {
	nc := &deadlineConn{}
	tc := &tconn{nc: nc}
	t0 := time.Now()
	budget := 10 * time.Second
	tc.setDeadline(t0, budget)
	tc.setDeadline(t0.Add(maxDeadlineSlack), budget) // within the slack: kept
	tc.setDeadline(t0.Add(maxDeadlineSlack+1), budget)
	tc.setDeadline(t0, budget) // earlier than the one set: must be set
	// With a small budget the slack is a 64th of it.
	tc.setDeadline(t0.Add(640*time.Microsecond), 640*time.Microsecond)
	tc.setDeadline(t0.Add(651*time.Microsecond), 640*time.Microsecond)
	want := []time.Time{t0, t0.Add(maxDeadlineSlack + 1), t0, t0.Add(640 * time.Microsecond), t0.Add(651 * time.Microsecond)}
	require.Len(t, nc.set, len(want), "deadlines set: %v, want %v", nc.set, want)
	for i := range want {
		require.True(t, nc.set[i].Equal(want[i]), "deadline %d = %v, want %v", i, nc.set[i], want[i])
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func startCountedServer(t *testing.T) (*countingListener, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &countingListener{Listener: ln}
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	t.Cleanup(func() { tbl.Close() })
	serveOn(t, cl, tbl, ServerConfig{Insecure: true})
	return cl, "http://" + ln.Addr().String()
}

func lockOnce(t *testing.T, c *Client, i int) {
	t.Helper()
	r, err := c.Lock(context.Background(), locker.LockArgs{UID: fmt.Sprint("u", i), Resources: []string{fmt.Sprint("r", i)}})
	require.NoError(t, err, "lock %d: %+v", i, r)
	require.True(t, r.OK, "lock %d: %+v", i, r)
}

func TestTransportReusesConnections(t *testing.T) {
	ln, endpoint := startCountedServer(t)
	c := newClient(t, endpoint, ClientConfig{Insecure: true, DisableBatching: true})
	for i := range 5 {
		lockOnce(t, c, i)
	}
	require.EqualValues(t, 1, ln.accepted.Load(), "5 calls one after another opened connections, want 1")
	// A connection idle for longer than maxIdle is not reused.
	c.tr.mu.Lock()
	c.tr.maxIdle = -1
	c.tr.mu.Unlock()
	lockOnce(t, c, 5)
	lockOnce(t, c, 6)
	require.EqualValues(t, 3, ln.accepted.Load(), "with every idle connection too old: connections, want 3")
	c.tr.mu.Lock()
	open, idle := c.tr.open, len(c.tr.idle)
	c.tr.mu.Unlock()
	require.Equal(t, 1, open, "open %d, idle %d; want the one connection just used", open, idle)
	require.Equal(t, 1, idle, "open %d, idle %d; want the one connection just used", open, idle)
}

// rawNode starts a loopback TCP server that runs serve on a goroutine of
// its own for every connection, and returns its address; it stops when t
// ends.
func rawNode(t *testing.T, serve func(nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(nc)
		}
	}()
	return ln.Addr().String()
}

// wantNoConns fails t unless tr has no connection open or idle.
func wantNoConns(t *testing.T, tr *transport, after string) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	require.Zero(t, tr.open, "open %d, idle %d %s; want none", tr.open, len(tr.idle), after)
	require.Empty(t, tr.idle, "open %d, idle %d %s; want none", tr.open, len(tr.idle), after)
}

// waitForWaiters returns once n requests wait for a connection of tr.
func waitForWaiters(tr *transport, n int) {
	for {
		tr.mu.Lock()
		k := len(tr.waiting)
		tr.mu.Unlock()
		if k == n {
			return
		}
		runtime.Gosched()
	}
}

// An answer that says Connection: close ends its connection; the next
// request opens another.
func TestTransportConnectionClose(t *testing.T) {
	served := make(chan int, 2)
	var conns atomic.Int64
	addr := rawNode(t, func(nc net.Conn) {
		i := conns.Add(1) - 1
		br := bufio.NewReader(nc)
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n%d", i)
		nc.Close()
		served <- int(i)
	})
	tr := newTransport(addr, nil, 4, 1<<10)
	defer tr.close()
	var body []byte
	req := appendRequest(nil, "GET", []byte("/"), "x", nil, nil)
	for i := range 2 {
		a, err := tr.do(req, &body, time.Now().Add(time.Minute), time.Minute)
		require.NoError(t, err, "request %d: %d %q", i, a.status, body)
		require.Equal(t, 200, a.status, "request %d: %d %q", i, a.status, body)
		require.Equal(t, fmt.Sprint(i), string(body), "request %d: %d %q", i, a.status, body)
		<-served
	}
	wantNoConns(t, tr, "after two closing answers")
}

// With every connection busy, a request waits for one until its deadline,
// then fails unsent; a connection put back goes to the first request
// waiting.
func TestTransportWaitsForAConnection(t *testing.T) {
	_, endpoint := startCountedServer(t)
	tr := newTransport(strings.TrimPrefix(endpoint, "http://"), nil, 1, 1<<10)
	defer tr.close()
	held, err := tr.get(time.Now().Add(time.Minute))
	require.NoError(t, err)
	var body []byte
	req := appendRequest(nil, "GET", []byte(PathHealth), "x", nil, nil)
	_, err = tr.do(req, &body, time.Now().Add(time.Millisecond), time.Millisecond)
	require.ErrorIs(t, err, errNoFreeConns, "with the only connection held: want errNoFreeConns")
	got := make(chan *tconn, 1)
	getLater := func() {
		go func() {
			tc, err := tr.get(time.Now().Add(time.Minute))
			assert.NoError(t, err)
			got <- tc
		}()
	}
	getLater()
	waitForWaiters(tr, 1)
	tr.put(held)
	tc := <-got
	require.Same(t, held, tc, "the waiting request got %p, want the connection put back %p", tc, held)
	// A connection closed while a request waits lets that request dial one.
	getLater()
	waitForWaiters(tr, 1)
	tr.discard(held)
	tc = <-got
	require.NotNil(t, tc, "after a discard the waiting request got %p, want a new connection", tc)
	require.NotSame(t, held, tc, "after a discard the waiting request got %p, want a new connection", tc)
	tr.put(tc)
	a, err := tr.do(req, &body, time.Now().Add(time.Minute), time.Minute)
	require.NoError(t, err, "health through the new connection: %d", a.status)
	require.Equal(t, 200, a.status, "health through the new connection")
	tr.mu.Lock()
	defer tr.mu.Unlock()
	require.Equal(t, 1, tr.open, "open")
}

// After close, idle connections are closed and requests still work, each
// on a connection of its own that is closed after it.
func TestTransportClose(t *testing.T) {
	ln, endpoint := startCountedServer(t)
	tr := newTransport(strings.TrimPrefix(endpoint, "http://"), nil, 4, 1<<10)
	var body []byte
	req := appendRequest(nil, "GET", []byte(PathHealth), "x", nil, nil)
	do := func() {
		t.Helper()
		a, err := tr.do(req, &body, time.Now().Add(time.Minute), time.Minute)
		require.NoError(t, err, "health: %d", a.status)
		require.Equal(t, 200, a.status, "health")
	}
	do()
	tr.close()
	do()
	do()
	require.EqualValues(t, 3, ln.accepted.Load(), "connections, want one before close and one per request after")
	wantNoConns(t, tr, "after close")
}

// A node that takes requests and never answers: the request times out at
// its deadline, on a new connection as on a reused one, and the connection
// is not kept.
func TestTransportDeadlineOnSilentNode(t *testing.T) {
	addr := rawNode(t, func(nc net.Conn) { io.Copy(io.Discard, nc) }) // reads until the client closes
	tr := newTransport(addr, nil, 4, 1<<10)
	defer tr.close()
	var body []byte
	req := appendRequest(nil, "GET", []byte(PathHealth), "x", nil, nil)
	for i := range 2 {
		_, err := tr.do(req, &body, time.Now().Add(20*time.Millisecond), 20*time.Millisecond)
		require.True(t, isTimeout(err), "request %d to a silent node: %v, want a timeout", i, err)
	}
	wantNoConns(t, tr, "after timeouts")
}

// A node that answers garbage is a transport failure: the call fails with
// ErrOffline, and the node is marked offline.
func TestClientMalformedAnswer(t *testing.T) {
	addr := rawNode(t, func(nc net.Conn) {
		io.WriteString(nc, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
		nc.Close()
	})
	c := newClient(t, "http://"+addr, ClientConfig{Insecure: true, DisableBatching: true})
	_, err := c.Lock(context.Background(), locker.LockArgs{UID: "u", Resources: []string{"r"}})
	require.ErrorIs(t, err, locker.ErrOffline, "lock from a node that answers chunked")
	require.ErrorContains(t, err, "Transfer-Encoding", "lock from a node that answers chunked")
	require.False(t, c.IsOnline(), "node still online after a malformed answer")
}

func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 503\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 64)
		var body []byte
		a, err := readResponse(br, &body, 32)
		if err != nil {
			return
		}
		status := a.status
		require.GreaterOrEqual(t, status, 200, "status %d accepted", status)
		require.LessOrEqual(t, status, 999, "status %d accepted", status)
		require.LessOrEqual(t, len(body), 32, "body of %d bytes over the limit", len(body))
		require.True(t, bytes.Contains(in, body), "body %q not in the input", body)
	})
}

// TestTransportRetriesAStaleConnection: a request that meets a kept-alive
// connection the node closed (as after a restart) is sent again, once, on a
// new connection; a fresh connection that fails is not retried.
func TestTransportRetriesAStaleConnection(t *testing.T) {
	var conns atomic.Int32
	addr := rawNode(t, func(nc net.Conn) {
		defer nc.Close()
		n := conns.Add(1)
		br := bufio.NewReader(nc)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"+fmt.Sprint(n))
			if n == 1 {
				return // the first connection dies after one answer, kept alive by the client
			}
		}
	})
	tr := newTransport(addr, nil, 4, 1<<10)
	defer tr.close()
	var body []byte
	req := appendRequest(nil, "GET", []byte("/"), "x", nil, nil)
	for i, want := range []string{"1", "2", "2"} {
		a, err := tr.do(req, &body, time.Now().Add(time.Minute), time.Minute)
		require.NoError(t, err, "request %d", i)
		assert.Equal(t, 200, a.status)
		assert.Equal(t, want, string(body), "request %d answered on connection %s", i, body)
	}
	assert.EqualValues(t, 2, conns.Load())

	// A node that closes every connection at once is not retried for ever.
	dead := rawNode(t, func(nc net.Conn) { nc.Close() })
	tr2 := newTransport(dead, nil, 4, 1<<10)
	defer tr2.close()
	_, err := tr2.do(req, &body, time.Now().Add(time.Minute), time.Minute)
	assert.Error(t, err)
}

// TestClientSurvivesANodeRestart: the first call after the node restarts on
// the same address goes through, on a new connection, and the node is never
// reported offline.
func TestClientSurvivesANodeRestart(t *testing.T) {
	tbl := locker.New(locker.Config{SweepInterval: -1, QuietPeriod: locker.NoQuietPeriod})
	defer tbl.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	srv, err := NewServer(tbl, ServerConfig{Insecure: true})
	require.NoError(t, err)
	go srv.Serve(ln)
	for _, batching := range []bool{false, true} {
		c := newClient(t, "http://"+addr, ClientConfig{Insecure: true, DisableBatching: !batching})
		lockOnce(t, c, 100)
		require.NoError(t, srv.Close())
		ln, err = net.Listen("tcp", addr)
		require.NoError(t, err)
		srv, err = NewServer(tbl, ServerConfig{Insecure: true})
		require.NoError(t, err)
		go srv.Serve(ln)
		lockOnce(t, c, 101)
		assert.True(t, c.IsOnline())
	}
	srv.Close()
}
