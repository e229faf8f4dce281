package rest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

// TestDrainServesHoldersThenEnds: while a node drains it refuses new
// locks as a restarting node does, serves the holder's refresh and unlock,
// and Drain returns once the holder has gone; the next start of the table
// then needs no grace period.
func TestDrainServesHoldersThenEnds(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	table, err := locker.Open(locker.Config{StateDir: dir})
	require.NoError(t, err)
	secret := newSecret(t)
	srv, endpoint := startServer(t, table, ServerConfig{Secret: secret, Logger: discardLogger()})
	c, err := NewClient(endpoint, ClientConfig{Secret: secret})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	held := locker.LockArgs{UID: "holder", Resources: []string{"a"}}
	r, err := c.Lock(ctx, held)
	require.NoError(t, err)
	require.True(t, r.OK)

	drainCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- srv.Drain(drainCtx) }()
	for !srv.Draining() { // Drain sets it before it returns or waits
		select {
		case err := <-drained:
			require.Failf(t, "Drain returned with a grant held", "Drain returned %v", err)
		default:
		}
	}

	r, err = c.Lock(ctx, locker.LockArgs{UID: "newcomer", Resources: []string{"b"}})
	require.NoError(t, err)
	assert.False(t, r.OK, "no new grant while draining")
	assert.Equal(t, locker.ReasonQuiet, r.Reason, "refused as a restarting node refuses")
	assert.Greater(t, r.Grace, time.Duration(0))
	assert.LessOrEqual(t, r.Grace, time.Minute)
	r, err = c.RLock(ctx, locker.LockArgs{UID: "reader", Resources: []string{"c"}})
	require.NoError(t, err)
	assert.False(t, r.OK)

	rr, err := c.Refresh(ctx, locker.RefreshArgs{UIDs: []string{"holder"}})
	require.NoError(t, err)
	assert.Equal(t, []locker.RefreshStatus{locker.RefreshRefreshed}, rr.Status, "the holder's refresh is served")
	select {
	case err := <-drained:
		require.Failf(t, "Drain returned while a grant is held", "Drain returned %v", err)
	default:
	}
	r, err = c.Unlock(ctx, held)
	require.NoError(t, err)
	assert.True(t, r.OK, "the holder's unlock is served")
	require.NoError(t, <-drained)

	require.NoError(t, table.Close())
	again, err := locker.Open(locker.Config{StateDir: dir})
	require.NoError(t, err)
	defer again.Close()
	assert.Zero(t, again.Boot().Grace, "drained clean: no grace on the next start")
}

// TestDrainDeadline: a holder that does not leave keeps its grant; Drain
// gives up at its deadline, and the boot record then asks for a grace.
func TestDrainDeadline(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	table, err := locker.Open(locker.Config{StateDir: dir})
	require.NoError(t, err)
	srv, endpoint := startServer(t, table, ServerConfig{Insecure: true, Logger: discardLogger()})
	c, err := NewClient(endpoint, ClientConfig{Insecure: true})
	require.NoError(t, err)
	defer c.Close()
	r, err := c.Lock(context.Background(), locker.LockArgs{UID: "stays", Resources: []string{"a"}})
	require.NoError(t, err)
	require.True(t, r.OK)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, srv.Drain(ctx), context.DeadlineExceeded)
	require.NoError(t, table.Close())
	again, err := locker.Open(locker.Config{StateDir: dir})
	require.NoError(t, err)
	defer again.Close()
	assert.Equal(t, locker.DefaultValidity, again.Boot().Grace, "stopped with a grant: a grace period")
}
