package dsyncprom

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsync-go/dsync/locker"
	"github.com/dsync-go/dsync/rest"
)

// Table is what NodeMetrics reads of a node's lock table at every scrape;
// *locker.Local is one.
type Table interface {
	Stats() locker.Stats
	Grace() time.Duration
}

// NodeConfig configures NodeMetrics.
type NodeConfig struct {
	// Table, if not nil, is read at every scrape for the gauges of what it
	// holds. Stats walks the whole table: a million grants take a few
	// milliseconds, once per scrape.
	Table Table
	// Draining, if not nil, reports whether the node drains
	// (rest.Server.Draining). The server is made after its observer, so
	// this is a function the caller may point at it later.
	Draining func() bool
	// ConstLabels are added to every metric (say, a cluster name). Most
	// setups leave it empty: Prometheus adds the instance.
	ConstLabels prometheus.Labels
}

// NodeMetrics is a node's metrics: a rest.Observer for
// rest.ServerConfig.Observer and a prometheus.Collector. Make it with
// NewNodeMetrics; it is safe for concurrent use.
type NodeMetrics struct {
	cfg NodeConfig

	requests    *prometheus.CounterVec
	ok          []prometheus.Counter // requests_total{code="ok"} by endpoint index
	duration    []prometheus.Observer
	bytesIn     prometheus.Counter
	bytesOut    prometheus.Counter
	authFails   *prometheus.CounterVec
	grants      [2]prometheus.Counter
	reclaims    prometheus.Counter
	refusals    [rest.MaxReason + 1]prometheus.Counter // the last: other
	drainRefuse prometheus.Counter
	releases    [2]prometheus.Counter // released, not_held
	forced      prometheus.Counter
	refreshes   [2]prometheus.Counter // refreshed, not_held
	opErrors    *prometheus.CounterVec

	held, resources, tombstones, grace, draining *prometheus.Desc
	vecs                                         []prometheus.Collector
}

// endpointIndex maps rest.RequestInfo.Endpoint to its index in
// rest.Endpoints.
var endpointIndex = func() map[string]int {
	m := make(map[string]int, len(rest.Endpoints))
	for i, e := range rest.Endpoints {
		m[e] = i
	}
	return m
}()

// durationBuckets bound the request latency histogram, in seconds: from
// 25 µs (a loopback lock) to 2.5 s (a call held up by a full table).
var durationBuckets = []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5}

// NewNodeMetrics returns a node's metrics, unregistered.
func NewNodeMetrics(cfg NodeConfig) *NodeMetrics {
	m := &NodeMetrics{cfg: cfg}
	cl := cfg.ConstLabels
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: cl})
		m.vecs = append(m.vecs, c)
		return c
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: cl}, labels)
		m.vecs = append(m.vecs, c)
		return c
	}
	m.requests = counterVec("dsync_node_requests_total", "Requests answered, by endpoint and answer code (ok for a 200 answer).", "endpoint", "code")
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        "dsync_node_request_duration_seconds",
		Help:        "Time from a request read whole to its answer ready, by endpoint.",
		Buckets:     durationBuckets,
		ConstLabels: cl,
	}, []string{"endpoint"})
	m.vecs = append(m.vecs, hist)
	for _, e := range rest.Endpoints {
		m.ok = append(m.ok, m.requests.WithLabelValues(e, codeName(rest.CodeOK)))
		m.duration = append(m.duration, hist.WithLabelValues(e))
	}
	m.bytesIn = counter("dsync_node_received_body_bytes_total", "Bytes of request bodies received.")
	m.bytesOut = counter("dsync_node_sent_body_bytes_total", "Bytes of answer bodies sent.")
	m.authFails = counterVec("dsync_node_auth_failures_total", "Requests refused for their credentials, by code: unauthorized (missing, wrong, stale or replayed), identity (signed for another node or start), forbidden (the lock role asked for an admin's operation).", "code")
	for _, c := range []rest.Code{rest.CodeUnauthorized, rest.CodeIdentity, rest.CodeForbidden} {
		m.authFails.WithLabelValues(codeName(c))
	}
	grants := counterVec("dsync_node_grants_total", "Lock (write) and rlock (read) operations granted, by mode.", "mode")
	m.grants = [2]prometheus.Counter{grants.WithLabelValues("read"), grants.WithLabelValues("write")}
	m.reclaims = counter("dsync_node_reclaims_total", "Reclaims granted (of grants held before the node restarted); also counted in dsync_node_grants_total.")
	refusals := counterVec("dsync_node_refusals_total", "Lock and rlock operations refused, by reason: conflict, quiet (restart grace period or draining), uid_in_use, released, writer_waiting, stale_reclaim (a reclaim that names an earlier start of the node), other.", "reason")
	for r := range rest.MaxReason + 1 {
		m.refusals[r] = refusals.WithLabelValues(reasonName(locker.Reason(r))) // ReasonNone and unknown reasons: other
	}
	m.drainRefuse = counter("dsync_node_drain_refusals_total", "Lock and rlock operations refused while the node drains; also counted in dsync_node_refusals_total{reason=\"quiet\"}.")
	releases := counterVec("dsync_node_releases_total", "Unlock and runlock operations, by outcome: released, not_held.", "outcome")
	m.releases = [2]prometheus.Counter{releases.WithLabelValues("released"), releases.WithLabelValues("not_held")}
	m.forced = counter("dsync_node_force_unlocks_total", "Force-unlock operations that removed a grant.")
	refreshes := counterVec("dsync_node_refreshes_total", "UIDs of refresh operations, by outcome: refreshed, not_held.", "outcome")
	m.refreshes = [2]prometheus.Counter{refreshes.WithLabelValues("refreshed"), refreshes.WithLabelValues("not_held")}
	m.opErrors = counterVec("dsync_node_operation_errors_total", "Operations answered with an error, by code.", "code")

	m.held = prometheus.NewDesc("dsync_node_held_grants", "Grants in the table at the scrape (expired ones until the sweep removes them).", nil, cl)
	m.resources = prometheus.NewDesc("dsync_node_locked_resources", "Distinct resources locked at the scrape.", nil, cl)
	m.tombstones = prometheus.NewDesc("dsync_node_tombstones", "UIDs released before their lock arrived, kept for one validity.", nil, cl)
	m.grace = prometheus.NewDesc("dsync_node_grace_remaining_seconds", "Restart grace period left: while above 0 the node grants only reclaims.", nil, cl)
	m.draining = prometheus.NewDesc("dsync_node_draining", "1 while the node drains before it stops: it grants nothing new.", nil, cl)
	return m
}

// Request counts one request answered. It implements rest.Observer.
func (m *NodeMetrics) Request(r *rest.RequestInfo) {
	i, ok := endpointIndex[r.Endpoint]
	if !ok {
		i = endpointIndex[rest.EndpointOther]
	}
	if r.Code == rest.CodeOK {
		m.ok[i].Inc()
	} else {
		m.requests.WithLabelValues(rest.Endpoints[i], codeName(r.Code)).Inc()
		switch r.Code {
		case rest.CodeUnauthorized, rest.CodeIdentity, rest.CodeForbidden:
			m.authFails.WithLabelValues(codeName(r.Code)).Inc()
		}
	}
	if r.Duration > 0 {
		m.duration[i].Observe(r.Duration.Seconds())
	}
	if r.BodyIn > 0 {
		m.bytesIn.Add(float64(r.BodyIn))
	}
	if r.BodyOut > 0 {
		m.bytesOut.Add(float64(r.BodyOut))
	}
}

// Ops counts the outcomes of one request's operations. It implements
// rest.Observer.
func (m *NodeMetrics) Ops(t *rest.OpTally) {
	add := func(c prometheus.Counter, n int) {
		if n != 0 {
			c.Add(float64(n))
		}
	}
	add(m.grants[0], t.Granted[0])
	add(m.grants[1], t.Granted[1])
	add(m.reclaims, t.Reclaimed)
	for r, n := range t.Refused {
		add(m.refusals[r], n)
	}
	add(m.refusals[rest.MaxReason], t.RefusedOther)
	add(m.drainRefuse, t.Draining)
	add(m.releases[0], t.Released)
	add(m.releases[1], t.NotHeld)
	add(m.forced, t.ForceUnlocked)
	add(m.refreshes[0], t.Refreshed)
	add(m.refreshes[1], t.RefreshNotHeld)
	for c, n := range t.Failed {
		if n != 0 {
			m.opErrors.WithLabelValues(codeName(rest.Code(c))).Add(float64(n))
		}
	}
}

// Describe implements prometheus.Collector.
func (m *NodeMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.vecs {
		c.Describe(ch)
	}
	if m.cfg.Table != nil {
		ch <- m.held
		ch <- m.resources
		ch <- m.tombstones
		ch <- m.grace
	}
	if m.cfg.Draining != nil {
		ch <- m.draining
	}
}

// Collect implements prometheus.Collector.
func (m *NodeMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.vecs {
		c.Collect(ch)
	}
	if t := m.cfg.Table; t != nil {
		st := t.Stats()
		ch <- prometheus.MustNewConstMetric(m.held, prometheus.GaugeValue, float64(st.Grants))
		ch <- prometheus.MustNewConstMetric(m.resources, prometheus.GaugeValue, float64(st.Resources))
		ch <- prometheus.MustNewConstMetric(m.tombstones, prometheus.GaugeValue, float64(st.Tombstones))
		ch <- prometheus.MustNewConstMetric(m.grace, prometheus.GaugeValue, t.Grace().Seconds())
	}
	if d := m.cfg.Draining; d != nil {
		v := 0.0
		if d() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(m.draining, prometheus.GaugeValue, v)
	}
}

// codeName returns a code as a label value: lower case, words joined by
// underscores.
func codeName(c rest.Code) string {
	switch c {
	case rest.CodeOK:
		return "ok"
	case rest.CodeInvalidArgs:
		return "invalid_args"
	case rest.CodeBusy:
		return "busy"
	case rest.CodeClosed:
		return "closed"
	case rest.CodeUnauthorized:
		return "unauthorized"
	case rest.CodeMalformed:
		return "malformed"
	case rest.CodeTooLarge:
		return "too_large"
	case rest.CodeNotFound:
		return "not_found"
	case rest.CodeMethod:
		return "method"
	case rest.CodeCanceled:
		return "canceled"
	case rest.CodeInternal:
		return "internal"
	case rest.CodeUnsupported:
		return "unsupported"
	case rest.CodeVersion:
		return "version"
	case rest.CodeIdentity:
		return "identity"
	case rest.CodeForbidden:
		return "forbidden"
	}
	return "other"
}

// reasonName returns a refusal reason as a label value.
func reasonName(r locker.Reason) string {
	switch r {
	case locker.ReasonConflict:
		return "conflict"
	case locker.ReasonQuiet:
		return "quiet"
	case locker.ReasonUIDInUse:
		return "uid_in_use"
	case locker.ReasonReleased:
		return "released"
	case locker.ReasonWriterWaiting:
		return "writer_waiting"
	case locker.ReasonStaleReclaim:
		return "stale_reclaim"
	}
	return "other"
}

var _ rest.Observer = (*NodeMetrics)(nil)
var _ prometheus.Collector = (*NodeMetrics)(nil)
