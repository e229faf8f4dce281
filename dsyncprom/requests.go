package dsyncprom

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsync-go/dsync/rest"
)

// ClientRequests measures a client process's requests to each node: a
// rest.ClientObserver for rest.ClientConfig.Observer (give every client of
// the process the same one) and a prometheus.Collector of
//
//	dsync_client_request_duration_seconds{node}   histogram: from sending a request to reading its answer
//	dsync_client_request_errors_total{node}        requests that failed or were not answered 200
//
// A batch of operations is one request. It is made before the clients,
// which take it in their configuration; ClientMetrics, which reads the
// clients, is made after them.
type ClientRequests struct {
	hist   *prometheus.HistogramVec
	errs   *prometheus.CounterVec
	byNode sync.Map // node -> *nodeRequests
}

type nodeRequests struct {
	hist prometheus.Observer
	errs prometheus.Counter
}

// NewClientRequests returns the request metrics of a client process,
// unregistered; constLabels may be nil.
func NewClientRequests(constLabels prometheus.Labels) *ClientRequests {
	return &ClientRequests{
		hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "dsync_client_request_duration_seconds",
			Help:        "Time from sending a request to a node to reading its answer (a batch of operations is one request), by node.",
			Buckets:     durationBuckets,
			ConstLabels: constLabels,
		}, []string{"node"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "dsync_client_request_errors_total",
			Help:        "Requests to a node that failed or were not answered 200, by node.",
			ConstLabels: constLabels,
		}, []string{"node"}),
	}
}

// RoundTrip records one request. It implements rest.ClientObserver.
func (m *ClientRequests) RoundTrip(node string, d time.Duration, ok bool) {
	v, found := m.byNode.Load(node)
	if !found {
		v, _ = m.byNode.LoadOrStore(node, &nodeRequests{hist: m.hist.WithLabelValues(node), errs: m.errs.WithLabelValues(node)})
	}
	n := v.(*nodeRequests)
	n.hist.Observe(d.Seconds())
	if !ok {
		n.errs.Inc()
	}
}

// Describe implements prometheus.Collector.
func (m *ClientRequests) Describe(ch chan<- *prometheus.Desc) {
	m.hist.Describe(ch)
	m.errs.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *ClientRequests) Collect(ch chan<- prometheus.Metric) {
	m.hist.Collect(ch)
	m.errs.Collect(ch)
}

var (
	_ rest.ClientObserver  = (*ClientRequests)(nil)
	_ prometheus.Collector = (*ClientRequests)(nil)
)
