package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
)

// TestCustomerLimitRaceOfOneCustomersCartsHoldsNoMoreThanTheLimit: many carts
// of one customer, each also holding a SKU of another partition so that the
// limit is checked at a saga's participant, are released at once on a SKU
// limited to 3 per customer. Exactly three are held, every other is refused
// with customer_limit and holds nothing; another customer is not affected;
// and once one held cart is released, one more cart is held.
func TestCustomerLimitRaceOfOneCustomersCartsHoldsNoMoreThanTheLimit(t *testing.T) {
	ctx := context.Background()
	e, _ := open(t, 4, engine.Options{})
	e2e.ConfigureLocations(t, e, "w1")
	skus := skusInDistinctPartitions(2, 4)
	other, limited := skus[0], skus[1]
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r1", SKU: limited, Location: "w1", Quantity: 100}))
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r2", SKU: other, Location: "w1", Quantity: 100}))
	must(e.ConfigureSKU(ctx, stockd.ConfigureSKU{SKU: limited, CustomerLimit: stockd.CustomerLimit{Units: 3, Window: 24 * time.Hour}}))

	granted := raceCarts(t, 64, stockd.CodeCustomerLimit, func(id string) error {
		_, _, err := e.Reserve(ctx, stockd.Reserve{ID: id, Customer: "hoarder", Lines: []stockd.ReserveLine{{SKU: other, Quantity: 1}, {SKU: limited, Quantity: 1}}})
		return err
	})
	if len(granted) != 3 {
		t.Fatalf("granted %v; want exactly three carts", granted)
	}
	if s := must(e.SKU(ctx, limited, stockd.AsOf{})); s.Reserved != 3 {
		t.Fatalf("limited sku = %+v: want 3 held", s)
	}
	if o := must(e.SKU(ctx, other, stockd.AsOf{})); o.Reserved != 3 {
		t.Fatalf("other sku = %+v: the refused carts must hold nothing", o)
	}
	must3(e.Reserve(ctx, stockd.Reserve{ID: "someone-else", Customer: "shopper", Lines: []stockd.ReserveLine{{SKU: limited, Quantity: 3}}}))
	must(e.Release(ctx, stockd.ReleaseReservation{ID: granted[0]}))
	must3(e.Reserve(ctx, stockd.Reserve{ID: "after-release", Customer: "hoarder", Lines: []stockd.ReserveLine{{SKU: other, Quantity: 1}, {SKU: limited, Quantity: 1}}}))
}
