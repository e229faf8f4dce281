package dsync_test

import (
	"context"
	"testing"
	"time"

	"github.com/dsync-go/dsync/dsync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// watchCalls makes every node of c report its answered lock calls and its
// unlock calls. It must come before the first call.
func watchCalls(c *cluster) {
	for _, n := range c.nodes {
		n.mu.Lock()
		n.unlocks = make(chan string, 16)
		n.locked = make(chan string, 4096)
		n.mu.Unlock()
	}
}

// TestWriterThatGivesUpWithdrawsItsIntent: a writer refused because of a
// reader makes the nodes hold new readers back (writer intent). When it gives
// up, at its timeout or when its ctx ends, it withdraws that intent, and a
// new reader gets in at once instead of after locker.DefaultWriterIntent.
func TestWriterThatGivesUpWithdrawsItsIntent(t *testing.T) {
	giveUps := map[string]func(t *testing.T, c *cluster, w *dsync.DRWMutex){
		"timeout": func(t *testing.T, c *cluster, w *dsync.DRWMutex) {
			_, err := w.GetLock(context.Background(), dsync.Options{Timeout: 20 * time.Millisecond})
			require.ErrorIs(t, err, dsync.ErrTimeout, "writer under a reader")
		},
		"cancel": func(t *testing.T, c *cluster, w *dsync.DRWMutex) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() {
				_, err := w.GetLock(ctx, dsync.Options{})
				done <- err
			}()
			for _, n := range c.nodes {
				<-n.locked // refused at least once: the intent is declared
			}
			cancel()
			require.ErrorIs(t, <-done, context.Canceled, "writer under a reader")
		},
	}
	for name, giveUp := range giveUps {
		t.Run(name, func(t *testing.T) {
			eachPath(t, func(t *testing.T) {
				c := newCluster(t, 3, nil)
				ctx := context.Background()
				watchCalls(c)
				reader := dsync.NewDRWMutex(c.ds, "obj")
				_, err := reader.GetRLock(ctx, dsync.Options{})
				require.NoError(t, err)
				for _, n := range c.nodes {
					<-n.locked // the reader's grant, on every node
				}
				writers := c.client()
				giveUp(t, c, dsync.NewDRWMutex(writers, "obj"))
				// Close waits for what the writer sends in the
				// background: its withdrawal.
				require.NoError(t, writers.Close())
				ok, _, err := dsync.NewDRWMutex(c.ds, "obj").TryRLock(ctx)
				require.NoError(t, err)
				assert.True(t, ok, "a reader after the writer gave up must be granted at once")
			})
		})
	}
}
