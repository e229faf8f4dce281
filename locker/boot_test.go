package locker_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

// open opens a table on dir with validity v and a fake clock.
func open(t *testing.T, dir string, v time.Duration, clk *clock.Fake) *locker.Local {
	t.Helper()
	l, err := locker.Open(locker.Config{StateDir: dir, Validity: v, Clock: clk, SweepInterval: -1})
	require.NoError(t, err)
	return l
}

func lockA(t *testing.T, l *locker.Local, uid string) locker.Reply {
	t.Helper()
	r, err := l.Lock(context.Background(), locker.LockArgs{UID: uid, Resources: []string{"a"}})
	require.NoError(t, err)
	return r
}

func TestBootFirstStartHasNoGrace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // created by Open
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	l := open(t, dir, time.Minute, clk)
	defer l.Close()
	info := l.Boot()
	assert.True(t, info.FirstStart)
	assert.Zero(t, info.Grace)
	assert.EqualValues(t, 1, info.Boots)
	assert.Len(t, info.ID, 16)
	assert.True(t, lockA(t, l, "u").OK, "a first start grants at once")
}

func TestBootCleanStopHasNoGrace(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	l := open(t, dir, time.Minute, clk)
	id := l.Boot().ID
	require.True(t, lockA(t, l, "u").OK)
	_, err := l.Unlock(context.Background(), locker.LockArgs{UID: "u"})
	require.NoError(t, err)
	require.NoError(t, l.Close())

	l = open(t, dir, time.Minute, clk)
	defer l.Close()
	info := l.Boot()
	assert.False(t, info.FirstStart)
	assert.Zero(t, info.Grace, "the last stop left no grant: %s", info.Reason)
	assert.EqualValues(t, 2, info.Boots)
	assert.Equal(t, id, info.ID, "the node keeps its identity")
	assert.True(t, lockA(t, l, "v").OK)
}

func TestBootStopWithExpiredGrantsHasNoGrace(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	l := open(t, dir, time.Minute, clk)
	require.True(t, lockA(t, l, "u").OK)
	clk.Advance(time.Minute) // expired, not yet swept
	require.NoError(t, l.Close())
	l = open(t, dir, time.Minute, clk)
	defer l.Close()
	assert.Zero(t, l.Boot().Grace)
}

func TestBootStopWithLiveGrantsWaits(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	l := open(t, dir, time.Minute, clk)
	require.True(t, lockA(t, l, "u").OK)
	require.NoError(t, l.Close())
	before := l.Boot().Incarnation
	require.NotZero(t, before)

	l = open(t, dir, time.Minute, clk)
	defer l.Close()
	assert.Equal(t, time.Minute, l.Boot().Grace)
	r := lockA(t, l, "v")
	assert.False(t, r.OK)
	assert.Equal(t, locker.ReasonQuiet, r.Reason)
	assert.Equal(t, time.Minute, r.Grace)
	// The holder of u finds it not held, in grace, and reclaims it, naming
	// the incarnation the answer named.
	st, err := l.Refresh(context.Background(), locker.RefreshArgs{UIDs: []string{"u"}})
	require.NoError(t, err)
	assert.Equal(t, []locker.RefreshStatus{locker.RefreshNotHeld}, st.Status)
	assert.Equal(t, l.Boot().Incarnation, st.Incarnation)
	assert.NotEqual(t, before, st.Incarnation, "every start has an incarnation of its own, StateDir or not")
	reclaim := locker.LockArgs{UID: "u", Resources: []string{"a"}, Reclaim: true, Incarnation: before}
	r, err = l.Lock(context.Background(), reclaim)
	require.NoError(t, err)
	assert.Equal(t, locker.ReasonStaleReclaim, r.Reason, "a reclaim naming the previous start")
	reclaim.Incarnation = st.Incarnation
	r, err = l.Lock(context.Background(), reclaim)
	require.NoError(t, err)
	assert.True(t, r.OK)
}

func TestBootCrashWaitsAtLeastTheOldValidity(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	crashed := open(t, dir, 10*time.Minute, clk) // never closed: a crash
	require.True(t, lockA(t, crashed, "u").OK)

	// Restarted with a shorter validity, the node still waits out the
	// grants it gave with the longer one.
	l := open(t, dir, time.Minute, clk)
	assert.Equal(t, 10*time.Minute, l.Boot().Grace)
	require.NoError(t, l.Close()) // no grant: clean

	// And a crash during that grace is remembered with the longer one too.
	crashed = open(t, dir, time.Minute, clk)
	require.True(t, lockA(t, crashed, "w").OK)
	l2 := open(t, dir, time.Minute, clk)
	defer l2.Close()
	assert.Equal(t, time.Minute, l2.Boot().Grace)
}

func TestBootExplicitQuietPeriod(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	l, err := locker.Open(locker.Config{StateDir: dir, QuietPeriod: 5 * time.Second, Clock: clk, SweepInterval: -1})
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, l.Boot().Grace, "an explicit quiet period applies on every start")
	require.NoError(t, l.Close())

	l, err = locker.Open(locker.Config{StateDir: dir, QuietPeriod: locker.NoQuietPeriod, Clock: clk, SweepInterval: -1})
	require.NoError(t, err)
	defer l.Close()
	assert.Zero(t, l.Boot().Grace)
}

func TestBootCorruptRecordIsAnError(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dsync-boot.json"), []byte("{not json"), 0o600))
	_, err := locker.Open(locker.Config{StateDir: dir})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "corrupt")
}

func TestBootUnwritableDirIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err := locker.Open(locker.Config{StateDir: filepath.Join(file, "sub")})
	assert.Error(t, err)
}

func TestNewWithStateDirPanics(t *testing.T) {
	assert.PanicsWithValue(t, "locker: New with Config.StateDir set; use Open, which reports errors of the boot record", func() {
		locker.New(locker.Config{StateDir: t.TempDir()})
	})
}

func TestOpenReportsInvalidConfig(t *testing.T) {
	_, err := locker.Open(locker.Config{Validity: -time.Second})
	assert.Error(t, err)
}

func TestNewStartsInGraceByDefault(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	l := locker.New(locker.Config{Validity: 20 * time.Second, Clock: clk, SweepInterval: -1})
	defer l.Close()
	assert.Equal(t, 20*time.Second, l.Boot().Grace)
	assert.Equal(t, 20*time.Second, l.Grace())
	r := lockA(t, l, "u")
	assert.Equal(t, locker.ReasonQuiet, r.Reason)
	clk.Advance(20 * time.Second)
	assert.Zero(t, l.Grace())
	assert.True(t, lockA(t, l, "u").OK)
}
