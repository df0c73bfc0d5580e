package main

import (
	"cmp"
	"context"
	"fmt"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
)

// TestChangeCommand drives PATCH /v1/reservations/{id} end to end: the CLI,
// the client, the HTTP server and the engine.
func TestChangeCommand(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	c := s.Client
	ctx := context.Background()
	must(c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}))
	// B is a SKU of A's partition: a change may drop it. The other is of
	// another partition: a change adds it through the cart's saga.
	n := s.Engine.Partitions()
	b, other := "", ""
	for i := 0; b == "" || other == ""; i++ {
		sku := fmt.Sprintf("B%d", i)
		if stockd.PartitionOf(sku, n) == stockd.PartitionOf("A", n) {
			b = cmp.Or(b, sku)
		} else {
			other = cmp.Or(other, sku)
		}
	}
	for _, sku := range []string{"A", b, other} {
		must3(c.Receive(ctx, stockd.ReceiveStock{ID: "r-" + sku, SKU: sku, Location: "w1", Quantity: 10}))
	}
	must3(c.Reserve(ctx, stockd.Reserve{ID: "cart-42", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 2}, {SKU: b, Quantity: 1}}}))
	runCases(t, s, []cliCase{
		{"change", []string{"change", "cart-42", "A=5"}, 0, `(?s)status held.*A +5 +5 +w1:5`, "", false},
		{"change again", []string{"change", "cart-42", "A=5", "--json"}, 0, `"quantity": 5`, "", true},
		{"change short", []string{"change", "cart-42", "A=11"}, 3, "", `(?s)\(insufficient_stock\).*A +11 +10`, false},
		{"change no lines", []string{"change", "cart-42"}, 2, "", `at least one line`, false},
		{"change unknown", []string{"change", "cart-99", "A=1"}, 3, "", `not_found`, false},
		{"change across partitions", []string{"change", "cart-42", "A=5", other + "=1"}, 0, `(?s)A +5 +5 +w1:5.*` + other + ` +1 +1 +w1:1`, "", false},
	})
	if a := must(c.SKU(ctx, "A", stockd.AsOf{})); a.Reserved != 5 {
		t.Fatalf("A = %+v: the refused change must leave 5 held", a)
	}
	if v := must(c.SKU(ctx, b, stockd.AsOf{})); v.Reserved != 0 {
		t.Fatalf("%s = %+v: the line left out must be released", b, v)
	}
	if v := must(c.SKU(ctx, other, stockd.AsOf{})); v.Reserved != 1 {
		t.Fatalf("%s = %+v: the line added in another partition must be held", other, v)
	}
	must(c.Commit(ctx, stockd.CommitReservation{ID: "cart-42"}))
	runCases(t, s, []cliCase{
		{"change committed", []string{"change", "cart-42", "A=1"}, 3, "", `reservation_not_held`, false},
	})
}

func init() { cliOperations["changeReservation"] = []string{"change", "cart-4", "A=2"} }
