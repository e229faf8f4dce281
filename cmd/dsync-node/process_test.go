package main

// The multi-process test: four dsync-node processes with mutual TLS and
// metrics, clients hammering a shared register under one lock, one node
// SIGKILLed and restarted, another SIGTERMed (it drains) and restarted.
// No update may be lost and no two holders may overlap; the nodes'
// readiness and metrics must say what happened; every process must exit
// cleanly.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/internal/certgen"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// register is the storage the clients share: a counter, and how many
// clients are inside their critical section.
type register struct {
	value    int64 // guarded by the lock under test, not by Go
	inside   atomic.Int32
	overlaps atomic.Int64
	writes   atomic.Int64
	lost     atomic.Int64
}

// increment is a read-modify-write of the register by a holder of the
// lock whose context is lockCtx.
func (r *register) increment(lockCtx context.Context) {
	if r.inside.Add(1) != 1 {
		r.overlaps.Add(1)
	}
	v := atomic.LoadInt64(&r.value)
	runtime.Gosched() // widen the window a second holder would fall into
	if lockCtx.Err() != nil {
		r.lost.Add(1) // the lock was lost: write nothing
	} else {
		atomic.StoreInt64(&r.value, v+1)
		r.writes.Add(1)
	}
	r.inside.Add(-1)
}

// scrapeMetrics reads a node's /metrics and parses it.
func scrapeMetrics(t *testing.T, ops string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(ops + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// sample returns the value of family name's sample whose labels include
// want (name, value, ...), or -1.
func sample(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.Label {
				found = found || l.GetName() == want[i] && l.GetValue() == want[i+1]
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return -1
}

// readyz asks a node's /readyz (with query q) and returns its status code
// and body; 0 if it does not answer.
func readyz(ops, q string) (int, readiness) {
	var rd readiness
	resp, err := http.Get(ops + "/readyz" + q)
	if err != nil {
		return 0, rd
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&rd)
	return resp.StatusCode, rd
}

// waitReady polls a node's readiness (with query q) until it is 200, at
// most limit times, and returns the first answer it got.
func waitReady(t *testing.T, ops, q string, limit int) readiness {
	t.Helper()
	var first *readiness
	for range limit {
		code, rd := readyz(ops, q)
		if code != 0 && first == nil {
			first = &rd
		}
		if code == http.StatusOK {
			return *first
		}
		time.Sleep(50 * time.Millisecond) // a bounded poll of a readiness endpoint
	}
	require.Failf(t, "never ready", "%s/readyz%s never 200", ops, q)
	return readiness{}
}

func TestProcessClusterTLSRestarts(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("signals")
	}
	dir := t.TempDir()
	ca, err := certgen.NewCA("dsync process test CA")
	require.NoError(t, err)
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, ca.PEM, 0o644))
	nodeCert, nodeKey, err := ca.WriteFiles(dir, "node", certgen.Leaf{Name: "node", Hosts: []string{"127.0.0.1"}, Server: true})
	require.NoError(t, err)
	clientCert, clientKey, err := ca.WriteFiles(dir, "client", certgen.Leaf{Name: "client", Client: true})
	require.NoError(t, err)

	const validity = 4 * time.Second
	tlsArgs := []string{"-tls-cert", nodeCert, "-tls-key", nodeKey, "-tls-client-ca", caFile,
		"-validity", validity.String(), "-drain-timeout", "20s", "-log-format", "json"}
	nodes := make([]*nodeProc, 4)
	stateDirs := make([]string, 4)
	for i := range nodes {
		stateDirs[i] = filepath.Join(dir, "state", string(rune('a'+i)))
		nodes[i] = startNode(t, append([]string{"-listen", "127.0.0.1:0", "-state-dir", stateDirs[i]}, tlsArgs...)...)
		require.True(t, strings.HasPrefix(nodes[i].endpoint, "https://"), nodes[i].line)
		assert.Contains(t, nodes[i].line, "mutual TLS")
	}
	restart := func(i int) {
		nodes[i] = startNode(t, append([]string{"-listen", nodes[i].addr(), "-state-dir", stateDirs[i]}, tlsArgs...)...)
	}
	for _, n := range nodes {
		waitReady(t, opsOf(t, n.line), "", 100)
	}

	// Clients: four processes' worth, each with a Dsync of its own.
	roots, err := rest.LoadCAPool(caFile)
	require.NoError(t, err)
	cert, err := rest.LoadCertificates(clientCert, clientKey)
	require.NoError(t, err)
	tlsCfg := rest.ClientTLS(roots, cert)
	var reg register
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var acquired, failed atomic.Int64
	for c := range 4 {
		var lockers []locker.NetLocker
		for _, n := range nodes {
			cl, err := rest.NewClient(n.endpoint, rest.ClientConfig{Secret: attackSecret, TLS: tlsCfg})
			require.NoError(t, err)
			t.Cleanup(func() { cl.Close() })
			lockers = append(lockers, cl)
		}
		ds, err := dsync.New(lockers, dsync.Config{RefreshInterval: 500 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 200 * time.Millisecond, Owner: "client-" + string(rune('0'+c))})
		require.NoError(t, err)
		t.Cleanup(func() { ds.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := dsync.NewDRWMutex(ds, "register")
			for {
				select {
				case <-stop:
					return
				default:
				}
				lockCtx, err := m.GetLock(context.Background(), dsync.Options{Timeout: 30 * time.Second})
				if err != nil {
					failed.Add(1)
					continue
				}
				acquired.Add(1)
				reg.increment(lockCtx)
				m.Unlock(context.Background())
			}
		}()
	}
	progress := func(n int64) { // wait until n more locked writes have been made
		t.Helper()
		target := reg.writes.Load() + n
		for i := 0; reg.writes.Load() < target; i++ {
			require.Less(t, i, 1200, "no progress: %d writes, %d failed acquisitions", reg.writes.Load(), failed.Load())
			time.Sleep(50 * time.Millisecond) // a bounded wait on the clients' progress
		}
	}
	progress(50)

	// SIGKILL node 0 under load, and start it again: it comes back in its
	// grace period, and says so.
	require.NoError(t, nodes[0].cmd.Process.Signal(syscall.SIGKILL))
	var exit *exec.ExitError
	require.ErrorAs(t, nodes[0].wait(), &exit)
	assert.Equal(t, "signal: killed", exit.Error())
	progress(20) // three nodes are a write quorum
	restart(0)
	assert.Contains(t, nodes[0].line, "grace period "+validity.String()+": restart after the node stopped while it may have held grants")
	first := waitReady(t, opsOf(t, nodes[0].line), "?grace=fail", 400)
	assert.Equal(t, "grace", first.Status, "readiness says the restarted node is in its grace")
	assert.True(t, first.InGrace)
	progress(20)
	m0 := scrapeMetrics(t, opsOf(t, nodes[0].line))
	assert.Positive(t, sample(m0, "dsync_node_refusals_total", "reason", "quiet"), "new locks were refused in the grace")
	assert.Positive(t, sample(m0, "dsync_node_grants_total", "mode", "write"), "and granted after it")
	assert.Equal(t, 0.0, sample(m0, "dsync_node_grace_remaining_seconds"))

	// SIGTERM node 1: it drains (holders release there, nothing new is
	// granted), exits 0, and starts again without a grace period.
	m1 := scrapeMetrics(t, opsOf(t, nodes[1].line))
	assert.Positive(t, sample(m1, "dsync_node_grants_total", "mode", "write"))
	assert.Equal(t, 0.0, sample(m1, "dsync_node_auth_failures_total", "code", "unauthorized"))
	require.NoError(t, nodes[1].cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, nodes[1].wait(), "a drained node exits 0")
	out := nodes[1].output.String()
	assert.Contains(t, out, `"msg":"draining"`)
	assert.Contains(t, out, `"msg":"drained: no grant left"`)
	progress(20)
	restart(1)
	assert.Contains(t, nodes[1].line, "grace period 0s: restart after a clean stop that left no grant")
	waitReady(t, opsOf(t, nodes[1].line), "?grace=fail", 100)
	progress(50)

	close(stop)
	wg.Wait()
	assert.Zero(t, reg.overlaps.Load(), "two holders at once")
	assert.Zero(t, reg.lost.Load(), "locks lost")
	assert.Equal(t, reg.writes.Load(), atomic.LoadInt64(&reg.value), "a lost update")
	assert.Equal(t, acquired.Load(), reg.writes.Load())
	t.Logf("%d locked writes, %d acquisitions failed (timeouts while nodes restarted)", reg.writes.Load(), failed.Load())

	for i, n := range nodes {
		code, rd := readyz(opsOf(t, n.line), "")
		assert.Equal(t, http.StatusOK, code, "node %d: %+v", i, rd)
		require.NoError(t, n.cmd.Process.Signal(syscall.SIGTERM))
		err := n.wait()
		if !assert.NoError(t, err, "node %d exits 0 after SIGTERM", i) {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Logf("node %d output: %s", i, n.output.String())
			}
		}
	}
}
