package dsyncprom

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsync-go/dsync/dsync"
)

// ClientEvents is a client process's acquisitions, lost locks and refresh
// rounds: a dsync.Observer (give it to dsync.Config.Observer) and a
// prometheus.Collector. The label sets are fixed: kind (write, read,
// permit), outcome (see dsync.Outcome) and cause (see dsync.LossCause).
// Every series is made up front, so that a rate over a counter that has
// not moved yet reads zero, not nothing. Make it with NewClientEvents.
type ClientEvents struct {
	acquire *prometheus.HistogramVec
	lost    *prometheus.CounterVec
	rounds  prometheus.Histogram

	// The series, by kind and outcome, and by cause: an observation is an
	// index, not a label lookup.
	acquired [3][7]prometheus.Observer
	lostBy   [4]prometheus.Counter
}

// NewClientEvents returns the acquisition, loss and refresh metrics of a
// client process, unregistered; constLabels may be nil.
func NewClientEvents(constLabels prometheus.Labels) *ClientEvents {
	m := &ClientEvents{
		acquire: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "dsync_client_acquire_duration_seconds",
			Help:        "Time from the start of an acquisition to its end, by kind (write, read, permit) and outcome (acquired, refused, timeout, cancelled, no_quorum, deadlock, error); its _count is the acquisitions.",
			Buckets:     durationBuckets,
			ConstLabels: constLabels,
		}, []string{"kind", "outcome"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "dsync_client_locks_lost_total",
			Help:        "Held locks lost, by cause: not_held (nodes no longer hold it), expired (no refresh reached a quorum in time), stopped (closed while held), at_release (found by Unlock).",
			ConstLabels: constLabels,
		}, []string{"cause"}),
		rounds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "dsync_client_refresh_round_duration_seconds",
			Help:        "Time from sending a refresh round's requests to applying their answers.",
			Buckets:     durationBuckets,
			ConstLabels: constLabels,
		}),
	}
	for k := range m.acquired {
		for o := range m.acquired[k] {
			m.acquired[k][o] = m.acquire.WithLabelValues(dsync.AcquireKind(k).String(), dsync.Outcome(o).String())
		}
	}
	for c := range m.lostBy {
		m.lostBy[c] = m.lost.WithLabelValues(dsync.LossCause(c).String())
	}
	return m
}

// Acquired implements dsync.Observer.
func (m *ClientEvents) Acquired(kind dsync.AcquireKind, outcome dsync.Outcome, took time.Duration) {
	if int(kind) < len(m.acquired) && int(outcome) < len(m.acquired[kind]) {
		m.acquired[kind][outcome].Observe(took.Seconds())
	}
}

// Lost implements dsync.Observer.
func (m *ClientEvents) Lost(cause dsync.LossCause) {
	if int(cause) < len(m.lostBy) {
		m.lostBy[cause].Inc()
	}
}

// RefreshRound implements dsync.Observer.
func (m *ClientEvents) RefreshRound(took time.Duration, _ int) {
	m.rounds.Observe(took.Seconds())
}

// Describe implements prometheus.Collector.
func (m *ClientEvents) Describe(ch chan<- *prometheus.Desc) {
	m.acquire.Describe(ch)
	m.lost.Describe(ch)
	m.rounds.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *ClientEvents) Collect(ch chan<- prometheus.Metric) {
	m.acquire.Collect(ch)
	m.lost.Collect(ch)
	m.rounds.Collect(ch)
}
