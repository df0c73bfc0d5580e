package intake

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stockd/stockd"
)

// Metrics count what the intake does:
// stockd_intake_commands_total{status="queued"|"applied"|"failed"} and the
// gauge stockd_intake_queue_depth.
type Metrics struct {
	commands *prometheus.CounterVec
	depth    prometheus.Gauge
}

// NewMetrics returns the intake's metrics, to be registered.
func NewMetrics() *Metrics {
	return &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stockd_intake_commands_total",
			Help: "Commands of the asynchronous intake, by status: queued when accepted, applied or failed when finished.",
		}, []string{"status"}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stockd_intake_queue_depth",
			Help: "Commands of the asynchronous intake waiting to be applied.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.commands.Describe(ch)
	m.depth.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.commands.Collect(ch)
	m.depth.Collect(ch)
}

func (m *Metrics) count(status stockd.CommandStatus) {
	if m != nil {
		m.commands.WithLabelValues(string(status)).Inc()
	}
}

func (m *Metrics) setDepth(n int) {
	if m != nil {
		m.depth.Set(float64(n))
	}
}
