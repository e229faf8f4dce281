package lockertest

import (
	"strings"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// The cases of the table's limits (locker.Config's MaxNameLen, MaxUIDLen,
// MaxLabelLen, MaxGrants and MaxTombstones), which every locker passes on
// to the table behind it. They set small limits, and one shard, so that the
// per-shard caps are the table's.
var limitCases = []testCase{
	{name: "LengthLimits", config: func(c *locker.Config) {
		c.MaxNameLen, c.MaxUIDLen, c.MaxLabelLen = 8, 8, 8
	}, run: func(h *harness) {
		t := h.t
		ok8, long9 := strings.Repeat("n", 8), strings.Repeat("n", 9)
		lockArgs := func(uid, name string) locker.LockArgs {
			return locker.LockArgs{UID: uid, Resources: []string{name}, Owner: "o", Source: "s", Quorum: 1}
		}
		refused := func(what string, err error, limit string) {
			t.Helper()
			require.ErrorIs(t, err, locker.ErrInvalidArgs, what)
			assert.Contains(t, err.Error(), limit, "%s: the error names the limit", what)
		}
		for _, write := range []bool{true, false} {
			lock := h.l.RLock
			if write {
				lock = h.l.Lock
			}
			_, err := lock(h.ctx, lockArgs("u", long9))
			refused("a name over MaxNameLen", err, "MaxNameLen")
			_, err = lock(h.ctx, lockArgs("uid-long9", "a"))
			refused("a uid over MaxUIDLen", err, "MaxUIDLen")
			for _, field := range []string{"owner", "source", "holder"} {
				a := lockArgs("u", "a")
				switch field {
				case "owner":
					a.Owner = long9
				case "source":
					a.Source = long9
				case "holder":
					a.Holder = long9
				}
				_, err = lock(h.ctx, a)
				refused("a "+field+" over MaxLabelLen", err, "MaxLabelLen")
			}
		}
		// What is at the limits is granted, and refreshed.
		a := lockArgs("uid-8-ok", ok8)
		a.Owner, a.Source, a.Holder = ok8, ok8, ok8
		r, err := h.l.Lock(h.ctx, a)
		require.NoError(t, err)
		require.True(t, r.OK, "a lock at every limit: %+v", r)

		// Every other call that takes a UID or names refuses them too.
		_, err = h.l.Unlock(h.ctx, locker.LockArgs{UID: "uid-long9"})
		refused("unlock of a uid over MaxUIDLen", err, "MaxUIDLen")
		_, err = h.l.RUnlock(h.ctx, locker.LockArgs{UID: "uid-long9"})
		refused("runlock of a uid over MaxUIDLen", err, "MaxUIDLen")
		_, err = h.l.Unlock(h.ctx, lockArgs("w", long9))
		refused("a withdrawal naming a name over MaxNameLen", err, "MaxNameLen")
		_, err = h.l.ForceUnlock(h.ctx, locker.LockArgs{UID: "uid-long9"})
		refused("force-unlock of a uid over MaxUIDLen", err, "MaxUIDLen")
		_, err = h.l.ForceUnlock(h.ctx, locker.LockArgs{Resources: []string{long9}})
		refused("force-unlock of a name over MaxNameLen", err, "MaxNameLen")

		// A refresh that names one UID over the limit is refused whole: the
		// grant it also names is not refreshed, and expires on time.
		h.clk.Advance(Validity / 2)
		_, err = h.l.Refresh(h.ctx, locker.RefreshArgs{UIDs: []string{"uid-8-ok", "uid-long9"}})
		refused("a refresh naming a uid over MaxUIDLen", err, "MaxUIDLen")
		h.clk.Advance(Validity / 2)
		assert.Equal(t, []locker.RefreshStatus{locker.RefreshNotHeld}, h.refresh("uid-8-ok"), "the refused refresh refreshed the grant")
	}},
	{name: "GrantCap", config: func(c *locker.Config) { c.MaxGrants, c.Shards = 3, 1 }, run: func(h *harness) {
		t := h.t
		h.mustGrant(true, "a", "a")
		h.mustGrant(false, "bc", "b", "c") // counts two
		for _, write := range []bool{true, false} {
			lock := h.l.RLock
			if write {
				lock = h.l.Lock
			}
			r, err := lock(h.ctx, args("d", "d"))
			require.ErrorIs(t, err, locker.ErrBusy, "a lock past MaxGrants")
			assert.False(t, r.OK)
		}
		// A repeated request gets the grant it has; a read of a resource
		// already read-held still needs room.
		h.mustGrant(true, "a", "a")
		_, err := h.l.RLock(h.ctx, args("b2", "b"))
		require.ErrorIs(t, err, locker.ErrBusy)
		// Room comes back with a release, ...
		require.True(t, h.unlock(true, "a"))
		h.mustGrant(true, "d", "d")
		// ... and with expiry: an expired grant is reclaimed to make room.
		h.clk.Advance(Validity)
		h.mustGrant(true, "e", "e", "f")
		h.mustGrant(true, "g", "g")
		_, err = h.l.Lock(h.ctx, args("h", "h"))
		require.ErrorIs(t, err, locker.ErrBusy)
		// Nothing of a refused lock was left behind.
		assert.Equal(t, []locker.RefreshStatus{locker.RefreshNotHeld}, h.refresh("h"))
	}},
	{name: "TombstoneCap", config: func(c *locker.Config) { c.MaxTombstones, c.Shards = 2, 1 }, run: func(h *harness) {
		t := h.t
		for _, uid := range []string{"t1", "t2", "t3"} {
			require.False(t, h.unlock(true, uid), "unlock of unknown %s", uid)
		}
		// The newest tombstones refuse their locks; the oldest was evicted,
		// and its lock, if it still comes, is granted: the cost of eviction.
		h.mustRefuse(true, "t3", locker.ReasonReleased, "a")
		h.mustRefuse(true, "t2", locker.ReasonReleased, "a")
		h.mustGrant(true, "t1", "a")
	}},
}

func init() { cases = append(cases, limitCases...) }
