package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// startRun runs the node's main logic until the returned cancel is called,
// and returns the endpoint it prints.
func startRun(t *testing.T, args []string, env map[string]string) (endpoint string, stop func() error) {
	t.Helper()
	line, stop := startRunLine(t, args, env)
	_, after, ok := strings.Cut(line, "listening on ")
	require.True(t, ok, "first line %q does not say where it listens", line)
	endpoint, _, _ = strings.Cut(after, " ")
	return endpoint, stop
}

// startRunLine runs the node's main logic until the returned cancel is
// called, and returns the first line it prints.
func startRunLine(t *testing.T, args []string, env map[string]string) (line string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, func(k string) string { return env[k] }, pw, io.Discard, nil)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		cancel()
		require.Failf(t, "no output", "run returned %v", <-done)
	}
	line = sc.Text()
	go io.Copy(io.Discard, pr)
	return line, func() error { cancel(); return <-done }
}

func TestRunServesAndStops(t *testing.T) {
	endpoint, stop := startRun(t, []string{"-listen", "127.0.0.1:0", "-quiet", "0", "-state-dir", "none", "-drain-timeout", "0"}, map[string]string{"DSYNC_SECRET": "s3cret-s3cret-s3cret-s3cret-s3cr"})
	c, err := rest.NewClient(endpoint, rest.ClientConfig{Secret: "s3cret-s3cret-s3cret-s3cret-s3cr"})
	require.NoError(t, err)
	defer c.Close()
	r, err := c.Lock(context.Background(), locker.LockArgs{UID: "u", Resources: []string{"a"}})
	require.NoError(t, err)
	assert.True(t, r.OK, "lock on the node = %+v", r)
	assert.NoError(t, stop(), "run after cancel")
}

// TestRunGraceFollowsTheBootRecord: a first start grants at once; a node
// stopped while it held a grant waits a validity after it starts again,
// granting only reclaims; one stopped holding nothing grants at once.
func TestRunGraceFollowsTheBootRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	args := []string{"-listen", "127.0.0.1:0", "-insecure", "-state-dir", dir, "-drain-timeout", "0"}
	lock := func(endpoint string, a locker.LockArgs) locker.Reply {
		t.Helper()
		c, err := rest.NewClient(endpoint, rest.ClientConfig{Insecure: true})
		require.NoError(t, err)
		defer c.Close()
		r, err := c.Lock(context.Background(), a)
		require.NoError(t, err)
		return r
	}
	held := locker.LockArgs{UID: "u", Resources: []string{"a"}}

	endpoint, stop := startRun(t, args, nil)
	assert.True(t, lock(endpoint, held).OK, "a first start grants at once")
	require.NoError(t, stop())

	endpoint, stop = startRun(t, args, nil)
	r := lock(endpoint, locker.LockArgs{UID: "v", Resources: []string{"b"}})
	assert.Equal(t, locker.ReasonQuiet, r.Reason, "stopped while holding u: a grace period")
	assert.Equal(t, locker.DefaultValidity, r.Grace.Round(time.Minute))
	c, err := rest.NewClient(endpoint, rest.ClientConfig{Insecure: true})
	require.NoError(t, err)
	st, err := c.Refresh(context.Background(), locker.RefreshArgs{UIDs: []string{"u"}})
	require.NoError(t, err)
	require.Equal(t, []locker.RefreshStatus{locker.RefreshNotHeld}, st.Status)
	require.NotZero(t, st.Incarnation, "a refresh in the grace names the node's incarnation")
	reclaim := held
	reclaim.Reclaim, reclaim.Incarnation = true, st.Incarnation
	assert.True(t, lock(endpoint, reclaim).OK, "the holder of u reclaims it")
	_, err = c.Unlock(context.Background(), locker.LockArgs{UID: "u"})
	require.NoError(t, err)
	c.Close()
	require.NoError(t, stop())

	endpoint, stop = startRun(t, args, nil)
	defer stop()
	assert.True(t, lock(endpoint, locker.LockArgs{UID: "w", Resources: []string{"c"}}).OK, "stopped holding nothing: no grace period")
}

func TestRunDefaultStateDir(t *testing.T) {
	dir, err := defaultStateDir("127.0.0.1:9000", func(k string) string {
		if k == "XDG_STATE_HOME" {
			return "/var/state"
		}
		return ""
	})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join("/var/state", "dsync-node", "127.0.0.1_9000"), dir)
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "no secret"},
		{[]string{"-secret", "x", "-insecure"}, nil, "choose one"},
		{[]string{"-insecure"}, map[string]string{"DSYNC_SECRET": "x"}, "choose one"},
		{[]string{"-insecure", "-validity", "0"}, nil, "must be positive"},
		{[]string{"-insecure", "extra"}, nil, "unexpected arguments"},
		{[]string{"-nope"}, nil, "not defined"},
	} {
		err := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, io.Discard, io.Discard, nil)
		assert.ErrorContains(t, err, tc.want, "run(%q)", tc.args)
	}
}

// TestBinarySIGTERM builds the command and checks that it stops cleanly on
// SIGTERM.
func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "dsync-node")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-insecure", "-state-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "DSYNC_SECRET=")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.Contains(sc.Text(), "listening on http://127.0.0.1:") {
		cmd.Process.Kill() // before failing: the binary would outlive the test
		require.Failf(t, "the binary did not say it listens", "first line %q", sc.Text())
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NoError(t, cmd.Wait(), "exit after SIGTERM (output %q)", lines)
	require.NotEmpty(t, lines, "output after SIGTERM")
	require.Contains(t, strings.Join(lines, "\n"), "stopped", "output after SIGTERM = %q", lines)
}

func TestRunHelpAndVersion(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &out, io.Discard, nil)
	assert.ErrorIs(t, err, errHelpShown, "-h is no error: exit 0")
	for _, want := range []string{"-tls-cert file", "env DSYNC_TLS_CERT", "env DSYNC_SECRET", "-drain-timeout", "Exit status:", "128+N", "Example:"} {
		assert.Contains(t, out.String(), want)
	}
	out.Reset()
	err = run(context.Background(), []string{"-version"}, func(string) string { return "" }, &out, io.Discard, nil)
	assert.ErrorIs(t, err, errHelpShown)
	assert.True(t, strings.HasPrefix(out.String(), "dsync-node "), out.String())
	assert.Contains(t, out.String(), "go1.")

	err = run(context.Background(), []string{"-validity", "soon"}, func(string) string { return "" }, io.Discard, io.Discard, nil)
	assert.ErrorAs(t, err, new(usageError), "a bad value is a usage error: exit 2")
	err = run(context.Background(), []string{"-insecure"}, func(k string) string { return map[string]string{"DSYNC_VALIDITY": "soon"}[k] }, io.Discard, io.Discard, nil)
	assert.ErrorContains(t, err, "$DSYNC_VALIDITY")
	assert.ErrorAs(t, err, new(usageError))
}

// opsOf returns the operations port's URL from the node's first line.
func opsOf(t *testing.T, line string) string {
	t.Helper()
	_, after, ok := strings.Cut(line, "; ops ")
	require.True(t, ok, "no ops address in %q", line)
	return strings.TrimSuffix(after, ")")
}

func TestOpsDerivedAddress(t *testing.T) {
	for _, tc := range []struct{ listen, given, want string }{
		{"127.0.0.1:9000", "", "127.0.0.1:9001"},
		{":9000", "", ":9001"},
		{"127.0.0.1:0", "", "127.0.0.1:0"},
		{"127.0.0.1:9000", "none", ""},
		{"127.0.0.1:9000", "0.0.0.0:7000", "0.0.0.0:7000"},
	} {
		got, err := opsAddress(tc.listen, tc.given)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%s %s", tc.listen, tc.given)
	}
}

// TestRunSecretFile: the secret may come from a file named by a variable,
// as Docker and Kubernetes mount secrets.
func TestRunSecretFile(t *testing.T) {
	const secret = "file-secret-0123456789abcdef0123456789"
	file := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(file, []byte(secret+"\n"), 0o600))
	endpoint, stop := startRun(t, []string{"-listen", "127.0.0.1:0", "-state-dir", "none"}, map[string]string{"DSYNC_SECRET_FILE": file})
	defer stop()
	c, err := rest.NewClient(endpoint, rest.ClientConfig{Secret: secret})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Unlock(context.Background(), locker.LockArgs{UID: "nothing"})
	assert.NoError(t, err, "the node's secret is the file's")

	err = run(context.Background(), []string{"-secret", secret, "-secret-file", file}, func(string) string { return "" }, io.Discard, io.Discard, nil)
	assert.ErrorContains(t, err, "choose one")
}

// TestVersionAndCheckIgnoreTheEnvironment: a DSYNC_VERSION or DSYNC_CHECK
// left in an environment does not turn a node into something else.
func TestVersionAndCheckIgnoreTheEnvironment(t *testing.T) {
	env := map[string]string{"DSYNC_VERSION": "1.2.3", "DSYNC_CHECK": "http://127.0.0.1:1/healthz"}
	o, err := parse([]string{"-insecure"}, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	assert.False(t, o.version)
	assert.Empty(t, o.check)
}

// TestCheck: -check exits 0 for a 200 answer, with an error otherwise.
func TestCheck(t *testing.T) {
	endpoint, stop := startRunLine(t, []string{"-listen", "127.0.0.1:0", "-insecure", "-state-dir", "none", "-drain-timeout", "0"}, nil)
	defer stop()
	ops := opsOf(t, endpoint)
	assert.NoError(t, run(context.Background(), []string{"-check", ops + "/healthz"}, func(string) string { return "" }, io.Discard, io.Discard, nil))
	assert.ErrorContains(t, run(context.Background(), []string{"-check", ops + "/nothing"}, func(string) string { return "" }, io.Discard, io.Discard, nil), "404")
}
