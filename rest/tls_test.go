package rest

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/internal/certgen"
	"github.com/dsync-go/dsync/locker"
)

// pki is a test's certificates on disk: a CA, a node's certificate for
// 127.0.0.1 and a client's.
type pki struct {
	dir                 string
	ca                  *certgen.CA
	caFile              string
	nodeCert, nodeKey   string
	clientCert, clientK string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	var err error
	p.ca, err = certgen.NewCA("dsync test CA")
	require.NoError(t, err)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	require.NoError(t, os.WriteFile(p.caFile, p.ca.PEM, 0o644))
	p.nodeCert, p.nodeKey, err = p.ca.WriteFiles(p.dir, "node", certgen.Leaf{Name: "node", Hosts: []string{"127.0.0.1", "localhost"}, Server: true})
	require.NoError(t, err)
	p.clientCert, p.clientK, err = p.ca.WriteFiles(p.dir, "client", certgen.Leaf{Name: "client", Client: true})
	require.NoError(t, err)
	return p
}

// startTLSServer serves a new table over TLS with cfg until the test ends.
func startTLSServer(t *testing.T, cfg *tls.Config) (secret, endpoint string) {
	t.Helper()
	secret = newSecret(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	table := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	t.Cleanup(func() { table.Close() })
	serveOn(t, ln, table, ServerConfig{Secret: secret, TLS: cfg, Logger: discardLogger()})
	return secret, "https://" + ln.Addr().String()
}

func loadCerts(t *testing.T, cert, key string) *Certificates {
	t.Helper()
	c, err := LoadCertificates(cert, key)
	require.NoError(t, err)
	return c
}

func loadCA(t *testing.T, file string) *CAPool {
	t.Helper()
	p, err := LoadCAPool(file)
	require.NoError(t, err)
	return p
}

// tryLock makes one lock call with a new client for endpoint.
func tryLock(t *testing.T, endpoint, secret string, tc *tls.Config) (locker.Reply, error) {
	t.Helper()
	c, err := NewClient(endpoint, ClientConfig{Secret: secret, TLS: tc, CallTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	return c.Lock(context.Background(), locker.LockArgs{UID: newSecret(t), Resources: []string{"r"}})
}

func TestTLSMutualGrants(t *testing.T) {
	p := newPKI(t)
	secret, endpoint := startTLSServer(t, ServerTLS(loadCerts(t, p.nodeCert, p.nodeKey), loadCA(t, p.caFile)))
	r, err := tryLock(t, endpoint, secret, ClientTLS(loadCA(t, p.caFile), loadCerts(t, p.clientCert, p.clientK)))
	require.NoError(t, err)
	assert.True(t, r.OK)
}

func TestTLSRefusals(t *testing.T) {
	p := newPKI(t)
	other, err := certgen.NewCA("another CA")
	require.NoError(t, err)
	otherCA := filepath.Join(p.dir, "other-ca.pem")
	require.NoError(t, os.WriteFile(otherCA, other.PEM, 0o644))
	past := certgen.Leaf{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}
	expiredNode, expiredNodeKey, err := p.ca.WriteFiles(p.dir, "expired-node", certgen.Leaf{Name: "node", Hosts: []string{"127.0.0.1"}, Server: true, NotBefore: past.NotBefore, NotAfter: past.NotAfter})
	require.NoError(t, err)
	expiredClient, expiredClientKey, err := p.ca.WriteFiles(p.dir, "expired-client", certgen.Leaf{Name: "client", Client: true, NotBefore: past.NotBefore, NotAfter: past.NotAfter})
	require.NoError(t, err)
	otherNode, otherNodeKey, err := p.ca.WriteFiles(p.dir, "other-name", certgen.Leaf{Name: "node", Hosts: []string{"node7.example"}, Server: true})
	require.NoError(t, err)

	mutual := ServerTLS(loadCerts(t, p.nodeCert, p.nodeKey), loadCA(t, p.caFile))
	for _, tc := range []struct {
		name   string
		server *tls.Config
		client *tls.Config
		want   string // in the client's error
	}{
		{"client trusts another CA", mutual, ClientTLS(loadCA(t, otherCA), loadCerts(t, p.clientCert, p.clientK)), "certificate signed by unknown authority"},
		{"node's certificate expired", ServerTLS(loadCerts(t, expiredNode, expiredNodeKey), nil), ClientTLS(loadCA(t, p.caFile), nil), "certificate has expired"},
		{"node's certificate for another name", ServerTLS(loadCerts(t, otherNode, otherNodeKey), nil), ClientTLS(loadCA(t, p.caFile), nil), "cannot validate certificate for 127.0.0.1"},
		{"system roots do not know the test CA", ServerTLS(loadCerts(t, p.nodeCert, p.nodeKey), nil), nil, "certificate signed by unknown authority"},
		{"no client certificate", mutual, ClientTLS(loadCA(t, p.caFile), nil), "certificate required"},
		{"client's certificate expired", mutual, ClientTLS(loadCA(t, p.caFile), loadCerts(t, expiredClient, expiredClientKey)), "expired certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret, endpoint := startTLSServer(t, tc.server)
			_, err := tryLock(t, endpoint, secret, tc.client)
			require.Error(t, err)
			assert.ErrorIs(t, err, locker.ErrOffline, "a node the client cannot reach safely is offline to it")
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestTLSClientConfigChecks(t *testing.T) {
	_, err := NewClient("http://127.0.0.1:1", ClientConfig{Insecure: true, TLS: &tls.Config{}})
	assert.ErrorContains(t, err, "plain http")
}

// TestTLSRotation: a node's certificate rewritten on disk is served to new
// connections once WatchTLS has seen it, and a client certificate from a
// new CA is accepted once the node's client-CA bundle names that CA.
func TestTLSRotation(t *testing.T) {
	p := newPKI(t)
	cert := loadCerts(t, p.nodeCert, p.nodeKey)
	clientCAs := loadCA(t, p.caFile)
	secret, endpoint := startTLSServer(t, ServerTLS(cert, clientCAs))
	addr := endpoint[len("https://"):]
	roots := loadCA(t, p.caFile)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloaded := make(chan string, 4)
	// A reload may fail while a new key is on disk beside the old
	// certificate; the next look finds both.
	go WatchTLS(ctx, time.Millisecond, discardLogger(), func(r Reloadable, err error) {
		reloaded <- r.String()
	}, cert, clientCAs)

	serial := func() *big.Int {
		conn, err := tls.Dial("tcp", addr, ClientTLS(roots, loadCerts(t, p.clientCert, p.clientK)))
		require.NoError(t, err)
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	before := serial()
	_, _, err := p.ca.WriteFiles(p.dir, "node", certgen.Leaf{Name: "node", Hosts: []string{"127.0.0.1"}, Server: true})
	require.NoError(t, err)
	for i := 0; serial().Cmp(before) == 0; i++ {
		require.Less(t, i, 10, "the rotated certificate is never served")
		<-reloaded
	}
	assert.NotEqual(t, before, serial(), "new connections get the rotated certificate")

	// A client certificate of a new CA: refused, then accepted once the
	// node's bundle holds both CAs.
	next, err := certgen.NewCA("next CA")
	require.NoError(t, err)
	nc, nk, err := next.WriteFiles(p.dir, "next-client", certgen.Leaf{Name: "client", Client: true})
	require.NoError(t, err)
	clientTLS := ClientTLS(roots, loadCerts(t, nc, nk))
	_, err = tryLock(t, endpoint, secret, clientTLS)
	require.Error(t, err)
	require.NoError(t, certgen.WriteFile(p.caFile, append(append([]byte{}, p.ca.PEM...), next.PEM...), 0o644))
	for <-reloaded != p.caFile {
	}
	r, err := tryLock(t, endpoint, secret, clientTLS)
	require.NoError(t, err)
	assert.True(t, r.OK)
}

// discardLogger returns a logger that writes nothing.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
