package locker_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
)

var allModes = []locker.Mode{locker.ModeIS, locker.ModeIX, locker.ModeS, locker.ModeSIX, locker.ModeX}

// modeMatrix is Gray's compatibility matrix, written out apart from the
// table's own: modeMatrix[held][asked].
var modeMatrix = map[locker.Mode]map[locker.Mode]bool{
	locker.ModeIS:  {locker.ModeIS: true, locker.ModeIX: true, locker.ModeS: true, locker.ModeSIX: true},
	locker.ModeIX:  {locker.ModeIS: true, locker.ModeIX: true},
	locker.ModeS:   {locker.ModeIS: true, locker.ModeS: true},
	locker.ModeSIX: {locker.ModeIS: true},
	locker.ModeX:   {},
}

// lockMode asks l for a lock of mode on resources, by the op that carries
// it: Lock for X, RLock for the others.
func lockMode(l *locker.Local, mode locker.Mode, args locker.LockArgs) (locker.Reply, error) {
	args.Mode = mode
	if mode == locker.ModeX {
		return l.Lock(context.Background(), args)
	}
	return l.RLock(context.Background(), args)
}

func unlockMode(l *locker.Local, mode locker.Mode, uid string) (locker.Reply, error) {
	if mode == locker.ModeX {
		return l.Unlock(context.Background(), locker.LockArgs{UID: uid})
	}
	return l.RUnlock(context.Background(), locker.LockArgs{UID: uid})
}

func TestModeCompatibleIsGraysMatrix(t *testing.T) {
	for _, a := range allModes {
		for _, b := range allModes {
			assert.Equal(t, modeMatrix[a][b], locker.Compatible(a, b), "%v with %v", a, b)
			assert.Equal(t, locker.Compatible(a, b), locker.Compatible(b, a), "symmetric: %v, %v", a, b)
		}
		assert.False(t, locker.Compatible(a, 0), "%v with the zero mode", a)
	}
}

func TestModeMatrixOnTheTable(t *testing.T) {
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, WriterIntent: -1})
	defer l.Close()
	for _, held := range allModes {
		for _, asked := range allModes {
			holder, asker := "holder"+held.String()+asked.String(), "asker"+held.String()+asked.String()
			r, err := lockMode(l, held, locker.LockArgs{UID: holder, Resources: []string{"bucket"}})
			require.NoError(t, err)
			require.True(t, r.OK, "%v on a free resource", held)

			r, err = lockMode(l, asked, locker.LockArgs{UID: asker, Resources: []string{"bucket"}, NoIntent: true})
			require.NoError(t, err)
			assert.Equal(t, modeMatrix[held][asked], r.OK, "%v asked while %v is held", asked, held)
			if !r.OK {
				assert.Equal(t, locker.ReasonConflict, r.Reason, "%v asked while %v is held", asked, held)
			}

			list, err := l.List(context.Background(), locker.ListArgs{})
			require.NoError(t, err)
			var modes []locker.Mode
			for _, e := range list.Entries {
				modes = append(modes, e.Mode)
				assert.Equal(t, e.Mode == locker.ModeX, e.Write, "entry %+v", e)
			}
			want := []locker.Mode{held}
			if r.OK {
				want = append(want, asked)
			}
			assert.ElementsMatch(t, want, modes, "listing with %v held and %v asked", held, asked)

			granted := r.OK
			r, err = unlockMode(l, held, holder)
			require.NoError(t, err)
			require.True(t, r.OK, "release of %v", held)
			if granted {
				r, err = unlockMode(l, asked, asker)
				require.NoError(t, err)
				assert.True(t, r.OK, "release of %v", asked)
			}
		}
	}
	assert.Equal(t, locker.Stats{}, l.Stats(), "the table is empty")
}

func TestModeOpMustMatch(t *testing.T) {
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	for _, m := range []locker.Mode{locker.ModeIS, locker.ModeIX, locker.ModeS, locker.ModeSIX, 6, 255} {
		_, err := l.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{"a"}, Mode: m})
		assert.ErrorIs(t, err, locker.ErrInvalidArgs, "Lock of %v", m)
	}
	for _, m := range []locker.Mode{locker.ModeX, 6} {
		_, err := l.RLock(ctx, locker.LockArgs{UID: "u", Resources: []string{"a"}, Mode: m})
		assert.ErrorIs(t, err, locker.ErrInvalidArgs, "RLock of %v", m)
	}
}

// An intention lock is released by RUnlock, never by Unlock; a classic
// read lock (no mode) conflicts with an IX as an S does.
func TestModeReleaseAndClassicRead(t *testing.T) {
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, WriterIntent: -1})
	defer l.Close()
	ctx := context.Background()
	r, err := l.RLock(ctx, locker.LockArgs{UID: "ix", Resources: []string{"bucket"}, Mode: locker.ModeIX})
	require.NoError(t, err)
	require.True(t, r.OK)

	r, err = l.RLock(ctx, locker.LockArgs{UID: "reader", Resources: []string{"bucket"}})
	require.NoError(t, err)
	assert.False(t, r.OK, "a classic read lock is an S: it conflicts with an IX")

	r, err = l.Unlock(ctx, locker.LockArgs{UID: "ix"})
	require.NoError(t, err)
	assert.False(t, r.OK, "Unlock released an IX")

	r, err = l.RUnlock(ctx, locker.LockArgs{UID: "ix"})
	require.NoError(t, err)
	assert.True(t, r.OK, "RUnlock released the IX")

	r, err = l.RLock(ctx, locker.LockArgs{UID: "reader", Resources: []string{"bucket"}})
	require.NoError(t, err)
	assert.True(t, r.OK, "the read lock after the IX went")
}

func TestModeExpiry(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, Validity: 10 * time.Second, Clock: clk, SweepInterval: -1, WriterIntent: -1})
	defer l.Close()
	ctx := context.Background()
	for _, m := range []locker.Mode{locker.ModeIX, locker.ModeSIX} {
		r, err := l.RLock(ctx, locker.LockArgs{UID: "old" + m.String(), Resources: []string{m.String()}, Mode: m})
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	clk.Advance(9 * time.Second)
	for _, m := range []locker.Mode{locker.ModeIX, locker.ModeSIX} {
		r, err := l.RLock(ctx, locker.LockArgs{UID: "new" + m.String(), Resources: []string{m.String()}})
		require.NoError(t, err)
		assert.False(t, r.OK, "S while the %v is valid", m)
	}
	_, err := l.Refresh(ctx, locker.RefreshArgs{UIDs: []string{"oldSIX"}})
	require.NoError(t, err)
	clk.Advance(2 * time.Second)
	r, err := l.RLock(ctx, locker.LockArgs{UID: "newIX", Resources: []string{"IX"}})
	require.NoError(t, err)
	assert.True(t, r.OK, "S once the IX expired")
	r, err = l.RLock(ctx, locker.LockArgs{UID: "newSIX", Resources: []string{"SIX"}})
	require.NoError(t, err)
	assert.False(t, r.OK, "S while the refreshed SIX is valid")
}

// An IX refused because of readers is a writer: it holds new S out for the
// intent, but not IS, which is compatible with it, and its grant ends the
// intent.
func TestModeIntentOfIX(t *testing.T) {
	l := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	r, err := l.RLock(ctx, locker.LockArgs{UID: "s", Resources: []string{"bucket"}})
	require.NoError(t, err)
	require.True(t, r.OK)
	r, err = l.RLock(ctx, locker.LockArgs{UID: "ix", Resources: []string{"bucket"}, Mode: locker.ModeIX})
	require.NoError(t, err)
	require.Equal(t, locker.ReasonConflict, r.Reason)

	r, err = l.RLock(ctx, locker.LockArgs{UID: "s2", Resources: []string{"bucket"}})
	require.NoError(t, err)
	assert.Equal(t, locker.ReasonWriterWaiting, r.Reason, "S behind the IX's intent")
	r, err = l.RLock(ctx, locker.LockArgs{UID: "is", Resources: []string{"bucket"}, Mode: locker.ModeIS})
	require.NoError(t, err)
	assert.True(t, r.OK, "IS is compatible with the IX that waits")

	_, err = l.RUnlock(ctx, locker.LockArgs{UID: "s"})
	require.NoError(t, err)
	r, err = l.RLock(ctx, locker.LockArgs{UID: "ix", Resources: []string{"bucket"}, Mode: locker.ModeIX})
	require.NoError(t, err)
	require.True(t, r.OK, "the IX once the S went")
	_, err = l.RUnlock(ctx, locker.LockArgs{UID: "ix"})
	require.NoError(t, err)
	r, err = l.RLock(ctx, locker.LockArgs{UID: "s3", Resources: []string{"bucket"}})
	require.NoError(t, err)
	assert.True(t, r.OK, "the IX's grant ended its intent")
}

// The queue hands a freed resource to the waiters at its head whose modes
// are compatible with each other, in ticket order, and no waiter passes an
// older one it conflicts with.
func TestModeQueueHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueueTable(t)
		lock := func(mode locker.Mode, uid string, ticket uint64) locker.Reply {
			t.Helper()
			r, err := q.l.LockWait(context.Background(), mode == locker.ModeX,
				locker.LockArgs{UID: uid, Resources: []string{"bucket"}, Ticket: ticket, Wait: wait, Mode: mode},
				locker.WaitHooks{Done: func(r locker.Reply, err error) {
					out := uid + ":granted"
					switch {
					case err != nil:
						out = uid + ":" + err.Error()
					case !r.OK:
						out = uid + ":" + r.Reason.String()
					}
					q.ch <- out
				}})
			require.NoError(t, err)
			return r
		}
		require.True(t, lock(locker.ModeX, "x", 10).OK)
		for _, w := range []struct {
			mode   locker.Mode
			uid    string
			ticket uint64
		}{
			{locker.ModeIX, "ix1", 11},
			{locker.ModeIS, "is", 12},
			{locker.ModeS, "s", 13},
			{locker.ModeIX, "ix2", 14},
		} {
			assert.Equal(t, locker.ReasonQueued, lock(w.mode, w.uid, w.ticket).Reason, w.uid)
		}
		q.none()

		q.unlock(true, "x")
		assert.Equal(t, "ix1:granted", q.next())
		assert.Equal(t, "is:granted", q.next(), "IS is compatible with the IX at the head")
		q.none() // S conflicts with the IX held, and IX2 may not pass the S

		q.unlock(false, "ix1")
		assert.Equal(t, "s:granted", q.next(), "S joins the IS")
		q.none() // IX2 conflicts with the S

		q.unlock(false, "s")
		assert.Equal(t, "ix2:granted", q.next())
		q.none()
		q.unlock(false, "is")
		q.unlock(false, "ix2")
		assert.Equal(t, locker.Stats{}, q.l.Stats())
	})
}
