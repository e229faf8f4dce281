package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunShort runs the command as a user would, shortened: the peak
// measured for a second, two seconds at half of it with one fault (an
// isolation from 0.2 s to 0.5 s, settled from 0.7 s), the samples written
// as CSV. Flatness needs minutes, so its tolerance is waived here;
// everything else must pass.
func TestRunShort(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time HTTP tier skipped in -short mode")
	}
	csvFile := filepath.Join(t.TempDir(), "soak.csv")
	var out, errs bytes.Buffer
	code := run(t.Context(), []string{
		"-duration", "2s", "-peak-for", "1s", "-interval", "250ms", "-settle", "200ms", "-outage", "300ms", "-faults", "isolate",
		"-clients", "3", "-workers", "2", "-long-hold", "300ms", "-tolerance", "100", "-csv", csvFile,
	}, &out, &errs)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", &out, &errs)
	assert.Contains(t, out.String(), "peak: ")
	assert.Contains(t, out.String(), "0 not linearizable, 0 undecided")
	assert.Contains(t, out.String(), "PASS")

	f, err := os.Open(csvFile)
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Greater(t, len(rows), 2, "a header and the samples")
	assert.Equal(t, "t_s", rows[0][0])
	assert.Len(t, rows[1], len(rows[0]))
}

// TestRunFlags checks that bad flags are refused before anything starts.
func TestRunFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-duration", "0"},
		{"-rate", "-1"},
		{"-peak-for", "10ms"},
		{"-faults", "flood"},
		{"-pprof", "0.0.0.0:0"},
	} {
		var out, errs bytes.Buffer
		assert.Equal(t, 2, run(t.Context(), args, &out, &errs), "%v: %s", args, &errs)
	}
}
