package dsyncprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsync-go/dsync/dsync"
	"github.com/dsync-go/dsync/rest"
)

// ClientConfig configures ClientMetrics.
type ClientConfig struct {
	// Dsync, if not nil, is read at every scrape (dsync.Dsync.Stats).
	Dsync *dsync.Dsync
	// Clients are the process's clients of the nodes, in the order given
	// to dsync.New (so that the validities of Dsync's Stats are matched to
	// them). Each is labelled node="<its endpoint>": the label has as many
	// values as the cluster has nodes.
	Clients []*rest.Client
	// ConstLabels are added to every metric.
	ConstLabels prometheus.Labels
}

// ClientMetrics is a client process's metrics: a prometheus.Collector
// that reads its rest.Clients and its Dsync at every scrape, so that it
// costs their calls nothing. Make it with NewClientMetrics.
type ClientMetrics struct {
	cfg   ClientConfig
	descs map[string]*prometheus.Desc
}

// clientCounters names the counters read from rest.ClientStats, per node.
var clientCounters = []struct {
	name, help string
	get        func(*rest.ClientStats) int64
}{
	{"dsync_client_requests_total", "HTTP requests to the node that carried operations.", func(s *rest.ClientStats) int64 { return s.Requests }},
	{"dsync_client_batch_requests_total", "Of those requests, the batches.", func(s *rest.ClientStats) int64 { return s.Batches }},
	{"dsync_client_operations_total", "Operations those requests carried.", func(s *rest.ClientStats) int64 { return s.Ops }},
	{"dsync_client_lock_operations_total", "Lock and rlock operations sent to the node.", func(s *rest.ClientStats) int64 { return s.Locks }},
	{"dsync_client_lock_refusals_total", "Lock and rlock operations the node refused.", func(s *rest.ClientStats) int64 { return s.Refused }},
	{"dsync_client_refresh_operations_total", "Refresh operations sent to the node.", func(s *rest.ClientStats) int64 { return s.Refreshes }},
	{"dsync_client_operation_failures_total", "Operations sent that ended in an error (transport, malformed answer, or the node's).", func(s *rest.ClientStats) int64 { return s.Failed }},
	{"dsync_client_operations_not_sent_total", "Calls that failed before any request carried them (node offline, client closed, queue full).", func(s *rest.ClientStats) int64 { return s.NotSent }},
	{"dsync_client_node_offline_transitions_total", "Times the client found the node offline.", func(s *rest.ClientStats) int64 { return s.WentOffline }},
}

// NewClientMetrics returns a client process's metrics, unregistered.
func NewClientMetrics(cfg ClientConfig) *ClientMetrics {
	m := &ClientMetrics{cfg: cfg, descs: map[string]*prometheus.Desc{}}
	cl := cfg.ConstLabels
	node := []string{"node"}
	for _, c := range clientCounters {
		m.descs[c.name] = prometheus.NewDesc(c.name, c.help, node, cl)
	}
	m.descs["online"] = prometheus.NewDesc("dsync_client_node_online", "1 if the client takes the node to be online, 0 while it fails calls to it at once and probes it.", node, cl)
	if cfg.Dsync != nil {
		m.descs["validity"] = prometheus.NewDesc("dsync_client_node_validity_seconds", "The validity the node last reported in a grant or refresh; 0 until it has.", node, cl)
		m.descs["disagreements"] = prometheus.NewDesc("dsync_client_validity_disagreements_total", "Times a node reported a validity other than another node's: the nodes should be configured alike.", nil, cl)
		m.descs["rounds"] = prometheus.NewDesc("dsync_client_refresh_rounds_total", "Refresh rounds that have ended.", nil, cl)
		m.descs["reclaims"] = prometheus.NewDesc("dsync_client_reclaims_total", "Reclaims of held locks sent to nodes in their restart grace period, by outcome: sent, granted.", []string{"outcome"}, cl)
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *ClientMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *ClientMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.cfg.Clients {
		node := c.String()
		st := c.Stats()
		for _, cc := range clientCounters {
			ch <- prometheus.MustNewConstMetric(m.descs[cc.name], prometheus.CounterValue, float64(cc.get(&st)), node)
		}
		online := 0.0
		if c.IsOnline() {
			online = 1
		}
		ch <- prometheus.MustNewConstMetric(m.descs["online"], prometheus.GaugeValue, online, node)
	}
	ds := m.cfg.Dsync
	if ds == nil {
		return
	}
	st := ds.Stats()
	for i, v := range st.Validities {
		if i < len(m.cfg.Clients) {
			ch <- prometheus.MustNewConstMetric(m.descs["validity"], prometheus.GaugeValue, v.Seconds(), m.cfg.Clients[i].String())
		}
	}
	ch <- prometheus.MustNewConstMetric(m.descs["disagreements"], prometheus.CounterValue, float64(st.ValidityDisagreements))
	ch <- prometheus.MustNewConstMetric(m.descs["rounds"], prometheus.CounterValue, float64(st.RefreshRounds))
	ch <- prometheus.MustNewConstMetric(m.descs["reclaims"], prometheus.CounterValue, float64(st.Reclaims), "sent")
	ch <- prometheus.MustNewConstMetric(m.descs["reclaims"], prometheus.CounterValue, float64(st.Reclaimed), "granted")
}

var _ prometheus.Collector = (*ClientMetrics)(nil)
