// Package metrics is stockd's Prometheus instrumentation, on the Prometheus
// Go client (client_golang). A Metrics owns its registry, so that tests and
// several servers in one process never collide, and serves it with Handler.
//
// It measures three things:
//
//   - HTTP requests, by route and status code, their latency by route and
//     the requests in flight (ObserveRequest, StartRequest, EndRequest);
//   - the engine, as its engine.Observer: batch sizes, append (fsync)
//     latency, expiries, reservations granted and refused by code,
//     snapshots and recovery;
//   - gauges read at each scrape from what RegisterEngine and
//     RegisterReadModel are given (inbox depth, idempotency keys, holds
//     active, read-model lag), and from any other collector passed to
//     Register, such as the Pebble store's.
//
// Every method that runs on a request's path resolves its label children
// once and looks them up without locks or allocation afterwards.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stockd/stockd"
)

// Route labels that are not a route pattern.
const (
	// Unmatched is the route of requests no route served: 404 for an
	// unknown path, 405 for a method the path does not support. Using it
	// instead of the path keeps the number of series bounded.
	Unmatched = "unmatched"
	// OtherRoute is the route label every route gets once MaxRoutes
	// distinct ones have been seen: a guard against a caller that passes
	// paths instead of patterns.
	OtherRoute = "other"
	// MaxRoutes bounds the distinct route labels.
	MaxRoutes = 256
)

// maxCodes bounds the distinct codes of refused reservations; codes beyond
// it are counted as "other". stockd's codes are a short fixed list.
const maxCodes = 64

// Bucket layouts, in seconds or counts.
var (
	// LatencyBuckets suit HTTP latencies from 0.1 ms to 10 s.
	LatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// AppendBuckets suit a durable append (a write and an fsync), from 50 µs
	// to 1.6 s.
	AppendBuckets = prometheus.ExponentialBuckets(0.00005, 2, 16)
	// BatchBuckets suit batch sizes from 1 to 8,192.
	BatchBuckets = prometheus.ExponentialBuckets(1, 2, 14)
	// SnapshotBuckets suit snapshot durations from 1 ms to about 4 min.
	SnapshotBuckets = prometheus.ExponentialBuckets(0.001, 4, 10)
)

// Options configure a Metrics. The zero value is usable.
type Options struct {
	// Logger receives errors met while serving /metrics. Default
	// slog.Default().
	Logger *slog.Logger
	// Version and Revision label stockd_build_info. Default: the main
	// module's version and VCS revision from runtime/debug, or "unknown".
	Version, Revision string
	// MaxScrapes bounds the scrapes served at once; more are answered 503.
	// /metrics needs no key, and a scrape gathers the store's metrics
	// under its locks. Default 4.
	MaxScrapes int
}

// Metrics is stockd's metrics: a registry of its own and the metrics in it.
// It is safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	// HTTP.
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight prometheus.Gauge
	routeMu  sync.Mutex
	routes   atomic.Pointer[map[string]*Route] // copy-on-write

	// Engine, fed by the Observer methods.
	batchCommands, batchEvents prometheus.Histogram
	appendSeconds              prometheus.Histogram
	expiredHolds, expiredLots  prometheus.Counter
	retired, retiredAnswers    prometheus.Counter
	granted, replayed          prometheus.Counter
	refused                    *prometheus.CounterVec
	codeMu                     sync.Mutex
	codes                      atomic.Pointer[map[stockd.Code]prometheus.Counter] // copy-on-write
	snapshotSeconds            prometheus.Histogram
	snapshotBytes              *prometheus.GaugeVec
	recoverySeconds            prometheus.Gauge
	recoveryEvents             prometheus.Gauge
}

// New returns a Metrics with a registry of its own holding the Go runtime
// and process collectors, build information, and stockd's HTTP and engine
// metrics. Scrape-time gauges are added by RegisterEngine, RegisterReadModel
// and Register.
func New(opts Options) *Metrics {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxScrapes <= 0 {
		opts.MaxScrapes = 4
	}
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			// How long goroutines wait to run: the first sign of a
			// saturated CPU in a latency-bound service.
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/latencies:seconds$`)},
		)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		buildInfo(opts.Version, opts.Revision),
	)
	f := factory{m.reg}

	m.requests = f.counterVec("stockd_http_requests_total", "HTTP requests by route pattern (\"unmatched\" for 404 and 405) and status code.", "route", "code")
	m.latency = f.histogramVec("stockd_http_request_duration_seconds", "HTTP request latency by route pattern.", LatencyBuckets, "route")
	m.inflight = f.gauge("stockd_http_requests_in_flight", "HTTP requests being served.")
	m.routes.Store(&map[string]*Route{})

	m.batchCommands = f.histogram("stockd_batch_commands", "Commands decided per partition batch.", BatchBuckets)
	m.batchEvents = f.histogram("stockd_batch_events", "Events written per partition batch.", BatchBuckets)
	m.appendSeconds = f.histogram("stockd_append_duration_seconds", "Time from starting a batch's append until it is durable (write and fsync).", AppendBuckets)
	expired := f.counterVec("stockd_expired_total", "Holds and lots that expired on their own, by kind.", "kind")
	m.expiredHolds, m.expiredLots = expired.WithLabelValues("hold"), expired.WithLabelValues("lot")
	m.retired = f.counter("stockd_retired_total", "Settled entities (reservations, transfers, receipt/adjustment/count records) that left memory once --retain had passed; their ids are answered from the store.")
	m.retiredAnswers = f.counter("stockd_retired_answers_total", "Commands and reads answered from a retired entity's record in the store rather than from memory.")
	m.granted = f.counter("stockd_reservations_granted_total", "Reservations held (new ones; replays are counted apart).")
	m.replayed = f.counter("stockd_reservations_replayed_total", "Reservation requests answered from an earlier grant (same id, same body).")
	m.refused = f.counterVec("stockd_reservations_refused_total", "Reservations refused by a partition, by error code.", "code")
	codes := map[stockd.Code]prometheus.Counter{}
	for _, c := range []stockd.Code{stockd.CodeInsufficientStock, stockd.CodeSalesCap, stockd.CodeCustomerLimit, stockd.CodeCustomerRequired, stockd.CodeIdempotencyMismatch, stockd.CodeInvalid,
		stockd.CodeUnknownLocation, stockd.CodeNotFound, stockd.CodeUnavailable} {
		// Created now so that they read 0 rather than being absent.
		codes[c] = m.refused.WithLabelValues(string(c))
	}
	m.codes.Store(&codes)
	m.snapshotSeconds = f.histogram("stockd_snapshot_duration_seconds", "Time to write a snapshot of a partition (rebuild, encode, save).", SnapshotBuckets)
	m.snapshotBytes = f.gaugeVec("stockd_snapshot_size_bytes", "Size of the last snapshot written of each partition.", "partition")
	m.recoverySeconds = f.gauge("stockd_recovery_duration_seconds", "Time the engine's recovery took at start (snapshots plus log tails).")
	m.recoveryEvents = f.gauge("stockd_recovery_events", "Events the engine replayed at start.")

	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            errorLog{opts.Logger},
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg,
		MaxRequestsInFlight: opts.MaxScrapes,
	})
	m.handler = promhttp.InstrumentMetricHandler(m.reg, h)
	return m
}

// Handler serves the registry in the Prometheus exposition formats (text by
// default, others by content negotiation). Errors of single collectors are
// logged and the rest is served.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registry returns the registry, to gather it in tests or to register more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Register adds a collector, such as the Pebble store's.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// errorLog adapts slog to promhttp's Logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Error("metrics: " + fmt.Sprint(v...)) }

// buildInfo returns the stockd_build_info gauge.
func buildInfo(version, revision string) prometheus.Collector {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && revision == "" {
				revision = s.Value
			}
		}
	}
	if version == "" {
		version = "unknown"
	}
	if revision == "" {
		revision = "unknown"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "stockd_build_info",
		Help:        "Always 1; its labels say which build of stockd is running.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "go": runtime.Version()},
	})
	g.Set(1)
	return g
}

// factory creates metrics and registers them.
type factory struct{ reg prometheus.Registerer }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// HTTP

// Route is one route's HTTP metrics, resolved once. A server that knows its
// routes when it starts can keep each one's Route and skip even the lookup
// ObserveRequest does.
type Route struct {
	m       *Metrics
	name    string
	latency prometheus.Observer
	mu      sync.Mutex
	codes   atomic.Pointer[map[int]prometheus.Counter] // copy-on-write
}

// Route returns the metrics of a route: its mux pattern, such as
// "POST /v1/reservations", or Unmatched. After MaxRoutes distinct routes,
// every new one is counted as OtherRoute.
func (m *Metrics) Route(pattern string) *Route {
	if r := (*m.routes.Load())[pattern]; r != nil {
		return r
	}
	m.routeMu.Lock()
	defer m.routeMu.Unlock()
	old := *m.routes.Load()
	if r := old[pattern]; r != nil {
		return r
	}
	if len(old) >= MaxRoutes {
		if r := old[OtherRoute]; r != nil {
			return r
		}
		pattern = OtherRoute
	}
	r := &Route{m: m, name: pattern, latency: m.latency.WithLabelValues(pattern)}
	r.codes.Store(&map[int]prometheus.Counter{})
	next := make(map[string]*Route, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[pattern] = r
	m.routes.Store(&next)
	return r
}

// Observe counts a request answered with status and records its latency.
func (r *Route) Observe(status int, d time.Duration) {
	c := (*r.codes.Load())[status]
	if c == nil {
		c = r.code(status)
	}
	c.Inc()
	r.latency.Observe(d.Seconds())
}

// code resolves the counter of a status code not seen before on the route.
func (r *Route) code(status int) prometheus.Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.codes.Load()
	if c := old[status]; c != nil {
		return c
	}
	c := r.m.requests.WithLabelValues(r.name, strconv.Itoa(status))
	next := make(map[int]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[status] = c
	r.codes.Store(&next)
	return c
}

// ObserveRequest counts a request of route (its mux pattern, or Unmatched)
// answered with status, and records its latency d.
func (m *Metrics) ObserveRequest(route string, status int, d time.Duration) {
	m.Route(route).Observe(status, d)
}

// StartRequest counts a request in flight until EndRequest.
func (m *Metrics) StartRequest() { m.inflight.Inc() }

// EndRequest ends what StartRequest started.
func (m *Metrics) EndRequest() { m.inflight.Dec() }

// The engine: Metrics implements engine.Observer.

// Batch records the size of a decided batch.
func (m *Metrics) Batch(_, commands, events int) {
	m.batchCommands.Observe(float64(commands))
	m.batchEvents.Observe(float64(events))
}

// Appended records how long a batch took to become durable.
func (m *Metrics) Appended(_ int, d time.Duration) { m.appendSeconds.Observe(d.Seconds()) }

// Retired counts settled entities that left memory.
func (m *Metrics) Retired(_ int, entities int) { m.retired.Add(float64(entities)) }

// AnsweredRetired counts answers read from retired records.
func (m *Metrics) AnsweredRetired() { m.retiredAnswers.Inc() }

// Expired counts holds and lots that expired on their own.
func (m *Metrics) Expired(_ int, holds, lots int) {
	if holds > 0 {
		m.expiredHolds.Add(float64(holds))
	}
	if lots > 0 {
		m.expiredLots.Add(float64(lots))
	}
}

// Decided counts reservations granted, replayed and refused by code; other
// commands are not counted here (HTTP metrics count them by route).
func (m *Metrics) Decided(_ int, cmd stockd.Command, created bool, code stockd.Code) {
	if _, ok := cmd.(stockd.Reserve); !ok {
		return
	}
	switch {
	case code != "":
		c := (*m.codes.Load())[code]
		if c == nil {
			c = m.refusedCode(code)
		}
		c.Inc()
	case created:
		m.granted.Inc()
	default:
		m.replayed.Inc()
	}
}

// refusedCode resolves the counter of a refusal code not seen before.
func (m *Metrics) refusedCode(code stockd.Code) prometheus.Counter {
	m.codeMu.Lock()
	defer m.codeMu.Unlock()
	old := *m.codes.Load()
	if c := old[code]; c != nil {
		return c
	}
	label := string(code)
	if len(old) >= maxCodes {
		label = "other"
	}
	c := m.refused.WithLabelValues(label)
	next := make(map[stockd.Code]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if label != "other" {
		next[code] = c
	}
	m.codes.Store(&next)
	return c
}

// Snapshot records a snapshot written.
func (m *Metrics) Snapshot(partition int, d time.Duration, bytes int) {
	m.snapshotSeconds.Observe(d.Seconds())
	m.snapshotBytes.WithLabelValues(strconv.Itoa(partition)).Set(float64(bytes))
}

// Recovered records the engine's recovery.
func (m *Metrics) Recovered(d time.Duration, events int) {
	m.recoverySeconds.Set(d.Seconds())
	m.recoveryEvents.Set(float64(events))
}

// Scrape-time gauges.

// Engine is what RegisterEngine reads at each scrape. *engine.Engine has
// these methods; each must be cheap and safe for concurrent use.
type Engine interface {
	// Partitions returns the number of partitions.
	Partitions() int
	// InboxDepth returns the requests waiting for partition p.
	InboxDepth(p int) int
	// Keys returns the idempotency keys remembered.
	Keys() int
	// HoldsActive returns the reservations held.
	HoldsActive() int
	// Serves reports whether this node serves partition p now: always,
	// but on a node of a cluster.
	Serves(p int) bool
}

// RegisterEngine adds gauges read from e at each scrape:
// stockd_inbox_depth{partition}, stockd_idempotency_keys and
// stockd_holds_active.
func (m *Metrics) RegisterEngine(e Engine) error {
	c := &engineCollector{e: e, labels: make([]string, e.Partitions())}
	for p := range c.labels {
		c.labels[p] = strconv.Itoa(p)
	}
	return m.reg.Register(c)
}

var (
	inboxDepthDesc = prometheus.NewDesc("stockd_inbox_depth", "Requests waiting per partition.", []string{"partition"}, nil)
	keysDesc       = prometheus.NewDesc("stockd_idempotency_keys", "Idempotency keys the engine remembers.", nil, nil)
	holdsDesc      = prometheus.NewDesc("stockd_holds_active", "Reservations held now (each counted once, at the partition that drives it).", nil, nil)
	servedDesc     = prometheus.NewDesc("stockd_partitions_served", "Partitions this node serves now: all of them, but on a node of a cluster, where the nodes' values add up to the partitions.", nil, nil)
)

type engineCollector struct {
	e Engine
	// labels are the partition labels, made once: the number of
	// partitions of a store never changes.
	labels []string
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- inboxDepthDesc
	ch <- keysDesc
	ch <- holdsDesc
	ch <- servedDesc
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.e.Partitions()
	labels := c.labels
	if len(labels) != n {
		// Not expected; Collect may run concurrently, so the cached
		// slice is left alone.
		labels = make([]string, n)
		for p := range labels {
			labels[p] = strconv.Itoa(p)
		}
	}
	served := 0
	for p := range n {
		ch <- prometheus.MustNewConstMetric(inboxDepthDesc, prometheus.GaugeValue, float64(c.e.InboxDepth(p)), labels[p])
		if c.e.Serves(p) {
			served++
		}
	}
	ch <- prometheus.MustNewConstMetric(servedDesc, prometheus.GaugeValue, float64(served))
	ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, float64(c.e.Keys()))
	ch <- prometheus.MustNewConstMetric(holdsDesc, prometheus.GaugeValue, float64(c.e.HoldsActive()))
}

// ReadModel is what RegisterReadModel reads at each scrape.
// *readmodel.Projection has these methods.
type ReadModel interface {
	// Lag returns the durable events not applied yet.
	Lag() uint64
	// LagDuration returns how long the oldest of them has waited.
	LagDuration() time.Duration
}

// RegisterReadModel adds gauges read from r at each scrape:
// stockd_projection_lag_events and stockd_projection_lag_seconds.
func (m *Metrics) RegisterReadModel(r ReadModel) error {
	events := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stockd_projection_lag_events",
		Help: "Durable events the availability read model has not applied yet.",
	}, func() float64 { return float64(r.Lag()) })
	seconds := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stockd_projection_lag_seconds",
		Help: "How long the oldest durable event the availability read model has not applied has waited; 0 when caught up.",
	}, func() float64 { return r.LagDuration().Seconds() })
	if err := m.reg.Register(events); err != nil {
		return err
	}
	if err := m.reg.Register(seconds); err != nil {
		m.reg.Unregister(events)
		return err
	}
	return nil
}
