// Command dsync-node runs one lock node: an in-memory lock table served over
// HTTP by package rest.
//
//	DSYNC_SECRET=... dsync-node -listen 10.0.0.1:9000
//
// Flags:
//
//	-listen    address to listen on (default 127.0.0.1:9000; port 0 picks one)
//	-secret    shared secret that authenticates requests (default: $DSYNC_SECRET)
//	-validity  how long a grant lives without a refresh (default 1m)
//	-quiet     how long after start the node refuses new locks (default: the
//	           validity), so that a restarted node cannot help a second writer
//	           to a quorum while the first still holds its lock elsewhere
//	-insecure  serve without authentication (only with no secret)
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
	secret := fs.String("secret", "", "shared secret that authenticates requests (default $DSYNC_SECRET)")
	validity := fs.Duration("validity", locker.DefaultValidity, "how long a grant lives without a refresh")
	var quiet quietFlag
	fs.Var(&quiet, "quiet", "how long (a `duration`) after start to refuse new locks, so that a restarted node cannot help a second writer to a quorum (default: the validity; 0 turns it off)")
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
	if *secret != "" && *insecure {
		return errors.New("-insecure with a secret set (flag or $DSYNC_SECRET); choose one")
	}
	if *secret == "" && !*insecure {
		return errors.New("no secret: set -secret or $DSYNC_SECRET, or pass -insecure")
	}
	if *validity <= 0 {
		return fmt.Errorf("-validity %v must be positive", *validity)
	}
	if !quiet.set {
		quiet.d = *validity
	}
	cfg := locker.Config{Validity: *validity, QuietPeriod: quiet.d}
	if err := cfg.Validate(); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	table := locker.New(cfg)
	defer table.Close()
	srv, err := rest.NewServer(table, rest.ServerConfig{Secret: *secret, Insecure: *insecure})
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
	fmt.Fprintf(stdout, "dsync-node listening on http://%s (%s; validity %v, quiet period %v)\n", ln.Addr(), mode, *validity, quiet.d)

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

// quietFlag is -quiet: a duration whose default is the validity.
type quietFlag struct {
	d   time.Duration
	set bool
}

func (q *quietFlag) String() string {
	if q == nil || !q.set {
		return "the validity"
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
