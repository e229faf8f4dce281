package rest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/clock"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/locker/lockertest"
)

func TestWaitsConformance(t *testing.T) {
	t.Run("Batched", func(t *testing.T) { lockertest.RunWaits(t, conformanceFactory(ClientConfig{})) })
	t.Run("Unbatched", func(t *testing.T) {
		lockertest.RunWaits(t, conformanceFactory(ClientConfig{DisableBatching: true}))
	})
}

func TestWaitsFailures(t *testing.T) {
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})
	defer tbl.Close()
	secret := newSecret(t)
	_, endpoint := startServer(t, tbl, ServerConfig{Secret: secret})
	ctx := context.Background()

	wrong := newClient(t, endpoint, ClientConfig{Secret: newSecret(t)})
	_, err := wrong.Waits(ctx, locker.WaitsArgs{})
	assert.ErrorIs(t, err, locker.ErrUnauthorized, "wrong secret: want ErrUnauthorized")
	_, old := startServer(t, noQuery{tbl}, ServerConfig{Secret: secret})
	_, err = newClient(t, old, ClientConfig{Secret: secret}).Waits(ctx, locker.WaitsArgs{})
	assert.ErrorIs(t, err, ErrProtocol, "node without WaitReporter: want ErrProtocol")
	expectPostOnly(t, endpoint, secret, PathWaits)
	down := newClient(t, "http://127.0.0.1:1", ClientConfig{Secret: secret, CallTimeout: time.Second})
	_, err = down.Waits(ctx, locker.WaitsArgs{})
	assert.ErrorIs(t, err, locker.ErrOffline, "no server: want ErrOffline")
}

// FuzzWaitsHandler sends the waits path arbitrary, correctly signed bodies
// through the server's real handler, over a table that holds grants with
// holders and records waits. It must never panic, and every answer must be
// a decodable WaitsReply or a well-formed ErrorReply.
func FuzzWaitsHandler(f *testing.F) {
	read, _ := (&locker.WaitsArgs{}).MarshalMsg(nil)
	withdraw, _ := (&locker.WaitsArgs{Withdraw: "o/B", Resources: []string{"a"}}).MarshalMsg(nil)
	f.Add(read)
	f.Add(withdraw)
	f.Add([]byte{0x80})
	f.Add([]byte{0x81, 0xa1, 'w', 0xc0})
	f.Add([]byte{0x82, 0xa1, 'w', 0xa3, 'o', '/', 'A', 0xa1, 'r', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xa1, 'r', 0x99, 0xa1, 'a', 0xa1, 'a', 0xa1, 'a', 0xa1, 'a', 0xa1, 'a', 0xa1, 'a', 0xa1, 'a', 0xa1, 'a', 0xa1, 'a'})

	clk := clock.NewFake(epoch)
	tbl := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1, MaxResources: 8, Clock: clk})
	defer tbl.Close()
	bg := context.Background()
	tbl.Lock(bg, locker.LockArgs{UID: "ua", Resources: []string{"a"}, Holder: "o/A", Quorum: 1})
	tbl.Lock(bg, locker.LockArgs{UID: "ub", Resources: []string{"b"}, Holder: "o/B", Quorum: 1})
	srv, err := NewServer(tbl, ServerConfig{Secret: fuzzSecret, Clock: clk})
	require.NoError(f, err)
	stamper := &fuzzStamper{clk: clk, stamp: epoch.UnixNano()}
	f.Fuzz(func(t *testing.T, body []byte) {
		// Keep a cycle recorded, whatever the last body withdrew.
		tbl.Lock(bg, locker.LockArgs{UID: "ua2", Resources: []string{"b"}, Holder: "o/A"})
		tbl.Lock(bg, locker.LockArgs{UID: "ub2", Resources: []string{"a"}, Holder: "o/B"})
		serveSignedFuzz(t, srv, stamper, PathWaits, body, new(locker.WaitsReply))
	})
}
