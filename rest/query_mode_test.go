package rest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// answers is a table whose queries answer holders of its choosing: a node
// that predates modes, or a faulty one.
type answers struct {
	*locker.Local
	holders []locker.Holder
}

func (a *answers) Query(ctx context.Context, args locker.QueryArgs) (locker.QueryReply, error) {
	r := locker.QueryReply{Resources: make([]locker.Holders, len(args.Resources))}
	for i := range r.Resources {
		r.Resources[i].Holders = a.holders
	}
	return r, nil
}

// TestQueryCarriesModes checks that a query over HTTP tells each holder's
// mode, intention modes included, and that the client takes the answers of
// a node that predates modes (no mode: Write tells X from S) but refuses,
// with ErrProtocol, a mode out of range or a Write that contradicts it.
func TestQueryCarriesModes(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	secret := newSecret(t)
	_, endpoint := startServer(t, tbl, ServerConfig{Secret: secret})
	c := newClient(t, endpoint, ClientConfig{Secret: secret})
	ctx := context.Background()

	grant := func(uid, name string, mode locker.Mode) {
		t.Helper()
		a := locker.LockArgs{UID: uid, Resources: []string{name}, Quorum: 1, Mode: mode}
		var r locker.Reply
		var err error
		if mode == locker.ModeX {
			r, err = c.Lock(ctx, a)
		} else {
			r, err = c.RLock(ctx, a)
		}
		require.NoError(t, err, "lock %s in %v", name, mode)
		require.True(t, r.OK, "lock %s in %v: %+v", name, mode, r)
	}
	grant("ix", "bucket", locker.ModeIX)
	grant("is", "bucket", locker.ModeIS)
	grant("six", "other", locker.ModeSIX)
	grant("x", "bucket/object", locker.ModeX)
	grant("s", "bucket/listed", 0) // a classic read lock

	r, err := c.Query(ctx, locker.QueryArgs{Resources: []string{"bucket", "other", "bucket/object", "bucket/listed"}})
	require.NoError(t, err)
	require.Len(t, r.Resources, 4)
	modes := func(hs []locker.Holder) map[string]locker.Mode {
		m := map[string]locker.Mode{}
		for _, h := range hs {
			assert.Equal(t, h.Mode == locker.ModeX, h.Write, "holder %+v", h)
			m[h.Tag] = h.Mode
		}
		return m
	}
	tag := locker.UIDTag
	assert.Equal(t, map[string]locker.Mode{tag("ix"): locker.ModeIX, tag("is"): locker.ModeIS}, modes(r.Resources[0].Holders))
	assert.Equal(t, map[string]locker.Mode{tag("six"): locker.ModeSIX}, modes(r.Resources[1].Holders))
	assert.Equal(t, map[string]locker.Mode{tag("x"): locker.ModeX}, modes(r.Resources[2].Holders))
	assert.Equal(t, map[string]locker.Mode{tag("s"): locker.ModeS}, modes(r.Resources[3].Holders))

	ask := func(holders ...locker.Holder) (locker.QueryReply, error) {
		t.Helper()
		_, ep := startServer(t, &answers{Local: tbl, holders: holders}, ServerConfig{Secret: secret})
		return newClient(t, ep, ClientConfig{Secret: secret}).Query(ctx, locker.QueryArgs{Resources: []string{"a"}})
	}
	// A node that predates modes: no "md" on the wire.
	r, err = ask(locker.Holder{Tag: tag("w"), Write: true}, locker.Holder{Tag: tag("r")})
	require.NoError(t, err)
	require.Len(t, r.Resources, 1)
	require.Len(t, r.Resources[0].Holders, 2)
	assert.Equal(t, locker.ModeX, locker.HolderMode(r.Resources[0].Holders[0]))
	assert.Equal(t, locker.ModeS, locker.HolderMode(r.Resources[0].Holders[1]))

	for _, bad := range []locker.Holder{
		{Tag: tag("u"), Mode: locker.ModeX + 1},
		{Tag: tag("u"), Mode: 255},
		{Tag: tag("u"), Mode: locker.ModeX},               // X without Write
		{Tag: tag("u"), Mode: locker.ModeIX, Write: true}, // Write of another mode
	} {
		_, err := ask(locker.Holder{Tag: tag("ok"), Mode: locker.ModeIS}, bad)
		assert.ErrorIs(t, err, ErrProtocol, "holder %+v", bad)
	}
}
