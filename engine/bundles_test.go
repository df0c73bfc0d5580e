package engine_test

import (
	"context"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
)

// TestBundleRaceForTheLastKitsHoldsNoComponentTwice: many carts, each of one
// bundle whose components live in other partitions than the bundle (so
// every cart is held by a saga), race for fewer kits than carts. Exactly as
// many carts as there are kits hold, every other is refused whole, and no
// component is ever held beyond its stock; the commits consume exactly the
// components of the kits sold, and the bundle's derived stock says none is
// left.
func TestBundleRaceForTheLastKitsHoldsNoComponentTwice(t *testing.T) {
	ctx := context.Background()
	e, _ := open(t, 4, engine.Options{})
	e2e.ConfigureLocations(t, e, "w1")
	skus := skusInDistinctPartitions(3, 4)
	kit, a, c := skus[0], skus[1], skus[2]
	must(e.DefineBundle(ctx, stockd.DefineBundle{SKU: kit, Components: []stockd.BundleComponent{{SKU: a, Quantity: 2}, {SKU: c, Quantity: 1}}}))
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "ra", SKU: a, Location: "w1", Quantity: 10})) // 5 kits
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "rc", SKU: c, Location: "w1", Quantity: 7}))  // 7 kits
	if v := must(e.SKU(ctx, kit, stockd.AsOf{})); !v.Derived || v.Available != 5 {
		t.Fatalf("bundle before the race = %+v, want 5 derived", v)
	}

	granted := raceCarts(t, 32, stockd.CodeInsufficientStock, func(id string) error {
		_, _, err := e.Reserve(ctx, stockd.Reserve{ID: id, Lines: []stockd.ReserveLine{{SKU: kit, Quantity: 1}}})
		return err
	})
	if len(granted) != 5 {
		t.Fatalf("granted %d carts, want 5 (the kits there are)", len(granted))
	}
	for _, id := range granted {
		r := must(e.Commit(ctx, stockd.CommitReservation{ID: id}))
		if len(r.Bundles) != 1 || r.Bundles[0].SKU != kit || r.Bundles[0].Quantity != 1 {
			t.Fatalf("committed %s = %+v", id, r)
		}
	}
	if v := must(e.SKU(ctx, a, stockd.AsOf{})); v.OnHand != 0 || v.Reserved != 0 {
		t.Fatalf("component %s after the commits = %+v, want all 10 sold", a, v)
	}
	if v := must(e.SKU(ctx, c, stockd.AsOf{})); v.OnHand != 2 || v.Reserved != 0 {
		t.Fatalf("component %s after the commits = %+v, want 5 sold, none held", c, v)
	}
	if v := must(e.SKU(ctx, kit, stockd.AsOf{})); !v.Derived || v.Available != 0 {
		t.Fatalf("bundle after the race = %+v, want 0 derived", v)
	}
}

// TestBundleIsKnownToEveryPartitionOnceDefined: a definition answered is
// used by the very next reservation, whichever partition is its home, and
// a receipt of the bundle itself is refused.
func TestBundleIsKnownToEveryPartitionOnceDefined(t *testing.T) {
	ctx := context.Background()
	e, _ := open(t, 4, engine.Options{})
	e2e.ConfigureLocations(t, e, "w1")
	skus := skusInDistinctPartitions(4, 4)
	for i, kit := range skus {
		comp := skus[(i+1)%len(skus)] + "-part"
		must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r" + kit, SKU: comp, Location: "w1", Quantity: 3}))
		b := must(e.DefineBundle(ctx, stockd.DefineBundle{SKU: kit, Components: []stockd.BundleComponent{{SKU: comp, Quantity: 3}}}))
		if got := must(e.Bundle(ctx, kit)); len(got.Components) != 1 || got.Components[0] != b.Components[0] {
			t.Fatalf("Bundle(%s) = %+v, want %+v", kit, got, b)
		}
		r := must3(e.Reserve(ctx, stockd.Reserve{ID: "c" + kit, Lines: []stockd.ReserveLine{{SKU: kit, Quantity: 1}}}))
		if len(r.Lines) != 1 || r.Lines[0].SKU != comp || r.Lines[0].Quantity != 3 {
			t.Fatalf("reservation of bundle %s = %+v", kit, r)
		}
		if _, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "rb" + kit, SKU: kit, Location: "w1", Quantity: 1}); !stockd.IsCode(err, stockd.CodeInvalid) {
			t.Fatalf("receipt of bundle %s: %v, want invalid_request", kit, err)
		}
	}
	if _, err := e.Bundle(ctx, "no-such-bundle"); !stockd.IsCode(err, stockd.CodeNotFound) {
		t.Fatalf("Bundle of a plain SKU: %v, want not_found", err)
	}
}
