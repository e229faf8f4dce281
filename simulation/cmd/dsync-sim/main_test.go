package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCommand runs the command with args in t, as main runs it under its
// own *testing.T, and returns its exit code, stdout and stderr.
func runCommand(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr, func(f func(*testing.T)) bool {
		f(t)
		return !t.Failed()
	})
	return code, stdout.String(), stderr.String()
}

// runLines returns the per-run lines (-v) of the command's stderr.
func runLines(stderr string) []string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if i := strings.LastIndexByte(line, '\r'); i >= 0 {
			line = line[i+1:] // after the progress line
		}
		if strings.Contains(line, " seed=") {
			out = append(out, line)
		}
	}
	return out
}

// TestRunReportsKnownViolations runs the negative controls, whose
// expectation is that the checkers catch their violation: the command
// passes them, and its table counts what was caught.
func TestRunReportsKnownViolations(t *testing.T) {
	code, stdout, stderr := runCommand(t, "-scenarios", "paused-past-expiry,double-grant-restart", "-seeds", "2")
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	assert.Regexp(t, `paused-past-expiry +known storage violation +2 .* 0\n`, stdout)
	assert.Regexp(t, `double-grant-restart +known lock violation +2 .* 0\n`, stdout)
}

// TestReplayLine checks the one command printed for a failing run: the
// same flags, for that one seed.
func TestReplayLine(t *testing.T) {
	o := options{nodes: 5, faults: 12, transport: "sim"}
	assert.Equal(t, "go run ./simulation/cmd/dsync-sim -scenarios random -seed 7 -seeds 1 -v -nodes 5 -faults 12", replayRun(o, "random", 7))
}

// TestRunRejectsUnknownScenarios checks the usage errors: exit 2.
func TestRunRejectsUnknownScenarios(t *testing.T) {
	code, _, stderr := runCommand(t, "-scenarios", "no-such-scenario")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `no scenario "no-such-scenario"`)
}
