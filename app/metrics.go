package app

import (
	nethttp "net/http"
	"strconv"
	"time"

	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/metrics"
	"github.com/stockd/stockd/readmodel"
)

// appMetrics collects what every part reports into one registry.
type appMetrics struct {
	reg      *metrics.Registry
	engine   *engineMetrics
	requests *metrics.CounterVec
	latency  *metrics.HistogramVec
}

func newMetrics() *appMetrics {
	reg := metrics.NewRegistry()
	return &appMetrics{
		reg:      reg,
		engine:   newEngineMetrics(reg),
		requests: reg.Counter("stockd_http_requests_total", "HTTP requests by route and status code.", "route", "code"),
		latency: reg.Histogram("stockd_http_request_duration_seconds", "HTTP request latency by route.",
			metrics.ExponentialBuckets(0.0001, 2, 18), "route"),
	}
}

func (m *appMetrics) observeRequest(route string, status int, d time.Duration) {
	m.requests.Inc(route, strconv.Itoa(status))
	m.latency.Observe(d.Seconds(), route)
}

func (m *appMetrics) handler() nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Content-Type", metrics.ContentType)
		m.reg.WriteText(w)
	})
}

// engineMetrics turns the engine's observations into Prometheus metrics.
type engineMetrics struct {
	batchCommands, batchEvents *metrics.HistogramVec
	appendSeconds              *metrics.HistogramVec
	expired                    *metrics.CounterVec
}

func newEngineMetrics(reg *metrics.Registry) *engineMetrics {
	sizes := metrics.ExponentialBuckets(1, 2, 14)
	return &engineMetrics{
		batchCommands: reg.Histogram("stockd_batch_commands", "Commands decided per partition batch.", sizes),
		batchEvents:   reg.Histogram("stockd_batch_events", "Events written per partition batch.", sizes),
		appendSeconds: reg.Histogram("stockd_append_duration_seconds", "Time from starting a batch's append until it is durable (write and fsync).", metrics.ExponentialBuckets(0.00005, 2, 16)),
		expired:       reg.Counter("stockd_expired_total", "Holds and lots that expired on their own.", "kind"),
	}
}

func (m *engineMetrics) Batch(_, commands, events int) {
	m.batchCommands.Observe(float64(commands))
	m.batchEvents.Observe(float64(events))
}

func (m *engineMetrics) Appended(_ int, d time.Duration) { m.appendSeconds.Observe(d.Seconds()) }

func (m *engineMetrics) Expired(_ int, holds, lots int) {
	if holds > 0 {
		m.expired.Add(uint64(holds), "hold")
	}
	if lots > 0 {
		m.expired.Add(uint64(lots), "lot")
	}
}

func (m *appMetrics) register(eng *engine.Engine, proj *readmodel.Projection) {
	m.reg.GaugeFunc("stockd_inbox_depth", "Requests waiting per partition.", []string{"partition"}, func(emit func(float64, ...string)) {
		for p := range eng.Partitions() {
			emit(float64(eng.InboxDepth(p)), strconv.Itoa(p))
		}
	})
	m.reg.GaugeFunc("stockd_idempotency_keys", "Idempotency keys the engine remembers.", nil, func(emit func(float64, ...string)) {
		emit(float64(eng.Keys()))
	})
	if proj != nil {
		m.reg.GaugeFunc("stockd_projection_lag_events", "Durable events the availability read model has not applied yet.", nil, func(emit func(float64, ...string)) {
			emit(float64(proj.Lag()))
		})
	}
}
