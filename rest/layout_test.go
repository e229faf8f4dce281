package rest

import (
	"context"
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
