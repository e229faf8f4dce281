// Command dsync-node runs one lock node: an in-memory lock table served over
// HTTP or HTTPS by package rest, with an operations port for probes and
// metrics.
//
//	DSYNC_SECRET=... dsync-node -listen 10.0.0.1:9000
//
// Every flag may also be set by an environment variable, DSYNC_ and the
// flag's name in upper case with '_' for '-' (-tls-cert: DSYNC_TLS_CERT);
// the command line wins. "dsync-node -h" lists them all, with the exit
// statuses and an example.
//
// It prints "dsync-node listening on URL (...; ops http://ADDR)" once it
// accepts requests. The operations port (-ops-listen) serves, without
// credentials:
//
//	/healthz        200 "ok" while the process runs
//	/readyz         200 while the node serves, 503 once it drains or its table
//	                is closed; a JSON body says which, and how much of its
//	                restart grace period is left. With ?grace=fail it is 503
//	                during the grace too (a rolling restart then waits for it).
//	/metrics        Prometheus metrics (package dsyncprom, Go and process)
//	/debug/pprof/   the Go profiler, with -pprof only
//
// "dsync-node -check URL" asks one of them and exits 0 if it answers 200,
// 1 if not: a health check for an image without a shell.
//
// Lock sets: with -nodes (every node's URL, MinIO's ellipses allowed:
// http://node{1...16}:9000) and -set-size (4), the node knows the layout of
// its cluster and tells its fingerprint to every client in its signed
// hello; clients of another layout (another list, order or set size)
// refuse it (see package layout). Every node and client is given the same
// list and size (DSYNC_NODES and DSYNC_SET_SIZE serve both). To change the
// layout without stopping the clients (docs/sets.md, Growing), every node
// is restarted with -next-nodes and -next-set-size (the new layout) beside
// the old, then the clients move to the change, then the nodes and the
// clients to the new layout alone.
//
// On SIGTERM or SIGINT it drains: it refuses new locks (clients take it for
// a restarting node) and serves unlocks and refreshes until no grant is left
// or -drain-timeout passes, then stops and exits 0; its boot record says
// whether grants were left, and so whether its next start waits a grace
// period. A second signal exits at once. SIGHUP reloads the TLS files, which
// are also reloaded when they change on disk.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dsync-go/dsync/dsyncprom"
	"github.com/dsync-go/dsync/internal/buildinfo"
	"github.com/dsync-go/dsync/internal/envflag"
	"github.com/dsync-go/dsync/layout"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // failed while starting or running
	exitUsage = 2 // a bad flag or value
	// A second signal N exits at once with 128+N, as a shell reports a
	// process killed by N.
)

// envPrefix starts the environment variable of every flag.
const envPrefix = "DSYNC_"

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel() // drain, then stop
		s := <-sigs
		fmt.Fprintf(os.Stderr, "dsync-node: second signal (%v): exiting at once\n", s)
		code := 128 + 15
		if n, ok := s.(syscall.Signal); ok {
			code = 128 + int(n)
		}
		os.Exit(code)
	}()
	hup := make(chan os.Signal, 1)
	notifyReload(hup) // SIGHUP where there is one (reload_unix.go)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, hup)
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		os.Exit(exitOK)
	case errors.As(err, new(usageError)):
		fmt.Fprintf(os.Stderr, "dsync-node: %v\n(dsync-node -h lists the flags)\n", err)
		os.Exit(exitUsage)
	default:
		fmt.Fprintln(os.Stderr, "dsync-node:", err)
		os.Exit(exitError)
	}
}

// usageError is an error in the command line or the environment.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errHelpShown is run's result after -h or -version: exit 0.
var errHelpShown = errors.New("help shown")

const usageHead = `usage: dsync-node [flags]

Runs one lock node of a dsync cluster: a lock table served over HTTP, or
HTTPS with -tls-cert, and an operations port for probes and metrics.
Every flag may be set by the environment variable shown; the command line
wins.

Flags:
`

const usageTail = `
Exit status:
  0      stopped by SIGTERM or SIGINT (after draining), or -h, -version; -check: healthy
  1      failed to start or while running (listen, state directory, TLS files); -check: not healthy
  2      usage error: a bad flag, value or variable
  128+N  a second signal N arrived while draining: stopped at once

Signals: SIGTERM and SIGINT drain and stop; a second one stops at once;
SIGHUP reloads the TLS files (also reloaded when they change on disk).

Example:
  # the secret: 32 bytes or more, the same on every node and client
  dsync-node -listen 10.0.0.1:9000 -ops-listen 10.0.0.1:9001 -secret-file /etc/dsync/secret \
    -tls-cert /etc/dsync/node.pem -tls-key /etc/dsync/node-key.pem \
    -tls-client-ca /etc/dsync/ca.pem -state-dir /var/lib/dsync-node
`

// noEnv are the flags that no environment variable sets: they make
// dsync-node do something else than serve.
var noEnv = []string{"version", "check"}

// options are the parsed flags.
type options struct {
	listen, opsListen                string
	secret, adminSecret, nodeID      string
	secretFile, adminSecretFile      string
	validity, drainTimeout, tlsWatch time.Duration
	quiet                            quietFlag
	stateDir                         string
	insecure, pprof, version         bool
	tlsCert, tlsKey, tlsClientCA     string
	logFormat, logLevel              string
	check                            string
	nodes                            string
	setSize                          int
	nextNodes                        string
	nextSetSize                      int
	fromEnv                          map[string]bool
}

func parse(args []string, getenv func(string) string, stdout io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("dsync-node", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9000", "`address` to serve the lock protocol on (port 0 picks one)")
	fs.StringVar(&o.opsListen, "ops-listen", "", "`address` of the operations port: /healthz, /readyz, /metrics (default: the -listen host, its port + 1; port 0 if -listen's is 0; \"none\": no operations port)")
	fs.StringVar(&o.secret, "secret", "", "shared `secret` that authenticates the lock role, at least 32 bytes")
	fs.StringVar(&o.adminSecret, "admin-secret", "", "`secret` of the admin role, which may list locks and force-unlock resources (none: nobody may)")
	fs.StringVar(&o.secretFile, "secret-file", "", "`file` holding the lock role's secret, instead of -secret (one trailing newline is ignored)")
	fs.StringVar(&o.adminSecretFile, "admin-secret-file", "", "`file` holding the admin role's secret, instead of -admin-secret")
	fs.StringVar(&o.nodeID, "node-id", "", "the node's `ID` in every request's MAC, unique in the cluster (default: the boot record's)")
	fs.StringVar(&o.nodes, "nodes", "", "every node's `URL` of the cluster, separated by commas or spaces, MinIO's ellipses allowed (http://node{1...16}:9000), the same list and -set-size on every node and client: the node tells its layout's fingerprint to clients, which refuse a node of another layout (default: none, and clients that check a layout refuse the node)")
	fs.IntVar(&o.setSize, "set-size", 0, "nodes per lock set of the -nodes list (0: one set of all)")
	fs.StringVar(&o.nextNodes, "next-nodes", "", "during a change of layout: the new layout's node `URLs` (as -nodes); the node tells the change's fingerprint, which clients of the old layout and of the change accept (docs/sets.md, Growing)")
	fs.IntVar(&o.nextSetSize, "next-set-size", 0, "nodes per lock set of the -next-nodes list (0: one set of all)")
	fs.DurationVar(&o.validity, "validity", locker.DefaultValidity, "how long a grant lives without a refresh")
	fs.Var(&o.quiet, "quiet", "the restart grace period (a `duration`), in which the node grants only reclaims of locks held before it restarted (default: one validity after a restart that may have lost grants, none on a first start or after a clean stop; 0 turns it off, which is unsafe if the node restarts while clients hold locks)")
	fs.StringVar(&o.stateDir, "state-dir", "", "`directory` of the node's boot record, which tells a first start or a clean stop from a crash (default: a directory per listen address under the user's state directory; \"none\" keeps none, and the node then waits a grace period on every start)")
	fs.BoolVar(&o.insecure, "insecure", false, "serve without authentication (tests, trusted loopback only)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate `file` to serve HTTPS with (its chain, leaf first)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key `file` of -tls-cert")
	fs.StringVar(&o.tlsClientCA, "tls-client-ca", "", "PEM `file` of the CAs whose client certificates the node requires (mutual TLS); needs -tls-cert")
	fs.DurationVar(&o.tlsWatch, "tls-watch", rest.DefaultTLSWatchInterval, "how often to look for changed TLS files (they are also reloaded on SIGHUP)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 25*time.Second, "on SIGTERM, how long to wait for holders to release before stopping (0: stop at once)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log `format` on standard error: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "least `level` logged: debug, info, warn or error")
	fs.BoolVar(&o.pprof, "pprof", false, "serve the Go profiler on the operations port, under /debug/pprof/")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.StringVar(&o.check, "check", "", "ask `URL` (an operations port's /healthz or /readyz) and exit 0 if it answers 200, 1 if not: a health check for images without a shell")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usageHead)
		envflag.PrintDefaults(stdout, fs, envPrefix, noEnv...)
		fmt.Fprint(stdout, usageTail)
		return nil, errHelpShown
	}
	if err != nil {
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected arguments %q", fs.Args())
	}
	if o.fromEnv, err = envflag.Apply(fs, envPrefix, getenv, noEnv...); err != nil {
		return nil, usageError{err}
	}
	for _, f := range []struct {
		name, file string
		dst        *string
	}{{"secret", o.secretFile, &o.secret}, {"admin-secret", o.adminSecretFile, &o.adminSecret}} {
		if f.file == "" {
			continue
		}
		if *f.dst != "" {
			return nil, usagef("-%s and -%s-file both set; choose one", f.name, f.name)
		}
		if *f.dst, err = envflag.ReadSecret(f.file); err != nil {
			return nil, usagef("-%s-file: %w", f.name, err)
		}
		o.fromEnv[f.name] = o.fromEnv[f.name+"-file"]
	}
	if o.insecure && o.fromEnv["admin-secret"] {
		o.adminSecret = "" // an insecure node has no roles: the environment's secret is not for it
	}
	return &o, nil
}

// run parses args, serves a node until ctx ends, then drains it and shuts
// it down. A value on hup reloads the TLS files.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, hup <-chan os.Signal) error {
	o, err := parse(args, getenv, stdout)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintln(stdout, buildinfo.Line("dsync-node"))
		return errHelpShown
	}
	if o.check != "" {
		return check(o.check)
	}
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	switch {
	case o.secret != "" && o.insecure:
		return usagef("-insecure with a secret set (flag or $DSYNC_SECRET); choose one")
	case o.secret == "" && !o.insecure:
		return usagef("no secret: set -secret or $DSYNC_SECRET, or pass -insecure")
	case o.validity <= 0:
		return usagef("-validity %v must be positive", o.validity)
	case o.drainTimeout < 0:
		return usagef("-drain-timeout %v is negative", o.drainTimeout)
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return usagef("-tls-cert and -tls-key go together")
	case o.tlsClientCA != "" && o.tlsCert == "":
		return usagef("-tls-client-ca needs -tls-cert and -tls-key: client certificates are asked for over TLS")
	}
	var lay layout.Layout
	if o.nodes != "" {
		if lay, err = layout.Parse([]string{o.nodes}, o.setSize); err != nil {
			return usagef("-nodes, -set-size: %w", err)
		}
	} else if o.setSize != 0 {
		return usagef("-set-size without -nodes")
	}
	var next layout.Layout
	switch {
	case o.nextNodes != "" && o.nodes == "":
		return usagef("-next-nodes without -nodes: a change of layout goes from the layout of -nodes to that of -next-nodes")
	case o.nextNodes != "":
		if next, err = layout.Parse([]string{o.nextNodes}, o.nextSetSize); err != nil {
			return usagef("-next-nodes, -next-set-size: %w", err)
		}
	case o.nextSetSize != 0:
		return usagef("-next-set-size without -next-nodes")
	}
	cfg := locker.Config{Validity: o.validity}
	switch {
	case !o.quiet.set:
	case o.quiet.d == 0:
		cfg.QuietPeriod = locker.NoQuietPeriod
	default:
		cfg.QuietPeriod = o.quiet.d
	}
	switch o.stateDir {
	case "":
		dir, err := defaultStateDir(o.listen, getenv)
		if err != nil {
			return usagef("no state directory: %w (set -state-dir, or -state-dir none)", err)
		}
		cfg.StateDir = dir
	case "none":
	default:
		cfg.StateDir = o.stateDir
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	opsAddr, err := opsAddress(o.listen, o.opsListen)
	if err != nil {
		return err
	}

	var tlsCfg *tlsFiles
	if o.tlsCert != "" {
		if tlsCfg, err = loadTLS(o); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	var opsLn net.Listener
	if opsAddr != "" {
		if opsLn, err = net.Listen("tcp", opsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("operations port: %w", err)
		}
	}
	closeListeners := func() {
		ln.Close()
		if opsLn != nil {
			opsLn.Close()
		}
	}
	table, err := locker.Open(cfg)
	if err != nil {
		closeListeners()
		return err
	}
	defer func() {
		if err := table.Close(); err != nil {
			log.Error("closing the table", slog.Any("err", err))
		}
	}()
	var srv *rest.Server
	metrics := dsyncprom.NewNodeMetrics(dsyncprom.NodeConfig{Table: table, Draining: func() bool { return srv.Draining() }})
	scfg := rest.ServerConfig{Secret: o.secret, AdminSecret: o.adminSecret, NodeID: o.nodeID, Insecure: o.insecure, Logger: log, Observer: metrics}
	switch {
	case next.Sets != nil:
		scfg.Layout = layout.Transition(lay, next)
	case lay.Sets != nil:
		scfg.Layout = lay.Fingerprint()
	}
	if tlsCfg != nil {
		scfg.TLS = tlsCfg.server
	}
	srv, err = rest.NewServer(table, scfg)
	if err != nil {
		closeListeners()
		return usageError{err}
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	opsDesc := "none"
	var ops *http.Server
	if opsLn != nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(metrics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
		ops = &http.Server{Handler: opsHandler(srv, table, reg, o.pprof), ReadHeaderTimeout: 10 * time.Second}
		go ops.Serve(opsLn)
		opsDesc = "http://" + opsLn.Addr().String()
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if tlsCfg != nil {
		go rest.WatchTLS(watchCtx, o.tlsWatch, log, nil, tlsCfg.files...)
		go func() {
			for {
				select {
				case <-watchCtx.Done():
					return
				case <-hup:
					for _, f := range tlsCfg.files {
						_, err := f.Reload()
						rest.LogReload(log, f, err)
					}
				}
			}
		}()
	}

	scheme, mode := "http", "authenticated"
	if tlsCfg != nil {
		scheme = "https"
		if o.tlsClientCA != "" {
			mode += ", mutual TLS"
		} else {
			mode += ", TLS"
		}
	}
	if o.insecure {
		mode = "INSECURE, no authentication"
	}
	boot := table.Boot()
	switch {
	case next.Sets != nil:
		mode += fmt.Sprintf("; changing layout from %s to %s (layout %s)", lay, next, scfg.Layout)
	case lay.Sets != nil:
		mode += "; " + lay.String()
	}
	fmt.Fprintf(stdout, "dsync-node listening on %s://%s (%s; validity %v; grace period %v: %s; state directory %q; ops %s)\n",
		scheme, ln.Addr(), mode, o.validity, boot.Grace, boot.Reason, cfg.StateDir, opsDesc)
	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("scheme", scheme), slog.String("ops", opsDesc),
		slog.String("node", srv.NodeID()), slog.Duration("validity", o.validity), slog.Duration("grace", boot.Grace),
		slog.String("reason", boot.Reason), slog.String("state_dir", cfg.StateDir), slog.String("layout", scfg.Layout), slog.String("version", buildinfo.Line("dsync-node")))

	select {
	case err := <-served:
		srv.Close()
		if ops != nil {
			ops.Close()
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "dsync-node shutting down")
	start := time.Now()
	if o.drainTimeout > 0 {
		log.Info("draining", slog.Duration("timeout", o.drainTimeout))
		dctx, cancel := context.WithTimeout(context.Background(), o.drainTimeout)
		if err := srv.Drain(dctx); err != nil {
			log.Warn("stopping with grants left: the next start waits a grace period", slog.Duration("waited", time.Since(start).Round(time.Millisecond)))
		}
		cancel()
	}
	err = srv.Close()
	if serr := <-served; err == nil {
		err = serr
	}
	if ops != nil {
		ops.Close()
	}
	fmt.Fprintf(stdout, "dsync-node stopped in %v\n", time.Since(start).Round(time.Millisecond))
	log.Info("stopped", slog.Duration("took", time.Since(start).Round(time.Millisecond)))
	return err
}

// check asks url once and returns nil if it answers 200.
func check(url string) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// opsAddress returns the operations port's address: given, or derived
// from listen (same host, port + 1; port 0 stays 0), or "" for none.
func opsAddress(listen, given string) (string, error) {
	switch given {
	case "none":
		return "", nil
	case "":
	default:
		return given, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", usagef("-listen %q: %w", listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p >= 65535 {
		return "", usagef("-listen %q: cannot derive the operations port from port %q; set -ops-listen", listen, port)
	}
	if p > 0 {
		p++
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// readiness is the body of /readyz.
type readiness struct {
	Ready          bool    `json:"ready"`
	Status         string  `json:"status"` // serving, grace, draining, closed
	Node           string  `json:"node"`
	Draining       bool    `json:"draining"`
	InGrace        bool    `json:"in_grace"`
	GraceRemaining float64 `json:"grace_remaining_seconds"`
}

// opsHandler serves the operations port.
func opsHandler(srv *rest.Server, table *locker.Local, reg *prometheus.Registry, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		grace := table.Grace()
		rd := readiness{Node: srv.NodeID(), Draining: srv.Draining(), InGrace: grace > 0, GraceRemaining: grace.Seconds()}
		switch {
		case !table.IsOnline():
			rd.Status = "closed"
		case rd.Draining:
			rd.Status = "draining"
		case rd.InGrace:
			rd.Status, rd.Ready = "grace", r.URL.Query().Get("grace") != "fail"
		default:
			rd.Status, rd.Ready = "serving", true
		}
		w.Header().Set("Content-Type", "application/json")
		if !rd.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(rd)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// tlsFiles is the node's TLS material and configuration.
type tlsFiles struct {
	server *tls.Config
	files  []rest.Reloadable
}

// loadTLS reads the TLS files of o.
func loadTLS(o *options) (*tlsFiles, error) {
	cert, err := rest.LoadCertificates(o.tlsCert, o.tlsKey)
	if err != nil {
		return nil, err
	}
	t := &tlsFiles{files: []rest.Reloadable{cert}}
	var clientCAs *rest.CAPool
	if o.tlsClientCA != "" {
		if clientCAs, err = rest.LoadCAPool(o.tlsClientCA); err != nil {
			return nil, err
		}
		t.files = append(t.files, clientCAs)
	}
	t.server = rest.ServerTLS(cert, clientCAs)
	return t, nil
}

// newLogger returns the logger of -log-format and -log-level.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("-log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("-log-format %q: want text or json", format)
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
		return ""
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
