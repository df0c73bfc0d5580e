package publish

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what Runners do, per publisher: events published, errors
// (failed reads, publishes and checkpoint saves, each retried) and lag. It
// is a prometheus.Collector; register it once and pass it to every Runner.
type Metrics struct {
	mu      sync.Mutex
	runners map[*Runner]*stats
	// totals outlive Runners, so that a counter never goes backwards when
	// a publisher is reconfigured.
	totals map[string]*stats
}

type stats struct {
	published atomic.Uint64
	errors    atomic.Uint64
}

// NewMetrics returns empty Metrics.
func NewMetrics() *Metrics {
	return &Metrics{runners: map[*Runner]*stats{}, totals: map[string]*stats{}}
}

var (
	publishedDesc  = prometheus.NewDesc("stockd_publisher_events_total", "Events a publisher has delivered and checkpointed.", []string{"publisher"}, nil)
	errorsDesc     = prometheus.NewDesc("stockd_publisher_errors_total", "Failed attempts of a publisher (reading the log, delivering, saving its checkpoint), each retried with backoff.", []string{"publisher"}, nil)
	lagDesc        = prometheus.NewDesc("stockd_publisher_lag_events", "Durable events a publisher has not delivered yet, summed over partitions.", []string{"publisher"}, nil)
	lagSecondsDesc = prometheus.NewDesc("stockd_publisher_lag_seconds", "How long the oldest durable event a publisher has not delivered yet has waited; 0 when caught up.", []string{"publisher"}, nil)
)

// add registers a Runner and returns its counters; a nil Metrics returns
// counters no one reads.
func (m *Metrics) add(r *Runner) *stats {
	if m == nil {
		return &stats{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.totals[r.opts.Name]
	if !ok {
		s = &stats{}
		m.totals[r.opts.Name] = s
	}
	m.runners[r] = s
	return s
}

func (m *Metrics) remove(r *Runner) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.runners, r)
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- publishedDesc
	ch <- errorsDesc
	ch <- lagDesc
	ch <- lagSecondsDesc
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, s := range m.totals {
		ch <- prometheus.MustNewConstMetric(publishedDesc, prometheus.CounterValue, float64(s.published.Load()), name)
		ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.CounterValue, float64(s.errors.Load()), name)
	}
	lags := map[string]uint64{}
	ages := map[string]float64{}
	for r := range m.runners {
		lags[r.opts.Name] += r.Lag()
		ages[r.opts.Name] = max(ages[r.opts.Name], r.LagSeconds())
	}
	for name, lag := range lags {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(lag), name)
		ch <- prometheus.MustNewConstMetric(lagSecondsDesc, prometheus.GaugeValue, ages[name], name)
	}
}
