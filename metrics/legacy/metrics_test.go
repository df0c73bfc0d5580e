package legacy

import (
	"strings"
	"sync"
	"testing"
)

func TestExposition(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("requests_total", "Requests.", "route", "code")
	h := r.Histogram("latency_seconds", "Latency.", []float64{0.1, 1}, "route")
	r.GaugeFunc("depth", "Depth.", []string{"p"}, func(emit func(float64, ...string)) {
		emit(3, "0")
		emit(0.5, "1")
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Inc("GET /x", "200")
				h.Observe(0.05, "GET /x")
			}
		}()
	}
	wg.Wait()
	c.Add(2, `we"ird`, "500")
	h.Observe(0.5, "GET /x")
	h.Observe(7, "GET /x")
	var b strings.Builder
	r.WriteText(&b)
	out := b.String()
	for _, want := range []string{
		"# TYPE requests_total counter",
		`requests_total{route="GET /x",code="200"} 800`,
		`requests_total{route="we\"ird",code="500"} 2`,
		"# TYPE latency_seconds histogram",
		`latency_seconds_bucket{route="GET /x",le="0.1"} 800`,
		`latency_seconds_bucket{route="GET /x",le="1"} 801`,
		`latency_seconds_bucket{route="GET /x",le="+Inf"} 802`,
		`latency_seconds_count{route="GET /x"} 802`,
		`depth{p="0"} 3`,
		`depth{p="1"} 0.5`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Index(out, "# HELP depth") > strings.Index(out, "# HELP latency_seconds") {
		t.Errorf("metrics are not sorted by name:\n%s", out)
	}
}

func TestDuplicateRegistrationPanics(t *testing.T) {
	r := NewRegistry()
	r.Counter("x", "X.")
	defer func() {
		if recover() == nil {
			t.Fatal("registering x twice did not panic")
		}
	}()
	r.Counter("x", "X again.")
}
