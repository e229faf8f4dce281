package rest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// transport is a Client's HTTP/1.1 connection pool to its node: keep-alive
// connections, each carrying one request at a time, and the writing and
// reading of exactly the requests and answers that this package's client
// and server exchange. The node's side is fasthttp's server.
//
// It takes the place of fasthttp.HostClient, whose general machinery cost
// about a fifth of a lone lock call's CPU: parsing back the request URI it
// was handed, normalising header names, arming two deadline timers per
// request, and a full response-header parser. Here a request is written in
// one piece and one system call; an answer is read for its status, its
// Content-Length and whether the node closes the connection, and nothing
// else.
//
// At most maxConns connections are open. A request that finds none idle
// and no room for another waits for one until its deadline, then fails
// with errNoFreeConns without being sent. A connection idle for longer than
// maxIdle is closed instead of reused, so that the node's idle timeout
// (ServerConfig.IdleTimeout, a minute by default) never closes one under a
// request.
type transport struct {
	addr     string
	tls      *tls.Config // nil for plain HTTP
	maxConns int
	maxIdle  time.Duration
	maxBody  int

	mu      sync.Mutex
	idle    []*tconn      // the most recently used last
	open    int           // connections open or being dialed
	waiting []chan *tconn // requests waiting for a connection, first come first served
	closed  bool          // close was called: connections are closed when released
}

// tconn is one connection of a transport.
type tconn struct {
	nc       net.Conn
	br       *bufio.Reader
	deadline time.Time // the deadline set on nc, zero if none
	idleFrom time.Time // when it was last released
	used     bool      // it has carried an exchange: it is a kept-alive connection
}

// errNoFreeConns is the error of a request that found every connection
// busy until its deadline: it was not sent.
var errNoFreeConns = errors.New("no free connection to the node before the deadline")

// Bounds on an answer's header, which the node writes in a few dozen bytes.
const (
	maxHeaderLines = 64
	// connReadBuffer is the read buffer of a connection: an answer's header
	// line must fit in it.
	connReadBuffer = 16 << 10
)

// defaultMaxIdle is how long a connection may sit idle and still be reused:
// well under the node's default idle timeout.
const defaultMaxIdle = 10 * time.Second

// maxDeadlineSlack bounds how much earlier than its request's deadline a
// connection's deadline may be (see setDeadline).
const maxDeadlineSlack = time.Millisecond

func newTransport(addr string, tlsConfig *tls.Config, maxConns, maxBody int) *transport {
	return &transport{addr: addr, tls: tlsConfig, maxConns: maxConns, maxIdle: defaultMaxIdle, maxBody: maxBody}
}

// answer is what a client reads of an answer's status line and header.
type answer struct {
	status   int
	closing  bool // the node closes the connection after it
	protocol int  // the HeaderProtocol value; 0 if absent or not a number
}

// do writes req, a whole HTTP/1.1 request (see appendRequest), on one of
// t's connections and reads the answer: it returns its status and header,
// and leaves the body in *body, reusing its array. budget is what is left
// until deadline, which bounds everything, the wait for a connection
// included.
//
// A request that meets a kept-alive connection the node has closed (the
// write fails, or the node's end closes before one byte of an answer
// comes), as every idle connection is after the node restarts, is sent
// again, once, on a new connection: the node never read it, or read it
// and died, or answers the same bytes as a replay. The idle connections
// are closed then too, since they are likely as stale.
func (t *transport) do(req []byte, body *[]byte, deadline time.Time, budget time.Duration) (answer, error) {
	if budget <= 0 {
		return answer{}, errTimeout
	}
	for try := 0; ; try++ {
		tc, err := t.get(deadline)
		if err != nil {
			return answer{}, err
		}
		reused := tc.used
		if err := tc.setDeadline(deadline, budget); err != nil {
			t.discard(tc)
			return answer{}, err
		}
		if _, err := tc.nc.Write(req); err != nil {
			t.discard(tc)
			if reused && try == 0 && closedByPeer(err) {
				t.closeIdle()
				continue
			}
			return answer{}, err
		}
		a, err := readResponse(tc.br, body, t.maxBody)
		if err != nil || a.closing {
			t.discard(tc)
			if err != nil && reused && try == 0 && a.status == 0 && closedByPeer(err) {
				t.closeIdle()
				continue
			}
			return a, err
		}
		tc.used = true
		t.put(tc)
		return a, nil
	}
}

// closedByPeer reports whether err says that the other end had closed the
// connection: a clean end of input, a reset, a broken pipe.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// closeIdle closes every idle connection.
func (t *transport) closeIdle() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.open -= len(idle)
	t.mu.Unlock()
	for _, tc := range idle {
		tc.nc.Close()
	}
}

// errTimeout is the error of a request whose deadline passed before it was
// sent. Like the errors of a connection's deadline, it is a net.Error whose
// Timeout is true.
var errTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "deadline passed before the request was sent" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// setDeadline sets the connection's deadline for a request due at d,
// budget from now. Setting one costs a timer update in the runtime, so a
// deadline already set no earlier than d minus a slack (a 64th of budget,
// at most maxDeadlineSlack) is kept: the request may then time out that
// much early, never late. Back-to-back requests on one connection, whose
// deadlines are their calls' fixed timeouts after their start, mostly keep
// the one before.
func (tc *tconn) setDeadline(d time.Time, budget time.Duration) error {
	slack := min(budget/64, maxDeadlineSlack)
	if !tc.deadline.After(d) && d.Sub(tc.deadline) <= slack {
		return nil
	}
	tc.deadline = d
	return tc.nc.SetDeadline(d)
}

// get returns a connection for a request due at deadline: the most
// recently used idle one, a new one if fewer than maxConns are open, or
// the first one released before the deadline.
func (t *transport) get(deadline time.Time) (*tconn, error) {
	t.mu.Lock()
	if tc := t.popIdle(); tc != nil {
		t.mu.Unlock()
		return tc, nil
	}
	if t.open < t.maxConns {
		t.open++
		t.mu.Unlock()
		return t.dial(deadline)
	}
	wait := make(chan *tconn, 1)
	t.waiting = append(t.waiting, wait)
	t.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case tc := <-wait:
		return t.handed(tc, deadline)
	case <-timer.C:
	}
	t.mu.Lock()
	for i, w := range t.waiting {
		if w == wait {
			t.waiting = append(t.waiting[:i], t.waiting[i+1:]...)
			t.mu.Unlock()
			return nil, errNoFreeConns
		}
	}
	t.mu.Unlock()
	// Handed something just as the timer fired: take it, so that it is
	// neither lost nor counted twice.
	return t.handed(<-wait, deadline)
}

// handed takes what put or drop handed a waiting request: a connection, or
// nil for leave to dial one (the count of open connections already holds
// it).
func (t *transport) handed(tc *tconn, deadline time.Time) (*tconn, error) {
	if tc != nil {
		return tc, nil
	}
	return t.dial(deadline)
}

// popIdle returns the most recently used idle connection, or nil; t.mu
// must be held. Connections idle for longer than maxIdle are closed: the
// most recent one is the youngest, so if it is too old, all are.
func (t *transport) popIdle() *tconn {
	n := len(t.idle)
	if n == 0 {
		return nil
	}
	tc := t.idle[n-1]
	if time.Since(tc.idleFrom) > t.maxIdle {
		for _, old := range t.idle {
			old.nc.Close()
		}
		t.open -= n
		clear(t.idle)
		t.idle = t.idle[:0]
		return nil
	}
	t.idle[n-1] = nil
	t.idle = t.idle[:n-1]
	return tc
}

// dial opens a connection, whose place in t.open the caller holds.
func (t *transport) dial(deadline time.Time) (*tconn, error) {
	d := net.Dialer{Deadline: deadline}
	nc, err := d.Dial("tcp", t.addr)
	var set time.Time // the deadline set on the new connection: none yet for plain TCP
	if err == nil && t.tls != nil {
		tc := tls.Client(nc, t.tls)
		tc.SetDeadline(deadline)
		if err = tc.Handshake(); err != nil {
			nc.Close()
		}
		nc, set = tc, deadline
	}
	if err != nil {
		t.drop()
		return nil, err
	}
	return &tconn{nc: nc, br: bufio.NewReaderSize(nc, connReadBuffer), deadline: set}, nil
}

// put releases tc after a complete exchange: to the first waiting request,
// or to the idle connections.
func (t *transport) put(tc *tconn) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		tc.nc.Close()
		t.drop()
		return
	}
	if t.handOver(tc) {
		return
	}
	tc.idleFrom = time.Now()
	t.idle = append(t.idle, tc)
	// The oldest idle connection, if too old, is closed here too, so that
	// connections left over from a burst are not kept open for ever by a
	// client that only ever reuses its youngest.
	var old *tconn
	if oldest := t.idle[0]; len(t.idle) > 1 && tc.idleFrom.Sub(oldest.idleFrom) > t.maxIdle {
		old = oldest
		t.idle = append(t.idle[:0], t.idle[1:]...)
		t.open--
	}
	t.mu.Unlock()
	if old != nil {
		old.nc.Close()
	}
}

// discard closes tc, whose exchange failed or whose node closes it, and
// frees its place.
func (t *transport) discard(tc *tconn) {
	tc.nc.Close()
	t.drop()
}

// drop frees the place of a connection that was closed or never opened: a
// waiting request may dial one instead.
func (t *transport) drop() {
	t.mu.Lock()
	if t.handOver(nil) {
		return
	}
	t.open--
	t.mu.Unlock()
}

// handOver gives tc (a connection, or nil for leave to dial one) to the
// first request waiting for a connection, if any, and then unlocks t.mu,
// which must be held. It reports whether a request was waiting; if not,
// t.mu is still held.
func (t *transport) handOver(tc *tconn) bool {
	if len(t.waiting) == 0 {
		return false
	}
	w := t.waiting[0]
	t.waiting = t.waiting[1:]
	t.mu.Unlock()
	w <- tc
	return true
}

// close closes the idle connections, and from then on each busy one when
// its exchange ends. Requests may still be made (a closed Client finishes
// what it had queued); each then dials a connection of its own and closes
// it after the answer.
func (t *transport) close() {
	t.mu.Lock()
	t.closed = true
	idle := t.idle
	t.idle = nil
	t.open -= len(idle)
	t.mu.Unlock()
	for _, tc := range idle {
		tc.nc.Close()
	}
}

// appendRequest appends an HTTP/1.1 request to dst: method and target on
// the request line, the Host header, the Authorization header if auth is
// not empty, and body with its Content-Type and Content-Length if method is
// POST.
func appendRequest(dst []byte, method string, target []byte, host string, auth, body []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)
	if len(auth) > 0 {
		dst = append(dst, HeaderAuth+": "...)
		dst = append(dst, auth...)
		dst = append(dst, "\r\n"...)
	}
	if method == "POST" {
		dst = append(dst, "Content-Type: "+ContentType+"\r\nContent-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, "\r\n\r\n"...)
		return append(dst, body...)
	}
	return append(dst, "\r\n"...)
}

// errMalformedAnswer wraps what is wrong with an answer that is not the
// HTTP/1.1 a node sends.
var errMalformedAnswer = errors.New("malformed HTTP answer")

// readResponse reads one HTTP/1.1 answer from br: it returns the status
// code, whether the node closes the connection after it and the protocol
// version it names, and leaves the body in *body (reusing its array). It
// accepts what a node sends: a status line, header lines, and a body of
// exactly Content-Length bytes, at most maxBody. Any other answer (chunked,
// without a length, a header line longer than the read buffer, more than
// maxHeaderLines lines) is an error, after which the connection must not be
// reused.
func readResponse(br *bufio.Reader, body *[]byte, maxBody int) (a answer, err error) {
	line, err := readLine(br)
	if err != nil {
		return answer{}, err
	}
	// HTTP/1.x SSS[ reason]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return answer{}, fmt.Errorf("%w: status line %q", errMalformedAnswer, truncate(line))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return answer{}, fmt.Errorf("%w: status line %q", errMalformedAnswer, truncate(line))
		}
		a.status = a.status*10 + int(c-'0')
	}
	if a.status < 100 {
		return answer{}, fmt.Errorf("%w: status line %q", errMalformedAnswer, truncate(line))
	}
	http10 := line[7] == '0'
	a.closing = http10 // HTTP/1.0 closes unless it says keep-alive
	length := -1
	for i := 0; ; i++ {
		if i == maxHeaderLines {
			return answer{status: a.status}, fmt.Errorf("%w: more than %d header lines", errMalformedAnswer, maxHeaderLines)
		}
		line, err := readLine(br)
		if err != nil {
			return answer{status: a.status}, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return answer{status: a.status}, fmt.Errorf("%w: header line %q", errMalformedAnswer, truncate(line))
		}
		value = bytes.Trim(value, " \t")
		switch {
		case asciiEqualFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || (length >= 0 && n != length) {
				return answer{status: a.status}, fmt.Errorf("%w: Content-Length %q", errMalformedAnswer, truncate(value))
			}
			length = n
		case asciiEqualFold(name, "dsync-protocol"):
			if n, ok := parseLength(value); ok && n < 1<<16 {
				a.protocol = n
			}
		case asciiEqualFold(name, "transfer-encoding"):
			if !asciiEqualFold(value, "identity") {
				return answer{status: a.status}, fmt.Errorf("%w: Transfer-Encoding %q", errMalformedAnswer, truncate(value))
			}
		case asciiEqualFold(name, "connection"):
			for _, tok := range bytes.Split(value, []byte{','}) {
				tok = bytes.Trim(tok, " \t")
				switch {
				case asciiEqualFold(tok, "close"):
					a.closing, http10 = true, false
				case asciiEqualFold(tok, "keep-alive") && http10:
					a.closing = false
				}
			}
		}
	}
	switch status := a.status; {
	case status < 200 || status == 204 || status == 304:
		length = max(length, 0)
		if length != 0 || status < 200 {
			// No 1xx is asked for; a body on these is not HTTP.
			return answer{status: a.status}, fmt.Errorf("%w: status %d with a body or before a final answer", errMalformedAnswer, status)
		}
	case length < 0:
		return answer{status: a.status}, fmt.Errorf("%w: no Content-Length", errMalformedAnswer)
	case length > maxBody:
		return answer{status: a.status}, fmt.Errorf("%w: body of %d bytes, more than the limit of %d", errMalformedAnswer, length, maxBody)
	}
	if cap(*body) < length {
		*body = make([]byte, length)
	}
	*body = (*body)[:length]
	if _, err := io.ReadFull(br, *body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return answer{status: a.status}, err
	}
	return a, nil
}

// readLine reads one line ending in CRLF (or LF) from br and returns it
// without its ending. The line is valid until the next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("%w: a header line longer than %d bytes", errMalformedAnswer, br.Size())
	case errors.Is(err, io.EOF) && len(line) > 0:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseLength parses a Content-Length value: decimal digits, at most 18 of
// them.
func parseLength(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// asciiEqualFold reports whether b equals lower, which is in lowercase,
// ignoring the case of ASCII letters in b.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// truncate shortens what an error quotes from an answer.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
