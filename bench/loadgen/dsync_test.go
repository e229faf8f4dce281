package loadgen

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDsyncLocalRun runs the generator briefly over in-process nodes, as
// `dsync-bench -transport local` does, and checks that the report is sane.
// It asserts no timings.
func TestDsyncLocalRun(t *testing.T) {
	c, err := StartCluster(ClusterConfig{Nodes: 3, Transport: TransportLocal, Validity: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	target, err := NewDsyncTarget(c, DsyncConfig{RefreshInterval: 10 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()

	w := Workload{Concurrency: 4, Duration: 100 * time.Millisecond, Contention: 0.2, Hot: 2, Read: 0.3, Hold: 5}
	r, err := Run(context.Background(), target, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Target != "dsync/local" || r.Nodes != 3 {
		t.Errorf("target %q with %d nodes", r.Target, r.Nodes)
	}
	if r.Pairs == 0 || r.Latency.Count() != r.Pairs || r.LocksPerSec <= 0 {
		t.Errorf("pairs %d, latencies %d, locks/s %v", r.Pairs, r.Latency.Count(), r.LocksPerSec)
	}
	if r.LockErrors+r.UnlockErrors != 0 {
		t.Errorf("%d lock and %d unlock errors, first: %s", r.LockErrors, r.UnlockErrors, r.FirstError)
	}
	if r.CPUPerLock <= 0 || r.AllocsPerLock <= 0 {
		t.Errorf("CPU/lock %v, allocs/lock %v", r.CPUPerLock, r.AllocsPerLock)
	}
	if r.WireBytesPerLock != -1 {
		t.Errorf("local transport reported %v wire bytes per lock", r.WireBytesPerLock)
	}
	if r.RefreshPerNodePerInterval < 0 {
		t.Errorf("refresh per node per interval %v", r.RefreshPerNodePerInterval)
	}
	// Everything was released: the held locks after the run, the workers'
	// as they went (unlocks may still be finishing in the background).
	var out bytes.Buffer
	if err := WriteTable(&out, []*Result{r}); err != nil || !strings.Contains(out.String(), "dsync/local") {
		t.Errorf("table: %v\n%s", err, out.String())
	}
}

// TestDsyncHTTPRun runs the generator briefly over authenticated loopback
// HTTP nodes and checks that bytes on the wire were counted.
func TestDsyncHTTPRun(t *testing.T) {
	c, err := StartCluster(ClusterConfig{Nodes: 3, Transport: TransportHTTP})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	target, err := NewDsyncTarget(c, DsyncConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	r, err := Run(context.Background(), target, Workload{Concurrency: 2, Duration: 50 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Target != "dsync/http" || r.Pairs == 0 {
		t.Fatalf("target %q, %d pairs", r.Target, r.Pairs)
	}
	if r.LockErrors+r.UnlockErrors != 0 {
		t.Errorf("%d lock and %d unlock errors, first: %s", r.LockErrors, r.UnlockErrors, r.FirstError)
	}
	// A lock and an unlock to each of 3 nodes carry at least a UID each way.
	if r.WireBytesPerLock < 6*36 {
		t.Errorf("%v bytes on the wire per lock", r.WireBytesPerLock)
	}
	// Every lock is sent to the 3 nodes, but only the quorum's answers (2)
	// are certain to be counted when it returns: the third may still be on
	// its way when the run ends, or be withdrawn before it is sent.
	if r.NodeCallsPerLock < 2 || r.NodeCallsPerLock > 3.5 {
		t.Errorf("%v node calls per lock, want between a quorum (2) and about one per node (3)", r.NodeCallsPerLock)
	}
}

func TestStartClusterRejectsUnknownTransport(t *testing.T) {
	if c, err := StartCluster(ClusterConfig{Transport: "carrier-pigeon"}); err == nil {
		c.Close()
		t.Fatal("StartCluster accepted an unknown transport")
	}
}
