package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/layout"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// startNodes starts n loopback nodes, each told the layout fingerprint
// that tell returns for the nodes' endpoints, and returns the endpoints.
func startNodes(t *testing.T, n int, secret string, tell func(endpoints []string) string) []string {
	t.Helper()
	var lns []net.Listener
	var eps []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns = append(lns, ln)
		eps = append(eps, "http://"+ln.Addr().String())
	}
	fp := tell(eps)
	for _, ln := range lns {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
		srv, err := rest.NewServer(tbl, rest.ServerConfig{Secret: secret, Layout: fp})
		require.NoError(t, err)
		go srv.Serve(ln)
		t.Cleanup(func() {
			srv.Close()
			tbl.Close()
		})
	}
	return eps
}

// The steps of a layout change through the command: 4 nodes in 2 sets of
// 2 grow to 6 in 3 sets. While the nodes are in the change, a client of
// the old layout and one of the change exclude each other, and a client of
// the new layout is refused; once the nodes have the new layout, the old
// client is refused and the change's client still locks.
func TestRunThroughALayoutChange(t *testing.T) {
	ctx := context.Background()
	const secret = "s3cret-s3cret-s3cret-s3cret-s3cr"
	const resource = "bucket/object"
	parse := func(eps []string) (from, to layout.Layout) {
		from, err := layout.Parse([]string{strings.Join(eps[:4], " ")}, 2)
		require.NoError(t, err)
		to, err = layout.Parse([]string{strings.Join(eps, " ")}, 2)
		require.NoError(t, err)
		return from, to
	}
	var from, to layout.Layout
	eps := startNodes(t, 6, secret, func(eps []string) string {
		from, to = parse(eps)
		return layout.Transition(from, to)
	})
	env := map[string]string{"DSYNC_SECRET": secret, "DSYNC_NODES": strings.Join(eps[:4], ","), "DSYNC_SET_SIZE": "2"}
	getenv := func(k string) string { return env[k] }
	change := []string{"-next-nodes", strings.Join(eps, ","), "-next-set-size", "2"}

	// A client of the old layout holds the lock.
	var old [][]locker.NetLocker
	for _, set := range from.Sets {
		var ls []locker.NetLocker
		for _, u := range set {
			c, err := rest.NewClient(u, rest.ClientConfig{Secret: secret, Layout: from.Fingerprint()})
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			ls = append(ls, c)
		}
		old = append(old, ls)
	}
	ds, err := dsync.NewSets(old, dsync.Config{})
	require.NoError(t, err)
	defer ds.Close()
	m := dsync.NewDRWMutex(ds, resource)
	_, err = m.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)

	_, _, err = runCmd(t, getenv, append(change, "run", "-timeout", "300ms", resource, "--", "true")...)
	var ee *exitError
	require.True(t, errors.As(err, &ee), "%v", err)
	assert.Equal(t, exitNotTaken, ee.code, "the change's client waits for the old client's lock: %v", err)

	env["DSYNC_NODES"], env["DSYNC_SET_SIZE"] = strings.Join(eps, ","), "2"
	_, _, err = runCmd(t, getenv, "run", "-timeout", "300ms", resource, "--", "true")
	require.True(t, errors.As(err, &ee), "%v", err)
	assert.Equal(t, exitUsage, ee.code, "a client of the new layout refuses nodes in the change: %v", err)
	assert.ErrorIs(t, err, layout.ErrMismatch)

	require.NoError(t, m.Unlock(ctx))
	env["DSYNC_NODES"] = strings.Join(eps[:4], ",")
	out, _, err := runCmd(t, getenv, append(change, "run", "-timeout", "10s", resource, "--", "echo", "held")...)
	require.NoError(t, err)
	assert.Equal(t, "held\n", out)

	// The nodes move to the new layout (here: new nodes told it).
	eps2 := startNodes(t, 6, secret, func(eps []string) string {
		from, to = parse(eps)
		return to.Fingerprint()
	})
	env["DSYNC_NODES"] = strings.Join(eps2[:4], ",")
	change = []string{"-next-nodes", strings.Join(eps2, ","), "-next-set-size", "2"}
	out, _, err = runCmd(t, getenv, append(change, "run", "-timeout", "10s", resource, "--", "echo", "held")...)
	require.NoError(t, err, "the change's client, nodes of the new layout")
	assert.Equal(t, "held\n", out)
	_, _, err = runCmd(t, getenv, "run", "-timeout", "300ms", resource, "--", "true")
	require.True(t, errors.As(err, &ee), "%v", err)
	assert.Equal(t, exitUsage, ee.code, "a client of the old layout refuses nodes of the new: %v", err)
	assert.Contains(t, err.Error(), fmt.Sprint("has layout ", to.Fingerprint()))
}
