package archive

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what an Archiver does, as a prometheus.Collector of
// stockd_archive_* metrics. A nil *Metrics counts nothing.
type Metrics struct {
	segments prometheus.Counter
	bytes    prometheus.Counter
	events   prometheus.Counter
	errors   prometheus.Counter
	upTo     *prometheus.GaugeVec
}

// NewMetrics returns the archive's metrics, to register with a registry.
func NewMetrics() *Metrics {
	return &Metrics{
		segments: prometheus.NewCounter(prometheus.CounterOpts{Name: "stockd_archive_segments_written_total", Help: "Segments written to cold storage."}),
		bytes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "stockd_archive_bytes_written_total", Help: "Bytes of segments written to cold storage (compressed)."}),
		events:   prometheus.NewCounter(prometheus.CounterOpts{Name: "stockd_archive_events_archived_total", Help: "Events moved to cold storage."}),
		errors:   prometheus.NewCounter(prometheus.CounterOpts{Name: "stockd_archive_errors_total", Help: "Archiving passes over a partition that failed (retried at the next pass)."}),
		upTo:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "stockd_archive_archived_up_to", Help: "Position up to which each partition is archived (its log start)."}, []string{"partition"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.segments, m.bytes, m.events, m.errors, m.upTo}
}

func (m *Metrics) segment(p int, upTo uint64, bytes, events int) {
	if m == nil {
		return
	}
	m.segments.Inc()
	m.bytes.Add(float64(bytes))
	m.events.Add(float64(events))
	m.archivedUpTo(p, upTo)
}

func (m *Metrics) archivedUpTo(p int, upTo uint64) {
	if m == nil {
		return
	}
	m.upTo.WithLabelValues(strconv.Itoa(p)).Set(float64(upTo))
}

func (m *Metrics) error() {
	if m == nil {
		return
	}
	m.errors.Inc()
}
