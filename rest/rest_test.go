package rest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

// netDial opens a TCP connection to the node at endpoint (an http URL).
func netDial(endpoint string) (net.Conn, error) {
	return net.Dial("tcp", strings.TrimPrefix(endpoint, "http://"))
}

// bufioReader reads what conn receives.
func bufioReader(conn net.Conn) *bufio.Reader { return bufio.NewReader(conn) }

// newSecret returns a random secret of 32 hex digits.
func newSecret(t testing.TB) string {
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}

// startServer serves l on a new loopback listener until the test ends and
// returns the server and its endpoint.
func startServer(t testing.TB, l locker.NetLocker, cfg ServerConfig) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return serveOn(t, ln, l, cfg), "http://" + ln.Addr().String()
}

// serveOn serves l on ln until the test ends.
func serveOn(t testing.TB, ln net.Listener, l locker.NetLocker, cfg ServerConfig) *Server {
	t.Helper()
	srv, err := NewServer(l, cfg)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, srv.Close(), "server Close")
		assert.NoError(t, <-served, "Serve returned  after Close, want nil")
	})
	return srv
}

func newClient(t testing.TB, endpoint string, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(endpoint, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func conformanceFactory(cc ClientConfig) lockertest.Factory {
	return func(t *testing.T, cfg locker.Config) locker.NetLocker {
		tbl := locker.New(cfg)
		t.Cleanup(func() { tbl.Close() })
		// The admin role, which the suite's listings and force-unlocks of
		// resources need (the lock role's limits are tested in auth_test.go).
		admin := newSecret(t)
		_, endpoint := startServer(t, tbl, ServerConfig{Secret: newSecret(t), AdminSecret: admin})
		cc.AdminSecret = admin
		return newClient(t, endpoint, cc)
	}
}

func TestConformance(t *testing.T) {
	t.Run("Unbatched", func(t *testing.T) { lockertest.Run(t, conformanceFactory(ClientConfig{DisableBatching: true})) })
	// The default: lone calls go on the single-operation paths, concurrent
	// ones (ConcurrentMutualExclusion) are coalesced.
	t.Run("Batched", func(t *testing.T) { lockertest.Run(t, conformanceFactory(ClientConfig{})) })
	// Every call through /dsync/v1/batch, even alone.
	t.Run("BatchPathOnly", func(t *testing.T) {
		lockertest.Run(t, conformanceFactory(ClientConfig{batchAlone: true, MaxInFlight: 1}))
	})
}

func TestConfigValidation(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	_, err := NewServer(tbl, ServerConfig{})
	assert.Error(t, err, "NewServer with an empty secret succeeded")
	_, err = NewServer(tbl, ServerConfig{Secret: newSecret(t), Insecure: true})
	assert.Error(t, err, "NewServer with a secret and Insecure succeeded")
	_, err = NewServer(nil, ServerConfig{Insecure: true})
	assert.Error(t, err, "NewServer with a nil locker succeeded")
	_, err = NewServer(tbl, ServerConfig{Insecure: true, MaxBatchOps: MaxBatchLimit + 1})
	assert.Error(t, err, "NewServer with MaxBatchOps over MaxBatchLimit succeeded")
	_, err = NewClient("http://127.0.0.1:1", ClientConfig{Insecure: true, MaxBatch: MaxBatchLimit + 1})
	assert.Error(t, err, "NewClient with MaxBatch over MaxBatchLimit succeeded")
	_, err = NewClient("http://127.0.0.1:1", ClientConfig{})
	assert.Error(t, err, "NewClient with an empty secret succeeded")
	for _, bad := range []string{"127.0.0.1:1", "ftp://h:1", "http://h:1/x", "http://h:1?q=1", "http://u:p@h:1", "::"} {
		_, err := NewClient(bad, ClientConfig{Insecure: true})
		assert.Error(t, err, "NewClient(%q) succeeded", bad)
	}
	c, err := NewClient("http://127.0.0.1:1/", ClientConfig{Insecure: true})
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:1", c.String(), "String()")
	c.Close()
}
