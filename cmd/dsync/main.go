// Command dsync talks to a set of lock nodes: it lists what they hold,
// force-releases locks, and runs a command while holding a lock.
//
//	export DSYNC_NODES=https://10.0.0.1:9000,https://10.0.0.2:9000,https://10.0.0.3:9000
//	export DSYNC_SECRET=...        # the lock role: for run
//	export DSYNC_ADMIN_SECRET=...  # the admin role: for locks and force-unlock
//	export DSYNC_TLS_CA=/etc/dsync/ca.pem
//	dsync locks                                  # every holder, with the nodes that hold it
//	dsync top                                    # the oldest and the most contended locks, live
//	dsync force-unlock bucket/object             # remove every holder of a resource
//	dsync force-unlock -uid UID                  # remove one grant
//	dsync run -timeout 30s bucket/object -- cmd args...
//
// Flags before the subcommand, each also read from the environment
// variable named (the command line wins):
//
//	-nodes         node URLs, separated by commas or spaces; MinIO's ellipses allowed, as in
//	               http://node{1...16}:9000 (DSYNC_NODES)
//	-set-size      nodes per lock set of -nodes: the same list and size as the nodes' (DSYNC_SET_SIZE;
//	               0: one set of all). run refuses nodes of another layout
//	-next-nodes    during a change of layout, the new layout's node URLs (DSYNC_NEXT_NODES): run locks
//	               as a client of the change (dsync.NewTransition), on the nodes of both layouts
//	-next-set-size nodes per lock set of -next-nodes (DSYNC_NEXT_SET_SIZE)
//	-secret        lock secret of the nodes (DSYNC_SECRET)
//	-admin-secret  admin secret of the nodes (DSYNC_ADMIN_SECRET)
//	-insecure      talk to nodes that run without authentication (DSYNC_INSECURE)
//	-tls-ca        PEM file of the CAs that sign the nodes' certificates (DSYNC_TLS_CA; default: the system's)
//	-tls-cert      PEM client certificate, for nodes that require one (DSYNC_TLS_CERT)
//	-tls-key       its PEM private key (DSYNC_TLS_KEY)
//
// A command's own flags read DSYNC_<COMMAND>_<FLAG> likewise
// (DSYNC_RUN_TIMEOUT, DSYNC_LOCKS_JSON), except force-unlock's -uid.
//
// "dsync -h" and "dsync COMMAND -h" print the usage, with every flag's
// variable, and exit 0, without nodes.
//
// Names that the nodes return (resources, owners, sources) are printed
// quoted, Go-style, when they hold anything but printable characters: a
// resource named with terminal escape codes cannot forge lines on an
// operator's terminal.
//
// run takes the write lock (-read: a read lock) through the nodes, runs the
// command with DSYNC_RESOURCE and DSYNC_FENCE in its environment, and
// releases the lock when it exits. If the lock is lost while the command
// runs, the command gets SIGTERM (SIGKILL 10 s later) and dsync exits with
// status 4. Exit status: the command's own if it exited; 1 if nodes failed
// (locks, force-unlock: some did not answer); 2 for a usage error; 3 if the
// lock could not be taken; 4 if it was lost; 128+N if the command was
// killed by signal N (as a shell reports it). A command's own status of 1
// to 4 reads as dsync's: dsync's own failures also print a line on
// standard error.
//
// DSYNC_FENCE is the largest sequence number of the granting nodes: it
// orders the grants of one node, but is not a fencing token that is safe
// across nodes.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/internal/buildinfo"
	"github.com/dsync-go/dsync/internal/envflag"
	"github.com/dsync-go/dsync/layout"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// Exit statuses besides the command's own.
const (
	exitFailed   = 1 // nodes failed (did not answer, refused)
	exitUsage    = 2
	exitNotTaken = 3
	exitLost     = 4
	exitSignal   = 128 // plus the number of the signal that killed the command
)

// envPrefix starts the environment variable of every global flag.
const envPrefix = "DSYNC_"

// errHelpShown is run's result after -h: exit 0.
var errHelpShown = errors.New("help shown")

// exitError is an error that carries the status dsync exits with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return "exit status " + strconv.Itoa(e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if err == nil || errors.Is(err, errHelpShown) || errors.Is(err, flag.ErrHelp) {
		return
	}
	code := exitUsage
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if !errors.Is(err, flag.ErrHelp) && (ee == nil || ee.err != nil) {
		fmt.Fprintln(os.Stderr, "dsync:", err)
	}
	os.Exit(code)
}

const usage = `usage: dsync [flags] <command>

commands:
  locks [-max N] [-json]               list the holders of every node's locks
  top [-n N] [-interval D] [-once] [-json]
                                       the oldest and the most contended locks, refreshed live
  force-unlock [-json] RESOURCE | -uid UID
                                       remove every holder of RESOURCE, or one grant
  run [-read] [-timeout D] RESOURCE -- COMMAND [ARG...]
                                       run COMMAND while holding a lock on RESOURCE
  COMMAND -h                           a command's own flags, each also read from
                                       DSYNC_<COMMAND>_<FLAG> (DSYNC_RUN_TIMEOUT)

Flags, each also read from the environment variable shown (the command
line wins):
`

const usageTail = `
Exit status:
  0      done (run: the command exited 0)
  1      nodes failed: some did not answer (locks, force-unlock), or refused
  2      usage error: a bad flag, value, variable or argument
  3      run: the lock could not be taken
  4      run: the lock was lost while the command ran (it got SIGTERM)
  128+N  run: the command was killed by signal N
  other  run: the command's own exit status

Examples:
  export DSYNC_NODES=https://node1:9000,https://node2:9000,https://node3:9000
  export DSYNC_TLS_CA=/etc/dsync/ca.pem DSYNC_SECRET=$(cat /etc/dsync/secret)
  dsync run -timeout 1m backups/nightly -- /usr/local/bin/backup.sh
  DSYNC_ADMIN_SECRET=$(cat /etc/dsync/admin-secret) dsync locks
`

// run parses args and does what they say.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dsync", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, usage)
		envflag.PrintDefaults(w, fs, envPrefix, "version")
		fmt.Fprint(w, usageTail)
	}
	nodes := fs.String("nodes", "", "node `URLs`, separated by commas or spaces (MinIO's ellipses allowed: http://node{1...16}:9000)")
	setSize := fs.Int("set-size", 0, "nodes per lock set of -nodes, as the nodes were given (0: one set of all)")
	nextNodes := fs.String("next-nodes", "", "during a change of layout: the new layout's node `URLs`, as -nodes; run locks as a client of the change, on the nodes of both layouts")
	nextSetSize := fs.Int("next-set-size", 0, "nodes per lock set of -next-nodes (0: one set of all)")
	secret := fs.String("secret", "", "lock `secret` of the nodes, for run")
	adminSecret := fs.String("admin-secret", "", "admin `secret` of the nodes, for locks and force-unlock")
	insecure := fs.Bool("insecure", false, "talk to nodes without authentication")
	secretFile := fs.String("secret-file", "", "`file` holding the lock secret, instead of -secret")
	adminSecretFile := fs.String("admin-secret-file", "", "`file` holding the admin secret, instead of -admin-secret")
	tlsCA := fs.String("tls-ca", "", "PEM `file` of the CAs that sign the nodes' certificates (default: the system's roots)")
	tlsCert := fs.String("tls-cert", "", "PEM client certificate `file`, for nodes that require one (mutual TLS)")
	tlsKey := fs.String("tls-key", "", "PEM private key `file` of -tls-cert")
	version := fs.Bool("version", false, "print the version and exit")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return errHelpShown
	}
	if err != nil {
		return &exitError{exitUsage, err}
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.Line("dsync"))
		return errHelpShown
	}
	fromEnv, err := envflag.Apply(fs, envPrefix, getenv, "version")
	if err != nil {
		return &exitError{exitUsage, err}
	}
	for _, f := range []struct {
		name, file string
		dst        *string
	}{{"secret", *secretFile, secret}, {"admin-secret", *adminSecretFile, adminSecret}} {
		if f.file == "" {
			continue
		}
		if *f.dst != "" {
			return &exitError{exitUsage, fmt.Errorf("-%s and -%s-file both set; choose one", f.name, f.name)}
		}
		if *f.dst, err = envflag.ReadSecret(f.file); err != nil {
			return &exitError{exitUsage, fmt.Errorf("-%s-file: %w", f.name, err)}
		}
		fromEnv[f.name] = fromEnv[f.name+"-file"]
	}
	if *insecure {
		// The environment's secrets are not for nodes without
		// authentication.
		if fromEnv["secret"] {
			*secret = ""
		}
		if fromEnv["admin-secret"] {
			*adminSecret = ""
		}
	}
	if fs.NArg() == 0 {
		printUsage(stderr)
		return &exitError{exitUsage, errors.New("no command")}
	}
	cmd, cmdArgs := fs.Arg(0), fs.Args()[1:]
	if wantsHelp(cmdArgs) {
		// A command's -h needs no nodes: its flags are parsed before any
		// is dialed, and its usage goes to standard output.
		switch cmd {
		case "locks":
			return locks(ctx, nil, nil, cmdArgs, getenv, stdout, stdout)
		case "force-unlock":
			return forceUnlock(ctx, nil, cmdArgs, getenv, stdout, stdout)
		case "run":
			return runUnder(ctx, nodeLayout{}, nil, cmdArgs, getenv, stdin, stdout, stdout)
		case "top":
			return top(ctx, nil, nil, cmdArgs, getenv, stdout, stdout)
		}
	}
	switch cmd {
	case "locks", "force-unlock", "run", "top":
	default:
		printUsage(stderr)
		return &exitError{exitUsage, fmt.Errorf("unknown command %q", cmd)}
	}
	if strings.TrimSpace(*nodes) == "" {
		return &exitError{exitUsage, errors.New("no nodes: set -nodes or DSYNC_NODES")}
	}
	cc := rest.ClientConfig{Secret: *secret, Insecure: *insecure}
	if cmd == "locks" || cmd == "force-unlock" || cmd == "top" {
		cc = rest.ClientConfig{AdminSecret: *adminSecret, Insecure: *insecure}
		if *adminSecret == "" && !*insecure {
			return &exitError{exitUsage, fmt.Errorf("%s needs the admin role: set -admin-secret or DSYNC_ADMIN_SECRET (the nodes' admin secret), or -insecure", cmd)}
		}
	}
	if cc.TLS, err = clientTLS(*tlsCA, *tlsCert, *tlsKey); err != nil {
		return &exitError{exitUsage, err}
	}
	var nl nodeLayout
	if nl.from, err = layout.Parse([]string{*nodes}, *setSize); err != nil {
		return &exitError{exitUsage, err}
	}
	switch {
	case *nextNodes != "":
		next, err := layout.Parse([]string{*nextNodes}, *nextSetSize)
		if err != nil {
			return &exitError{exitUsage, fmt.Errorf("-next-nodes, -next-set-size: %w", err)}
		}
		nl.to = &next
	case *nextSetSize != 0:
		return &exitError{exitUsage, errors.New("-next-set-size without -next-nodes")}
	}
	if cmd == "run" {
		cc.Layout = nl.fingerprint() // the clients refuse a node that restarts with another
	}
	lockers, err := dial(nl.nodes(), cc)
	if err != nil {
		return &exitError{exitUsage, err}
	}
	defer func() {
		for _, l := range lockers {
			l.Close()
		}
	}()
	switch cmd {
	case "locks":
		return locks(ctx, lockers, nl.setSize, cmdArgs, getenv, stdout, stderr)
	case "force-unlock":
		return forceUnlock(ctx, lockers, cmdArgs, getenv, stdout, stderr)
	case "top":
		return top(ctx, lockers, nl.setSize, cmdArgs, getenv, stdout, stderr)
	default:
		return runUnder(ctx, nl, lockers, cmdArgs, getenv, stdin, stdout, stderr)
	}
}

// parseCommand parses the flags of the command fs (named as the command
// is), then sets those the command line left out from their environment
// variables: DSYNC_, the command's name and the flag's, in upper case with
// '-' as '_' (DSYNC_RUN_TIMEOUT, DSYNC_LOCKS_MAX). Flags named in skip have
// none. -h prints synopsis, every flag with its variable, and the exit
// statuses, and returns errHelpShown; a bad flag or variable is a usage
// error.
func parseCommand(fs *flag.FlagSet, args []string, getenv func(string) string, synopsis string, skip ...string) error {
	prefix := envflag.Name(envPrefix, fs.Name()) + "_"
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), synopsis+"\nFlags, each also read from the environment variable shown (the command\nline wins):\n")
		envflag.PrintDefaults(fs.Output(), fs, prefix, skip...)
		fmt.Fprint(fs.Output(), usageTail)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelpShown
		}
		return &exitError{exitUsage, err}
	}
	if _, err := envflag.Apply(fs, prefix, getenv, skip...); err != nil {
		return &exitError{exitUsage, err}
	}
	return nil
}

// wantsHelp reports whether a command's arguments ask for its usage: -h,
// -help or --help among its flags (before "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// clientTLS returns the TLS configuration of the flags: nil if none is
// set (an https node is then verified against the system's roots).
func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	if caFile == "" && certFile == "" {
		return nil, nil
	}
	var roots *rest.CAPool
	var cert *rest.Certificates
	var err error
	if caFile != "" {
		if roots, err = rest.LoadCAPool(caFile); err != nil {
			return nil, err
		}
	}
	if certFile != "" {
		if cert, err = rest.LoadCertificates(certFile, keyFile); err != nil {
			return nil, err
		}
	}
	return rest.ClientTLS(roots, cert), nil
}

// dial makes a client configured by cc for every node of list.
func dial(list []string, cc rest.ClientConfig) ([]locker.NetLocker, error) {
	if len(list) == 0 {
		return nil, errors.New("no nodes: set -nodes or DSYNC_NODES")
	}
	if cc.Secret == "" && cc.AdminSecret == "" && !cc.Insecure {
		return nil, errors.New("no secret: set -secret or DSYNC_SECRET, or -insecure")
	}
	var out []locker.NetLocker
	for _, ep := range list {
		c, err := rest.NewClient(ep, cc)
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// holder is one grant as the nodes list it, with the nodes that hold it.
type holder struct {
	locker.Entry
	nodes int // the nodes that hold it
	of    int // the nodes that lock its resource: its set's
}

// nodeLayout is the layout of the nodes: from, or, during a change of
// layout, the change from from to *to.
type nodeLayout struct {
	from layout.Layout
	to   *layout.Layout
}

// nodes returns the URLs of every node: from's, then to's that from has
// not.
func (nl nodeLayout) nodes() []string {
	if nl.to == nil {
		return nl.from.Nodes()
	}
	return union(nl.from.Nodes(), nl.to.Nodes())
}

// union returns a's URLs, then b's that a has not.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, u := range b {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// fingerprint returns what a client of nl checks the nodes' layouts
// against (rest.ClientConfig.Layout): none for one set of all (nodes
// given no layout are one set), from's, or the change's.
func (nl nodeLayout) fingerprint() string {
	switch {
	case nl.to != nil:
		return layout.Transition(nl.from, *nl.to)
	case len(nl.from.Sets) > 1:
		return nl.from.Fingerprint()
	}
	return ""
}

// check asks every node for its layout (layout.Check, CheckTransition).
func (nl nodeLayout) check(ctx context.Context, lockers []locker.NetLocker) error {
	if nl.to != nil {
		return layout.CheckTransition(ctx, nl.from, *nl.to, lockers)
	}
	return layout.Check(ctx, nl.from, lockers)
}

// sets returns the lockers of each set of l, lockers being those of
// nl.nodes() in order.
func (nl nodeLayout) sets(l layout.Layout, lockers []locker.NetLocker) [][]locker.NetLocker {
	byURL := make(map[string]locker.NetLocker, len(lockers))
	for i, u := range nl.nodes() {
		byURL[u] = lockers[i]
	}
	sets := make([][]locker.NetLocker, len(l.Sets))
	for s, set := range l.Sets {
		for _, u := range set {
			sets[s] = append(sets[s], byURL[u])
		}
	}
	return sets
}

// client returns the quorum client of nl over lockers: of from's sets, or
// of the change (dsync.NewTransition).
func (nl nodeLayout) client(lockers []locker.NetLocker, cfg dsync.Config) (*dsync.Dsync, error) {
	if nl.to != nil {
		return dsync.NewTransition(nl.sets(nl.from, lockers), nl.sets(*nl.to, lockers), cfg)
	}
	return dsync.NewSets(nl.sets(nl.from, lockers), cfg)
}

// setSize returns the number of nodes that lock resource: those of its set
// (dsync.SetIndex), during a change those of its set in either layout.
func (nl nodeLayout) setSize(resource string) int {
	in := func(l layout.Layout) []string { return l.Sets[dsync.SetIndex(resource, len(l.Sets))] }
	if nl.to == nil {
		return len(in(nl.from))
	}
	return len(union(in(nl.from), in(*nl.to)))
}

// locks lists every node's holders, merged by resource and UID (in that
// order), and prints a holder as soon as every node has told whether it
// holds it: it keeps one page per node, never a whole listing.
func locks(ctx context.Context, lockers []locker.NetLocker, of func(resource string) int, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("locks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	most := fs.Int("max", 0, "list at most this many holders (0: all)")
	page := fs.Int("page", 1000, fmt.Sprintf("ask each node for this many entries at a time (at most %d)", locker.MaxListPage))
	asJSON := fs.Bool("json", false, "print a JSON array, one object per holder, instead of a table")
	if err := parseCommand(fs, args, getenv, "usage: dsync locks [-max N] [-page N] [-json]\n\nLists the holders of every node's locks, merged by resource and UID (needs the admin role).\n"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("locks: unexpected arguments %q", fs.Args())
	}
	if *most < 0 || *page < 1 || *page > locker.MaxListPage {
		return fmt.Errorf("locks: -max must be at least 0, and -page from 1 to %d", locker.MaxListPage)
	}
	var failed int
	var err error
	if *asJSON {
		enc := json.NewEncoder(stdout)
		fmt.Fprint(stdout, "[")
		n := 0
		failed, err = walkHolders(ctx, lockers, of, *page, *most, stderr, func(h *holder) {
			if n > 0 {
				fmt.Fprint(stdout, ",")
			}
			n++
			enc.Encode(holdersJSON([]*holder{h})[0])
		})
		fmt.Fprintln(stdout, "]")
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RESOURCE\tMODE\tNODES\tHELD\tOWNER\tSOURCE\tHOLDER\tUID")
		rows := 0
		failed, err = walkHolders(ctx, lockers, of, *page, *most, stderr, func(h *holder) {
			holder := h.Holder
			if holder == "" {
				holder = "-" // the lock named none (dsync.WithHolder)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%v\t%s\t%s\t%s\t%s\n", printable(h.Resource), h.mode(), h.nodes, h.of,
				time.Duration(h.HeldFor).Round(time.Millisecond), printable(h.Owner), printable(h.Source), printable(holder), printable(h.UID))
			if rows++; rows%1000 == 0 {
				tw.Flush() // columns line up within each thousand rows
			}
		})
		tw.Flush()
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return &exitError{exitFailed, fmt.Errorf("locks: %d of %d nodes did not answer; the list is incomplete", failed, len(lockers))}
	}
	return nil
}

// walkHolders walks every node's listing a page at a time (page entries),
// merges the nodes' entries of one grant, counts them against of(resource)
// nodes, and calls fn with each holder, in
// order of resource then UID, at most most of them (all if most is 0). It
// reports the nodes that did not answer on stderr, and counts them.
func walkHolders(ctx context.Context, lockers []locker.NetLocker, of func(resource string) int, page, most int, stderr io.Writer, fn func(*holder)) (int, error) {
	// One cursor per node over its listing; head is its next entry, or nil
	// once it has no more (or failed).
	type cursor struct {
		node fmt.Stringer
		next func() (locker.Entry, error, bool)
		head *locker.Entry
	}
	failed := 0
	advance := func(c *cursor) {
		e, err, ok := c.next()
		switch {
		case !ok:
			c.head = nil
		case err != nil:
			fmt.Fprintf(stderr, "dsync: %s: %v\n", c.node, err)
			failed++
			c.head = nil
		default:
			c.head = &e
		}
	}
	cursors := make([]*cursor, len(lockers))
	for i, l := range lockers {
		lister, ok := l.(locker.Lister)
		if !ok {
			return 0, fmt.Errorf("locks: %s cannot list", l)
		}
		next, stop := iter.Pull2(locker.Entries(ctx, lister, page))
		defer stop()
		cursors[i] = &cursor{node: l, next: next}
	}
	for _, c := range cursors {
		advance(c)
	}
	for n := 0; most == 0 || n < most; n++ {
		// The least next entry of any node, and every node's entry of the
		// same grant.
		var first *locker.Entry
		for _, c := range cursors {
			if c.head != nil && (first == nil || compareEntries(c.head, first) < 0) {
				first = c.head
			}
		}
		if first == nil {
			break
		}
		h := &holder{Entry: *first, of: of(first.Resource)}
		for _, c := range cursors {
			if c.head != nil && compareEntries(c.head, &h.Entry) == 0 {
				h.nodes++
				h.HeldFor = max(h.HeldFor, c.head.HeldFor)
				advance(c)
			}
		}
		fn(h)
	}
	return failed, nil
}

// compareEntries orders entries as the nodes list them: by resource, then
// UID.
func compareEntries(a, b *locker.Entry) int {
	if c := strings.Compare(a.Resource, b.Resource); c != 0 {
		return c
	}
	return strings.Compare(a.UID, b.UID)
}

// gather lists every node's holders, merged by resource and UID, in that
// order, at most max of them (all if max <= 0). It reports the nodes that
// did not answer on stderr, and counts them.
func gather(ctx context.Context, lockers []locker.NetLocker, of func(resource string) int, max int, stderr io.Writer) ([]*holder, int, error) {
	var list []*holder
	failed, err := walkHolders(ctx, lockers, of, 1000, max, stderr, func(h *holder) { list = append(list, h) })
	return list, failed, err
}

// mode names the holder's lock mode: write (X), read (S), or the
// intention mode of multi-granularity locking (IS, IX, SIX).
func (h *holder) mode() string {
	switch {
	case h.Write:
		return "write"
	case h.Mode == 0 || h.Mode == locker.ModeS:
		return "read"
	}
	return h.Mode.String()
}

func max64(a, b int64) int64 { return max(a, b) }

// exitSignalOf returns the signal that killed the process of ee, if one
// did.
func exitSignalOf(ee *exec.ExitError) (syscall.Signal, bool) {
	if ee == nil {
		return 0, false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return ws.Signal(), true
}

// printable returns s as it may be shown on a terminal: "-" if it is
// empty; as it is if it is made of printable characters but for no leading
// or trailing space; else
// quoted with Go's escapes (strconv.Quote), so that no name a client sent a
// node can move the cursor, clear the screen or forge a line.
func printable(s string) string {
	if s == "" {
		return "-"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == '"' || r == '\\' {
			return strconv.Quote(s)
		}
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	return s
}

// forceUnlock removes every holder of a resource, or one grant, on every
// node.
func forceUnlock(ctx context.Context, lockers []locker.NetLocker, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("force-unlock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	uid := fs.String("uid", "", "remove the grant of this UID instead of every holder of a resource")
	asJSON := fs.Bool("json", false, "print the outcome as a JSON object")
	// -uid has no variable: one left in an environment would remove a
	// grant instead of the resource the command line names.
	if err := parseCommand(fs, args, getenv, "usage: dsync force-unlock [-json] RESOURCE | -uid UID\n\nRemoves every holder of RESOURCE, or the one grant of UID, on every node (needs the admin role).\n", "uid"); err != nil {
		return err
	}
	var a locker.LockArgs
	switch {
	case *uid != "" && fs.NArg() == 0:
		a.UID = *uid
	case *uid == "" && fs.NArg() == 1 && fs.Arg(0) != "":
		a.Resources = []string{fs.Arg(0)}
	default:
		return errors.New("force-unlock: give one RESOURCE, or -uid UID")
	}
	removed, failed := 0, 0
	for _, l := range lockers {
		r, err := l.ForceUnlock(ctx, a)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "dsync: %s: %v\n", l, err)
			failed++
		case r.OK:
			removed++
		}
	}
	if *asJSON {
		if err := writeJSON(stdout, map[string]int{"removed": removed, "failed": failed, "nodes": len(lockers)}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "removed on %d of %d nodes\n", removed, len(lockers))
	}
	if failed > 0 {
		return &exitError{exitFailed, fmt.Errorf("force-unlock: %d of %d nodes did not answer; what they hold expires after its validity", failed, len(lockers))}
	}
	return nil
}

// runUnder runs a command while holding a lock, through lockers, the
// clients of nl's nodes in order, once it has checked that the nodes have
// nl's layout (or, during a change, one it can lock through).
func runUnder(ctx context.Context, nl nodeLayout, lockers []locker.NetLocker, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	read := fs.Bool("read", false, "take a read lock instead of the write lock")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the lock (0: until interrupted)")
	refresh := fs.Duration("refresh", 0, "how often to refresh the lock (0: dsync's default)")
	if err := parseCommand(fs, args, getenv, "usage: dsync run [-read] [-timeout D] [-refresh D] RESOURCE -- COMMAND [ARG...]\n\n"+
		"Runs COMMAND while holding a lock on RESOURCE; COMMAND gets SIGTERM if the lock is lost.\n"); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) < 3 || rest[1] != "--" || rest[0] == "" {
		return &exitError{exitUsage, errors.New("run: want RESOURCE -- COMMAND [ARG...]")}
	}
	resource, command := rest[0], rest[2:]
	if err := nl.check(ctx, lockers); err != nil {
		if errors.Is(err, layout.ErrMismatch) {
			return &exitError{exitUsage, fmt.Errorf("run: %w", err)}
		}
		return &exitError{exitFailed, fmt.Errorf("run: %w", err)}
	}
	ds, err := nl.client(lockers, dsync.Config{RefreshInterval: *refresh})
	if err != nil {
		return &exitError{exitUsage, err}
	}
	defer ds.Close()
	m := dsync.NewDRWMutex(ds, resource)
	get, unlock := m.GetLock, m.Unlock
	if *read {
		get, unlock = m.GetRLock, m.RUnlock
	}
	lockCtx, err := get(ctx, dsync.Options{Timeout: *timeout, Source: "dsync run"})
	if err != nil {
		return &exitError{exitNotTaken, fmt.Errorf("run: %w", err)}
	}
	cmd := exec.CommandContext(lockCtx, command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Env = append(os.Environ(), "DSYNC_RESOURCE="+resource, "DSYNC_FENCE="+strconv.FormatUint(m.Fence(), 10))
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	runErr := cmd.Run()
	lost := errors.Is(context.Cause(lockCtx), dsync.ErrLockLost)
	unlockErr := unlock(context.Background())
	switch {
	case lost:
		return &exitError{exitLost, fmt.Errorf("run: lock on %s lost while the command ran; it was sent SIGTERM: %w", resource, context.Cause(lockCtx))}
	case runErr != nil:
		var ee *exec.ExitError
		if errors.As(runErr, &ee) && ee.ExitCode() > 0 {
			return &exitError{ee.ExitCode(), nil} // the command spoke for itself
		}
		if ws, ok := exitSignalOf(ee); ok {
			return &exitError{exitSignal + int(ws), fmt.Errorf("run: the command was killed by signal %d (%v)", int(ws), ws)}
		}
		return &exitError{exitFailed, fmt.Errorf("run: %w", runErr)}
	case unlockErr != nil:
		fmt.Fprintf(stderr, "dsync: %v\n", unlockErr)
	}
	return nil
}
