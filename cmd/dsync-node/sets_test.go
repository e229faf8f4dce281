package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/layout"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// A node given the cluster's node list and set size tells its clients the
// layout's fingerprint, and says it when it starts.
func TestRunTellsItsLayout(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret-s3cret-s3cr"
	nodes := "http://node{1...16}:9000"
	want, err := layout.Parse([]string{nodes}, 4)
	require.NoError(t, err)
	line, stop := startRunLine(t, []string{"-listen", "127.0.0.1:0", "-quiet", "0", "-state-dir", "none", "-drain-timeout", "0", "-nodes", nodes, "-set-size", "4"},
		map[string]string{"DSYNC_SECRET": secret})
	assert.Contains(t, line, "4 sets of 4 nodes (layout "+want.Fingerprint()+")")
	_, after, _ := strings.Cut(line, "listening on ")
	endpoint, _, _ := strings.Cut(after, " ")
	c, err := rest.NewClient(endpoint, rest.ClientConfig{Secret: secret})
	require.NoError(t, err)
	defer c.Close()
	got, err := c.Layout(context.Background())
	require.NoError(t, err)
	assert.Equal(t, want.Fingerprint(), got)
	assert.NoError(t, stop())
}

func TestRunRefusesABadLayout(t *testing.T) {
	env := map[string]string{"DSYNC_SECRET": "s3cret-s3cret-s3cret-s3cret-s3cr"}
	for _, args := range [][]string{
		{"-nodes", "http://node{1...6}:9000", "-set-size", "4"},
		{"-nodes", "http://node{1...}:9000"},
		{"-set-size", "4"},
		{"-next-nodes", "http://node{1...8}:9000"},
		{"-nodes", "http://node{1...4}:9000", "-next-set-size", "4"},
		{"-nodes", "http://node{1...4}:9000", "-next-nodes", "http://node{1...6}:9000", "-next-set-size", "4"},
	} {
		err := run(context.Background(), append([]string{"-listen", "127.0.0.1:0", "-state-dir", "none"}, args...), func(k string) string { return env[k] }, io.Discard, io.Discard, nil)
		var ue usageError
		assert.ErrorAs(t, err, &ue, "%v", args)
	}
}

// A node in a change of layout tells the change's fingerprint, which
// clients of the old layout and of the change accept, and says it when it
// starts.
func TestRunTellsAChangeOfLayout(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret-s3cret-s3cr"
	from, err := layout.Parse([]string{"http://node{1...8}:9000"}, 4)
	require.NoError(t, err)
	to, err := layout.Parse([]string{"http://node{1...12}:9000"}, 4)
	require.NoError(t, err)
	line, stop := startRunLine(t, []string{"-listen", "127.0.0.1:0", "-quiet", "0", "-state-dir", "none", "-drain-timeout", "0",
		"-nodes", "http://node{1...8}:9000", "-set-size", "4", "-next-nodes", "http://node{1...12}:9000", "-next-set-size", "4"},
		map[string]string{"DSYNC_SECRET": secret})
	assert.Contains(t, line, "changing layout from 2 sets of 4 nodes")
	_, after, _ := strings.Cut(line, "listening on ")
	endpoint, _, _ := strings.Cut(after, " ")
	for _, tc := range []struct {
		client string
		ok     bool
	}{{from.Fingerprint(), true}, {layout.Transition(from, to), true}, {to.Fingerprint(), false}} {
		c, err := rest.NewClient(endpoint, rest.ClientConfig{Secret: secret, Layout: tc.client})
		require.NoError(t, err)
		_, err = c.Version(context.Background(), locker.VersionArgs{Resources: []string{"r"}})
		if tc.ok {
			assert.NoError(t, err, "client %s", tc.client)
		} else {
			assert.ErrorIs(t, err, rest.ErrLayout, "client %s", tc.client)
		}
		c.Close()
	}
	assert.NoError(t, stop())
}
