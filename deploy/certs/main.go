// Command certs makes the certificates and secrets of an example dsync
// cluster: a CA, one node certificate valid for every node's name, a client
// certificate, and a file of random secrets for the environment. The
// compose file runs it before the nodes start; for Kubernetes, run it once
// and load its output into secrets (see deploy/kubernetes/README.md).
//
//	go run ./deploy/certs -out certs -hosts node0,node1,node2,node3,localhost,127.0.0.1
//
// It writes, in -out: ca.pem; node.pem and node-key.pem; client.pem and
// client-key.pem; secret and admin-secret (64 hex digits each, for
// -secret-file and -admin-secret-file), and dsync.env (the same as
// DSYNC_SECRET and DSYNC_ADMIN_SECRET lines). Files that exist are kept, so that a second run changes
// nothing; -force makes them anew. The CA's key is not kept: to add a name,
// make everything anew. A production cluster takes its certificates from
// its own PKI.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dsync-go/dsync/internal/certgen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fset := flag.NewFlagSet("certs", flag.ContinueOnError)
	out := fset.String("out", "certs", "`directory` to write into")
	hosts := fset.String("hosts", "node0,node1,node2,node3,localhost,127.0.0.1", "comma-separated DNS names (wildcards allowed) and IP addresses of the nodes")
	owner := fset.String("chown", "", "`uid:gid` to give the files to (a container's user), if set")
	force := fset.Bool("force", false, "make every file anew")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*out, "ca.pem")); err == nil && !*force {
		fmt.Printf("certs: %s holds certificates already; kept (-force makes them anew)\n", *out)
		return chown(*out, *owner)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	ca, err := certgen.NewCA("dsync example CA")
	if err != nil {
		return err
	}
	if err := certgen.WriteFile(filepath.Join(*out, "ca.pem"), ca.PEM, 0o644); err != nil {
		return err
	}
	if _, _, err := ca.WriteFiles(*out, "node", certgen.Leaf{Name: "dsync-node", Hosts: strings.Split(*hosts, ","), Server: true}); err != nil {
		return err
	}
	if _, _, err := ca.WriteFiles(*out, "client", certgen.Leaf{Name: "dsync-client", Client: true}); err != nil {
		return err
	}
	lock, admin := secret(), secret()
	for name, content := range map[string]string{
		"secret":       lock + "\n",
		"admin-secret": admin + "\n",
		"dsync.env":    fmt.Sprintf("DSYNC_SECRET=%s\nDSYNC_ADMIN_SECRET=%s\n", lock, admin),
	} {
		if err := certgen.WriteFile(filepath.Join(*out, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("certs: wrote ca.pem, node.pem, node-key.pem, client.pem, client-key.pem, secret, admin-secret and dsync.env to %s (nodes: %s)\n", *out, *hosts)
	return chown(*out, *owner)
}

// chown gives every file of dir to owner ("uid:gid"), if set.
func chown(dir, owner string) error {
	if owner == "" {
		return nil
	}
	u, g, ok := strings.Cut(owner, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("-chown %q: want uid:gid", owner)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Chown(filepath.Join(dir, e.Name()), uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// secret returns 32 random bytes in hex.
func secret() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
