package rest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

func TestVersionConformance(t *testing.T) {
	lockertest.RunVersion(t, conformanceFactory(ClientConfig{}))
}

// TestVersionFailures: a request with the wrong secret is refused and
// learns nothing; a node whose table cannot answer says so (501, which the
// client reports as ErrProtocol).
func TestVersionFailures(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	secret := newSecret(t)
	_, endpoint := startServer(t, tbl, ServerConfig{Secret: secret})
	ctx := context.Background()
	args := locker.VersionArgs{Resources: []string{"a"}}

	r, err := newClient(t, endpoint, ClientConfig{Secret: secret}).Version(ctx, args)
	require.NoError(t, err, "the lock role")
	assert.NotZero(t, r.Incarnation)

	_, err = newClient(t, endpoint, ClientConfig{Secret: newSecret(t)}).Version(ctx, args)
	assert.ErrorIs(t, err, locker.ErrUnauthorized, "wrong secret")

	_, old := startServer(t, noQuery{tbl}, ServerConfig{Secret: secret})
	_, err = newClient(t, old, ClientConfig{Secret: secret}).Version(ctx, args)
	assert.ErrorIs(t, err, ErrProtocol, "a node without Versioner")
}
