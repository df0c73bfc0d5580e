package webhook

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of one delivery attempt, the outcome label of
// stockd_webhook_deliveries_total.
const (
	OutcomeDelivered    = "delivered"     // answered 2xx
	OutcomeFailed       = "failed"        // anything else; retried, or dead-lettered
	OutcomeDeadLettered = "dead_lettered" // the event went to the dead-letter list
)

// Metrics counts deliveries per endpoint and outcome, and shows each
// endpoint's dead letters. The Runner of each endpoint counts its events,
// errors and lag in publish.Metrics, under the publisher "webhook/<name>".
// It is a prometheus.Collector.
type Metrics struct {
	mu sync.Mutex
	// counts outlive endpoints, so that a counter never goes backwards
	// when an endpoint is changed, deleted and put again.
	counts map[string]*counts
	// dead holds the dead-letter count of every endpoint there is.
	dead map[string]*atomic.Int64
}

type counts struct {
	delivered, failed, deadLettered atomic.Uint64
}

// NewMetrics returns empty Metrics.
func NewMetrics() *Metrics {
	return &Metrics{counts: map[string]*counts{}, dead: map[string]*atomic.Int64{}}
}

var (
	deliveriesDesc  = prometheus.NewDesc("stockd_webhook_deliveries_total", "Webhook delivery attempts by endpoint and outcome: delivered (2xx), failed (anything else, retried), dead_lettered (events given up on after the retry budget).", []string{"webhook", "outcome"}, nil)
	deadLettersDesc = prometheus.NewDesc("stockd_webhook_dead_letters", "Events on an endpoint's dead-letter list, waiting for a replay.", []string{"webhook"}, nil)
)

// endpoint returns the counters of endpoint name; a nil Metrics returns
// counters no one reads.
func (m *Metrics) endpoint(name string, dead *atomic.Int64) *counts {
	if m == nil {
		return &counts{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.counts[name]
	if !ok {
		c = &counts{}
		m.counts[name] = c
	}
	m.dead[name] = dead
	return c
}

// forget stops showing the dead letters of a deleted endpoint.
func (m *Metrics) forget(name string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.dead, name)
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- deliveriesDesc
	ch <- deadLettersDesc
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, c := range m.counts {
		ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.CounterValue, float64(c.delivered.Load()), name, OutcomeDelivered)
		ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.CounterValue, float64(c.failed.Load()), name, OutcomeFailed)
		ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.CounterValue, float64(c.deadLettered.Load()), name, OutcomeDeadLettered)
	}
	for name, d := range m.dead {
		ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.GaugeValue, float64(d.Load()), name)
	}
}
