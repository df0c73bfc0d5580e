package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
)

// TestChangesRacingForStockNeverHoldMoreThanThereIs: carts of one SKU, each
// holding one unit, are released at once to grow to three units while others
// commit or release. No more is ever held than is on hand, a refused change
// leaves its cart holding exactly its one unit, and a committed cart is never
// altered by a change decided after it.
func TestChangesRacingForStockNeverHoldMoreThanThereIs(t *testing.T) {
	ctx := context.Background()
	e, _ := open(t, 4, engine.Options{})
	e2e.ConfigureLocations(t, e, "w1")
	sku := skusInDistinctPartitions(1, 4)[0]
	const carts, stock = 32, 48
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r1", SKU: sku, Location: "w1", Quantity: stock}))
	for i := range carts {
		must3(e.Reserve(ctx, stockd.Reserve{ID: fmt.Sprintf("cart-%d", i), Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 1}}}))
	}
	var (
		start sync.WaitGroup
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
	)
	start.Add(1)
	for i := range carts {
		id := fmt.Sprintf("cart-%d", i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			start.Wait()
			r, err := e.Change(ctx, stockd.ChangeReservation{ID: id, Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 3}}})
			switch {
			case err == nil && r.Lines[0].Quantity != 3:
				err = fmt.Errorf("%s changed to %+v", id, r.Lines)
			case stockd.IsCode(err, stockd.CodeInsufficientStock), stockd.IsCode(err, stockd.CodeNotHeld):
				err = nil
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			start.Wait()
			var err error
			if i%2 == 0 {
				_, err = e.Commit(ctx, stockd.CommitReservation{ID: id})
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	start.Done()
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("unexpected answers: %v", errs)
	}
	var held, committed int64
	for i := range carts {
		r := must(e.GetReservation(ctx, fmt.Sprintf("cart-%d", i)))
		switch r.Status {
		case stockd.StatusHeld:
			if q := r.Lines[0].Quantity; q != 1 && q != 3 {
				t.Fatalf("%s holds %d", r.ID, q)
			}
			held += r.Lines[0].Quantity
		case stockd.StatusCommitted:
			committed += r.Lines[0].Quantity
		default:
			t.Fatalf("%s is %s", r.ID, r.Status)
		}
	}
	s := must(e.SKU(ctx, sku, stockd.AsOf{}))
	if s.Reserved != held || s.OnHand != stock-committed || s.Reserved > s.OnHand || s.Available != s.OnHand-s.Reserved {
		t.Fatalf("sku = %+v; carts hold %d and committed %d", s, held, committed)
	}
}
