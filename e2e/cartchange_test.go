package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stockd/stockd"
)

// TestChangeOfAHeldCartOverHTTP: PATCH /v1/reservations/{id} replaces a held
// cart's lines and answers 200 with them; a change that needs more stock
// than there is, or passes the customer's limit, is refused with the line
// that failed and leaves the cart exactly as it was.
func TestChangeOfAHeldCartOverHTTP(t *testing.T) {
	s := Start(t, Options{})
	// Both SKUs in the cart's partition.
	b := "B"
	for i := 0; stockd.PartitionOf(b, s.Engine.Partitions()) != stockd.PartitionOf("A", s.Engine.Partitions()); i++ {
		b = fmt.Sprintf("B%d", i)
	}
	sub := func(body string) string { return strings.ReplaceAll(body, `"B"`, `"`+b+`"`) }
	ConfigureLocations(t, s.Client, "w1")
	receive(t, s.Client, "ra", "A", "w1", 5)
	receive(t, s.Client, "rb", b, "w1", 50)
	wantStatus(t, raw(t, s, "PUT", "/v1/skus/"+b+"/config", `{"customer_limit":{"units":4,"window":"24h"}}`), 200)
	wantStatus(t, raw(t, s, "POST", "/v1/reservations", sub(`{"id":"c1","customer":"c-9","lines":[{"sku":"A","quantity":2},{"sku":"B","quantity":1}]}`)), 201)

	r := raw(t, s, "PATCH", "/v1/reservations/c1", sub(`{"lines":[{"sku":"A","quantity":4},{"sku":"B","quantity":3}]}`))
	wantStatus(t, r, 200)
	if got := quantities(t, r.JSON(t)); got["A"] != 4 || got[b] != 3 {
		t.Fatalf("changed lines = %v; body %s", got, r.Body)
	}

	// Past the stock: refused, nothing changed.
	p := wantProblem(t, raw(t, s, "PATCH", "/v1/reservations/c1", sub(`{"lines":[{"sku":"A","quantity":6},{"sku":"B","quantity":1}]}`)), 409, "insufficient_stock")
	if lines, _ := p["lines"].([]any); len(lines) != 1 || lines[0].(map[string]any)["sku"] != "A" {
		t.Fatalf("problem lines: %v", p)
	}
	// Past the customer's limit: refused, nothing changed.
	wantProblem(t, raw(t, s, "PATCH", "/v1/reservations/c1", sub(`{"lines":[{"sku":"A","quantity":1},{"sku":"B","quantity":5}]}`)), 409, "customer_limit")
	r = raw(t, s, "GET", "/v1/reservations/c1", nil)
	wantStatus(t, r, 200)
	if got := quantities(t, r.JSON(t)); got["A"] != 4 || got[b] != 3 {
		t.Fatalf("after refused changes the lines are %v, want A 4 and the other 3; body %s", got, r.Body)
	}
	if v := stockOf(t, s.Client, "A"); v.Available != 1 {
		t.Fatalf("A available = %d, want 1", v.Available)
	}

	// Only a held cart changes.
	wantStatus(t, raw(t, s, "POST", "/v1/reservations/c1/commit", `{}`), 200)
	wantProblem(t, raw(t, s, "PATCH", "/v1/reservations/c1", `{"lines":[{"sku":"A","quantity":1}]}`), 409, "reservation_not_held")
}

// quantities reads a reservation's lines, by SKU.
func quantities(t *testing.T, res map[string]any) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	lines, _ := res["lines"].([]any)
	for _, l := range lines {
		m := l.(map[string]any)
		out[m["sku"].(string)] = m["quantity"].(float64)
	}
	return out
}
