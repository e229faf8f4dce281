package dsync_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// validate reads a version of m, runs between, and validates the version.
func validate(t *testing.T, m *dsync.DRWMutex, between func()) bool {
	t.Helper()
	ctx := context.Background()
	v, err := m.ReadVersion(ctx)
	require.NoError(t, err, "ReadVersion")
	between()
	ok, err := m.Validate(ctx, v)
	require.NoError(t, err, "Validate")
	return ok
}

func TestOptimisticNoWriter(t *testing.T) {
	c := newCluster(t, 3, nil)
	m := dsync.NewDRWMutex(c.ds, "a", "b")
	assert.True(t, validate(t, m, func() {}), "nobody came")
	// Another resource's writer is none of m's business.
	other := dsync.NewDRWMutex(c.ds, "c")
	assert.True(t, validate(t, m, func() {
		_, err := other.GetLock(context.Background(), dsync.Options{})
		require.NoError(t, err)
		require.NoError(t, other.Unlock(context.Background()))
	}), "a writer of another resource")
}

func TestOptimisticWriterBetween(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	m := dsync.NewDRWMutex(c.ds, "a", "b")
	// A writer of one of the resources, from another client.
	w := dsync.NewDRWMutex(c.client(), "b")
	assert.False(t, validate(t, m, func() {
		_, err := w.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		require.NoError(t, w.Unlock(ctx))
	}), "a write lock taken and released in between")
	assert.True(t, validate(t, m, func() {}), "once the writer is gone, a new version validates")
}

func TestOptimisticWriterHolds(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	m := dsync.NewDRWMutex(c.ds, "a")
	w := dsync.NewDRWMutex(c.client(), "a")

	// Taken after the version was read, and still held.
	v, err := m.ReadVersion(ctx)
	require.NoError(t, err)
	_, err = w.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	ok, err := m.Validate(ctx, v)
	require.NoError(t, err)
	assert.False(t, ok, "a writer took the lock after ReadVersion and holds it")

	// Held while the version is read: it is worth nothing, even once the
	// writer has gone.
	assert.False(t, validate(t, m, func() { require.NoError(t, w.Unlock(ctx)) }), "a version read while a writer held the lock")
}

func TestOptimisticReadersComeAndGo(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	m := dsync.NewDRWMutex(c.ds, "a")
	r := dsync.NewDRWMutex(c.client(), "a")
	_, err := r.GetRLock(ctx, dsync.Options{})
	require.NoError(t, err)
	assert.True(t, validate(t, m, func() {
		require.NoError(t, r.RUnlock(ctx))
		for range 2 {
			_, err := r.GetRLock(ctx, dsync.Options{})
			require.NoError(t, err)
		}
	}), "readers held the lock, and came and went")
	for range 2 {
		require.NoError(t, r.RUnlock(ctx))
	}
}

func TestOptimisticTooFewNodes(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	m := dsync.NewDRWMutex(c.ds, "a")

	// One node of three down: a read quorum (two) still answers.
	c.nodes[0].down.Store(true)
	assert.True(t, validate(t, m, func() {}), "two nodes of three")

	// Read with two, validate with the one of them left: no answer either
	// way.
	v, err := m.ReadVersion(ctx)
	require.NoError(t, err)
	c.nodes[1].down.Store(true)
	ok, err := m.Validate(ctx, v)
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "one node of the two read")
	assert.False(t, ok)

	// The one left cannot give a version.
	_, err = m.ReadVersion(ctx)
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "one node of three")

	// Two nodes answer, but not the two that answered ReadVersion: node 0,
	// back, was not read, so cannot vouch.
	c.nodes[1].down.Store(false)
	c.nodes[0].down.Store(true)
	v, err = m.ReadVersion(ctx)
	require.NoError(t, err)
	c.nodes[0].down.Store(false)
	c.nodes[2].down.Store(true)
	_, err = m.Validate(ctx, v)
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "nodes 1 and 2 read, 0 and 1 asked again")
}

func TestOptimisticUnsupported(t *testing.T) {
	var ls []locker.NetLocker
	for range 3 {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
		t.Cleanup(func() { tbl.Close() })
		ls = append(ls, netOnly{tbl})
	}
	ds, err := dsync.New(ls, dsync.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { ds.Close() })
	_, err = dsync.NewDRWMutex(ds, "a").ReadVersion(context.Background())
	assert.ErrorIs(t, err, dsync.ErrVersionUnsupported)
}

func TestValidateForeignVersionPanics(t *testing.T) {
	c := newCluster(t, 3, nil)
	v, err := dsync.NewDRWMutex(c.ds, "a").ReadVersion(context.Background())
	require.NoError(t, err)
	assert.Panics(t, func() { dsync.NewDRWMutex(c.ds, "a").Validate(context.Background(), v) }, "another mutex's Version")
	assert.Panics(t, func() { dsync.NewDRWMutex(c.ds, "a").Validate(context.Background(), dsync.Version{}) }, "the zero Version")
}

// restartable is a node whose table a test can replace with a new one, as
// a restart of its process does.
type restartable struct {
	mu  sync.Mutex // guards tbl
	tbl *locker.Local
	cfg locker.Config
}

func newRestartable(t *testing.T, cfg locker.Config) *restartable {
	r := &restartable{cfg: cfg, tbl: locker.New(cfg)}
	t.Cleanup(func() { r.table().Close() })
	return r
}

func (r *restartable) table() *locker.Local {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tbl
}

// restart closes the table and makes a new one, with cfg.
func (r *restartable) restart(cfg locker.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tbl.Close()
	r.tbl = locker.New(cfg)
}

func (r *restartable) Lock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	return r.table().Lock(ctx, a)
}

func (r *restartable) RLock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	return r.table().RLock(ctx, a)
}

func (r *restartable) Unlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	return r.table().Unlock(ctx, a)
}

func (r *restartable) RUnlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	return r.table().RUnlock(ctx, a)
}

func (r *restartable) Refresh(ctx context.Context, a locker.RefreshArgs) (locker.RefreshReply, error) {
	return r.table().Refresh(ctx, a)
}

func (r *restartable) ForceUnlock(ctx context.Context, a locker.LockArgs) (locker.Reply, error) {
	return r.table().ForceUnlock(ctx, a)
}

func (r *restartable) Version(ctx context.Context, a locker.VersionArgs) (locker.VersionReply, error) {
	return r.table().Version(ctx, a)
}

func (r *restartable) IsOnline() bool { return r.table().IsOnline() }
func (r *restartable) String() string { return r.table().String() }
func (r *restartable) Close() error   { return nil }

// A node that restarts between ReadVersion and Validate has forgotten the
// writes it saw: a change. A node in its restart grace period at
// ReadVersion vouches for nothing.
func TestOptimisticNodeRestart(t *testing.T) {
	cfg := locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, Validity: validity}
	var nodes []*restartable
	var ls []locker.NetLocker
	for range 3 {
		n := newRestartable(t, cfg)
		nodes = append(nodes, n)
		ls = append(ls, n)
	}
	ds, err := dsync.New(ls, dsync.Config{Validity: validity, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { ds.Close() })
	ctx := context.Background()
	m := dsync.NewDRWMutex(ds, "a")

	assert.True(t, validate(t, m, func() {}), "before any restart")
	assert.False(t, validate(t, m, func() { nodes[0].restart(cfg) }), "a node restarted in between")
	assert.True(t, validate(t, m, func() {}), "after the restart, a new version")

	// Two nodes restart into their grace period: one node left that
	// vouches is too few.
	inGrace := cfg
	inGrace.QuietPeriod = validity
	nodes[1].restart(inGrace)
	nodes[2].restart(inGrace)
	_, err = m.ReadVersion(ctx)
	assert.ErrorIs(t, err, dsync.ErrNoQuorum, "two nodes of three in their grace period")
	nodes[2].restart(cfg)
	assert.True(t, validate(t, m, func() {}), "one node of three in its grace period")
}

func TestReadOptimistic(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	m := dsync.NewDRWMutex(c.ds, "a")
	writer := c.client()
	w := dsync.NewDRWMutex(writer, "a")
	write := func() {
		_, err := w.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		require.NoError(t, w.Unlock(ctx))
	}

	// Uncontended: one read, no lock.
	reads := 0
	require.NoError(t, m.ReadOptimistic(ctx, 3, dsync.Options{}, func(context.Context) error {
		reads++
		assert.Zero(t, c.grants(), "an optimistic read holds no lock")
		return nil
	}))
	assert.Equal(t, 1, reads, "uncontended")

	// A writer during the first read: the second validates.
	reads = 0
	require.NoError(t, m.ReadOptimistic(ctx, 3, dsync.Options{}, func(context.Context) error {
		reads++
		if reads == 1 {
			write()
		}
		return nil
	}))
	assert.Equal(t, 2, reads, "a writer came during the first read")

	// A writer during every optimistic read: the last read holds the read
	// lock.
	reads = 0
	require.NoError(t, m.ReadOptimistic(ctx, 2, dsync.Options{}, func(context.Context) error {
		reads++
		if reads <= 2 {
			write()
			return nil
		}
		assert.Positive(t, c.grants(), "the fallback read holds the read lock")
		return nil
	}))
	assert.Equal(t, 3, reads, "two optimistic reads, then one under the lock")
	// RUnlock and Unlock return at a quorum; Close waits for the other
	// nodes' answers (the writer's last release may still be on its way to
	// one node).
	require.NoError(t, c.ds.Close())
	require.NoError(t, writer.Close())
	assert.Zero(t, c.grants(), "the read lock was released")
}
