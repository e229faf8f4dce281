package dsync_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dsync-go/dsync/dsync"
)

// awaitWithdrawals waits for an unlock call on every node of c: the
// withdrawal of a writer's intent, sent in the background.
func awaitWithdrawals(t *testing.T, c *cluster) {
	t.Helper()
	for _, n := range c.nodes {
		select {
		case <-n.unlocks:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no withdrawal of the writer's intent", n)
		}
	}
}

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
			if !errors.Is(err, dsync.ErrTimeout) {
				t.Fatalf("writer under a reader: %v, want ErrTimeout", err)
			}
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
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("writer under a reader: %v, want context.Canceled", err)
			}
		},
	}
	for name, giveUp := range giveUps {
		t.Run(name, func(t *testing.T) {
			eachPath(t, func(t *testing.T) {
				c := newCluster(t, 3, nil)
				ctx := context.Background()
				watchCalls(c)
				reader := dsync.NewDRWMutex(c.ds, "obj")
				if _, err := reader.GetRLock(ctx, dsync.Options{}); err != nil {
					t.Fatal(err)
				}
				for _, n := range c.nodes {
					<-n.locked // the reader's grant, on every node
				}
				giveUp(t, c, dsync.NewDRWMutex(c.ds, "obj"))
				awaitWithdrawals(t, c)
				ok, _, err := dsync.NewDRWMutex(c.ds, "obj").TryRLock(ctx)
				if err != nil || !ok {
					t.Fatalf("reader after the writer gave up: %v %v, want granted at once", ok, err)
				}
			})
		})
	}
}
