package rest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// TLS. A node serves TLS when ServerConfig.TLS is set, and a client speaks
// it to an https endpoint, verifying the node's certificate against
// ClientConfig.TLS's roots (the system's if nil). Mutual TLS is the
// server's tls.Config asking for client certificates (ClientAuth) and the
// client's presenting one. The HMAC of every request stays (see doc.go):
// TLS keeps the traffic private and the peers known; the MAC still binds
// each request to its role, node and start, and refuses replays.
//
// Certificates rotate without a restart: Certificates and CAPool read
// their files again when Reload is called (dsync-node does on SIGHUP) or
// when Watch sees them change, and ServerTLS and ClientTLS build
// configurations that use whatever was loaded last, for every new
// connection. Connections already open keep the certificate they were made
// with.

// Certificates is a certificate chain and its private key, read from PEM
// files, that a node serves or a client presents. It is safe for
// concurrent use.
type Certificates struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]

	mu    sync.Mutex // guards stamp; orders reloads
	stamp [2]fileStamp
}

// LoadCertificates reads a PEM certificate chain (the leaf first) and its
// PEM private key.
func LoadCertificates(certFile, keyFile string) (*Certificates, error) {
	c := &Certificates{certFile: certFile, keyFile: keyFile}
	if _, err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again and, if they hold a valid pair, uses it
// for new connections from then on; if not, it keeps the pair it had and
// returns the error. It reports whether the files had changed since they
// were last read.
func (c *Certificates) Reload() (changed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamp := [2]fileStamp{stampOf(c.certFile), stampOf(c.keyFile)}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return false, fmt.Errorf("rest: TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	changed = stamp != c.stamp
	c.stamp = stamp
	c.cert.Store(&pair)
	return changed, nil
}

// Certificate returns the pair loaded last.
func (c *Certificates) Certificate() *tls.Certificate { return c.cert.Load() }

// changedOnDisk reports whether either file differs from what was read
// last, by size or modification time.
func (c *Certificates) changedOnDisk() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return [2]fileStamp{stampOf(c.certFile), stampOf(c.keyFile)} != c.stamp
}

// String returns the certificate file's name, for logs.
func (c *Certificates) String() string { return c.certFile }

// CAPool is a bundle of CA certificates read from a PEM file: the roots a
// client verifies nodes against, or those a node verifies client
// certificates against. It is safe for concurrent use.
type CAPool struct {
	file string
	pool atomic.Pointer[x509.CertPool]

	mu    sync.Mutex // guards stamp; orders reloads
	stamp fileStamp
}

// LoadCAPool reads a PEM file of one or more CA certificates.
func LoadCAPool(file string) (*CAPool, error) {
	p := &CAPool{file: file}
	if _, err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload reads the file again, as Certificates.Reload does.
func (p *CAPool) Reload() (changed bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	stamp := stampOf(p.file)
	data, err := os.ReadFile(p.file)
	if err != nil {
		return false, fmt.Errorf("rest: TLS CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return false, fmt.Errorf("rest: TLS CA bundle %s holds no PEM certificate", p.file)
	}
	changed = stamp != p.stamp
	p.stamp = stamp
	p.pool.Store(pool)
	return changed, nil
}

// Pool returns the pool loaded last.
func (p *CAPool) Pool() *x509.CertPool { return p.pool.Load() }

// changedOnDisk reports whether the file differs from what was read last.
func (p *CAPool) changedOnDisk() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return stampOf(p.file) != p.stamp
}

// String returns the CA bundle's file name, for logs.
func (p *CAPool) String() string { return p.file }

// Reloadable is a Certificates or a CAPool: TLS material read from files.
type Reloadable interface {
	// Reload reads the files again and reports whether they changed since
	// they were read last; on an error the material read before is kept.
	Reload() (changed bool, err error)
	// changedOnDisk reports whether the files differ, by size or
	// modification time, from what was read last.
	changedOnDisk() bool
	// String names the file, for logs.
	String() string
}

// fileStamp is what tells a file changed: its size and modification time.
// (A Kubernetes secret volume swaps a symbolic link; os.Stat follows it.)
type fileStamp struct {
	size  int64
	mtime time.Time
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{size: -1}
	}
	return fileStamp{size: fi.Size(), mtime: fi.ModTime()}
}

// DefaultTLSWatchInterval is how often WatchTLS looks at the files.
const DefaultTLSWatchInterval = 10 * time.Second

// WatchTLS looks at the files of every r each interval (if zero,
// DefaultTLSWatchInterval) until ctx ends, and reloads those that changed.
// It logs each reload at Info level, and a failed one (say, a certificate
// written before its key) at Warn level, keeping the old material and
// trying again at the next look; log may be nil (slog.Default()). onReload,
// if not nil, is called after every attempt. WatchTLS returns when ctx
// ends.
func WatchTLS(ctx context.Context, interval time.Duration, log *slog.Logger, onReload func(r Reloadable, err error), r ...Reloadable) {
	if interval <= 0 {
		interval = DefaultTLSWatchInterval
	}
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, x := range r {
			if !x.changedOnDisk() {
				continue
			}
			_, err := x.Reload()
			LogReload(log, x, err)
			if onReload != nil {
				onReload(x, err)
			}
		}
	}
}

// LogReload logs the outcome of reloading r.
func LogReload(log *slog.Logger, r Reloadable, err error) {
	if err != nil {
		log.Warn("TLS reload failed; keeping the material loaded before", slog.String("file", r.String()), slog.Any("err", err))
		return
	}
	log.Info("TLS material reloaded", slog.String("file", r.String()))
}

// ServerTLS returns a configuration for ServerConfig.TLS that serves
// cert's pair and, if clientCAs is not nil, requires every client to
// present a certificate that clientCAs verifies (mutual TLS). Both are
// read anew for every connection, so that a Reload takes effect at once.
// TLS 1.2 is the oldest version accepted.
func ServerTLS(cert *Certificates, clientCAs *CAPool) *tls.Config {
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cert.Certificate(), nil
		},
	}
	if clientCAs == nil {
		return base
	}
	base.ClientAuth = tls.RequireAndVerifyClientCert
	base.ClientCAs = clientCAs.Pool()
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.GetConfigForClient = nil
		c.ClientCAs = clientCAs.Pool()
		return c, nil
	}
	return base
}

// ClientTLS returns a configuration for ClientConfig.TLS that verifies
// nodes against roots (the system's roots if nil) and, if cert is not nil,
// presents its pair to nodes that ask for one. Both are read anew for
// every connection. The node's name to verify is the endpoint's host,
// unless the returned configuration's ServerName is set.
func ClientTLS(roots *CAPool, cert *Certificates) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if cert != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert.Certificate(), nil
		}
	}
	if roots == nil {
		return c
	}
	// The roots may change: verify against the pool of the moment, as
	// crypto/tls's own verification would (the documented pattern for
	// custom verification: InsecureSkipVerify with VerifyConnection).
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the node presented no certificate")
		}
		opts := x509.VerifyOptions{
			DNSName:       cs.ServerName,
			Roots:         roots.Pool(),
			Intermediates: x509.NewCertPool(),
		}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		return nil
	}
	return c
}

// clientTLSFor returns the configuration a client uses to dial the https
// endpoint whose host is host: a copy of cfg (the defaults if nil) that
// verifies the node's certificate for host unless it names a ServerName.
// A VerifyConnection of cfg is given that name as the ConnectionState's
// ServerName when the handshake sent none (crypto/tls sends no server name
// for an IP address), so that ClientTLS's verification checks the IP.
func clientTLSFor(cfg *tls.Config, host string) *tls.Config {
	if cfg == nil {
		return &tls.Config{ServerName: host}
	}
	c := cfg.Clone()
	if c.ServerName == "" {
		c.ServerName = host
	}
	if verify := c.VerifyConnection; verify != nil {
		name := c.ServerName
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if cs.ServerName == "" {
				cs.ServerName = name
			}
			return verify(cs)
		}
	}
	return c
}
