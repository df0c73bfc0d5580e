package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsDefaults(t *testing.T) {
	t.Setenv("STOCKD_BENCH_POSTGRES", "")
	fakeEmbedded(t)
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.targets, []string{"stockd", "stockd-keys", "stockd-client", "stockd-batch", "noop"}) ||
		!slices.Equal(o.workloads, []string{"hot", "uniform"}) ||
		!slices.Equal(o.clients, []int{1, 64, 256}) ||
		o.duration != 5*time.Second || o.warmup != 500*time.Millisecond || o.ops != 0 ||
		o.batch != 100 || o.skus != 100_000 || o.ttl != 15*time.Minute || o.json || o.url != "" {
		t.Fatalf("defaults: %+v", o)
	}

	// A DSN, from the flag or the environment, adds the PostgreSQL peers.
	t.Setenv("STOCKD_BENCH_REDIS", "")
	withPG := slices.DeleteFunc(slices.Clone(TargetNames), func(s string) bool { return s == "redis-lua" })
	o, err = parseFlags([]string{"--postgres", "postgres://x/y"})
	if err != nil || !slices.Equal(o.targets, withPG) {
		t.Fatalf("with --postgres: %v %v", o, err)
	}
	// An address of Redis adds its peer too: every target.
	o, err = parseFlags([]string{"--postgres", "postgres://x/y", "--redis", "127.0.0.1:6379"})
	if err != nil || !slices.Equal(o.targets, TargetNames) {
		t.Fatalf("with --postgres and --redis: %v %v", o, err)
	}
	if _, err := parseFlags([]string{"--targets", "redis-lua"}); err == nil || !strings.Contains(err.Error(), "--redis") {
		t.Errorf("redis-lua without --redis: %v", err)
	}
	t.Setenv("STOCKD_BENCH_POSTGRES", "postgres://env/db")
	o, err = parseFlags(nil)
	if err != nil || o.postgres != "postgres://env/db" || !slices.Equal(o.targets, withPG) {
		t.Fatalf("with STOCKD_BENCH_POSTGRES: %v %v", o, err)
	}
	// An explicit --postgres "" leaves them out again.
	o, err = parseFlags([]string{"--postgres", ""})
	if err != nil || o.postgres != "" || slices.Contains(o.targets, "pg-rowlock") {
		t.Fatalf("with --postgres \"\": %v %v", o, err)
	}
	var out bytes.Buffer
	usage(&out)
	if strings.Contains(out.String(), "postgres://env/db") {
		t.Error("--help prints the DSN of the environment")
	}
}

func TestParseFlagsValues(t *testing.T) {
	t.Setenv("STOCKD_BENCH_POSTGRES", "")
	o, err := parseFlags([]string{
		"--url", "http://127.0.0.1:8080", "--targets", "noop, stockd", "--workloads", "uniform",
		"--clients", "2,8", "--ops", "1000", "--warmup", "0s", "--batch", "50", "--skus", "10",
		"--ttl", "1m", "--json",
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.url != "http://127.0.0.1:8080" || !slices.Equal(o.targets, []string{"noop", "stockd"}) ||
		!slices.Equal(o.workloads, []string{"uniform"}) || !slices.Equal(o.clients, []int{2, 8}) ||
		o.ops != 1000 || o.warmup != 0 || o.batch != 50 || o.skus != 10 || o.ttl != time.Minute || !o.json {
		t.Fatalf("parsed: %+v", o)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	t.Setenv("STOCKD_BENCH_POSTGRES", "")
	fakeEmbedded(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--clients", "0"}, "--clients"},
		{[]string{"--clients", "a,2"}, "--clients"},
		{[]string{"--clients", ","}, "--clients"},
		{[]string{"--targets", "stockd,mysql"}, "unknown name"},
		{[]string{"--targets", "noop,noop"}, "twice"},
		{[]string{"--workloads", "zipf"}, "unknown name"},
		{[]string{"--targets", "pg-rowlock"}, "needs --postgres"},
		{[]string{"--batch", "0"}, "--batch"},
		{[]string{"--batch", "1001"}, "--batch"},
		{[]string{"--duration", "0s"}, "--duration"},
		{[]string{"--ops", "-1"}, "--ops"},
		{[]string{"--warmup", "-1s"}, "--warmup"},
		{[]string{"--ttl", "0s"}, "--ttl"},
		{[]string{"--skus", "0"}, "--skus"},
		{[]string{"--url", "127.0.0.1:8080"}, "--url"},
		{[]string{"--url", "http://127.0.0.1:8080", "--embedded"}, "exclude"},
		{[]string{"--url", "http://127.0.0.1:8080", "--data", "/tmp/x"}, "--data"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--nope"}, "not defined"},
		{[]string{"--duration", "5"}, "invalid value"},
	} {
		if _, err := parseFlags(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseFlags(%q) = %v, want an error mentioning %q", c.args, err, c.want)
		}
	}
	// --ops makes --duration unnecessary.
	if _, err := parseFlags([]string{"--ops", "10", "--duration", "0s"}); err != nil {
		t.Errorf("--ops with --duration 0: %v", err)
	}
}

func TestMainUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help exit %d, stderr %s", code, errb.String())
	}
	// --help documents every flag.
	fs, _ := newFlagSet(&options{})
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(out.String(), "-"+f.Name+" ") && !strings.Contains(out.String(), "-"+f.Name+"\n") {
			t.Errorf("--help does not document -%s", f.Name)
		}
	})
	for _, s := range []string{"Usage: stockd bench", "pg-rowlock", "pg-events", "noop", "stockd-pg3", "stockd-pg3-client", "round-robin", "Exit status"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("--help lacks %q", s)
		}
	}

	out.Reset()
	errb.Reset()
	if code := Main(context.Background(), []string{"--clients", "x"}, &out, &errb); code != 2 {
		t.Fatalf("usage error exit %d", code)
	}
	if !strings.Contains(errb.String(), "--clients") || !strings.Contains(errb.String(), "--help") {
		t.Errorf("usage error message: %q", errb.String())
	}
}

func TestMainWithoutServer(t *testing.T) {
	t.Setenv("STOCKD_BENCH_POSTGRES", "")
	prev := StartEmbedded
	StartEmbedded = nil
	defer func() { StartEmbedded = prev }()
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"--duration", "10ms"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "no embedded server") || !strings.Contains(errb.String(), "--url") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	// Targets that need no stockd server run without one.
	out.Reset()
	errb.Reset()
	code = Main(context.Background(), []string{"--targets", "noop", "--workloads", "hot", "--clients", "2", "--duration", "50ms", "--warmup", "10ms"}, &out, &errb)
	if code != 0 {
		t.Fatalf("noop only: exit %d, stderr %s", code, errb.String())
	}
}

func TestMainUnreachableServer(t *testing.T) {
	t.Setenv("STOCKD_BENCH_POSTGRES", "")
	// A port nothing listens on: stocking fails, the run fails with 1, and
	// the other targets still report.
	n, err := StartNoop(NewHTTPClient(1), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	dead := n.URL()
	n.Close()
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"--url", dead, "--targets", "stockd,noop", "--workloads", "hot", "--clients", "1", "--duration", "50ms", "--warmup", "0s"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "stocking") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if !strings.Contains(out.String(), "noop") {
		t.Errorf("the noop target's figures are missing:\n%s", out.String())
	}
}

// TestMainEndToEnd runs the whole command against the fake embedded server
// and the noop target, briefly, and checks the tables and ratios.
func TestMainEndToEnd(t *testing.T) {
	t.Setenv("STOCKD_BENCH_POSTGRES", "")
	f := fakeEmbedded(t)
	var out, errb bytes.Buffer
	args := []string{"--workloads", "hot,uniform", "--skus", "500", "--clients", "1,4",
		"--duration", "150ms", "--warmup", "30ms", "--batch", "20"}
	if code := Main(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	text := out.String()
	t.Logf("\n%s", text)
	for _, s := range []string{
		"$ stockd bench --workloads", "workload hot: 1 SKU(s)", "workload uniform: 500 SKU(s)",
		"target", "clients", "ops/s", "req/s", "p50", "p99", "p999", "errors",
		"stockd-batch", "stockd-keys", "noop", "ratios", "stockd/noop", "stockd-keys/stockd",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	if !strings.Contains(errb.String(), "embedded stockd at http://127.0.0.1:") {
		t.Errorf("no progress about the embedded server: %s", errb.String())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dupIDs != 0 {
		t.Errorf("%d reservation ids were sent twice", f.dupIDs)
	}
	// Stocked once per server (stockd and stockd-batch share one,
	// stockd-keys has its own): 1 hot receipt + 500 uniform, twice.
	if len(f.receipts) != 2*501 {
		t.Errorf("%d receipts, want %d", len(f.receipts), 2*501)
	}
	if f.stock["sku-499"] == 0 || f.stock["sku-500"] != 0 {
		t.Errorf("uniform stocking: sku-499 %d, sku-500 %d", f.stock["sku-499"], f.stock["sku-500"])
	}
}

func TestMainJSON(t *testing.T) {
	t.Setenv("STOCKD_BENCH_POSTGRES", "")
	fakeEmbedded(t)
	var out, errb bytes.Buffer
	// --ops makes the counts exact whatever the machine's load.
	args := []string{"--json", "--workloads", "hot,uniform", "--skus", "100", "--clients", "1,3",
		"--ops", "200", "--warmup", "20ms", "--batch", "10"}
	if code := Main(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	var rep struct {
		Clients []int `json:"clients"`
		Results []struct {
			Workload, Target string
			Clients          int
			OpsPerRequest    int     `json:"ops_per_request"`
			OK               int64   `json:"ok"`
			Requests         int64   `json:"requests"`
			OpsPerSec        float64 `json:"ops_per_sec"`
			RequestsPerSec   float64 `json:"requests_per_sec"`
			P50              float64 `json:"p50_us"`
			P99              float64 `json:"p99_us"`
			P999             float64 `json:"p999_us"`
			Errors           Errors  `json:"errors"`
		} `json:"results"`
		Ratios []Ratio `json:"ratios"`
		Ops    int64   `json:"ops_per_level"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(rep.Results) != 2*5*2 || rep.Ops != 200 {
		t.Fatalf("%d results (want 20), ops %v", len(rep.Results), rep.Ops)
	}
	for _, r := range rep.Results {
		if r.OK != 200 || r.OpsPerSec <= 0 || r.P50 <= 0 || r.P99 < r.P50 || r.P999 < r.P99 || r.Errors.Total() != 0 {
			t.Errorf("implausible result %+v", r)
		}
		if r.Target == "stockd-batch" {
			if r.OpsPerRequest != 10 || r.Requests != 20 {
				t.Errorf("batch: %d ok in %d requests of %d", r.OK, r.Requests, r.OpsPerRequest)
			}
		} else if r.OK != r.Requests {
			t.Errorf("%s: %d ok in %d requests", r.Target, r.OK, r.Requests)
		}
	}
	names := map[string]int{}
	for _, r := range rep.Ratios {
		names[r.Name]++
	}
	if names["stockd/noop"] != 4 || names["stockd/pg-rowlock"] != 0 {
		t.Errorf("ratios: %v", names)
	}
}

// TestRunExactCounts checks, with --ops, that the generator issues exactly
// the operations asked for and classifies refusals: 50 units, 200 attempts.
func TestRunExactCounts(t *testing.T) {
	for _, batch := range []int{0, 7} {
		f, url := startFake(t)
		s := NewStockd(url, NewHTTPClient(16), time.Minute)
		target := s.Single()
		if batch > 0 {
			target = s.Batch(batch)
		}
		w := Workload{Name: "hot", SKUs: 1, Stock: 50}
		rep, err := Run(context.Background(), Config{Workloads: []Workload{w}, Clients: []int{16}, Ops: 200}, []Target{target})
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Results[0]
		if r.OK != 50 || r.Errors.Insufficient != 150 || r.Errors.Other != 0 || r.Errors.Overloaded != 0 {
			t.Errorf("%s: ok %d, errors %+v; want 50 ok, 150 insufficient", target.Name(), r.OK, r.Errors)
		}
		wantReq := int64(200)
		if batch > 0 {
			wantReq = (200 + int64(batch) - 1) / int64(batch)
		}
		if r.Requests != wantReq {
			t.Errorf("%s: %d requests, want %d", target.Name(), r.Requests, wantReq)
		}
		if got := f.stockOf("hot"); got != 0 {
			t.Errorf("%s: %d units left, want 0", target.Name(), got)
		}
		if f.reserves != 200 || f.dupIDs != 0 {
			t.Errorf("%s: server saw %d reservations (%d duplicate ids), want 200 distinct", target.Name(), f.reserves, f.dupIDs)
		}
	}
}

// TestRunOverloadAndErrors checks the classification of 503 and of
// unexpected answers.
func TestRunOverloadAndErrors(t *testing.T) {
	for _, c := range []struct {
		status     int
		overloaded bool
	}{{503, true}, {429, true}, {500, false}} {
		h := func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(c.status)
		}
		url := serve(t, h)
		s := NewStockd(url, NewHTTPClient(2), time.Minute)
		lvl, err := s.Single().Start(context.Background(), Hot(), 1)
		if err != nil {
			t.Fatal(err)
		}
		out := lvl.Workers[0].Do(context.Background(), 1)
		if c.overloaded && (out.Overloaded != 1 || out.Backoff != 0) || !c.overloaded && (out.Other != 1 || out.Err == nil) {
			t.Errorf("HTTP %d: %+v", c.status, out)
		}
	}
}

func TestRunEveryRequestFails(t *testing.T) {
	url := serve(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	s := NewStockd(url, NewHTTPClient(2), time.Minute)
	n, err := StartNoop(NewHTTPClient(2), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// Stocking is skipped (the stock is already there, say): use the
	// target's worker path only by giving it a no-op prepare.
	single := s.Single().(*httpTarget)
	single.prepare = nil
	rep, err := Run(context.Background(), Config{Workloads: []Workload{Hot()}, Clients: []int{1, 2}, Ops: 5},
		[]Target{single, n})
	if err == nil || !strings.Contains(err.Error(), "every request failed") {
		t.Fatalf("err = %v", err)
	}
	// The failing target stops after its first level; the next still runs.
	if len(rep.Results) != 3 || rep.Results[0].Target != "stockd" || rep.Results[1].Target != "noop" || rep.Results[0].FirstError == "" {
		t.Fatalf("results %+v", rep.Results)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal("not a cancellation")
	}
}

func TestRunCancelled(t *testing.T) {
	n, err := StartNoop(NewHTTPClient(4), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Run(ctx, Config{Workloads: []Workload{Hot()}, Clients: []int{4}, Duration: time.Hour}, []Target{n})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// serve runs h on a loopback port for the test's lifetime.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestNoopHandlerStrict(t *testing.T) {
	srv := httptest.NewServer(NoopHandler())
	defer srv.Close()
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"id":"a","ttl":"15m","lines":[{"sku":"hot","quantity":1}]}`, 201},
		{`{"id":"a","lines":[{"sku":"hot","quantity":1,"location":"w1"}],"customer":"c"}`, 201},
		{`{"id":"a","ttl":"15m","lines":[{"sku":"hot","quantity":1}],"extra":1}`, 400},
		{`{"id":"a","ttl":"15m","lines":[{"sku":"hot","quantity":1}]} {}`, 400},
		{`{"id":"a","ttl":"15m","lines":[{"sku":"hot","quantity":"1"}]}`, 400},
		{`{"id":"a","ttl":"15m","lines":[]}`, 422},
		{`{"id":"a","ttl":"15m","lines":[{"sku":"hot","quantity":0}]}`, 422},
		{`{"id":"a","ttl":"soon","lines":[{"sku":"hot","quantity":1}]}`, 422},
	} {
		resp, err := http.Post(srv.URL+"/v1/reservations", "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.body, resp.StatusCode, b, c.want)
		}
		if c.want == 201 {
			var r reserveResponse
			if err := json.Unmarshal(b, &r); err != nil || r.ID != "a" || r.Status != "held" || len(r.Lines) != 1 {
				t.Errorf("body %s: %v", b, err)
			}
		}
	}
}

func TestRedactArgs(t *testing.T) {
	got := redactArgs([]string{"--postgres", "postgres://u:secret@h/db", "-postgres=postgres://u:secret@h/db", "--postgres", "host=h password=secret", "--url", "http://x"})
	want := []string{"--postgres", "postgres://u:xxxxx@h/db", "-postgres=postgres://u:xxxxx@h/db", "--postgres", "host=h password=xxxxx", "--url", "http://x"}
	if !slices.Equal(got, want) {
		t.Errorf("redactArgs = %q, want %q", got, want)
	}
}

// TestClientTargetThroughBatches runs the stockd-client target against the
// fake server: every reservation goes through the Go client, which sends
// them as batches, and each is counted once.
func TestClientTargetThroughBatches(t *testing.T) {
	t.Setenv("STOCKD_BENCH_POSTGRES", "")
	f := fakeEmbedded(t)
	var out, errb bytes.Buffer
	args := []string{"--json", "--targets", "stockd-client", "--workloads", "hot", "--clients", "8", "--ops", "400", "--warmup", "20ms"}
	if code := Main(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	var rep struct {
		Results []struct {
			Target string
			OK     int64 `json:"ok"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Target != "stockd-client" || rep.Results[0].OK != 400 {
		t.Fatalf("results = %+v, want 400 ok for stockd-client", rep.Results)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dupIDs != 0 {
		t.Errorf("%d reservation ids were sent twice", f.dupIDs)
	}
}
