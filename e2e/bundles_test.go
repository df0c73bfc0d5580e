package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/stockd/stockd"
)

// TestBundleOverHTTPSharingAComponentWithAnotherLineOfTheCart: a bundle
// defined through the API (200 however often), read back, reserved in a
// cart with a line of one of its components — refused whole while the
// shared component is short, held once it is not — and committed; the
// bundle's stock is derived, and a receipt of the bundle itself refused.
func TestBundleOverHTTPSharingAComponentWithAnotherLineOfTheCart(t *testing.T) {
	s := Start(t, Options{})
	ctx := context.Background()
	ConfigureLocations(t, s.Client, "w1")
	c := s.Client
	if _, _, err := c.Receive(ctx, stockd.ReceiveStock{ID: "r-a", SKU: "A", Location: "w1", Quantity: 2}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Receive(ctx, stockd.ReceiveStock{ID: "r-c", SKU: "C", Location: "w1", Quantity: 5}); err != nil {
		t.Fatal(err)
	}
	def := `{"components":[{"sku":"A","quantity":1},{"sku":"C","quantity":1}]}`
	wantStatus(t, raw(t, s, "PUT", "/v1/bundles/B", def), 200)
	wantStatus(t, raw(t, s, "PUT", "/v1/bundles/B", def), 200)
	if r := raw(t, s, "GET", "/v1/bundles/B", ""); r.Status != 200 || !strings.Contains(string(r.Body), `"sku":"C"`) {
		t.Fatalf("GET bundle = %d %s", r.Status, r.Body)
	}
	wantStatus(t, raw(t, s, "PUT", "/v1/bundles/N", `{"components":[{"sku":"B","quantity":1}]}`), 422)
	wantStatus(t, raw(t, s, "PUT", "/v1/bundles/N", `{"components":[]}`), 422)
	wantStatus(t, raw(t, s, "GET", "/v1/bundles/A", ""), 404)
	wantStatus(t, raw(t, s, "POST", "/v1/receipts", `{"id":"r-b","sku":"B","location":"w1","quantity":1}`), 422)

	cart := `{"id":"cart","lines":[{"sku":"B","quantity":1},{"sku":"A","quantity":2}]}`
	r := raw(t, s, "POST", "/v1/reservations", cart)
	if r.Status != 409 || !strings.Contains(string(r.Body), `"insufficient_stock"`) {
		t.Fatalf("cart while A is short = %d %s", r.Status, r.Body)
	}
	if v, err := c.SKU(ctx, "A", stockd.AsOf{}); err != nil || v.Reserved != 0 {
		t.Fatalf("A after the refusal = %+v, %v; want nothing held", v, err)
	}
	if _, _, err := c.Receive(ctx, stockd.ReceiveStock{ID: "r-a2", SKU: "A", Location: "w1", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.SKU(ctx, "B", stockd.AsOf{}); err != nil || !v.Derived || v.Available != 3 {
		t.Fatalf("bundle stock = %+v, %v; want 3 derived", v, err)
	}
	r = raw(t, s, "POST", "/v1/reservations", cart)
	if r.Status != 201 || !strings.Contains(string(r.Body), `"bundles":[{"sku":"B","quantity":1,"held":1`) {
		t.Fatalf("cart once A suffices = %d %s", r.Status, r.Body)
	}
	res, err := c.Commit(ctx, stockd.CommitReservation{ID: "cart"})
	if err != nil || res.Status != stockd.StatusCommitted {
		t.Fatalf("commit = %+v, %v", res, err)
	}
	if v, err := c.SKU(ctx, "A", stockd.AsOf{}); err != nil || v.OnHand != 0 || v.Reserved != 0 {
		t.Fatalf("A after the commit = %+v, %v; want the 3 consumed", v, err)
	}
	if v, err := c.SKU(ctx, "B", stockd.AsOf{}); err != nil || v.Available != 0 {
		t.Fatalf("bundle stock after the commit = %+v, %v; want 0", v, err)
	}
}
