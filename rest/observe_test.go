package rest

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	requests []RequestInfo
	ops      OpTally
}

func (r *recorder) Request(i *RequestInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, *i)
}

func (r *recorder) Ops(t *OpTally) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops.Granted[0] += t.Granted[0]
	r.ops.Granted[1] += t.Granted[1]
	r.ops.Reclaimed += t.Reclaimed
	for i := range t.Refused {
		r.ops.Refused[i] += t.Refused[i]
	}
	r.ops.Released += t.Released
	r.ops.NotHeld += t.NotHeld
	r.ops.Refreshed += t.Refreshed
	r.ops.RefreshNotHeld += t.RefreshNotHeld
	for i := range t.Failed {
		r.ops.Failed[i] += t.Failed[i]
	}
}

func (r *recorder) codes() map[string][]Code {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string][]Code{}
	for _, i := range r.requests {
		m[i.Endpoint] = append(m[i.Endpoint], i.Code)
	}
	return m
}

// TestObserverCounts: the observer hears of every request with its
// endpoint and code, and of every operation's outcome, batched or not.
func TestObserverCounts(t *testing.T) {
	rec := &recorder{}
	secret := newSecret(t)
	table := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	defer table.Close()
	_, endpoint := startServer(t, table, ServerConfig{Secret: secret, Observer: rec, Logger: discardLogger()})
	ctx := context.Background()

	single, err := NewClient(endpoint, ClientConfig{Secret: secret, DisableBatching: true})
	require.NoError(t, err)
	defer single.Close()
	r, err := single.Lock(ctx, locker.LockArgs{UID: "w", Resources: []string{"a"}})
	require.NoError(t, err)
	require.True(t, r.OK)
	r, err = single.RLock(ctx, locker.LockArgs{UID: "r", Resources: []string{"a"}})
	require.NoError(t, err)
	require.False(t, r.OK)
	_, err = single.Refresh(ctx, locker.RefreshArgs{UIDs: []string{"w", "gone"}})
	require.NoError(t, err)

	batched, err := NewClient(endpoint, ClientConfig{Secret: secret, batchAlone: true})
	require.NoError(t, err)
	defer batched.Close()
	r, err = batched.RLock(ctx, locker.LockArgs{UID: "r2", Resources: []string{"b"}})
	require.NoError(t, err)
	require.True(t, r.OK)
	_, err = batched.Unlock(ctx, locker.LockArgs{UID: "w"})
	require.NoError(t, err)
	_, err = batched.Unlock(ctx, locker.LockArgs{UID: "never"})
	require.NoError(t, err)

	rec.mu.Lock()
	ops := rec.ops
	rec.mu.Unlock()
	assert.Equal(t, [2]int{1, 1}, ops.Granted, "one read, one write granted")
	assert.Equal(t, 1, ops.Refused[locker.ReasonConflict])
	assert.Equal(t, 1, ops.Refreshed)
	assert.Equal(t, 1, ops.RefreshNotHeld)
	assert.Equal(t, 1, ops.Released)
	assert.Equal(t, 1, ops.NotHeld)

	codes := rec.codes()
	assert.Equal(t, []Code{CodeOK}, codes[EndpointLock])
	assert.Equal(t, []Code{CodeOK}, codes[EndpointRLock])
	assert.Equal(t, []Code{CodeOK}, codes[EndpointRefresh])
	assert.Equal(t, []Code{CodeOK, CodeOK, CodeOK}, codes[EndpointBatch])
	assert.NotEmpty(t, codes[EndpointHello], "hellos are observed")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, i := range rec.requests {
		if i.Endpoint == EndpointBatch {
			assert.Positive(t, i.BodyIn)
			assert.Positive(t, i.BodyOut)
		}
	}
}

// TestObserverAuthFailure: a request with wrong credentials is observed
// with its refusal's code. (A client with a wrong secret refuses the
// node's hello and sends nothing, so the request is written raw.)
func TestObserverAuthFailure(t *testing.T) {
	rec := &recorder{}
	table := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	defer table.Close()
	_, endpoint := startServer(t, table, ServerConfig{Secret: newSecret(t), Observer: rec, Logger: discardLogger()})
	conn, err := netDial(endpoint)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("POST " + PathLock + " HTTP/1.1\r\nHost: x\r\nAuthorization: DSYNC2-HMAC-SHA256 lock:a:1:1:aa:bb\r\nContent-Length: 1\r\n\r\nx"))
	require.NoError(t, err)
	br := bufioReader(conn)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Contains(t, line, "401")
	// The observer is told before the answer is written.
	assert.Equal(t, []Code{CodeUnauthorized}, rec.codes()[EndpointLock])
}

// TestClientLogsOfflineOnce: a client logs a node going offline once, with
// the error, and its coming back once.
func TestClientLogsOfflineOnce(t *testing.T) {
	var buf lockedWriter
	log := slog.New(slog.NewTextHandler(&buf, nil))
	table := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	defer table.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	endpoint := "http://" + ln.Addr().String()
	ln.Close() // nobody listens: the node is down
	probed := make(chan bool, 16)
	c, err := NewClient(endpoint, ClientConfig{Insecure: true, Logger: log, HealthInterval: time.Millisecond, probed: func(ok bool) { probed <- ok }})
	require.NoError(t, err)
	defer c.Close()
	for range 3 {
		c.Unlock(context.Background(), locker.LockArgs{UID: "u"})
	}
	<-probed // the prober runs: the node went offline
	ln2, err := net.Listen("tcp", ln.Addr().String())
	require.NoError(t, err)
	serveOn(t, ln2, table, ServerConfig{Insecure: true, Logger: discardLogger()})
	for !<-probed {
	}
	out := buf.String()
	assert.Equal(t, 1, strings.Count(out, "dsync node offline"), out)
	assert.Contains(t, out, "node="+endpoint)
	assert.Contains(t, out, "err=")
	assert.Equal(t, 1, strings.Count(out, "dsync node online again"), out)
	assert.Equal(t, int64(1), c.Stats().WentOffline)
}

// lockedWriter is a bytes.Buffer safe for concurrent writes.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
