package locker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
)

func TestBusyRefusesPastMaxWaiters(t *testing.T) {
	l := New(Config{MaxWaiters: 1, SweepInterval: -1})
	defer l.Close()
	ctx := context.Background()
	// Hold the shard of "a", so that a lock of "a" waits for it.
	sa := &l.shards[l.shardOf("a")]
	sa.mu.Lock()
	// The second caller's UID must not sort before "a"'s shard, or it could
	// wait on a shard the first caller holds rather than be refused on "a"'s.
	u2 := "u2"
	for i := 0; l.shardOf(u2) < l.shardOf("a"); i++ {
		u2 = fmt.Sprint("u2-", i)
	}

	first := make(chan error, 1)
	go func() {
		r, err := l.Lock(ctx, LockArgs{UID: "u1", Resources: []string{"a"}})
		if err == nil && !r.OK {
			err = errors.New("refused")
		}
		first <- err
	}()
	// Wait until the goroutine counts as a waiter on one of those shards.
	for sa.waiters.Load() == 0 {
		runtime.Gosched()
	}
	_, err := l.Lock(ctx, LockArgs{UID: u2, Resources: []string{"a"}})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second waiter: err %v, want ErrBusy", err)
	}
	// Unlocks are never refused: ErrBusy must not apply to them.
	sa.mu.Unlock()
	if err := <-first; err != nil {
		t.Fatalf("first waiter: %v", err)
	}
	if r, err := l.Unlock(ctx, LockArgs{UID: "u1"}); err != nil || !r.OK {
		t.Fatalf("unlock: %v %v", r, err)
	}
	if st := l.Stats(); st != (Stats{}) {
		t.Fatalf("busy call left state behind: %+v", st)
	}
}
