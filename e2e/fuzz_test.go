package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/http"
)

// The fuzz targets send arbitrary bytes as the body of every route that takes
// one, to one real server per target (engine over an in-memory Pebble store),
// through its handler directly. Whatever the bytes, the server must not
// panic, must not answer 5xx, and must answer JSON: problem details for every
// error. Their seed corpora are in testdata/fuzz and run in plain go test.

// fuzzReservations is the number of held reservations the commit and extend
// targets spread their inputs over.
const fuzzReservations = 8

// fuzzServer starts the server a fuzz target reuses for every input, with
// some stock, locations and held reservations to act on.
func fuzzServer(f *testing.F) *Server {
	limits := stockd.DefaultLimits
	limits.MaxLines = 10
	s := Start(f, Options{FS: vfs.NewMem(), Engine: engine.Options{Limits: limits}, HTTP: http.Config{MaxBodyBytes: 64 << 10, MaxBatch: 50}})
	c := s.Client
	for _, loc := range []string{"w1", "w2", "s1"} {
		must(c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: loc, Kind: stockd.KindWarehouse, Priority: 1}))
	}
	for _, sku := range []string{"A", "B", "C"} {
		must3(c.Receive(ctx, stockd.ReceiveStock{ID: "seed-" + sku, SKU: sku, Location: "w1", Quantity: 1_000_000, Lot: "L1", BestBefore: "2099-01-01"}))
		must3(c.Receive(ctx, stockd.ReceiveStock{ID: "seed2-" + sku, SKU: sku, Location: "w2", Quantity: 1_000_000}))
	}
	for i := range fuzzReservations {
		must3(c.Reserve(ctx, stockd.Reserve{ID: fmt.Sprintf("held-%d", i), TTL: 24 * time.Hour,
			Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 3}}}))
	}
	must3(c.Transfer(ctx, stockd.TransferStock{ID: "tr-1", SKU: "C", From: "w1", To: "s1", Quantity: 5}))
	return s
}

// pick spreads inputs over the held reservations, so that not every input
// meets an already committed one.
func pick(body []byte) int {
	h := fnv.New32a()
	h.Write(body)
	return int(h.Sum32() % fuzzReservations)
}

// fuzzRoute fuzzes the body of one route.
func fuzzRoute(f *testing.F, method string, path func(body []byte) string) {
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		p := path(body)
		req := httptest.NewRequest(method, p, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		s.API.ServeHTTP(rec, req)
		checkAnswer(t, method+" "+p, rec, body)
	})
}

// checkAnswer asserts what every answer to any body must be.
func checkAnswer(t *testing.T, what string, rec *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s answered %d to %q: %s", what, rec.Code, body, rec.Body.Bytes())
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("%s answered %d with a body that is not JSON to %q: %q", what, rec.Code, body, rec.Body.Bytes())
	}
	ct := rec.Header().Get("Content-Type")
	if rec.Code < 400 {
		if !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s answered %d with Content-Type %q", what, rec.Code, ct)
		}
		return
	}
	if !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("%s answered %d with Content-Type %q to %q", what, rec.Code, ct, body)
	}
	var p api.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("%s: problem does not decode: %v", what, err)
	}
	if p.Status != rec.Code || p.Code == "" || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Fatalf("%s answered %d with an incomplete problem to %q: %s", what, rec.Code, body, rec.Body.Bytes())
	}
}

func fixed(path string) func([]byte) string { return func([]byte) string { return path } }

// FuzzReceiptBody fuzzes POST /v1/receipts.
func FuzzReceiptBody(f *testing.F) { fuzzRoute(f, "POST", fixed("/v1/receipts")) }

// FuzzAdjustmentBody fuzzes POST /v1/adjustments.
func FuzzAdjustmentBody(f *testing.F) { fuzzRoute(f, "POST", fixed("/v1/adjustments")) }

// FuzzCountBody fuzzes POST /v1/counts.
func FuzzCountBody(f *testing.F) { fuzzRoute(f, "POST", fixed("/v1/counts")) }

// FuzzTransferBody fuzzes POST /v1/transfers.
func FuzzTransferBody(f *testing.F) { fuzzRoute(f, "POST", fixed("/v1/transfers")) }

// FuzzReservationBody fuzzes POST /v1/reservations.
func FuzzReservationBody(f *testing.F) { fuzzRoute(f, "POST", fixed("/v1/reservations")) }

// FuzzCommitBody fuzzes POST /v1/reservations/{id}/commit over held
// reservations.
func FuzzCommitBody(f *testing.F) {
	fuzzRoute(f, "POST", func(b []byte) string { return fmt.Sprintf("/v1/reservations/held-%d/commit", pick(b)) })
}

// FuzzExtendBody fuzzes POST /v1/reservations/{id}/extend over held
// reservations.
func FuzzExtendBody(f *testing.F) {
	fuzzRoute(f, "POST", func(b []byte) string { return fmt.Sprintf("/v1/reservations/held-%d/extend", pick(b)) })
}

// FuzzLocationBody fuzzes PUT /v1/locations/{id}.
func FuzzLocationBody(f *testing.F) { fuzzRoute(f, "PUT", fixed("/v1/locations/fz")) }

// FuzzSKUConfigBody fuzzes PUT /v1/skus/{sku}/config.
func FuzzSKUConfigBody(f *testing.F) { fuzzRoute(f, "PUT", fixed("/v1/skus/A/config")) }

// FuzzBatchBody fuzzes POST /v1/batch, and checks that every result of an
// accepted batch is itself a status below 500 with a body or a problem.
func FuzzBatchBody(f *testing.F) {
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1/batch", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		s.API.ServeHTTP(rec, req)
		checkAnswer(t, "POST /v1/batch", rec, body)
		if rec.Code != 200 {
			return
		}
		var resp struct {
			Results []struct {
				Status  int             `json:"status"`
				Body    json.RawMessage `json:"body"`
				Problem *api.Problem    `json:"problem"`
			} `json:"results"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("batch answer does not decode: %v", err)
		}
		for i, r := range resp.Results {
			switch {
			case r.Status >= 500:
				t.Fatalf("batch result %d is %d for %q: %s", i, r.Status, body, rec.Body.Bytes())
			case r.Status >= 400 && (r.Problem == nil || r.Problem.Code == "" || r.Problem.Status != r.Status):
				t.Fatalf("batch result %d is %d without a proper problem: %s", i, r.Status, rec.Body.Bytes())
			case r.Status < 400 && len(r.Body) == 0:
				t.Fatalf("batch result %d is %d without a body: %s", i, r.Status, rec.Body.Bytes())
			}
		}
	})
}
