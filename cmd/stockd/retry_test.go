package main

import (
	"context"
	nethttp "net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
)

// front is a proxy in front of a test server that loses answers: the first
// `lose` POST requests reach the service and are carried out, but their
// answer never reaches the client (the connection is cut), or is replaced
// by a 503 with Retry-After when unavailable is set. It also records the
// Authorization header of every request.
type front struct {
	URL         string
	proxy       *httputil.ReverseProxy
	unavailable bool

	mu    sync.Mutex
	lose  int
	lost  int
	auths []string
}

func newFront(t *testing.T, s *e2e.Server, lose int) *front {
	t.Helper()
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := &front{proxy: httputil.NewSingleHostReverseProxy(target), lose: lose}
	hs := httptest.NewServer(f)
	t.Cleanup(hs.Close)
	f.URL = hs.URL
	return f
}

func (f *front) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	f.mu.Lock()
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	lose := r.Method == nethttp.MethodPost && f.lost < f.lose
	if lose {
		f.lost++
	}
	f.mu.Unlock()
	if !lose {
		f.proxy.ServeHTTP(w, r)
		return
	}
	f.proxy.ServeHTTP(httptest.NewRecorder(), r) // carried out; the answer is dropped
	if !f.unavailable {
		panic(nethttp.ErrAbortHandler) // the connection is cut: no answer at all
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(nethttp.StatusServiceUnavailable)
	w.Write([]byte(`{"type":"about:blank","title":"Service Unavailable","status":503,"code":"unavailable","detail":"the service is busy"}`))
}

// events is the number of events in a SKU's log.
func events(t *testing.T, s *e2e.Server, sku string) int {
	t.Helper()
	page, err := s.Client.History(context.Background(), sku, stockd.HistoryQuery{Limit: 1000})
	if stockd.ErrorCode(err) == stockd.CodeNotFound {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Events)
}

// TestRetryWithSameID: a command whose answer is lost is sent again with the
// same id, so that it is carried out exactly once; a generated id is
// announced before anything is sent.
func TestRetryWithSameID(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	ctx := context.Background()
	for _, l := range []string{"w1", "s1"} {
		must(s.Client.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: l, Kind: stockd.KindWarehouse}))
	}
	must3(s.Client.Receive(ctx, stockd.ReceiveStock{ID: "seed", SKU: "A", Location: "w1", Quantity: 100}))
	must3(s.Client.Reserve(ctx, stockd.Reserve{ID: "cart-x", TTL: time.Hour, Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}}))
	for _, tc := range []struct {
		name   string
		args   []string
		stdout string
	}{
		{"receive", []string{"receive", "--sku", "A", "--location", "w1", "-q", "5", "--id", "r-lost"}, `receipt r-lost: 5 of A at w1, position \d+ \(already done, by an attempt whose answer was lost`},
		{"receive generated id", []string{"receive", "--sku", "A", "--location", "w1", "--quantity", "5"}, `receipt r-[0-9a-f]{12}: 5 of A`},
		{"adjust", []string{"adjust", "--sku", "A", "--location", "w1", "--delta", "-1", "--reason", "damaged"}, `adjustment adj-[0-9a-f]{12}: -1 of A`},
		{"count", []string{"count", "--sku", "A", "--location", "w1", "--on-hand", "90"}, `count cnt-[0-9a-f]{12}: A at w1 is 90`},
		{"transfer", []string{"transfer", "--sku", "A", "--from", "w1", "--to", "s1", "-q", "2"}, `transfer t-[0-9a-f]{12}: 2 of A from w1 to s1`},
		{"reserve", []string{"reserve", "--ttl", "1h", "A=3@w1"}, `reservation res-[0-9a-f]{12}`},
		{"extend", []string{"extend", "cart-x", "--ttl", "2h"}, `status held`},
		{"commit", []string{"commit", "cart-x"}, `status committed`},
	} {
		f := newFront(t, s, 1)
		before := events(t, s, "A")
		code, out, errOut := run(t, nil, append(tc.args, "--url", f.URL)...)
		if code != 0 || !regexp.MustCompile(tc.stdout).MatchString(out) {
			t.Errorf("%s: exit %d\nstdout: %s\nstderr: %s", tc.name, code, out, errOut)
			continue
		}
		if !strings.Contains(errOut, "again in") || f.lost != 1 {
			t.Errorf("%s: lost %d answer(s), and stderr does not tell of a retry:\n%s", tc.name, f.lost, errOut)
		}
		if n := events(t, s, "A") - before; n != 1 {
			t.Errorf("%s, sent again after its answer was lost, made %d events, want 1", tc.name, n)
		}
		// A generated id is announced on stderr, and it is the one used.
		if id := regexp.MustCompile(`(?:receipt|adjustment|count|transfer|reservation) ([a-z]+-[0-9a-f]{12})`).FindStringSubmatch(out); id != nil {
			if !strings.Contains(errOut, "no --id given, so the") || !strings.Contains(errOut, "--id "+id[1]) {
				t.Errorf("%s: the generated id %s is not announced:\n%s", tc.name, id[1], errOut)
			}
		}
	}
	if st := must(s.Client.SKU(ctx, "A", stockd.AsOf{})); st.OnHand != 87 || st.InTransit != 2 || st.Reserved != 3 {
		t.Errorf("A after one of each command = %+v, want 87 on hand (90 counted, 2 sent, 1 committed), 2 in transit, 3 reserved", st)
	}

	// A 503 with Retry-After after the command was carried out: the CLI
	// waits as asked and sends it again, once.
	f := newFront(t, s, 1)
	f.unavailable = true
	before := events(t, s, "B")
	start := time.Now()
	code, out, errOut := run(t, nil, "receive", "--sku", "B", "--location", "w1", "--quantity", "4", "--id", "r-503", "--url", f.URL)
	if code != 0 || !strings.Contains(out, "receipt r-503: 4 of B") || !strings.Contains(errOut, "the service is busy (unavailable); sending receipt r-503 again in 1s (retry 1 of 3)") {
		t.Errorf("receive behind a 503: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("the retry came after %s, before the Retry-After of 1s", d)
	}
	// B had none: the receipt and its BackInStock.
	if n := events(t, s, "B") - before; n != 2 {
		t.Errorf("receive behind a 503 made %d events, want 2", n)
	}

	// With --retries 0 the outcome stays unknown: the CLI says how to find
	// out, and doing so books nothing twice.
	f = newFront(t, s, 1)
	code, _, errOut = run(t, nil, "receive", "--sku", "C", "--location", "w1", "--quantity", "4", "--retries", "0", "--url", f.URL)
	id := regexp.MustCompile(`Run it again with --id (r-[0-9a-f]{12})`).FindStringSubmatch(errOut)
	if code != 1 || id == nil {
		t.Fatalf("receive with --retries 0 and a lost answer: exit %d\n%s", code, errOut)
	}
	runCases(t, s, []cliCase{
		{"again with the id", []string{"receive", "--sku", "C", "--location", "w1", "--quantity", "4", "--id", id[1]}, 0, `receipt ` + id[1] + `: 4 of C .*already done earlier`, "", false},
	})
	if st := must(s.Client.SKU(ctx, "C", stockd.AsOf{})); st.OnHand != 4 {
		t.Errorf("C = %+v, want 4 on hand", st)
	}

	// An import whose batch answer is lost is sent again, once.
	f = newFront(t, s, 1)
	p := writeFile(t, "lost.csv", "sku,quantity\nD,1\nE,2\n")
	code, out, errOut = run(t, nil, "import", "--location", "w1", p, "--url", f.URL)
	if code != 0 || !strings.Contains(out, "2 row(s): 0 received, 2 already imported (some perhaps by this import's attempt whose answer was lost)") {
		t.Errorf("import with a lost answer: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if d, e := must(s.Client.SKU(ctx, "D", stockd.AsOf{})), must(s.Client.SKU(ctx, "E", stockd.AsOf{})); d.OnHand != 1 || e.OnHand != 2 {
		t.Errorf("D, E = %d, %d on hand, want 1, 2", d.OnHand, e.OnHand)
	}
}

// TestAPIKey: --key and STOCKD_KEY are sent as a bearer token, and --help
// never shows the key.
func TestAPIKey(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	f := newFront(t, s, 0)
	for _, tc := range []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"location", "list"}, ""},
		{"", []string{"location", "list", "--key", "k-flag"}, "Bearer k-flag"},
		{"k-env", []string{"location", "list"}, "Bearer k-env"},
		{"k-env", []string{"location", "set", "w1", "--kind", "store", "--key", "k-flag"}, "Bearer k-flag"},
	} {
		t.Setenv("STOCKD_KEY", tc.env)
		f.auths = nil
		if code, out, errOut := run(t, nil, append(tc.args, "--url", f.URL)...); code != 0 {
			t.Errorf("%v: exit %d %s %s", tc.args, code, out, errOut)
			continue
		}
		if len(f.auths) != 1 || f.auths[0] != tc.want {
			t.Errorf("%v with STOCKD_KEY=%q sent Authorization %q, want %q", tc.args, tc.env, f.auths, tc.want)
		}
	}
	t.Setenv("STOCKD_KEY", "k-secret")
	code, out, _ := run(t, nil, "receive", "--help")
	if code != 0 || strings.Contains(out, "k-secret") || !strings.Contains(out, "STOCKD_KEY") || !strings.Contains(out, "stockd keys new") {
		t.Errorf("receive --help: exit %d, shows the key or says nothing of it:\n%s", code, out)
	}
	// A service that wants a key says so, and the CLI says how to give one.
	deny := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(nethttp.StatusUnauthorized)
		w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","status":401,"code":"unauthenticated","detail":"an API key is required"}`))
	}))
	defer deny.Close()
	runCases(t, nil, []cliCase{
		{"unauthenticated", []string{"location", "list", "--url", deny.URL}, 3, "", `(?s)an API key is required \(unauthenticated\).*--key or STOCKD_KEY; 'stockd keys new'`, false},
	})
}

// TestFlagSpellings: a quantity is --quantity or -q wherever one is meant;
// the help shows each flag once, and old spellings kept as aliases are
// hidden.
func TestFlagSpellings(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	must(s.Client.ConfigureLocation(context.Background(), stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse}))
	must(s.Client.ConfigureLocation(context.Background(), stockd.ConfigureLocation{ID: "s1", Kind: stockd.KindStore}))
	runCases(t, s, []cliCase{
		{"receive -q", []string{"receive", "--sku", "A", "--location", "w1", "-q", "10", "--id", "r-1"}, 0, `receipt r-1: 10 of A`, "", false},
		{"transfer -q", []string{"transfer", "--sku", "A", "--from", "w1", "--to", "s1", "-q", "3", "--id", "t-1"}, 0, `transfer t-1: 3 of A`, "", false},
		{"transfer missing quantity", []string{"transfer", "--sku", "A", "--from", "w1", "--to", "s1"}, 2, "", `--quantity is required`, false},
		{"sku config", []string{"sku", "config", "A", "--safety-stock", "1", "--low-stock-threshold", "5"}, 0, `low-stock threshold 5`, "", false},
		{"sku config old spelling", []string{"sku", "config", "A", "--safety-stock", "1", "--low-stock", "6"}, 0, `low-stock threshold 6`, "", false},
		{"receive help", []string{"receive", "--help"}, 0, `(?m)^  -q, --quantity int\n.*units received`, "", false},
		{"commit help", []string{"commit", "--help"}, 0, `(?s)--idempotency-key string.*--key string.*--retries int`, "", false},
	})
	_, out, _ := run(t, nil, "sku", "config", "--help")
	if strings.Contains(out, "--low-stock ") || !strings.Contains(out, "--low-stock-threshold int") {
		t.Errorf("sku config --help shows the hidden alias, or not the flag:\n%s", out)
	}
}
