package loadgen

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dsync-go/dsync/internal/certgen"
	"github.com/dsync-go/dsync/rest"
)

// clusterTLS is the mutual TLS of a TransportHTTPS cluster: a CA made for
// it, a node certificate for 127.0.0.1 and a client certificate, in a
// temporary directory, loaded as dsync-node and a client load them.
type clusterTLS struct {
	dir            string
	server, client *tls.Config
}

func newClusterTLS() (*clusterTLS, error) {
	dir, err := os.MkdirTemp("", "dsync-bench-tls-")
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	t := &clusterTLS{dir: dir}
	if err := t.make(); err != nil {
		t.remove()
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return t, nil
}

func (t *clusterTLS) make() error {
	ca, err := certgen.NewCA("dsync bench CA")
	if err != nil {
		return err
	}
	caFile := filepath.Join(t.dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		return err
	}
	nc, nk, err := ca.WriteFiles(t.dir, "node", certgen.Leaf{Name: "node", Hosts: []string{"127.0.0.1"}, Server: true})
	if err != nil {
		return err
	}
	cc, ck, err := ca.WriteFiles(t.dir, "client", certgen.Leaf{Name: "client", Client: true})
	if err != nil {
		return err
	}
	pool, err := rest.LoadCAPool(caFile)
	if err != nil {
		return err
	}
	nodeCert, err := rest.LoadCertificates(nc, nk)
	if err != nil {
		return err
	}
	clientCert, err := rest.LoadCertificates(cc, ck)
	if err != nil {
		return err
	}
	t.server, t.client = rest.ServerTLS(nodeCert, pool), rest.ClientTLS(pool, clientCert)
	return nil
}

func (t *clusterTLS) remove() error { return os.RemoveAll(t.dir) }
