package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

func TestHolderModeNames(t *testing.T) {
	for _, tc := range []struct {
		e    locker.Entry
		want string
	}{
		{locker.Entry{Write: true}, "write"},
		{locker.Entry{Write: true, Mode: locker.ModeX}, "write"},
		{locker.Entry{}, "read"}, // a node that predates modes
		{locker.Entry{Mode: locker.ModeS}, "read"},
		{locker.Entry{Mode: locker.ModeIS}, "IS"},
		{locker.Entry{Mode: locker.ModeIX}, "IX"},
		{locker.Entry{Mode: locker.ModeSIX}, "SIX"},
	} {
		assert.Equal(t, tc.want, (&holder{Entry: tc.e}).mode(), "%+v", tc.e)
	}
}

// TestLocksShowsIntentionModes: a writer of an object taken through a
// Hierarchy holds its bucket in IX, and dsync locks shows both, as a table
// and as JSON.
func TestLocksShowsIntentionModes(t *testing.T) {
	c, getenv := testNodes(t)
	ls := testLockers(t, c)
	ds, err := dsync.New(ls, dsync.Config{Owner: "test-process"})
	require.NoError(t, err)
	defer ds.Close()
	h, err := dsync.NewHierarchy("bucket", "object")
	require.NoError(t, err)
	held, err := h.Lock(context.Background(), ds, dsync.Options{Source: "held-by-test"}, dsync.LevelLock{Level: "object", Name: "photos/cat.jpg"})
	require.NoError(t, err)
	defer held.Release(context.Background())
	// A quorum granted each level; wait for the third node's grants.
	require.Eventually(t, func() bool {
		grants := 0
		for _, n := range c.Nodes() {
			grants += n.Table().Stats().Grants
		}
		return grants == 6
	}, 30*time.Second, time.Millisecond, "both levels on every node")

	out, _, err := runCmd(t, getenv, "locks")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Equal(t, []string{"photos", "IX", "3/3"}, strings.Fields(lines[1])[:3], out)
	assert.Equal(t, []string{"photos/cat.jpg", "write", "3/3"}, strings.Fields(lines[2])[:3], out)

	out, _, err = runCmd(t, getenv, "locks", "-json")
	require.NoError(t, err)
	var got []holderJSON
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Len(t, got, 2)
	assert.Equal(t, "photos", got[0].Resource)
	assert.Equal(t, "IX", got[0].Mode)
	assert.Equal(t, "write", got[1].Mode)
}
