package loadgen

import (
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsync-go/dsync/dsyncprom"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// benchSecret authenticates the benchmark's HTTP requests when no secret is
// given: authentication is on by default, as in production.
const benchSecret = "dsync-bench-secret-dsync-bench-se" // MinSecretLen bytes

// serveHTTP serves t with a rest.Server on a fresh 127.0.0.1 port, counting
// the bytes through the listener, and returns a rest.Client for it.
func (c *Cluster) serveHTTP(t *locker.Local) (*rest.Client, error) {
	secret := c.cfg.Secret
	if secret == "" && !c.cfg.Insecure {
		secret = benchSecret
	}
	scfg := rest.ServerConfig{Secret: secret, Insecure: c.cfg.Insecure}
	ccfg := rest.ClientConfig{
		Secret: secret, Insecure: c.cfg.Insecure,
		MaxInFlight: c.cfg.MaxInFlight, MaxBatch: c.cfg.MaxBatch, DisableBatching: c.cfg.DisableBatching,
	}
	if c.cfg.Metrics {
		m := dsyncprom.NewNodeMetrics(dsyncprom.NodeConfig{Table: t})
		if err := prometheus.NewRegistry().Register(m); err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
		scfg.Observer = m
	}
	scheme := "http://"
	if c.cfg.Transport == TransportHTTPS {
		if c.tls == nil {
			var err error
			if c.tls, err = newClusterTLS(); err != nil {
				return nil, err
			}
			c.closers = append(c.closers, c.tls.remove)
		}
		scfg.TLS, ccfg.TLS, scheme = c.tls.server, c.tls.client, "https://"
	}
	srv, err := rest.NewServer(t, scfg)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(countingListener{Listener: ln, bytes: &c.wireBytes})
	}()
	c.closers = append(c.closers, func() error {
		err := srv.Close()
		<-served
		return err
	})
	cl, err := rest.NewClient(scheme+ln.Addr().String(), ccfg)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	c.closers = append(c.closers, cl.Close)
	return cl, nil
}
