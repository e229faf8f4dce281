// Command dsync-node runs one lock node: an in-memory lock table served over
// HTTP by package rest.
//
//	DSYNC_SECRET=... dsync-node -listen 10.0.0.1:9000
//
// Flags:
//
//	-listen     address to listen on (default 127.0.0.1:9000; port 0 picks one)
//	-secret        shared secret that authenticates the lock role (default: $DSYNC_SECRET)
//	-admin-secret  secret of the admin role, for listings and force-unlock of
//	               resources (default: $DSYNC_ADMIN_SECRET; none: nobody may)
//	-node-id       the node's ID in every request's MAC (default: $DSYNC_NODE_ID,
//	               else the boot record's)
//	-validity   how long a grant lives without a refresh (default 1m)
//	-state-dir  where the node keeps its boot record (default: $DSYNC_STATE_DIR,
//	            else a directory per listen address under the user's state
//	            directory; "none" keeps none)
//	-quiet      the restart grace period, in which the node grants only
//	            reclaims of locks held before it restarted (default: one
//	            validity after a restart that may have lost grants, none on a
//	            first start or after a clean stop; 0 turns it off, which is
//	            unsafe if the node restarts while clients hold locks)
//	-insecure   serve without authentication (only with no secret)
//
// It prints "dsync-node listening on http://ADDR" once it accepts requests,
// and shuts down cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dsync-node:", err)
		}
		os.Exit(2)
	}
}

// run parses args, serves a node until ctx ends, then shuts it down.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dsync-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on")
	secret := fs.String("secret", "", "shared secret that authenticates the lock role, at least 32 bytes (default $DSYNC_SECRET)")
	adminSecret := fs.String("admin-secret", "", "secret of the admin role, which may list locks and force-unlock resources (default $DSYNC_ADMIN_SECRET; none: nobody may)")
	nodeID := fs.String("node-id", "", "the node's `ID` in every request's MAC, unique in the cluster (default $DSYNC_NODE_ID, else the boot record's)")
	validity := fs.Duration("validity", locker.DefaultValidity, "how long a grant lives without a refresh")
	var quiet quietFlag
	fs.Var(&quiet, "quiet", "the restart grace period (a `duration`), in which the node grants only reclaims of locks held before it restarted (default: one validity after a restart that may have lost grants, none on a first start or after a clean stop; 0 turns it off, which is unsafe if the node restarts while clients hold locks)")
	stateDir := fs.String("state-dir", "", "`directory` of the node's boot record, which tells a first start or a clean stop from a crash (default $DSYNC_STATE_DIR, else a directory per listen address under the user's state directory; \"none\" keeps none, and the node then waits a grace period on every start)")
	insecure := fs.Bool("insecure", false, "serve without authentication")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *secret == "" {
		*secret = getenv("DSYNC_SECRET")
	}
	if *adminSecret == "" && !*insecure {
		*adminSecret = getenv("DSYNC_ADMIN_SECRET")
	}
	if *nodeID == "" {
		*nodeID = getenv("DSYNC_NODE_ID")
	}
	if *secret != "" && *insecure {
		return errors.New("-insecure with a secret set (flag or $DSYNC_SECRET); choose one")
	}
	if *secret == "" && !*insecure {
		return errors.New("no secret: set -secret or $DSYNC_SECRET, or pass -insecure")
	}
	if *validity <= 0 {
		return fmt.Errorf("-validity %v must be positive", *validity)
	}
	cfg := locker.Config{Validity: *validity}
	switch {
	case !quiet.set:
	case quiet.d == 0:
		cfg.QuietPeriod = locker.NoQuietPeriod
	default:
		cfg.QuietPeriod = quiet.d
	}
	if *stateDir == "" {
		*stateDir = getenv("DSYNC_STATE_DIR")
	}
	switch *stateDir {
	case "":
		dir, err := defaultStateDir(*listen, getenv)
		if err != nil {
			return fmt.Errorf("no state directory: %w (set -state-dir, or -state-dir none)", err)
		}
		cfg.StateDir = dir
	case "none":
	default:
		cfg.StateDir = *stateDir
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	table, err := locker.Open(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer func() {
		if err := table.Close(); err != nil {
			fmt.Fprintln(stderr, "dsync-node:", err)
		}
	}()
	srv, err := rest.NewServer(table, rest.ServerConfig{Secret: *secret, AdminSecret: *adminSecret, NodeID: *nodeID, Insecure: *insecure})
	if err != nil {
		ln.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	mode := "authenticated"
	if *insecure {
		mode = "INSECURE, no authentication"
	}
	boot := table.Boot()
	fmt.Fprintf(stdout, "dsync-node listening on http://%s (%s; validity %v; grace period %v: %s; state directory %q)\n",
		ln.Addr(), mode, *validity, boot.Grace, boot.Reason, cfg.StateDir)

	select {
	case err := <-served:
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "dsync-node shutting down")
	start := time.Now()
	err = srv.Close()
	if serr := <-served; err == nil {
		err = serr
	}
	fmt.Fprintf(stdout, "dsync-node stopped in %v\n", time.Since(start).Round(time.Millisecond))
	return err
}

// defaultStateDir returns the state directory of a node that listens on
// listen: under $XDG_STATE_HOME (or ~/.local/state; on Windows and macOS, the
// user's cache directory), in dsync-node/ and a directory named after the
// listen address, so that nodes on one machine keep apart.
func defaultStateDir(listen string, getenv func(string) string) (string, error) {
	base := getenv("XDG_STATE_HOME")
	if base == "" {
		switch runtime.GOOS {
		case "windows", "darwin", "ios":
			dir, err := os.UserCacheDir()
			if err != nil {
				return "", err
			}
			base = dir
		default:
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			base = filepath.Join(home, ".local", "state")
		}
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, listen)
	return filepath.Join(base, "dsync-node", name), nil
}

// quietFlag is -quiet: a duration that is unset by default.
type quietFlag struct {
	d   time.Duration
	set bool
}

func (q *quietFlag) String() string {
	if q == nil || !q.set {
		return "as the boot record says"
	}
	return q.d.String()
}

func (q *quietFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("%v is negative", d)
	}
	q.d, q.set = d, true
	return nil
}
