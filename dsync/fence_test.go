package dsync_test

import (
	"context"
	"errors"
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
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	var last uint64
	for i := range 6 {
		ds := c.ds
		if i%2 == 1 {
			ds = other
		}
		m := dsync.NewDRWMutex(ds, []string{"obj", "other"}[i%3/2])
		if _, err := m.GetLock(ctx, dsync.Options{}); err != nil {
			t.Fatal(err)
		}
		token, err := m.FencingToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if token <= last || token <= m.Fence() {
			t.Fatalf("holder %d: token %d, not above the last %d and the grant fence %d", i, token, last, m.Fence())
		}
		last = token
		if err := m.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// A holder that stalled past its validity gets no token, and the next
// holder's token is above the token the stalled one got before.
func TestStalledHolderGetsNoToken(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := newCluster(t, 3, clk)
	ctx := context.Background()
	a := dsync.NewDRWMutex(c.ds, "obj")
	if _, err := a.GetLock(ctx, dsync.Options{}); err != nil {
		t.Fatal(err)
	}
	before, err := a.FencingToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A stalls: no refresh of it reaches a node, and its validity passes
	// on every clock.
	for _, n := range c.nodes {
		n.down.Store(true)
	}
	clk.Advance(validity + time.Second)
	for _, n := range c.nodes {
		n.down.Store(false)
	}
	if _, err := a.FencingToken(ctx); !errors.Is(err, dsync.ErrLockLost) {
		t.Fatalf("stalled holder's token: %v, want ErrLockLost", err)
	}

	other, err := dsync.New(netLockers(c), dsync.Config{Validity: validity, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	b := dsync.NewDRWMutex(other, "obj")
	if _, err := b.GetLock(ctx, dsync.Options{}); err != nil {
		t.Fatal(err)
	}
	after, err := b.FencingToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("the next holder's token %d is not above the stalled holder's %d", after, before)
	}
}

func TestFencingTokenFailures(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	m := dsync.NewDRWMutex(c.ds, "obj")
	if _, err := m.GetLock(ctx, dsync.Options{}); err != nil {
		t.Fatal(err)
	}
	c.nodes[0].down.Store(true)
	c.nodes[1].down.Store(true)
	if _, err := m.FencingToken(ctx); !errors.Is(err, dsync.ErrNoQuorum) {
		t.Fatalf("1 of 3 nodes up: %v, want ErrNoQuorum", err)
	}
	c.nodes[0].down.Store(false)
	c.nodes[1].down.Store(false)
	m.Unlock(ctx)

	plain := make([]locker.NetLocker, len(c.nodes))
	for i, n := range c.nodes {
		plain[i] = netOnly{n}
	}
	ds, err := dsync.New(plain, dsync.Config{Validity: validity})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	p := dsync.NewDRWMutex(ds, "obj")
	if _, err := p.GetLock(ctx, dsync.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.FencingToken(ctx); !errors.Is(err, dsync.ErrFenceUnsupported) {
		t.Fatalf("lockers without Fencer: %v, want ErrFenceUnsupported", err)
	}
	p.Unlock(ctx)

	defer func() {
		if r := recover(); r == nil {
			t.Fatal("FencingToken without the write lock did not panic")
		}
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
