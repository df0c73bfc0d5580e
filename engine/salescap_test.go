package engine_test

import (
	"context"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
)

// TestSalesCapRaceForTheLastUnitCommitsNoMoreThanTheCap: many carts of one
// capped SKU, each also holding a SKU of another partition so that the cap
// is checked at a saga's participant, are released at once for the last unit
// under the cap and commit as soon as they hold it. Exactly one gets it,
// every other is refused with sales_cap, and no more than the cap is
// ever committed, whatever stock there is.
func TestSalesCapRaceForTheLastUnitCommitsNoMoreThanTheCap(t *testing.T) {
	ctx := context.Background()
	e, _ := open(t, 4, engine.Options{})
	e2e.ConfigureLocations(t, e, "w1")
	skus := skusInDistinctPartitions(2, 4)
	other, capped := skus[0], skus[1]
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r1", SKU: capped, Location: "w1", Quantity: 100}))
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r2", SKU: other, Location: "w1", Quantity: 100}))
	must(e.ConfigureSKU(ctx, stockd.ConfigureSKU{SKU: capped, SalesCap: 5}))
	// Four of the five are sold already.
	must3(e.Reserve(ctx, stockd.Reserve{ID: "first", Lines: []stockd.ReserveLine{{SKU: capped, Quantity: 4}}}))
	must(e.Commit(ctx, stockd.CommitReservation{ID: "first"}))

	granted := raceCarts(t, 64, stockd.CodeSalesCap, func(id string) error {
		_, _, err := e.Reserve(ctx, stockd.Reserve{ID: id, Lines: []stockd.ReserveLine{{SKU: other, Quantity: 1}, {SKU: capped, Quantity: 1}}})
		if err == nil {
			_, err = e.Commit(ctx, stockd.CommitReservation{ID: id})
		}
		return err
	})
	if len(granted) != 1 {
		t.Fatalf("granted %v; want exactly one cart", granted)
	}
	s := must(e.SKU(ctx, capped, stockd.AsOf{}))
	if s.OnHand != 95 || s.Reserved != 0 || s.SalesCap != 5 || s.SalesCapRemaining == nil || *s.SalesCapRemaining != 0 {
		t.Fatalf("capped sku = %+v (remaining %v): want 5 committed, none held, none left", s, s.SalesCapRemaining)
	}
	o := must(e.SKU(ctx, other, stockd.AsOf{}))
	if o.OnHand != 99 || o.Reserved != 0 {
		t.Fatalf("other sku = %+v: the refused carts must hold nothing", o)
	}
}
