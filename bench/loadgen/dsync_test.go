package loadgen

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDsyncLocalRun runs the generator briefly over in-process nodes, as
// `dsync-bench -transport local` does, and checks that the report is sane.
// It asserts no timings.
func TestDsyncLocalRun(t *testing.T) {
	c, err := StartCluster(ClusterConfig{Nodes: 3, Transport: TransportLocal, Validity: 10 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	target, err := NewDsyncTarget(c, DsyncConfig{RefreshInterval: 10 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond})
	require.NoError(t, err)
	defer target.Close()

	w := Workload{Concurrency: 4, Duration: 100 * time.Millisecond, Contention: 0.2, Hot: 2, Read: 0.3, Hold: 5}
	r, err := Run(context.Background(), target, w, nil)
	require.NoError(t, err)
	assert.Equal(t, "dsync/local", r.Target, "target")
	assert.Equal(t, 3, r.Nodes, "nodes")
	assert.NotZero(t, r.Pairs, "pairs %d, latencies %d, locks/s %v", r.Pairs, r.Latency.Count(), r.LocksPerSec)
	assert.Equal(t, r.Pairs, r.Latency.Count(), "pairs %d, latencies %d, locks/s %v", r.Pairs, r.Latency.Count(), r.LocksPerSec)
	assert.Positive(t, r.LocksPerSec, "pairs %d, latencies %d, locks/s %v", r.Pairs, r.Latency.Count(), r.LocksPerSec)
	assert.Zero(t, r.LockErrors+r.UnlockErrors, "%d lock and %d unlock errors, first: %s", r.LockErrors, r.UnlockErrors, r.FirstError)
	assert.Positive(t, r.CPUPerLock, "CPU/lock %v, allocs/lock %v", r.CPUPerLock, r.AllocsPerLock)
	assert.Positive(t, r.AllocsPerLock, "CPU/lock %v, allocs/lock %v", r.CPUPerLock, r.AllocsPerLock)
	assert.Equal(t, -1.0, r.WireBytesPerLock, "local transport reported wire bytes per lock")
	assert.GreaterOrEqual(t, r.RefreshPerNodePerInterval, 0.0, "refresh per node per interval")
	// Everything was released: the held locks after the run, the workers'
	// as they went (unlocks may still be finishing in the background).
	var out bytes.Buffer
	assert.NoError(t, WriteTable(&out, []*Result{r}), "table")
	assert.Contains(t, out.String(), "dsync/local", "table")
}

// TestDsyncHTTPRun runs the generator briefly over authenticated loopback
// HTTP nodes and checks that bytes on the wire were counted.
func TestDsyncHTTPRun(t *testing.T) {
	c, err := StartCluster(ClusterConfig{Nodes: 3, Transport: TransportHTTP})
	require.NoError(t, err)
	defer c.Close()
	target, err := NewDsyncTarget(c, DsyncConfig{})
	require.NoError(t, err)
	defer target.Close()
	r, err := Run(context.Background(), target, Workload{Concurrency: 2, Duration: 50 * time.Millisecond}, nil)
	require.NoError(t, err)
	require.Equal(t, "dsync/http", r.Target, "target %q, %d pairs", r.Target, r.Pairs)
	require.NotZero(t, r.Pairs, "target %q, %d pairs", r.Target, r.Pairs)
	assert.Zero(t, r.LockErrors+r.UnlockErrors, "%d lock and %d unlock errors, first: %s", r.LockErrors, r.UnlockErrors, r.FirstError)
	// A lock and an unlock to each of 3 nodes carry at least a UID each way.
	assert.GreaterOrEqual(t, r.WireBytesPerLock, 6.0*36, "bytes on the wire per lock")
	// Every lock is sent to the 3 nodes, but only the quorum's answers (2)
	// are certain to be counted when it returns: the third may still be on
	// its way when the run ends, or be withdrawn before it is sent.
	assert.GreaterOrEqual(t, r.NodeCallsPerLock, 2.0, "node calls per lock, want between a quorum (2) and about one per node (3)")
	assert.LessOrEqual(t, r.NodeCallsPerLock, 3.5, "node calls per lock, want between a quorum (2) and about one per node (3)")
}

func TestStartClusterRejectsUnknownTransport(t *testing.T) {
	c, err := StartCluster(ClusterConfig{Transport: "carrier-pigeon"})
	if err == nil {
		c.Close()
	}
	require.Error(t, err, "StartCluster accepted an unknown transport")
}
