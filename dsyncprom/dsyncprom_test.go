package dsyncprom_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/dsyncprom"
	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

const secret = "dsyncprom-test-secret-0123456789abcdef"

// scrape serves reg over HTTP as dsync-node does and parses the answer.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	ts := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// value returns the value of the sample of family name whose labels
// include want, or -1 if there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestNodeAndClientMetrics(t *testing.T) {
	table := locker.New(locker.Config{QuietPeriod: locker.NoQuietPeriod})
	defer table.Close()
	var srv *rest.Server
	nm := dsyncprom.NewNodeMetrics(dsyncprom.NodeConfig{Table: table, Draining: func() bool { return srv.Draining() }})
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(nm))
	srv, err := rest.NewServer(table, rest.ServerConfig{Secret: secret, Observer: nm})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	defer srv.Close()

	reqs := dsyncprom.NewClientRequests(nil)
	require.NoError(t, reg.Register(reqs))
	c, err := rest.NewClient("http://"+ln.Addr().String(), rest.ClientConfig{Secret: secret, Observer: reqs})
	require.NoError(t, err)
	defer c.Close()
	ds, err := dsync.New([]locker.NetLocker{c}, dsync.Config{})
	require.NoError(t, err)
	defer ds.Close()
	require.NoError(t, reg.Register(dsyncprom.NewClientMetrics(dsyncprom.ClientConfig{Dsync: ds, Clients: []*rest.Client{c}})))

	ctx := context.Background()
	m := dsync.NewDRWMutex(ds, "bucket/object")
	_, err = m.GetLock(ctx, dsync.Options{})
	require.NoError(t, err)
	ok, _, err := dsync.NewDRWMutex(ds, "bucket/object").TryRLock(ctx)
	require.NoError(t, err)
	assert.False(t, ok, "a read while written is refused")
	fams := scrape(t, reg)
	assert.Equal(t, 1.0, value(fams, "dsync_node_held_grants"))
	assert.Equal(t, 1.0, value(fams, "dsync_node_locked_resources"))
	m.Unlock(ctx)

	fams = scrape(t, reg)
	assert.Equal(t, 1.0, value(fams, "dsync_node_grants_total", "mode", "write"))
	assert.Equal(t, 1.0, value(fams, "dsync_node_refusals_total", "reason", "conflict"))
	assert.Equal(t, 1.0, value(fams, "dsync_node_releases_total", "outcome", "released"))
	assert.Equal(t, 0.0, value(fams, "dsync_node_held_grants"))
	assert.Equal(t, 0.0, value(fams, "dsync_node_draining"))
	assert.Positive(t, value(fams, "dsync_node_requests_total", "endpoint", "lock", "code", "ok"))
	assert.Positive(t, value(fams, "dsync_node_request_duration_seconds", "endpoint", "lock"))
	assert.Positive(t, value(fams, "dsync_node_received_body_bytes_total"))
	assert.Positive(t, value(fams, "dsync_node_sent_body_bytes_total"))
	assert.Equal(t, 0.0, value(fams, "dsync_node_auth_failures_total", "code", "unauthorized"))
	node := c.String()
	assert.Equal(t, 1.0, value(fams, "dsync_client_node_online", "node", node))
	assert.Positive(t, value(fams, "dsync_client_lock_operations_total", "node", node))
	assert.Equal(t, 1.0, value(fams, "dsync_client_lock_refusals_total", "node", node))
	assert.Positive(t, value(fams, "dsync_client_node_validity_seconds", "node", node))
	assert.Positive(t, value(fams, "dsync_client_request_duration_seconds", "node", node), "requests timed")
	assert.Equal(t, 0.0, value(fams, "dsync_client_request_errors_total", "node", node), "no errors")

	// An unauthenticated request is counted as an auth failure.
	resp, err := http.Post("http://"+ln.Addr().String()+rest.PathLock, rest.ContentType, strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	fams = scrape(t, reg)
	assert.Equal(t, 1.0, value(fams, "dsync_node_auth_failures_total", "code", "unauthorized"))
	assert.Equal(t, 1.0, value(fams, "dsync_node_requests_total", "endpoint", "lock", "code", "unauthorized"))

	// Every name follows the conventions: a prefix, _total on counters.
	for name, f := range fams {
		assert.True(t, strings.HasPrefix(name, "dsync_node_") || strings.HasPrefix(name, "dsync_client_"), name)
		if f.GetType() == dto.MetricType_COUNTER {
			assert.True(t, strings.HasSuffix(name, "_total"), name)
		}
	}
}
