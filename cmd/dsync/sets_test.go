package main

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/cluster"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// run locks through the nodes' lock sets when given their layout, and
// refuses them, with a usage error that names the layouts, when not.
func TestRunChecksTheLayout(t *testing.T) {
	c, err := cluster.Start(cluster.Config{Nodes: 4, SetSize: 2})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	env := map[string]string{"DSYNC_NODES": strings.Join(c.Endpoints(), " "), "DSYNC_SECRET": c.Secret()}
	getenv := func(k string) string { return env[k] }

	out, _, err := runCmd(t, getenv, "-set-size", "2", "run", "-timeout", "10s", "bucket/object", "--", "sh", "-c", `echo "$DSYNC_RESOURCE"`)
	require.NoError(t, err)
	assert.Equal(t, "bucket/object\n", out)

	env["DSYNC_SET_SIZE"] = "2" // the environment says it too
	_, _, err = runCmd(t, getenv, "run", "-timeout", "10s", "bucket/object", "--", "true")
	require.NoError(t, err)

	for _, size := range []string{"0", "4"} {
		_, _, err = runCmd(t, getenv, "-set-size", size, "run", "-timeout", "10s", "bucket/object", "--", "true")
		var ee *exitError
		require.True(t, errors.As(err, &ee), "-set-size %s: %v", size, err)
		assert.Equal(t, exitUsage, ee.code, "-set-size %s: %v", size, err)
		assert.ErrorContains(t, err, c.Layout().Fingerprint(), "-set-size %s: the error names the nodes' layout", size)
	}
}

// locks and top count a holder's nodes against its set's, not against
// every node: a lock on a set of 2 of 4 nodes is held on 2/2.
func TestLocksCountsAgainstTheSet(t *testing.T) {
	c, err := cluster.Start(cluster.Config{Nodes: 4, SetSize: 2})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	env := map[string]string{"DSYNC_NODES": strings.Join(c.Endpoints(), " "), "DSYNC_SET_SIZE": "2", "DSYNC_SECRET": c.Secret(), "DSYNC_ADMIN_SECRET": c.AdminSecret()}
	getenv := func(k string) string { return env[k] }

	sets, err := c.LockerSets(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, l := range slices.Concat(sets...) {
			l.Close()
		}
	})
	// Every node of the resource's set holds the grant before we list.
	const name = "bucket/object"
	set := sets[dsync.SetIndex(name, len(sets))]
	for _, l := range set {
		r, err := l.Lock(context.Background(), locker.LockArgs{UID: "u1", Resources: []string{name}, Owner: "o", Quorum: 2})
		require.NoError(t, err)
		require.True(t, r.OK)
	}

	out, _, err := runCmd(t, getenv, "locks")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, "locks printed:\n%s", out)
	assert.Equal(t, []string{name, "write", "2/2"}, strings.Fields(lines[1])[:3], "locks row %q", lines[1])

	out, _, err = runCmd(t, getenv, "locks", "-json")
	require.NoError(t, err)
	var got []holderJSON
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Len(t, got, 1)
	assert.Equal(t, 2, got[0].Nodes)
	assert.Equal(t, 2, got[0].Of, "the set's nodes, not all 4")

	out, _, err = runCmd(t, getenv, "top", "-once", "-json")
	require.NoError(t, err)
	var f frame
	require.NoError(t, json.Unmarshal([]byte(out), &f), out)
	require.Len(t, f.Oldest, 1)
	assert.Equal(t, 2, f.Oldest[0].Of, "top counts against the set too")
	assert.Equal(t, 4, f.Nodes, "top still asks every node")
}
