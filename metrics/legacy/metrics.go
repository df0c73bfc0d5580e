// Package legacy is the hand-written exposition package stockd used before
// client_golang, kept only to benchmark the new package against. It is a
// small Prometheus instrumentation library: counters,
// gauges and histograms with labels, written in the Prometheus text
// exposition format. It covers what stockd exports and nothing more, so the
// service needs no client library and its dependencies.
package legacy

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds metrics and writes them out.
type Registry struct {
	mu      sync.Mutex
	metrics []metric
}

type metric interface {
	name() string
	write(w io.Writer)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

func (r *Registry) add(m metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, old := range r.metrics {
		if old.name() == m.name() {
			panic("metrics: " + m.name() + " registered twice")
		}
	}
	r.metrics = append(r.metrics, m)
}

// WriteText writes every metric in the Prometheus text format (version
// 0.0.4), sorted by name.
func (r *Registry) WriteText(w io.Writer) {
	r.mu.Lock()
	ms := slices.Clone(r.metrics)
	r.mu.Unlock()
	slices.SortFunc(ms, func(a, b metric) int { return strings.Compare(a.name(), b.name()) })
	for _, m := range ms {
		m.write(w)
	}
}

// ContentType is the media type of WriteText's output.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

type desc struct {
	n, help, kind string
	labels        []string
}

func (d desc) name() string { return d.n }

func (d desc) header(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", d.n, strings.ReplaceAll(d.help, "\n", " "), d.n, d.kind)
}

// labelString renders label pairs, escaping values as the format requires.
func labelString(names, values []string, extra ...string) string {
	if len(names) == 0 && len(extra) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	pairs := make([]string, 0, len(names)+len(extra)/2)
	for i, n := range names {
		pairs = append(pairs, n+`="`+escape(values[i])+`"`)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		pairs = append(pairs, extra[i]+`="`+escape(extra[i+1])+`"`)
	}
	b.WriteString(strings.Join(pairs, ","))
	b.WriteByte('}')
	return b.String()
}

func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// series holds one value per combination of label values.
type series[T any] struct {
	mu   sync.RWMutex
	m    map[string]*T
	keys map[string][]string
	mk   func() *T
}

func (s *series[T]) get(values []string) *T {
	k := strings.Join(values, "\xff")
	s.mu.RLock()
	v := s.m[k]
	s.mu.RUnlock()
	if v != nil {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v = s.m[k]; v == nil {
		v = s.mk()
		s.m[k] = v
		s.keys[k] = slices.Clone(values)
	}
	return v
}

func (s *series[T]) each(fn func(values []string, v *T)) {
	s.mu.RLock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	s.mu.RUnlock()
	slices.Sort(keys)
	for _, k := range keys {
		s.mu.RLock()
		v, vals := s.m[k], s.keys[k]
		s.mu.RUnlock()
		fn(vals, v)
	}
}

func newSeries[T any](mk func() *T) series[T] {
	return series[T]{m: make(map[string]*T), keys: make(map[string][]string), mk: mk}
}

// CounterVec is a counter per combination of label values.
type CounterVec struct {
	desc
	s series[atomic.Uint64]
}

// Counter registers a counter with the given label names.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{desc: desc{name, help, "counter", labels}, s: newSeries(func() *atomic.Uint64 { return new(atomic.Uint64) })}
	r.add(c)
	return c
}

// Add adds n to the counter with the given label values.
func (c *CounterVec) Add(n uint64, values ...string) { c.s.get(values).Add(n) }

// Inc adds one.
func (c *CounterVec) Inc(values ...string) { c.Add(1, values...) }

func (c *CounterVec) write(w io.Writer) {
	c.header(w)
	c.s.each(func(values []string, v *atomic.Uint64) {
		fmt.Fprintf(w, "%s%s %d\n", c.n, labelString(c.labels, values), v.Load())
	})
}

// GaugeFunc is a gauge whose values are read when metrics are written.
type GaugeFunc struct {
	desc
	fn func(emit func(value float64, labelValues ...string))
}

// GaugeFunc registers a gauge read by fn, which calls emit once per series.
func (r *Registry) GaugeFunc(name, help string, labels []string, fn func(emit func(value float64, labelValues ...string))) {
	r.add(&GaugeFunc{desc: desc{name, help, "gauge", labels}, fn: fn})
}

func (g *GaugeFunc) write(w io.Writer) {
	g.header(w)
	g.fn(func(v float64, values ...string) {
		fmt.Fprintf(w, "%s%s %s\n", g.n, labelString(g.labels, values), formatFloat(v))
	})
}

// HistogramVec is a histogram per combination of label values.
type HistogramVec struct {
	desc
	buckets []float64
	s       series[histogram]
}

type histogram struct {
	counts []atomic.Uint64 // one per bucket, then +Inf
	sum    atomic.Uint64   // float64 bits
	count  atomic.Uint64
}

// Histogram registers a histogram with the given upper bounds (sorted) and
// label names.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *HistogramVec {
	b := slices.Clone(buckets)
	slices.Sort(b)
	h := &HistogramVec{desc: desc{name, help, "histogram", labels}, buckets: b}
	h.s = newSeries(func() *histogram { return &histogram{counts: make([]atomic.Uint64, len(b)+1)} })
	r.add(h)
	return h
}

// Observe records v in the histogram with the given label values.
func (h *HistogramVec) Observe(v float64, values ...string) {
	x := h.s.get(values)
	i, _ := slices.BinarySearch(h.buckets, v)
	x.counts[i].Add(1)
	x.count.Add(1)
	for {
		old := x.sum.Load()
		if x.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (h *HistogramVec) write(w io.Writer) {
	h.header(w)
	h.s.each(func(values []string, x *histogram) {
		var cum uint64
		for i, ub := range h.buckets {
			cum += x.counts[i].Load()
			fmt.Fprintf(w, "%s_bucket%s %d\n", h.n, labelString(h.labels, values, "le", formatFloat(ub)), cum)
		}
		cum += x.counts[len(h.buckets)].Load()
		fmt.Fprintf(w, "%s_bucket%s %d\n", h.n, labelString(h.labels, values, "le", "+Inf"), cum)
		fmt.Fprintf(w, "%s_sum%s %s\n", h.n, labelString(h.labels, values), formatFloat(math.Float64frombits(x.sum.Load())))
		fmt.Fprintf(w, "%s_count%s %d\n", h.n, labelString(h.labels, values), cum)
	})
}

// ExponentialBuckets returns n upper bounds starting at start, each factor
// times the previous.
func ExponentialBuckets(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}
