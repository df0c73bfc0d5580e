package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
)

// TestPreorderRaceHoldsNoMoreThanOnHandAndExpected: many carts, each with a
// SKU of another partition so that the preorder SKU is held at a saga's
// participant, race for 3 units on hand and 7 expected. Exactly 10 carts are
// held, the rest refused with insufficient_stock and holding nothing; the
// preorder SKU then shows every unit held or promised, none preorderable.
// Arrival turns every preorder into a hold on the arrived stock, and the
// carts commit it all.
func TestPreorderRaceHoldsNoMoreThanOnHandAndExpected(t *testing.T) {
	ctx := context.Background()
	e, _ := open(t, 4, engine.Options{})
	e2e.ConfigureLocations(t, e, "w1")
	skus := skusInDistinctPartitions(2, 4)
	other, pre := skus[0], skus[1]
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r1", SKU: pre, Location: "w1", Quantity: 3}))
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r2", SKU: other, Location: "w1", Quantity: 100}))
	must(e.ConfigureSKU(ctx, stockd.ConfigureSKU{SKU: pre, Preorders: true}))
	po := stockd.ExpectReceipt{ID: "po-1", SKU: pre, Location: "w1", Quantity: 7, ExpectedAt: time.Now().Add(72 * time.Hour)}
	if _, created, err := e.ExpectReceipt(ctx, po); err != nil || !created {
		t.Fatalf("expect: created %v, %v", created, err)
	}
	if _, created, err := e.ExpectReceipt(ctx, po); err != nil || created {
		t.Fatalf("expect again: created %v, %v; want a replay", created, err)
	}

	granted := raceCarts(t, 48, stockd.CodeInsufficientStock, func(id string) error {
		_, _, err := e.Reserve(ctx, stockd.Reserve{ID: id, Lines: []stockd.ReserveLine{{SKU: other, Quantity: 1}, {SKU: pre, Quantity: 1}}})
		return err
	})
	if len(granted) != 10 {
		t.Fatalf("granted %d carts; want 10, the 3 on hand and the 7 expected", len(granted))
	}
	s := must(e.SKU(ctx, pre, stockd.AsOf{}))
	if s.OnHand != 3 || s.Reserved != 3 || s.Expected != 7 || s.Preordered != 7 || s.Preorderable != 0 {
		t.Fatalf("preorder sku = %+v: want 3 held on hand, 7 promised of 7 expected", s)
	}
	if o := must(e.SKU(ctx, other, stockd.AsOf{})); o.Reserved != 10 {
		t.Fatalf("other sku holds %d; the refused carts must hold nothing", o.Reserved)
	}

	arrived, err := e.ArriveExpected(ctx, stockd.ArriveExpected{ID: "po-1"})
	if err != nil || arrived.Status != stockd.ExpectedStatusArrived || arrived.Arrived != 7 {
		t.Fatalf("arrive: %+v, %v", arrived, err)
	}
	if again, err := e.ArriveExpected(ctx, stockd.ArriveExpected{ID: "po-1"}); err != nil || again.Status != stockd.ExpectedStatusArrived {
		t.Fatalf("arrive again: %+v, %v; want the receipt as it is", again, err)
	}
	if _, err := e.ArriveExpected(ctx, stockd.ArriveExpected{ID: "po-9"}); !stockd.IsCode(err, stockd.CodeNotFound) {
		t.Fatalf("arrive of an unknown id: %v, want not_found", err)
	}
	for _, id := range granted {
		r := must(e.GetReservation(ctx, id))
		for _, l := range r.Lines {
			if l.SKU == pre && l.Preorder != 0 {
				t.Fatalf("%s after arrival: line %+v still shows a preorder", id, l)
			}
		}
		if _, err := e.Commit(ctx, stockd.CommitReservation{ID: id}); err != nil {
			t.Fatalf("commit %s: %v", id, err)
		}
	}
	s = must(e.SKU(ctx, pre, stockd.AsOf{}))
	if s.OnHand != 0 || s.Reserved != 0 || s.Expected != 0 || s.Shortage != 0 {
		t.Fatalf("preorder sku after arrival and commits = %+v: want everything sold", s)
	}
	got := must(e.GetExpectedReceipt(ctx, "po-1"))
	if got.Status != stockd.ExpectedStatusArrived || got.Promised != 0 {
		t.Fatalf("expected receipt = %+v", got)
	}
}
