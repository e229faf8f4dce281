package dsync_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
)

// TestAdaptiveEverywhere: the primitives whose acquisitions used to take no
// Options (Mutex.Lock, Barrier.Wait, Cond.Wait) have a With variant that
// passes Options.Adaptive to each of their acquisitions. An AdaptiveTimeout
// with a window of one is told of each quick success, and each takes a
// quarter off its timeout: 40 s, 30 s, 22.5 s. Mutex.LockWith acquires once;
// Barrier.WaitWith twice (its member slot, its arrival); Cond.WaitWith twice
// (its registration, the mutex again).
func TestAdaptiveEverywhere(t *testing.T) {
	cfg := dsync.AdaptiveConfig{Initial: 40 * time.Second, Min: time.Second, Max: time.Minute, Window: 1}
	want := map[string]time.Duration{"Mutex.LockWith": 30 * time.Second, "Barrier.WaitWith": 22500 * time.Millisecond, "Cond.WaitWith": 22500 * time.Millisecond}
	for name, use := range map[string]func(t *testing.T, ds *dsync.Dsync, opts dsync.Options){
		"Mutex.LockWith": func(t *testing.T, ds *dsync.Dsync, opts dsync.Options) {
			m := dsync.NewMutex(ds, "obj")
			_, err := m.LockWith(context.Background(), opts)
			require.NoError(t, err)
			require.NoError(t, m.Unlock(context.Background()))
		},
		"Barrier.WaitWith": func(t *testing.T, ds *dsync.Dsync, opts dsync.Options) {
			b := dsync.NewBarrier(ds, "b", 1)
			require.NoError(t, b.WaitWith(context.Background(), opts))
			require.NoError(t, b.Close(context.Background()))
		},
		"Cond.WaitWith": func(t *testing.T, ds *dsync.Dsync, opts dsync.Options) {
			ctx := context.Background()
			m := dsync.NewMutex(ds, "obj")
			c := dsync.NewCond(ds, "cond")
			_, err := m.Lock(ctx)
			require.NoError(t, err)
			signalled := make(chan error, 1)
			go func() {
				time.Sleep(time.Second) // virtual: once the waiter has registered
				signalled <- c.Signal(ctx)
			}()
			_, err = c.WaitWith(ctx, m, opts)
			require.NoError(t, err)
			require.NoError(t, <-signalled)
			require.NoError(t, m.Unlock(ctx))
		},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newWaitingCluster(t, 3, nil)
				a, err := dsync.NewAdaptiveTimeout(cfg)
				require.NoError(t, err)
				use(t, c.client(t, "p", dsync.Config{RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}), dsync.Options{Adaptive: a})
				assert.Equal(t, want[name], a.Timeout(), "the AdaptiveTimeout is told of each acquisition")
			})
		})
	}
}
