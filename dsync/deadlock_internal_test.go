package dsync

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
)

func graphSize(ds *Dsync) (holds, waits int) {
	graphs.mu.Lock()
	defer graphs.mu.Unlock()
	g := graphs.m[ds]
	if g == nil {
		return 0, 0
	}
	return len(g.holds), len(g.waits)
}

// TestWaitGraphForgets checks that the graph keeps nothing once holds end,
// by release or by loss, and waits end, by grant or by giving up.
func TestWaitGraphForgets(t *testing.T) {
	ls := []locker.NetLocker{locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod, SweepInterval: -1})}
	ds, err := New(ls, Config{RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	require.NoError(t, err)
	ctx := WithHolder(context.Background(), "A")
	m := NewDRWMutex(ds, "x", "y")
	_, err = m.GetLock(ctx, Options{})
	require.NoError(t, err)
	h, w := graphSize(ds)
	require.Equal(t, 2, h, "holding x,y: %d resources held, %d holders waiting", h, w)
	require.Zero(t, w, "holding x,y: %d resources held, %d holders waiting", h, w)
	// A wait that gives up leaves the graph.
	other := WithHolder(context.Background(), "B")
	_, err = NewDRWMutex(ds, "x").GetLock(other, Options{Timeout: 10 * time.Millisecond})
	require.Error(t, err, "granted while held")
	_, w = graphSize(ds)
	require.Zero(t, w, "waits left after a timeout")
	m.Unlock(ctx)
	waitEmpty(t, ds)

	// A lost hold leaves the graph: Close loses every lock.
	_, err = NewDRWMutex(ds, "x").GetLock(ctx, Options{})
	require.NoError(t, err)
	ds.Close()
	waitEmpty(t, ds)
}

// waitEmpty waits for the graph of ds to be dropped: holds leave it from a
// context.AfterFunc goroutine (until then they are ignored, their contexts
// being done).
func waitEmpty(t *testing.T, ds *Dsync) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, w := graphSize(ds)
		if h == 0 && w == 0 {
			graphs.mu.Lock()
			_, kept := graphs.m[ds]
			graphs.mu.Unlock()
			if !kept {
				return
			}
		}
		if time.Now().After(deadline) {
			require.Failf(t, "graph not emptied", "%d holds, %d waits", h, w)
		}
		runtime.Gosched()
	}
}
