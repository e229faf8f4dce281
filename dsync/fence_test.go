package dsync_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/locker"
)

// Every holder of a write lock, from any client, gets a larger token than
// every holder before it, on any resource of the node set.
func TestFencingTokensGrowWithEachHolder(t *testing.T) {
	c := newCluster(t, 3, nil)
	other, err := dsync.New(netLockers(c), dsync.Config{Validity: validity})
	require.NoError(t, err)
	defer other.Close()
	ctx := context.Background()
	var last uint64
	for i := range 6 {
		ds := c.ds
		if i%2 == 1 {
			ds = other
		}
		m := dsync.NewDRWMutex(ds, []string{"obj", "other"}[i%3/2])
		_, err := m.GetLock(ctx, dsync.Options{})
		require.NoError(t, err)
		token, err := m.FencingToken(ctx)
		require.NoError(t, err)
		require.Greater(t, token, last, "holder %d: token %d, not above the last %d and the grant fence %d", i, token, last, m.Fence())
		require.Greater(t, token, m.Fence(), "holder %d: token %d, not above the last %d and the grant fence %d", i, token, last, m.Fence())
		last = token
		require.NoError(t, m.Unlock(ctx))
	}
}

// A holder that stalled past its validity gets no token, and the next
// holder's token is above the token the stalled one got before.
func TestStalledHolderGetsNoToken(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := newCluster(t, 3, clk)
	ctx := context.Background()
	a := dsync.NewDRWMutex(c.ds, "obj")
	_, err := a.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	before, err := a.FencingToken(ctx)
	require.NoError(t, err)
	// A stalls: no refresh of it reaches a node, and its validity passes
	// on every clock.
	for _, n := range c.nodes {
		n.down.Store(true)
	}
	clk.Advance(validity + time.Second)
	for _, n := range c.nodes {
		n.down.Store(false)
	}
	_, err = a.FencingToken(ctx)
	require.ErrorIs(t, err, dsync.ErrLockLost, "stalled holder's token")

	other, err := dsync.New(netLockers(c), dsync.Config{Validity: validity, Clock: clk})
	require.NoError(t, err)
	defer other.Close()
	b := dsync.NewDRWMutex(other, "obj")
	_, err = b.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	after, err := b.FencingToken(ctx)
	require.NoError(t, err)
	require.Greater(t, after, before, "the next holder's token is not above the stalled holder's")
}

func TestFencingTokenFailures(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	m := dsync.NewDRWMutex(c.ds, "obj")
	_, err := m.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	c.nodes[0].down.Store(true)
	c.nodes[1].down.Store(true)
	_, err = m.FencingToken(ctx)
	require.ErrorIs(t, err, dsync.ErrNoQuorum, "1 of 3 nodes up")
	c.nodes[0].down.Store(false)
	c.nodes[1].down.Store(false)
	m.Unlock(ctx)

	plain := make([]locker.NetLocker, len(c.nodes))
	for i, n := range c.nodes {
		plain[i] = netOnly{n}
	}
	ds, err := dsync.New(plain, dsync.Config{Validity: validity})
	require.NoError(t, err)
	defer ds.Close()
	p := dsync.NewDRWMutex(ds, "obj")
	_, err = p.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	_, err = p.FencingToken(ctx)
	require.ErrorIs(t, err, dsync.ErrFenceUnsupported, "lockers without Fencer")
	p.Unlock(ctx)

	defer func() {
		r := recover()
		require.NotNil(t, r, "FencingToken without the write lock did not panic")
	}()
	p.FencingToken(ctx)
}

// netLockers returns c's nodes as lockers for another client.
func netLockers(c *cluster) []locker.NetLocker {
	ls := make([]locker.NetLocker, len(c.nodes))
	for i, n := range c.nodes {
		ls[i] = n
	}
	return ls
}

// A token is never computed past locker.MaxFence: once the nodes' counters
// have reached it, FencingToken refuses, and top+1 does not wrap around.
func TestFencingTokenRefusesPastMaxFence(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	m := dsync.NewDRWMutex(c.ds, "obj")
	_, err := m.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	for _, n := range c.nodes {
		r, err := n.RaiseFence(ctx, locker.FenceArgs{Floor: locker.MaxFence})
		require.NoError(t, err)
		require.Equal(t, uint64(locker.MaxFence), r.Fence)
	}
	token, err := m.FencingToken(ctx)
	require.ErrorIs(t, err, locker.ErrFenceExhausted)
	assert.Zero(t, token)
	assert.NoError(t, m.Unlock(ctx))

	// And the nodes grant nothing more rather than wrap their counters.
	ok, _, err := dsync.NewDRWMutex(c.ds, "other").TryLock(ctx)
	assert.False(t, ok)
	assert.ErrorIs(t, err, dsync.ErrNoQuorum)
}
