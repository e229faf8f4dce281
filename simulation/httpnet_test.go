package simulation

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// TestHTTPLockersFence checks that the HTTP tier hands dsync lockers that
// are locker.Fencers (rest.Client, unwrapped), so that FencingToken works
// over it as it does over the simulated Link.
func TestHTTPLockersFence(t *testing.T) {
	h, err := NewHTTPNetwork(HTTPConfig{Nodes: 2, Clients: 1})
	require.NoError(t, err)
	defer func() {
		h.Close()
		h.CloseClients()
	}()
	for k, l := range h.Lockers(0) {
		f, ok := l.(locker.Fencer)
		require.True(t, ok, "locker %d (%T) is not a locker.Fencer", k, l)
		r, err := f.RaiseFence(t.Context(), locker.FenceArgs{})
		assert.NoError(t, err, "RaiseFence through the proxy of node %d: %+v", k, r)
		assert.NotZero(t, r.Fence, "RaiseFence through the proxy of node %d: %+v", k, r)
	}
}

// togetherOverHTTP are the scenarios TestHTTPScenarios runs side by side
// in one subtest, each on a goroutine of its own: the random scenarios of
// the primitives other than the lock and the semaphore, and the two with
// adaptive timeouts, whose workloads run for seconds of real time (up to
// 25 s each over HTTP) while using little CPU. As parallel subtests they ran two at a time on CI's 2 cores and
// added about 50 s to the package; side by side they take about as long as
// the longest of them, which overlaps the simulated tier.
var togetherOverHTTP = []string{
	"lease-random", "hierarchy-random", "barrier-random", "barrier-random-live",
	"cond-random", "barrier-arrival-lost", "deadlock-random", "adaptive", "adaptive-random",
}

// TestHTTPScenarios runs every scenario but the SimulatedOnly ones over the
// rest transport on loopback, each link through its own fault-injecting TCP
// proxy, on the real clock with short durations. Safety expectations are checked as in
// the simulated tier; liveness bounds are reported only, since real time on
// a loaded machine stretches any wait.
func TestHTTPScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time HTTP tier skipped in -short mode")
	}
	t.Parallel() // mostly waits on real time: overlap it with the simulated tier
	together := map[string]bool{}
	for _, name := range togetherOverHTTP {
		together[name] = true
	}
	var slow []Scenario
	for _, s := range Scenarios(Budget{}) {
		if s.SimulatedOnly {
			t.Run(s.Name, func(t *testing.T) {
				t.Skip("its faults (clock rates, stops of a process) need the simulated tier")
			})
			continue
		}
		if together[s.Name] {
			slow = append(slow, s)
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			checkOverHTTP(t, s)
		})
	}
	require.Equal(t, len(togetherOverHTTP), len(slow), "togetherOverHTTP names %d scenarios, %d of which exist", len(togetherOverHTTP), len(slow))
	t.Run("primitives-random", func(t *testing.T) {
		t.Parallel()
		var wg sync.WaitGroup
		for _, s := range slow {
			wg.Go(func() { checkOverHTTP(t, s) })
		}
		wg.Wait()
	})
}

// checkOverHTTP runs s once over HTTP and fails t with every unexpected
// outcome. It is safe to call from several goroutines of one test.
func checkOverHTTP(t *testing.T, s Scenario) {
	r := Run(s, Config{Seed: 1, Transport: TransportHTTP})
	t.Logf("%s: %s", s.Name, r.Summary())
	for _, n := range r.Notes {
		t.Logf("%s: %s", s.Name, n)
	}
	for _, u := range r.Unexpected() {
		assert.Failf(t, "unexpected outcome", "%s over HTTP (expected %v): %s", s.Name, s.Expect, u)
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
				assert.Failf(t, "unexpected outcome", "%s over netns (expected %v): %s", s.Name, s.Expect, u)
			}
		})
	}
}

// TestHTTPAuthenticated checks that with HTTPConfig.Secret every node
// serves with authentication and every client signs for it, through the
// proxies, across a restart of a node (a new start, which the clients learn
// from its hello), and that a client with another secret is refused.
func TestHTTPAuthenticated(t *testing.T) {
	secret := strings.Repeat("s", rest.MinSecretLen)
	h, err := NewHTTPNetwork(HTTPConfig{Nodes: 1, Clients: 1, Secret: secret})
	require.NoError(t, err)
	defer func() {
		h.Close()
		h.CloseClients()
	}()
	l := h.Lockers(0)[0]
	args := locker.LockArgs{UID: "u1", Resources: []string{"r"}, Owner: "c0"}
	r, err := l.Lock(t.Context(), args)
	require.NoError(t, err)
	assert.True(t, r.OK, "lock through the proxy, signed")

	h.RestartNode(0)
	args.UID = "u2"
	r, err = l.Lock(t.Context(), args)
	require.NoError(t, err, "the client asks the restarted node's hello and signs for its new start")
	assert.Equal(t, locker.ReasonQuiet, r.Reason, "the restarted node is in its grace period and grants only reclaims")

	h.mu.Lock()
	addr := h.proxies[0][0].addr()
	h.mu.Unlock()
	other, err := rest.NewClient("http://"+addr, rest.ClientConfig{Secret: strings.Repeat("x", rest.MinSecretLen)})
	require.NoError(t, err)
	defer other.Close()
	_, err = other.Lock(t.Context(), args)
	assert.ErrorIs(t, err, locker.ErrUnauthorized, "a client with another secret")
}
