package e2e

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// TestClientCoalescesIntoBatches: a client with batching turns 300
// concurrent reservations on one SKU of 150 units into a few POST /v1/batch
// requests, and each caller still gets its own answer: exactly 150 held,
// every other refused with its shortfall, a replay answered as a replay, a
// commit with an idempotency key carried out once.
func TestClientCoalescesIntoBatches(t *testing.T) {
	s := Start(t, Options{})
	must(s.Client.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}))
	receive(t, s.Client, "r-1", "A", "w1", 150)
	c := client.New(s.URL, client.WithBatching(100, 2))

	const callers = 300
	var wg sync.WaitGroup
	var mu sync.Mutex
	held, short := 0, 0
	for i := range callers {
		wg.Go(func() {
			r := stockd.Reserve{ID: fmt.Sprint("cart-", i), Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}}
			_, created, err := c.Reserve(ctx, r)
			for backOff(err) {
				_, created, err = c.Reserve(ctx, r)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && created:
				held++
			case stockd.IsCode(err, stockd.CodeInsufficientStock):
				if e := wantCode(t, err, stockd.CodeInsufficientStock); len(e.Lines) != 1 || e.Lines[0].SKU != "A" {
					t.Errorf("a refusal without its shortfall: %+v", e)
				}
				short++
			default:
				t.Errorf("cart-%d: created %v, %v", i, created, err)
			}
		})
	}
	wg.Wait()
	if held != 150 || short != callers-150 {
		t.Errorf("%d held and %d refused, want 150 and %d", held, short, callers-150)
	}
	if got := stockOf(t, s.Client, "A"); got.Reserved != 150 || got.Available != 0 {
		t.Errorf("A: reserved %d available %d, want 150 and 0", got.Reserved, got.Available)
	}
	batches, single := requests(t, s, "POST /v1/batch"), requests(t, s, "POST /v1/reservations")
	if single != 0 || batches == 0 || batches >= callers/2 {
		t.Errorf("%v batch requests and %v single ones for %d reservations: not coalesced", batches, single, callers)
	}
	t.Logf("%d reservations in %v batch requests", callers, batches)

	// A replay answers the reservation as a replay, through a batch too.
	var id string
	for i := range callers {
		if r, err := s.Client.GetReservation(ctx, fmt.Sprint("cart-", i)); err == nil && r.Status == stockd.StatusHeld {
			id = r.ID
			break
		}
	}
	if _, created, err := c.Reserve(ctx, stockd.Reserve{ID: id, Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}}); err != nil || created {
		t.Errorf("replay of %s: created %v, %v", id, created, err)
	}
	// A commit with an idempotency key, twice, commits once.
	for range 2 {
		r, err := c.Commit(ctx, stockd.CommitReservation{ID: id, Key: "pay-1"})
		if err != nil || r.Status != stockd.StatusCommitted {
			t.Fatalf("commit of %s: %+v, %v", id, r, err)
		}
	}
	if got := stockOf(t, s.Client, "A"); got.OnHand != 149 {
		t.Errorf("A on hand %d after one commit, want 149", got.OnHand)
	}
	// Reads are not batched.
	if _, err := c.GetReservation(ctx, id); err != nil {
		t.Error(err)
	}
}

// requests is how many requests the server answered on route.
func requests(t *testing.T, s *Server, route string) float64 {
	t.Helper()
	return must(s.Requests(route))
}
