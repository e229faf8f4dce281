package rest

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// A node tells the fingerprint of its layout in its signed hello; a node
// without one tells none, and signs as nodes did before layouts.
func TestHelloTellsTheLayout(t *testing.T) {
	ctx := context.Background()
	secret := newSecret(t)
	for _, layout := range []string{"v1-0123456789abcdef0123456789abcdef", ""} {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
		t.Cleanup(func() { tbl.Close() })
		_, ep := startServer(t, tbl, ServerConfig{Secret: secret, Layout: layout})
		c := newClient(t, ep, ClientConfig{Secret: secret})
		got, err := c.Layout(ctx)
		require.NoError(t, err)
		assert.Equal(t, layout, got)
		// The signed hello is what the client signs its requests for.
		r, err := c.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{"r"}, Owner: "o", Source: "s", Quorum: 1})
		require.NoError(t, err)
		assert.True(t, r.OK)
	}
}

func TestServerRefusesAnInvalidLayout(t *testing.T) {
	tbl := locker.New(locker.Config{})
	defer tbl.Close()
	_, err := NewServer(tbl, ServerConfig{Insecure: true, Layout: "not a fingerprint"})
	assert.Error(t, err)
}

// A client of a layout sends nothing to a node of another, or of none,
// and still tells what the node's layout is.
func TestClientRefusesANodeOfAnotherLayout(t *testing.T) {
	ctx := context.Background()
	secret := newSecret(t)
	const mine = "v1-0123456789abcdef0123456789abcdef"
	for _, theirs := range []string{"v1-ffffffffffffffffffffffffffffffff", ""} {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
		t.Cleanup(func() { tbl.Close() })
		_, ep := startServer(t, tbl, ServerConfig{Secret: secret, Layout: theirs})
		c := newClient(t, ep, ClientConfig{Secret: secret, Layout: mine})
		_, err := c.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{"r"}, Owner: "o", Source: "s", Quorum: 1})
		require.ErrorIs(t, err, ErrLayout, "node of layout %q", theirs)
		assert.Zero(t, tbl.Stats().Grants, "nothing reached the node")
		got, err := c.Layout(ctx)
		require.NoError(t, err)
		assert.Equal(t, theirs, got)
	}
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	t.Cleanup(func() { tbl.Close() })
	_, ep := startServer(t, tbl, ServerConfig{Secret: secret, Layout: mine})
	c := newClient(t, ep, ClientConfig{Secret: secret, Layout: mine})
	r, err := c.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{"r"}, Owner: "o", Source: "s", Quorum: 1})
	require.NoError(t, err)
	assert.True(t, r.OK)
}

// Growing a deployment restarts its nodes with a new layout: a client of
// the old one, still running, sends nothing to a node once it has
// restarted with the new one (it asks the hello again after the node's
// restart, and refuses it), so it cannot lock a resource on the set the
// old layout gives it while clients of the new layout lock it on another.
func TestClientRefusesANodeRestartedWithAnotherLayout(t *testing.T) {
	ctx := context.Background()
	secret := newSecret(t)
	const old, grown = "v1-00000000000000000000000000000001", "v1-00000000000000000000000000000002"
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	t.Cleanup(func() { tbl.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	srv, err := NewServer(tbl, ServerConfig{Secret: secret, Layout: old})
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	c := newClient(t, "http://"+addr, ClientConfig{Secret: secret, Layout: old})
	r, err := c.Lock(ctx, locker.LockArgs{UID: "u1", Resources: []string{"r1"}, Owner: "o", Source: "s", Quorum: 1})
	require.NoError(t, err)
	require.True(t, r.OK)

	// The node restarts (a new start: a new incarnation) with the grown
	// layout, on the same address.
	require.NoError(t, srv.Close())
	require.NoError(t, <-served)
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	serveOn(t, ln, tbl, ServerConfig{Secret: secret, Layout: grown})

	_, err = c.Lock(ctx, locker.LockArgs{UID: "u2", Resources: []string{"r2"}, Owner: "o", Source: "s", Quorum: 1})
	require.ErrorIs(t, err, ErrLayout, "a client of the old layout, after the node's restart")
	_, err = c.Refresh(ctx, locker.RefreshArgs{UIDs: []string{"u1"}})
	require.ErrorIs(t, err, ErrLayout, "its refreshes too: its locks there lapse")
	got, err := c.Layout(ctx)
	require.NoError(t, err)
	assert.Equal(t, grown, got)

	fresh := newClient(t, "http://"+addr, ClientConfig{Secret: secret, Layout: grown})
	r, err = fresh.Lock(ctx, locker.LockArgs{UID: "u3", Resources: []string{"r3"}, Owner: "o", Source: "s", Quorum: 1})
	require.NoError(t, err)
	assert.True(t, r.OK, "a client of the grown layout")
}

// During a change of layout from A to B, nodes tell the change's
// fingerprint (A.B), then B's: clients of A and of the change lock
// through a node of the change, clients of the change and of B through a
// node of B, and a client of B refuses a node still in the change.
func TestClientsOfALayoutChange(t *testing.T) {
	ctx := context.Background()
	secret := newSecret(t)
	const (
		a = "v1-0123456789abcdef0123456789abcdef"
		b = "v1-ffffffffffffffffffffffffffffffff"
	)
	for _, tc := range []struct {
		node, client string
		ok           bool
	}{
		{a + "." + b, a, true}, {a + "." + b, a + "." + b, true}, {a + "." + b, b, false},
		{b, a + "." + b, true}, {b, a, false},
	} {
		tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
		t.Cleanup(func() { tbl.Close() })
		_, ep := startServer(t, tbl, ServerConfig{Secret: secret, Layout: tc.node})
		c := newClient(t, ep, ClientConfig{Secret: secret, Layout: tc.client})
		r, err := c.Lock(ctx, locker.LockArgs{UID: "u", Resources: []string{"r"}, Owner: "o", Source: "s", Quorum: 1})
		if tc.ok {
			require.NoError(t, err, "client %s, node %s", tc.client, tc.node)
			assert.True(t, r.OK)
			continue
		}
		require.ErrorIs(t, err, ErrLayout, "client %s, node %s", tc.client, tc.node)
		assert.Zero(t, tbl.Stats().Grants, "nothing reached the node")
	}
	long := ServerConfig{Secret: secret, Layout: a + "." + b + "." + b + "." + b}
	tbl := locker.New(locker.Config{})
	defer tbl.Close()
	_, err := NewServer(tbl, long)
	assert.ErrorContains(t, err, "is not 1 to 128", "a layout longer than MaxLayoutLen")
}
