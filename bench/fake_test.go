package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// fakeStockd is a test double for the load generator, NOT a stockd
// substitute: it implements just enough of POST /v1/receipts,
// /v1/reservations and /v1/batch, with an in-memory counter per SKU, to check
// that the generator stocks, reserves, classifies answers and counts
// correctly. It also records every reservation id, so tests can check the
// generator never reuses one.
type fakeStockd struct {
	mu       sync.Mutex
	stock    map[string]int64
	receipts map[string]bool
	ids      map[string]bool
	dupIDs   int
	batches  int
	reserves int
}

func newFakeStockd() *fakeStockd {
	return &fakeStockd{stock: map[string]int64{}, receipts: map[string]bool{}, ids: map[string]bool{}}
}

type fakeReceipt struct {
	ID       string `json:"id"`
	SKU      string `json:"sku"`
	Location string `json:"location"`
	Quantity int64  `json:"quantity"`
}

type fakeProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// decodeStrict decodes like the real server: unknown fields are errors.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func (f *fakeStockd) receive(body []byte) (int, any) {
	var r fakeReceipt
	if err := decodeStrict(body, &r); err != nil || r.ID == "" || r.SKU == "" || r.Location == "" || r.Quantity < 1 || r.Quantity > 1_000_000_000 {
		return 400, fakeProblem{Status: 400, Code: "invalid_request", Detail: "bad receipt"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.receipts[r.ID] {
		return 200, r
	}
	f.receipts[r.ID] = true
	f.stock[r.SKU] += r.Quantity
	return 201, r
}

func (f *fakeStockd) reserve(body []byte) (int, any) {
	var r reserveRequest
	if err := decodeStrict(body, &r); err != nil || r.ID == "" || len(r.Lines) == 0 {
		return 400, fakeProblem{Status: 400, Code: "invalid_request", Detail: "bad reservation"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserves++
	if f.ids[r.ID] {
		f.dupIDs++
	}
	f.ids[r.ID] = true
	for _, l := range r.Lines {
		if l.Quantity < 1 || f.stock[l.SKU] < l.Quantity {
			return 409, fakeProblem{Type: "about:blank", Title: "Insufficient stock", Status: 409, Code: "insufficient_stock", Detail: "not enough of " + l.SKU}
		}
	}
	for _, l := range r.Lines {
		f.stock[l.SKU] -= l.Quantity
	}
	return 201, map[string]any{"id": r.ID, "status": "held", "lines": r.Lines}
}

func (f *fakeStockd) handler() http.Handler {
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, status int, v any) {
		if _, ok := v.(fakeProblem); ok {
			w.Header().Set("Content-Type", "application/problem+json")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	one := func(do func([]byte) (int, any)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			status, v := do(b)
			write(w, status, v)
		}
	}
	mux.HandleFunc("PUT /v1/locations/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"`+r.PathValue("id")+`","kind":"warehouse","priority":1,"region":"bench"}`)
	})
	mux.HandleFunc("POST /v1/receipts", one(f.receive))
	mux.HandleFunc("POST /v1/reservations", one(f.reserve))
	mux.HandleFunc("POST /v1/batch", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Operations []struct {
				Op   string          `json:"op"`
				Body json.RawMessage `json:"body"`
			} `json:"operations"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := decodeStrict(b, &req); err != nil || len(req.Operations) > 1000 {
			write(w, 400, fakeProblem{Status: 400, Code: "invalid_request"})
			return
		}
		f.mu.Lock()
		f.batches++
		f.mu.Unlock()
		type result struct {
			Status  int  `json:"status"`
			Body    any  `json:"body,omitempty"`
			Problem *any `json:"problem,omitempty"`
		}
		out := struct {
			Results []result `json:"results"`
		}{Results: []result{}}
		for _, op := range req.Operations {
			var status int
			var v any
			switch op.Op {
			case "receive":
				status, v = f.receive(op.Body)
			case "reserve":
				status, v = f.reserve(op.Body)
			default:
				status, v = 400, fakeProblem{Status: 400, Code: "invalid_request"}
			}
			if _, ok := v.(fakeProblem); ok {
				out.Results = append(out.Results, result{Status: status, Problem: &v})
			} else {
				out.Results = append(out.Results, result{Status: status, Body: v})
			}
		}
		write(w, 200, out)
	})
	return mux
}

func (f *fakeStockd) stockOf(sku string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stock[sku]
}

// startFake serves a fakeStockd for the test's lifetime.
func startFake(t *testing.T) (*fakeStockd, string) {
	t.Helper()
	f := newFakeStockd()
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// fakeEmbedded installs a StartEmbedded that starts a fakeStockd, restoring
// the previous one when the test ends.
func fakeEmbedded(t *testing.T) *fakeStockd {
	t.Helper()
	f := newFakeStockd()
	prev := StartEmbedded
	t.Cleanup(func() { StartEmbedded = prev })
	StartEmbedded = func(ctx context.Context, dir, _, _, _ string) (string, func(), error) {
		if dir == "" {
			return "", nil, errors.New("no data dir")
		}
		srv := httptest.NewServer(f.handler())
		return srv.URL, srv.Close, nil
	}
	return f
}
