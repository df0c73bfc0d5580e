package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
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

// TestChangesOfCartsSpanningPartitionsAreAllOrNothingUnderRaces: carts
// holding one unit of a SKU in one partition and one of a SKU in another are
// released at once to grow the second line to three units and add a line of
// a SKU in a third partition, while half of them are committed at the same
// moment. Stock of the other two SKUs runs short, so some changes are
// refused at a participant. Every cart ends holding (or having committed)
// exactly its old lines or exactly its new ones, and each SKU holds exactly
// what the held carts list: nothing a refused change grew is left behind.
func TestChangesOfCartsSpanningPartitionsAreAllOrNothingUnderRaces(t *testing.T) {
	ctx := context.Background()
	e, _ := open(t, 4, engine.Options{})
	e2e.ConfigureLocations(t, e, "w1")
	skus := skusInDistinctPartitions(3, 4)
	home, grown, added := skus[0], skus[1], skus[2]
	const carts = 24
	stock := map[string]int64{home: carts, grown: carts + 20, added: 8}
	for sku, q := range stock {
		must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r-" + sku, SKU: sku, Location: "w1", Quantity: q}))
	}
	oldLines := []stockd.ReserveLine{{SKU: home, Quantity: 1}, {SKU: grown, Quantity: 1}}
	newLines := []stockd.ReserveLine{{SKU: home, Quantity: 1}, {SKU: grown, Quantity: 3}, {SKU: added, Quantity: 1}}
	for i := range carts {
		must3(e.Reserve(ctx, stockd.Reserve{ID: fmt.Sprintf("cart-%d", i), Lines: oldLines}))
	}
	var (
		start sync.WaitGroup
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	start.Add(1)
	for i := range carts {
		id := fmt.Sprintf("cart-%d", i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			start.Wait()
			_, err := e.Change(ctx, stockd.ChangeReservation{ID: id, Lines: newLines})
			switch {
			case err == nil, stockd.IsCode(err, stockd.CodeInsufficientStock), stockd.IsCode(err, stockd.CodeNotHeld),
				stockd.IsCode(err, stockd.CodeReservationBusy):
			default:
				fail(fmt.Errorf("change %s: %w", id, err))
			}
		}()
		go func() {
			defer wg.Done()
			start.Wait()
			if i%2 != 0 {
				return
			}
			// A commit racing the change is refused while the change is
			// in flight: retryable, and retried, as a client would.
			for {
				_, err := e.Commit(ctx, stockd.CommitReservation{ID: id})
				if stockd.IsCode(err, stockd.CodeReservationBusy) {
					runtime.Gosched()
					continue
				}
				if err != nil {
					fail(fmt.Errorf("commit %s: %w", id, err))
				}
				return
			}
		}()
	}
	start.Done()
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("unexpected answers: %v", errs)
	}
	held := map[string]int64{}
	committed := map[string]int64{}
	for i := range carts {
		r := must(e.GetReservation(ctx, fmt.Sprintf("cart-%d", i)))
		var got []stockd.ReserveLine
		for _, l := range r.Lines {
			got = append(got, stockd.ReserveLine{SKU: l.SKU, Quantity: l.Quantity})
			switch r.Status {
			case stockd.StatusHeld:
				held[l.SKU] += l.Quantity
			case stockd.StatusCommitted:
				committed[l.SKU] += l.Quantity
			default:
				t.Fatalf("%s is %s", r.ID, r.Status)
			}
		}
		same := func(a, b stockd.ReserveLine) bool { return a.SKU == b.SKU && a.Quantity == b.Quantity }
		if !slices.EqualFunc(got, oldLines, same) && !slices.EqualFunc(got, newLines, same) {
			t.Fatalf("%s is %s with %+v: neither the old lines nor the new", r.ID, r.Status, got)
		}
	}
	for sku, q := range stock {
		s := must(e.SKU(ctx, sku, stockd.AsOf{}))
		if s.Reserved != held[sku] || s.OnHand != q-committed[sku] || s.Reserved > s.OnHand {
			t.Fatalf("%s = %+v; carts hold %d and committed %d", sku, s, held[sku], committed[sku])
		}
	}
}
