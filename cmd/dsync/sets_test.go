package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/cluster"
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
