package engine_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
	"github.com/stockd/stockd/internal/flashsale"
	"github.com/stockd/stockd/internal/testclock"
	"github.com/stockd/stockd/pebble"
)

// open starts an engine over a fresh Pebble store in a temporary directory.
func open(t testing.TB, partitions int, opts engine.Options) (*engine.Engine, string) {
	t.Helper()
	dir := t.TempDir()
	return reopen(t, dir, partitions, opts), dir
}

// reopen starts an engine over the store in dir and closes both at the end of
// the test.
func reopen(t testing.TB, dir string, partitions int, opts engine.Options) *engine.Engine {
	t.Helper()
	store, err := pebble.Open(dir, pebble.Options{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(context.Background(), store, opts)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close(context.Background())
		store.Close()
	})
	return e
}

// skusInDistinctPartitions returns n SKU names that hash to n different
// partitions.
func skusInDistinctPartitions(n, partitions int) []string {
	seen := map[int]bool{}
	var out []string
	for i := 0; len(out) < n; i++ {
		sku := fmt.Sprintf("sku-%d", i)
		p := stockd.PartitionOf(sku, partitions)
		if !seen[p] {
			seen[p] = true
			out = append(out, sku)
		}
	}
	return out
}

// must returns v, failing the test (through a panic that the testing
// package reports with its stack) if err is not nil.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// must3 is must for the (value, created, error) results of commands.
func must3[T any](v T, _ bool, err error) T { return must(v, err) }

func wantCode(t testing.TB, err error, code stockd.Code) {
	t.Helper()
	if got := stockd.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func TestCartLifecycle(t *testing.T) {
	ctx := context.Background()
	e, _ := open(t, 4, engine.Options{})
	must(e.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1, Region: "eu"}))
	r, created, err := e.Receive(ctx, stockd.ReceiveStock{ID: "r-1", SKU: "A", Location: "w1", Quantity: 10, Lot: "L1", BestBefore: "2099-03-15"})
	if err != nil || !created || r.Quantity != 10 {
		t.Fatalf("receive = %+v, %v, %v", r, created, err)
	}
	// A repeated receipt is answered and adds nothing.
	if _, created, err := e.Receive(ctx, stockd.ReceiveStock{ID: "r-1", SKU: "A", Location: "w1", Quantity: 10, Lot: "L1", BestBefore: "2099-03-15"}); err != nil || created {
		t.Fatalf("replayed receive: created=%v err=%v", created, err)
	}
	// The same id with another SKU is caught although the SKU lives elsewhere.
	_, _, err = e.Receive(ctx, stockd.ReceiveStock{ID: "r-1", SKU: "B", Location: "w1", Quantity: 10})
	wantCode(t, err, stockd.CodeIdempotencyMismatch)

	res, created, err := e.Reserve(ctx, stockd.Reserve{ID: "cart-1", TTL: time.Minute, Customer: "c-9", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 4}}})
	if err != nil || !created || res.Status != stockd.StatusHeld || len(res.Lines) != 1 || res.Lines[0].Allocations[0].Location != "w1" {
		t.Fatalf("reserve = %+v, %v, %v", res, created, err)
	}
	sku := must(e.SKU(ctx, "A", stockd.AsOf{}))
	if sku.OnHand != 10 || sku.Reserved != 4 || sku.Available != 6 {
		t.Fatalf("sku after reserve = %+v", sku)
	}
	_, _, err = e.Reserve(ctx, stockd.Reserve{ID: "cart-2", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 7}}})
	wantCode(t, err, stockd.CodeInsufficientStock)

	committed := must(e.Commit(ctx, stockd.CommitReservation{ID: "cart-1", Lines: []stockd.CommitLine{{SKU: "A", Quantity: 3}}}))
	if committed.Status != stockd.StatusCommitted || committed.Lines[0].Quantity != 3 {
		t.Fatalf("commit = %+v", committed)
	}
	// Retrying the commit answers the reservation as it is.
	again := must(e.Commit(ctx, stockd.CommitReservation{ID: "cart-1"}))
	if again.Status != stockd.StatusCommitted || again.Lines[0].Quantity != 3 {
		t.Fatalf("repeated commit = %+v", again)
	}
	_, err = e.Release(ctx, stockd.ReleaseReservation{ID: "cart-1"})
	wantCode(t, err, stockd.CodeNotHeld)
	_, err = e.Commit(ctx, stockd.CommitReservation{ID: "no-such-cart"})
	wantCode(t, err, stockd.CodeNotFound)

	sku = must(e.SKU(ctx, "A", stockd.AsOf{}))
	if sku.OnHand != 7 || sku.Reserved != 0 || sku.Available != 7 {
		t.Fatalf("sku after commit = %+v", sku)
	}
	page := must(e.History(ctx, "A", stockd.HistoryQuery{}))
	var types []string
	for _, ev := range page.Events {
		types = append(types, ev.Type().String())
	}
	// The first receipt makes A available: BackInStock follows it.
	if fmt.Sprint(types) != "[StockReceived BackInStock StockReserved ReservationCommitted]" {
		t.Fatalf("history = %v", types)
	}
	// State as of the reservation's position shows the hold.
	past := must(e.SKU(ctx, "A", stockd.AsOf{Position: page.Events[2].Position}))
	if past.Reserved != 4 || past.OnHand != 10 {
		t.Fatalf("state as of position %d = %+v", page.Events[2].Position, past)
	}
}

// TestHotSKU releases 1,000 goroutines at once on 100 units of one SKU:
// exactly 100 reservations may succeed.
func TestHotSKU(t *testing.T) {
	ctx := context.Background()
	e, _ := open(t, 8, engine.Options{})
	e2e.ConfigureLocations(t, e, "w1")
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r", SKU: "hot", Location: "w1", Quantity: 100}))
	const callers = 1000
	granted, refused := flashsale.Run(t, e, "hot", callers)
	if len(granted) != 100 || refused != callers-100 {
		t.Fatalf("granted %d, refused %d; want 100 and %d", len(granted), refused, callers-100)
	}
	s := must(e.SKU(ctx, "hot", stockd.AsOf{}))
	if s.Reserved != 100 || s.Available != 0 || s.OnHand != 100 {
		t.Fatalf("sku = %+v", s)
	}
}

// TestTimersAfterRestart holds stock in a cart spanning partitions and a lot
// with a best-before date, stops the engine, moves the clock past both
// deadlines, and starts it again: the timers, re-armed from the recovered
// state, must expire both without any client acting.
func TestTimersAfterRestart(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	skus := skusInDistinctPartitions(2, 8)
	dir := t.TempDir()
	store, err := pebble.Open(dir, pebble.Options{Partitions: 8})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(ctx, store, engine.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e2e.ConfigureLocations(t, e, "w1")
	for i, sku := range skus {
		must3(e.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprint("r", i), SKU: sku, Location: "w1", Quantity: 5}))
	}
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "lot", SKU: skus[0], Location: "w1", Quantity: 3, Lot: "L1", BestBefore: "2026-11-28"}))
	res := must3(e.Reserve(ctx, stockd.Reserve{ID: "cart", TTL: 10 * time.Minute, Lines: []stockd.ReserveLine{{SKU: skus[0], Quantity: 2}, {SKU: skus[1], Quantity: 1}}}))
	if res.Status != stockd.StatusHeld || len(res.Lines) != 2 {
		t.Fatalf("cart = %+v", res)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	store.Close()

	clock.Advance(3 * 24 * time.Hour)
	e = reopen(t, dir, 8, engine.Options{Now: clock.Now})
	e.Poke()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := must(e.GetReservation(ctx, "cart"))
		a := must(e.SKU(ctx, skus[0], stockd.AsOf{}))
		b := must(e.SKU(ctx, skus[1], stockd.AsOf{}))
		if r.Status == stockd.StatusExpired && a.Reserved == 0 && b.Reserved == 0 && a.OnHand == 5 {
			return // the hold and the lot expired on their own
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: cart %s, %s reserved %d on_hand %d, %s reserved %d", r.Status, skus[0], a.Reserved, a.OnHand, skus[1], b.Reserved)
		}
		time.Sleep(10 * time.Millisecond) // polling for the expiry, with a deadline
	}
}

// TestOverload fills a partition's inbox while the partition is busy: new
// requests are refused at once with CodeOverloaded, not queued.
func TestOverload(t *testing.T) {
	ctx := context.Background()
	e, _ := open(t, 1, engine.Options{InboxSize: 4})
	e2e.ConfigureLocations(t, e, "w1")
	must3(e.Receive(ctx, stockd.ReceiveStock{ID: "r", SKU: "A", Location: "w1", Quantity: 1_000_000}))
	var overloaded, ok atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 2000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, err := e.Reserve(ctx, stockd.Reserve{ID: fmt.Sprint("c", i), Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}})
			switch stockd.ErrorCode(err) {
			case "":
				ok.Add(1)
			case stockd.CodeOverloaded:
				overloaded.Add(1)
			default:
				t.Errorf("reserve: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if overloaded.Load() == 0 || ok.Load() == 0 {
		t.Fatalf("%d accepted, %d refused as overloaded; want some of each", ok.Load(), overloaded.Load())
	}
	s := must(e.SKU(ctx, "A", stockd.AsOf{}))
	if s.Reserved != ok.Load() {
		t.Fatalf("reserved %d, but %d reservations were acknowledged", s.Reserved, ok.Load())
	}
}
