package simulation

import (
	"testing"

	"github.com/dsync-go/dsync/locker"
)

// TestHTTPLockersFence checks that the HTTP tier hands dsync lockers that
// are locker.Fencers (rest.Client, unwrapped), so that FencingToken works
// over it as it does over the simulated Link.
func TestHTTPLockersFence(t *testing.T) {
	h, err := NewHTTPNetwork(HTTPConfig{Nodes: 2, Clients: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		h.Close()
		h.CloseClients()
	}()
	for k, l := range h.Lockers(0) {
		f, ok := l.(locker.Fencer)
		if !ok {
			t.Fatalf("locker %d (%T) is not a locker.Fencer", k, l)
		}
		if r, err := f.RaiseFence(t.Context(), locker.FenceArgs{}); err != nil || r.Fence == 0 {
			t.Errorf("RaiseFence through the proxy of node %d: %+v, %v", k, r, err)
		}
	}
}

// notOverHTTPInCI are the scenarios TestHTTPScenarios leaves to
// `dsync-sim -transport http`: the random scenarios of the primitives other
// than the lock and the semaphore (their workloads run for seconds of real
// time, up to 15 s each, and the parallel subtests run two at a time on CI's
// 2 cores: together they added about 50 s to the package), and
// barrier-arrival-lost, whose point, liveness after a restart, the real
// clock does not enforce. The simulated tier runs all of them over many
// seeds.
var notOverHTTPInCI = map[string]bool{
	"lease-random": true, "hierarchy-random": true, "barrier-random": true, "barrier-random-live": true,
	"cond-random": true, "barrier-arrival-lost": true, "deadlock-random": true,
}

// TestHTTPScenarios runs the named scenarios (but notOverHTTPInCI) over the
// rest transport on loopback, each link through its own fault-injecting TCP
// proxy, on the real clock with short durations. Safety expectations are
// checked as in the simulated tier; liveness bounds are reported only, since
// real time on a loaded machine stretches any wait.
func TestHTTPScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time HTTP tier skipped in -short mode")
	}
	t.Parallel() // mostly waits on real time: overlap it with the simulated tier
	for _, s := range Scenarios(Budget{}) {
		t.Run(s.Name, func(t *testing.T) {
			if notOverHTTPInCI[s.Name] {
				t.Skipf("run it with: go run ./simulation/cmd/dsync-sim -transport http -scenarios %s", s.Name)
			}
			t.Parallel()
			r := Run(s, Config{Seed: 1, Transport: TransportHTTP})
			t.Log(r.Summary())
			for _, n := range r.Notes {
				t.Log(n)
			}
			for _, u := range r.Unexpected() {
				t.Errorf("%s over HTTP (expected %v): %s", s.Name, s.Expect, u)
			}
		})
	}
}

// TestNetnsScenarios runs the scenarios that partition nodes with every node
// in its own network namespace, partitions made by taking veth links down.
// It needs root and a working `ip netns`.
func TestNetnsScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time netns tier skipped in -short mode")
	}
	if err := NetnsAvailable(); err != nil {
		t.Skipf("netns tier skipped: %v (it needs root and a working `ip netns`)", err)
	}
	t.Parallel()
	t.Cleanup(CleanupNetns) // whatever a failed run left behind
	for _, name := range []string{"no-quorum", "minority-partition", "stale-lock-of-crashed-client", "double-grant-restart", "random"} {
		s, _ := ScenarioByName(name, Budget{})
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := Run(s, Config{Seed: 2, Transport: TransportNetns})
			t.Log(r.Summary())
			for _, n := range r.Notes {
				t.Log(n)
			}
			for _, u := range r.Unexpected() {
				t.Errorf("%s over netns (expected %v): %s", s.Name, s.Expect, u)
			}
		})
	}
}
