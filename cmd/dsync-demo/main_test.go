package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDemoRuns(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), config{nodes: 3, clients: 3, rounds: 3, crash: -1, hold: time.Millisecond}, &out)
	require.NoError(t, err, out.String())
	for _, want := range []string{"started 3 nodes", "crashed 1 of 3 nodes", "value 9 after 9 locked increments, 0 overlapping", "OK:"} {
		assert.Contains(t, out.String(), want)
	}
}

func TestDemoRejectsBadFlags(t *testing.T) {
	assert.Error(t, run(context.Background(), config{nodes: 0, clients: 1, rounds: 1}, &bytes.Buffer{}), "-nodes 0")
	noEnv := func(string) string { return "" }
	for _, args := range [][]string{{"-nodes", "0"}, {"-crash", "3", "-nodes", "3"}, {"-hold", "-1s"}, {"-bogus"}, {"extra"}} {
		var stderr bytes.Buffer
		assert.Equal(t, exitUsage, command(context.Background(), args, noEnv, &bytes.Buffer{}, &stderr), "%q", args)
		assert.NotEmpty(t, stderr.String(), "%q: a usage error says why", args)
	}
	var stderr bytes.Buffer
	env := func(k string) string { return map[string]string{"DSYNC_DEMO_ROUNDS": "many"}[k] }
	assert.Equal(t, exitUsage, command(context.Background(), nil, env, &bytes.Buffer{}, &stderr))
	assert.Contains(t, stderr.String(), "DSYNC_DEMO_ROUNDS", "a bad variable is named")
}

// TestDemoHelpAndEnvironment: -h prints every flag with its variable, the
// exit statuses and an example, on standard output, and exits 0; the
// environment sets what the command line leaves out.
func TestDemoHelpAndEnvironment(t *testing.T) {
	var stdout bytes.Buffer
	noEnv := func(string) string { return "" }
	require.Equal(t, 0, command(context.Background(), []string{"-h"}, noEnv, &stdout, &bytes.Buffer{}))
	for _, want := range []string{"usage: dsync-demo", "env DSYNC_DEMO_NODES", "env DSYNC_DEMO_HOLD", "Exit status:", "Example:"} {
		assert.Contains(t, stdout.String(), want)
	}
	stdout.Reset()
	env := func(k string) string {
		return map[string]string{"DSYNC_DEMO_NODES": "3", "DSYNC_DEMO_CLIENTS": "2", "DSYNC_DEMO_ROUNDS": "2", "DSYNC_DEMO_HOLD": "1ms"}[k]
	}
	require.Equal(t, 0, command(context.Background(), []string{"-rounds", "3"}, env, &stdout, &bytes.Buffer{}), stdout.String())
	assert.Contains(t, stdout.String(), "started 3 nodes", "DSYNC_DEMO_NODES")
	assert.Contains(t, stdout.String(), "value 6 after 6 locked increments", "2 clients from the environment, 3 rounds from the command line")
}
