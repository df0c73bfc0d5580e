package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

func init() {
	// The authorization matrix: each successful arrival and cancel needs
	// an expected receipt of its own, made before it.
	matrixRequests["POST /v1/expected-receipts"] = matrixRequest{"/v1/expected-receipts", `{"id":"m-po","sku":"A","location":"w1","quantity":1,"expected_at":"2027-04-01T08:00:00Z"}`}
	matrixRequests["GET /v1/expected-receipts/{id}"] = matrixRequest{"/v1/expected-receipts/m-po", ""}
	matrixRequests["POST /v1/expected-receipts/{id}/arrive"] = matrixRequest{"/v1/expected-receipts/m-po-arrive/arrive", ""}
	matrixRequests["POST /v1/expected-receipts/{id}/cancel"] = matrixRequest{"/v1/expected-receipts/m-po-cancel/cancel", ""}
	for _, id := range []string{"m-po-arrive", "m-po-cancel"} {
		matrixPrepare[fmt.Sprintf("POST /v1/expected-receipts/{id}/%s", id[len("m-po-"):])] = func(t *testing.T, s *Server) {
			t.Helper()
			_, _, err := s.Service.ExpectReceipt(stockd.WithActor(ctx, "root"), stockd.ExpectReceipt{ID: id, SKU: "A", Location: "w1", Quantity: 1, ExpectedAt: time.Date(2027, 4, 1, 8, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestExpectedReceiptsWire covers the expected receipts' routes on the wire:
// statuses of recording, replaying and reusing an id, the refusals of bad
// input (nothing changed), a preorder held against the receipt, its
// arrival converting it, and a cancel.
func TestExpectedReceiptsWire(t *testing.T) {
	s := Start(t, Options{})
	wantStatus(t, raw(t, s, "PUT", "/v1/locations/w1", `{"kind":"warehouse","priority":1}`), 200)
	r := raw(t, s, "PUT", "/v1/skus/A/config", `{"safety_stock":0,"preorders":true}`)
	wantStatus(t, r, 200)
	if r.JSON(t)["preorders"] != true {
		t.Fatalf("config = %s", r.Body)
	}
	po := `{"id":"po-1","sku":"A","location":"w1","quantity":5,"expected_at":"2027-04-01T08:00:00Z"}`
	r = raw(t, s, "POST", "/v1/expected-receipts", po)
	wantStatus(t, r, 201)
	if m := r.JSON(t); m["status"] != "expected" || m["preorderable"] != 5.0 {
		t.Fatalf("expected receipt = %s", r.Body)
	}
	wantStatus(t, raw(t, s, "POST", "/v1/expected-receipts", po), 200)
	wantProblem(t, raw(t, s, "POST", "/v1/expected-receipts", `{"id":"po-1","sku":"A","location":"w1","quantity":6,"expected_at":"2027-04-01T08:00:00Z"}`), 422, "idempotency_mismatch")
	wantProblem(t, raw(t, s, "POST", "/v1/expected-receipts", `{"id":"po-2","sku":"A","location":"nowhere","quantity":5,"expected_at":"2027-04-01T08:00:00Z"}`), 422, "unknown_location")
	wantProblem(t, raw(t, s, "POST", "/v1/expected-receipts", `{"id":"po-2","sku":"A","location":"w1","quantity":0,"expected_at":"2027-04-01T08:00:00Z"}`), 422, "invalid_request")
	wantProblem(t, raw(t, s, "GET", "/v1/expected-receipts/po-2", nil), 404, "not_found")
	wantProblem(t, raw(t, s, "POST", "/v1/expected-receipts/po-9/arrive", nil), 404, "not_found")

	r = raw(t, s, "POST", "/v1/reservations", `{"id":"cart-1","lines":[{"sku":"A","quantity":3}]}`)
	wantStatus(t, r, 201)
	line := r.JSON(t)["lines"].([]any)[0].(map[string]any)
	if line["preorder"] != 3.0 || len(line["allocations"].([]any)) != 0 {
		t.Fatalf("preorder line = %v", line)
	}
	r = raw(t, s, "GET", "/v1/skus/A", nil)
	wantStatus(t, r, 200)
	if m := r.JSON(t); m["expected"] != 5.0 || m["preordered"] != 3.0 || m["preorderable"] != 2.0 || m["reserved"] != 0.0 {
		t.Fatalf("sku = %s", r.Body)
	}

	r = raw(t, s, "POST", "/v1/expected-receipts/po-1/arrive", `{"quantity":4}`)
	wantStatus(t, r, 200)
	if m := r.JSON(t); m["status"] != "arrived" || m["arrived"] != 4.0 || m["closed_at"] == nil {
		t.Fatalf("arrival = %s", r.Body)
	}
	wantStatus(t, raw(t, s, "POST", "/v1/expected-receipts/po-1/arrive", `{"quantity":4}`), 200)
	wantProblem(t, raw(t, s, "POST", "/v1/expected-receipts/po-1/arrive", `{"quantity":3}`), 422, "idempotency_mismatch")
	wantProblem(t, raw(t, s, "POST", "/v1/expected-receipts/po-1/cancel", nil), 409, "expected_receipt_closed")
	r = raw(t, s, "GET", "/v1/reservations/cart-1", nil)
	wantStatus(t, r, 200)
	line = r.JSON(t)["lines"].([]any)[0].(map[string]any)
	if line["preorder"] != 0.0 || line["allocations"].([]any)[0].(map[string]any)["quantity"] != 3.0 {
		t.Fatalf("line after arrival = %v", line)
	}
	r = raw(t, s, "GET", "/v1/skus/A", nil)
	if m := r.JSON(t); m["on_hand"] != 4.0 || m["reserved"] != 3.0 || m["expected"] != 0.0 {
		t.Fatalf("sku after arrival = %s", r.Body)
	}

	wantStatus(t, raw(t, s, "POST", "/v1/expected-receipts", `{"id":"po-3","sku":"A","location":"w1","quantity":2,"expected_at":"2027-04-02T08:00:00Z"}`), 201)
	r = raw(t, s, "POST", "/v1/expected-receipts/po-3/cancel", nil)
	wantStatus(t, r, 200)
	if m := r.JSON(t); m["status"] != "cancelled" {
		t.Fatalf("cancel = %s", r.Body)
	}
	wantStatus(t, raw(t, s, "GET", "/v1/expected-receipts/po-3", nil), 200)
}
