package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsync-go/dsync/cluster"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testNodes starts three loopback nodes and returns the environment that
// points dsync at them.
func testNodes(t *testing.T) (*cluster.Cluster, func(string) string) {
	t.Helper()
	c, err := cluster.Start(cluster.Config{Nodes: 3})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	env := map[string]string{"DSYNC_NODES": strings.Join(c.Endpoints(), ","), "DSYNC_SECRET": c.Secret(), "DSYNC_ADMIN_SECRET": c.AdminSecret()}
	return c, func(k string) string { return env[k] }
}

// testLockers returns clients of c's nodes, closed when the test ends.
func testLockers(t *testing.T, c *cluster.Cluster) []locker.NetLocker {
	t.Helper()
	ls, err := c.Lockers()
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, l := range ls {
			l.Close()
		}
	})
	return ls
}

func runCmd(t *testing.T, getenv func(string) string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, getenv, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestLocksAndForceUnlock(t *testing.T) {
	c, getenv := testNodes(t)
	ls := testLockers(t, c)
	ds, err := dsync.New(ls, dsync.Config{Owner: "test-process"})
	require.NoError(t, err)
	defer ds.Close()
	m := dsync.NewDRWMutex(ds, "bucket/object")
	_, err = m.GetLock(dsync.WithHolder(context.Background(), "worker-7"), dsync.Options{Source: "held-by-test"})
	require.NoError(t, err)
	// GetLock returns once a quorum granted; wait for the third grant, so
	// that it cannot land after the force-unlock below.
	for deadline := time.Now().Add(30 * time.Second); ; runtime.Gosched() {
		held := 0
		for _, n := range c.Nodes() {
			held += n.Table().Stats().Grants
		}
		if held == 3 {
			break
		}
		require.False(t, time.Now().After(deadline), "the lock reached %d of 3 nodes", held)
	}

	out, _, err := runCmd(t, getenv, "locks")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, "locks printed:\n%s", out)
	require.True(t, strings.HasPrefix(lines[0], "RESOURCE"), "locks printed:\n%s", out)
	f := strings.Fields(lines[1])
	require.GreaterOrEqual(t, len(f), 3, "locks row %q", lines[1])
	const want = "want bucket/object, write, held on 3/3 nodes, its source and its holder"
	assert.Equal(t, []string{"bucket/object", "write", "3/3"}, f[:3], "locks row %q; %s", lines[1], want)
	assert.Contains(t, lines[1], "held-by-test", want)
	assert.Contains(t, f, "test-process/worker-7", want)

	out, _, err = runCmd(t, getenv, "force-unlock", "bucket/object")
	require.NoError(t, err, "force-unlock")
	assert.Contains(t, out, "removed on 3 of 3 nodes")
	for _, n := range c.Nodes() {
		assert.Zero(t, n.Table().Stats().Grants, "node %s holds grants after force-unlock", n.Addr)
	}
}

func TestRunHoldsTheLockWhileTheCommandRuns(t *testing.T) {
	c, getenv := testNodes(t)
	out, _, err := runCmd(t, getenv, "run", "-timeout", "10s", "bucket/object", "--",
		"sh", "-c", `echo "$DSYNC_RESOURCE fence=$DSYNC_FENCE"`)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "bucket/object fence="), "command printed %q", out)
	assert.False(t, strings.HasSuffix(strings.TrimSpace(out), "fence=0"), "command printed %q", out)
	for _, n := range c.Nodes() {
		assert.Zero(t, n.Table().Stats().Grants, "node %s holds grants after run", n.Addr)
	}
	// The command's own status comes back.
	_, _, err = runCmd(t, getenv, "run", "bucket/object", "--", "sh", "-c", "exit 7")
	var ee *exitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 7, ee.code)
}

func TestRunStopsTheCommandWhenTheLockIsLost(t *testing.T) {
	c, getenv := testNodes(t)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(context.Background(), []string{"run", "-refresh", "20ms", "bucket/object", "--",
			"sh", "-c", "echo started; exec sleep 60"}, getenv, strings.NewReader(""), pw, io.Discard)
		pw.Close()
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	require.True(t, sc.Scan(), "command did not start")
	require.Equal(t, "started", sc.Text(), "command did not start")
	go io.Copy(io.Discard, pr)
	// An operator removes the lock from every node while the command runs.
	for _, n := range c.Nodes() {
		n.Table().ForceUnlock(context.Background(), locker.LockArgs{Resources: []string{"bucket/object"}})
	}
	select {
	case err := <-done:
		var ee *exitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, exitLost, ee.code)
		assert.ErrorIs(t, err, dsync.ErrLockLost)
	case <-time.After(30 * time.Second): // a bound on a hang, not a synchronisation
		require.Fail(t, "the command was not stopped after its lock was lost")
	}
}

func TestUsageErrors(t *testing.T) {
	_, getenv := testNodes(t)
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"force-unlock"},
		{"force-unlock", "a", "b"},
		{"run", "bucket/object"},
		{"run", "bucket/object", "sh"},
		{"locks", "extra"},
	} {
		_, _, err := runCmd(t, getenv, args...)
		assert.Error(t, err, "%q", args)
	}
	noNodes := func(string) string { return "" }
	_, _, err := runCmd(t, noNodes, "locks")
	assert.ErrorContains(t, err, "no nodes")
}

// TestLocksEscapesNames: a resource named with terminal escape codes, or
// anything but printable characters, is shown quoted, and cannot forge a
// line on the operator's terminal.
func TestLocksEscapesNames(t *testing.T) {
	c, getenv := testNodes(t)
	ls := testLockers(t, c)
	evil := "x\x1b[2K\r\nfake/resource  write  3/3"
	for _, l := range ls {
		r, err := l.Lock(context.Background(), locker.LockArgs{UID: "u-evil", Resources: []string{evil, "plain/name"}, Owner: "o\x07"})
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	out, _, err := runCmd(t, getenv, "locks")
	require.NoError(t, err)
	assert.NotContains(t, out, "\x1b")
	assert.NotContains(t, out, "\r")
	assert.Contains(t, out, `"x\x1b[2K\r\nfake/resource  write  3/3"`)
	assert.Contains(t, out, `"o\a"`)
	assert.Contains(t, out, "plain/name ", "a plain name is shown as it is")
	assert.Equal(t, 3, strings.Count(out, "\n"), "a header and a line per resource: %q", out)
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"bucket/object":   "bucket/object",
		"b/ü-ok":          "b/ü-ok",
		"":                "-",
		" lead":           `" lead"`,
		"tab\there":       `"tab\there"`,
		"bad\xffutf8":     `"bad\xffutf8"`,
		`quote"d`:         `"quote\"d"`,
		"bell\a":          `"bell\a"`,
		"\u202eRTL trick": `"\u202eRTL trick"`,
	} {
		assert.Equal(t, want, printable(in), "printable(%q)", in)
	}
}

// locks merges the nodes' listings page by page: each holder once, with
// the number of nodes that hold it, in order, however small the pages.
func TestLocksMergesPages(t *testing.T) {
	c, getenv := testNodes(t)
	ctx := context.Background()
	held := map[int][][2]string{ // node: resource, uid
		0: {{"a", "u1"}, {"b", "u2"}, {"d", "u4"}},
		1: {{"a", "u1"}, {"c", "u3"}},
		2: {{"b", "u2"}, {"d", "u4"}},
	}
	for i, n := range c.Nodes() {
		for _, h := range held[i] {
			r, err := n.Table().Lock(ctx, locker.LockArgs{UID: h[1], Resources: []string{h[0]}, Owner: "o", Source: "s"})
			require.NoError(t, err)
			require.True(t, r.OK)
		}
	}
	rows := func(args ...string) []string {
		t.Helper()
		out, _, err := runCmd(t, getenv, append([]string{"locks"}, args...)...)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.True(t, strings.HasPrefix(lines[0], "RESOURCE"), "header %q", lines[0])
		var got []string
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			got = append(got, f[0]+" "+f[2]+" "+f[len(f)-1])
		}
		return got
	}
	want := []string{"a 2/3 u1", "b 2/3 u2", "c 1/3 u3", "d 2/3 u4"}
	for _, page := range []string{"1", "2", "1000"} {
		assert.Equal(t, want, rows("-page", page), "pages of %s", page)
	}
	assert.Equal(t, want[:2], rows("-page", "1", "-max", "2"))
	_, _, err := runCmd(t, getenv, "locks", "-page", "0")
	assert.Error(t, err)
}

// TestHelpNeedsNoNodes: -h, for dsync and for each command, prints the
// usage on standard output and is no error (exit 0), without nodes.
func TestHelpNeedsNoNodes(t *testing.T) {
	noEnv := func(string) string { return "" }
	out, _, err := runCmd(t, noEnv, "-h")
	assert.ErrorIs(t, err, errHelpShown)
	for _, want := range []string{"env DSYNC_NODES", "env DSYNC_TLS_CA", "env DSYNC_SECRET", "Exit status:", "128+N", "Examples:"} {
		assert.Contains(t, out, want)
	}
	out, _, err = runCmd(t, noEnv, "run", "-h")
	assert.ErrorIs(t, err, errHelpShown)
	assert.Contains(t, out, "-timeout")
	assert.Contains(t, out, "Exit status:")
	for cmd, want := range map[string]string{"run": "env DSYNC_RUN_TIMEOUT", "locks": "env DSYNC_LOCKS_MAX",
		"force-unlock": "env DSYNC_FORCE_UNLOCK_JSON", "top": "env DSYNC_TOP_INTERVAL"} {
		out, _, err = runCmd(t, noEnv, cmd, "-h")
		assert.ErrorIs(t, err, errHelpShown, cmd)
		assert.Contains(t, out, "usage: dsync "+cmd, cmd)
		assert.Contains(t, out, want, "every flag of a command names its variable")
		assert.Contains(t, out, "Exit status:", cmd)
	}
	out, _, _ = runCmd(t, noEnv, "force-unlock", "-h")
	assert.NotContains(t, out, "DSYNC_FORCE_UNLOCK_UID", "-uid has no variable")
}

// TestCommandFlagsFromEnvironment: a command's flags read DSYNC_<COMMAND>_<FLAG>
// when the command line leaves them out; the command line wins, and a bad
// value is a usage error that names the variable.
func TestCommandFlagsFromEnvironment(t *testing.T) {
	_, nodes := testNodes(t)
	with := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return nodes(k)
		}
	}
	out, _, err := runCmd(t, with("DSYNC_LOCKS_JSON", "true"), "locks")
	require.NoError(t, err)
	assert.Equal(t, "[]", strings.TrimSpace(out), "DSYNC_LOCKS_JSON=true: JSON")
	out, _, err = runCmd(t, with("DSYNC_LOCKS_JSON", "true"), "locks", "-json=false")
	require.NoError(t, err)
	assert.NotContains(t, out, "[]", "the command line wins")

	_, _, err = runCmd(t, with("DSYNC_RUN_TIMEOUT", "soon"), "run", "r", "--", "true")
	var ee *exitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitUsage, ee.code)
	assert.ErrorContains(t, err, "DSYNC_RUN_TIMEOUT")

	_, _, err = runCmd(t, with("DSYNC_FORCE_UNLOCK_UID", "someone"), "force-unlock", "r")
	assert.NoError(t, err, "DSYNC_FORCE_UNLOCK_UID is not read: the resource named is unlocked")
}

// TestExitStatuses: a usage error, a lock not taken, and a command killed
// by a signal exit with statuses of their own.
func TestExitStatuses(t *testing.T) {
	c, getenv := testNodes(t)
	code := func(err error) int {
		var ee *exitError
		require.ErrorAs(t, err, &ee)
		return ee.code
	}
	_, _, err := runCmd(t, getenv, "run", "bucket/object")
	assert.Equal(t, exitUsage, code(err), "usage error")
	_, _, err = runCmd(t, func(string) string { return "" }, "locks")
	assert.Equal(t, exitUsage, code(err), "no nodes")
	_, _, err = runCmd(t, getenv, "-tls-cert", "x.pem", "locks")
	assert.Equal(t, exitUsage, code(err), "-tls-cert without -tls-key")

	_, _, err = runCmd(t, getenv, "run", "bucket/object", "--", "sh", "-c", "kill -KILL $$")
	assert.Equal(t, exitSignal+9, code(err), "killed by SIGKILL")

	ls := testLockers(t, c)
	ds, err := dsync.New(ls, dsync.Config{})
	require.NoError(t, err)
	defer ds.Close()
	m := dsync.NewDRWMutex(ds, "held")
	_, err = m.GetLock(context.Background(), dsync.Options{})
	require.NoError(t, err)
	defer m.Unlock(context.Background())
	_, _, err = runCmd(t, getenv, "run", "-timeout", "200ms", "held", "--", "true")
	assert.Equal(t, exitNotTaken, code(err), "lock not taken")
}

// TestJSONListings: locks and force-unlock print JSON with -json (and
// --json), with names as the nodes hold them.
func TestJSONListings(t *testing.T) {
	c, getenv := testNodes(t)
	ls := testLockers(t, c)
	for _, l := range ls {
		r, err := l.Lock(context.Background(), locker.LockArgs{UID: "u1", Resources: []string{"a\x1b[2Kb"}, Owner: "o", Holder: "o/h1"})
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	out, _, err := runCmd(t, getenv, "locks", "--json")
	require.NoError(t, err)
	var got []holderJSON
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Len(t, got, 1)
	assert.Equal(t, holderJSON{Resource: "a\x1b[2Kb", Mode: "write", Nodes: 3, Of: 3, HeldForSeconds: got[0].HeldForSeconds, Owner: "o", Holder: "o/h1", UID: "u1", Fence: got[0].Fence}, got[0])
	assert.NotContains(t, out, "\x1b", "JSON escapes control characters")

	out, _, err = runCmd(t, getenv, "force-unlock", "-json", "-uid", "u1")
	require.NoError(t, err)
	var fu map[string]int
	require.NoError(t, json.Unmarshal([]byte(out), &fu), out)
	assert.Equal(t, map[string]int{"removed": 3, "failed": 0, "nodes": 3}, fu)
}

// TestTop: one frame of top shows the oldest holders and the resources
// with waiters, as tables or JSON.
func TestTop(t *testing.T) {
	c, getenv := testNodes(t)
	ls := testLockers(t, c)
	ctx := context.Background()
	for _, l := range ls {
		for i, res := range []string{"old", "young"} {
			r, err := l.Lock(ctx, locker.LockArgs{UID: "u-" + res, Resources: []string{res}, Owner: "p", Holder: "p/holder-" + strconv.Itoa(i)})
			require.NoError(t, err)
			require.True(t, r.OK)
		}
		for _, w := range []string{"p/w1", "p/w2"} { // two holders wait for old
			r, err := l.Lock(ctx, locker.LockArgs{UID: "u-" + w, Resources: []string{"old"}, Owner: "p", Holder: w})
			require.NoError(t, err)
			require.False(t, r.OK)
		}
	}
	out, _, err := runCmd(t, getenv, "top", "-once", "-json")
	require.NoError(t, err)
	var f frame
	require.NoError(t, json.Unmarshal([]byte(out), &f), out)
	assert.Equal(t, 3, f.Answered)
	assert.Equal(t, 2, f.Held)
	require.Len(t, f.Oldest, 2)
	assert.Equal(t, "old", f.Oldest[0].Resource, "the oldest first")
	require.Len(t, f.Contended, 1)
	assert.Equal(t, "old", f.Contended[0].Resource)
	assert.Equal(t, 2, f.Contended[0].Waiters)

	out, _, err = runCmd(t, getenv, "top", "-once", "-n", "1")
	require.NoError(t, err)
	assert.Contains(t, out, "OLDEST")
	assert.Contains(t, out, "MOST CONTENDED")
	assert.Contains(t, out, "waiting 2")
	assert.NotContains(t, out, "young", "-n 1 keeps one row")
}
