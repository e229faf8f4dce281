// Command dsync talks to a set of lock nodes: it lists what they hold,
// force-releases locks, and runs a command while holding a lock.
//
//	export DSYNC_NODES=http://10.0.0.1:9000,http://10.0.0.2:9000,http://10.0.0.3:9000
//	export DSYNC_SECRET=...        # the lock role: for run
//	export DSYNC_ADMIN_SECRET=...  # the admin role: for locks and force-unlock
//	dsync locks                                  # every holder, with the nodes that hold it
//	dsync force-unlock bucket/object             # remove every holder of a resource
//	dsync force-unlock -uid UID                  # remove one grant
//	dsync run -timeout 30s bucket/object -- cmd args...
//
// Flags before the subcommand:
//
//	-nodes         comma-separated node URLs (default: $DSYNC_NODES)
//	-secret        lock secret of the nodes (default: $DSYNC_SECRET)
//	-admin-secret  admin secret of the nodes (default: $DSYNC_ADMIN_SECRET)
//	-insecure      talk to nodes that run without authentication
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
// status 4. Exit status: the command's own; 2 for a usage or node error; 3
// if the lock could not be taken; 4 if it was lost.
//
// DSYNC_FENCE is the largest sequence number of the granting nodes: it
// orders the grants of one node, but is not a fencing token that is safe
// across nodes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// Exit statuses besides the command's own.
const (
	exitUsage    = 2
	exitNotTaken = 3
	exitLost     = 4
)

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
	if err == nil {
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

const usage = `usage: dsync [-nodes URL,...] [-secret S] [-admin-secret S | -insecure] <command>

commands:
  locks [-max N] [-page N]             list the holders of every node's locks
  force-unlock RESOURCE | -uid UID     remove every holder of RESOURCE, or one grant
  run [-read] [-timeout D] RESOURCE -- COMMAND [ARG...]
                                       run COMMAND while holding a lock on RESOURCE
`

// run parses args and does what they say.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dsync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	nodes := fs.String("nodes", getenv("DSYNC_NODES"), "comma-separated node URLs")
	secret := fs.String("secret", "", "lock secret of the nodes, for run (default $DSYNC_SECRET)")
	adminSecret := fs.String("admin-secret", "", "admin secret of the nodes, for locks and force-unlock (default $DSYNC_ADMIN_SECRET)")
	insecure := fs.Bool("insecure", false, "talk to nodes without authentication")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" && !*insecure {
		*secret = getenv("DSYNC_SECRET")
	}
	if *adminSecret == "" && !*insecure {
		*adminSecret = getenv("DSYNC_ADMIN_SECRET")
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command")
	}
	if strings.TrimSpace(*nodes) == "" {
		return errors.New("no nodes: set -nodes or DSYNC_NODES")
	}
	cc := rest.ClientConfig{Secret: *secret, Insecure: *insecure}
	if fs.Arg(0) == "locks" || fs.Arg(0) == "force-unlock" {
		cc = rest.ClientConfig{AdminSecret: *adminSecret, Insecure: *insecure}
		if *adminSecret == "" && !*insecure {
			return fmt.Errorf("%s needs the admin role: set -admin-secret or DSYNC_ADMIN_SECRET (the nodes' admin secret), or -insecure", fs.Arg(0))
		}
	}
	lockers, err := dial(*nodes, cc)
	if err != nil {
		return err
	}
	defer func() {
		for _, l := range lockers {
			l.Close()
		}
	}()
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "locks":
		return locks(ctx, lockers, rest, stdout, stderr)
	case "force-unlock":
		return forceUnlock(ctx, lockers, rest, stdout, stderr)
	case "run":
		return runUnder(ctx, lockers, rest, stdin, stdout, stderr)
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", cmd)
}

// dial makes a client configured by cc for every node of list.
func dial(list string, cc rest.ClientConfig) ([]locker.NetLocker, error) {
	if strings.TrimSpace(list) == "" {
		return nil, errors.New("no nodes: set -nodes or DSYNC_NODES")
	}
	if cc.Secret == "" && cc.AdminSecret == "" && !cc.Insecure {
		return nil, errors.New("no secret: set -secret or DSYNC_SECRET, or -insecure")
	}
	var out []locker.NetLocker
	for _, ep := range strings.Split(list, ",") {
		c, err := rest.NewClient(strings.TrimSpace(ep), cc)
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

// locks lists every node's holders, merged by resource and UID. It walks
// the nodes' listings a page at a time, side by side (each is ordered by
// resource, then UID), and prints a holder as soon as every node has told
// whether it holds it: it keeps one page per node, never a whole listing.
func locks(ctx context.Context, lockers []locker.NetLocker, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("locks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	most := fs.Int("max", 0, "list at most this many holders (0: all)")
	page := fs.Int("page", 1000, fmt.Sprintf("ask each node for this many entries at a time (at most %d)", locker.MaxListPage))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("locks: unexpected arguments %q", fs.Args())
	}
	if *most < 0 || *page < 1 || *page > locker.MaxListPage {
		return fmt.Errorf("locks: -max must be at least 0, and -page from 1 to %d", locker.MaxListPage)
	}
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
			return fmt.Errorf("locks: %s cannot list", l)
		}
		next, stop := iter.Pull2(locker.Entries(ctx, lister, *page))
		defer stop()
		cursors[i] = &cursor{node: l, next: next}
	}
	for _, c := range cursors {
		advance(c)
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tMODE\tNODES\tHELD\tOWNER\tSOURCE\tHOLDER\tUID")
	for rows := 0; *most == 0 || rows < *most; rows++ {
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
		h, nodes := *first, 0
		for _, c := range cursors {
			if c.head != nil && compareEntries(c.head, &h) == 0 {
				nodes++
				h.HeldFor = max(h.HeldFor, c.head.HeldFor)
				advance(c)
			}
		}
		mode := "read"
		if h.Write {
			mode = "write"
		}
		holder := h.Holder
		if holder == "" {
			holder = "-" // the lock named none (dsync.WithHolder)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%v\t%s\t%s\t%s\t%s\n", printable(h.Resource), mode, nodes, len(lockers),
			time.Duration(h.HeldFor).Round(time.Millisecond), printable(h.Owner), printable(h.Source), printable(holder), printable(h.UID))
		if rows%1000 == 999 {
			tw.Flush() // columns line up within each thousand rows
		}
	}
	tw.Flush()
	if failed > 0 {
		return fmt.Errorf("locks: %d of %d nodes did not answer; the list is incomplete", failed, len(lockers))
	}
	return nil
}

// compareEntries orders entries as the nodes list them: by resource, then
// UID.
func compareEntries(a, b *locker.Entry) int {
	if c := strings.Compare(a.Resource, b.Resource); c != 0 {
		return c
	}
	return strings.Compare(a.UID, b.UID)
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
func forceUnlock(ctx context.Context, lockers []locker.NetLocker, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("force-unlock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	uid := fs.String("uid", "", "remove the grant of this UID instead of every holder of a resource")
	if err := fs.Parse(args); err != nil {
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
	fmt.Fprintf(stdout, "removed on %d of %d nodes\n", removed, len(lockers))
	if failed > 0 {
		return fmt.Errorf("force-unlock: %d of %d nodes did not answer; what they hold expires after its validity", failed, len(lockers))
	}
	return nil
}

// runUnder runs a command while holding a lock.
func runUnder(ctx context.Context, lockers []locker.NetLocker, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	read := fs.Bool("read", false, "take a read lock instead of the write lock")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the lock (0: until interrupted)")
	refresh := fs.Duration("refresh", 0, "how often to refresh the lock (0: dsync's default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) < 3 || rest[1] != "--" || rest[0] == "" {
		return errors.New("run: want RESOURCE -- COMMAND [ARG...]")
	}
	resource, command := rest[0], rest[2:]
	ds, err := dsync.New(lockers, dsync.Config{RefreshInterval: *refresh})
	if err != nil {
		return err
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
		return fmt.Errorf("run: %w", runErr)
	case unlockErr != nil:
		fmt.Fprintf(stderr, "dsync: %v\n", unlockErr)
	}
	return nil
}
