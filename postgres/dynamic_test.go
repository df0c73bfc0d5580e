package postgres

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
)

// nodes are engines that each serve some partitions of one store, and route
// a call to the one that serves its partition, as the app's nodes forward
// requests to each other.
type nodes []*engine.Engine

// on calls fn on the engine serving the call's partition.
func on[T any](t *testing.T, ns nodes, fn func(e *engine.Engine) (T, error)) (T, error) {
	t.Helper()
	var v T
	var err error
	for _, e := range ns {
		v, err = fn(e)
		if _, elsewhere := engine.NotServed(err); !elsewhere {
			return v, err
		}
	}
	t.Fatalf("no engine serves the call: %v", err)
	return v, err
}

// openNodes opens one dynamic engine per set of partitions, each on a store
// of its own over schema, sending saga messages to each other.
func openNodes(t *testing.T, schema string, partitions int, serve ...[]int) nodes {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ns := make(nodes, len(serve))
	for i := range serve {
		s := mustOpen(t, schema, Options{Partitions: partitions})
		e, err := engine.Open(ctx, s, engine.Options{
			// Heads and locations are read only when asked: a test that
			// passes does not owe it to the timing of a poll.
			Logger: quiet, Dynamic: true, Follow: time.Hour,
			Send: func(m stockd.Message) { go deliver(ns, m) },
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close(context.Background()) })
		ns[i] = e
	}
	for i, ps := range serve {
		for _, p := range ps {
			if err := ns[i].Acquire(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ns
}

// deliver hands m to the engine that serves its partition, trying again
// while none does (the partition is moving).
func deliver(ns nodes, m stockd.Message) {
	for range 500 {
		for _, e := range ns {
			if err := e.Deliver(m); err == nil {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// skuIn returns a SKU of partition p.
func skuIn(p, partitions int, prefix string) string {
	for i := 0; ; i++ {
		sku := prefix + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
		if stockd.PartitionOf(sku, partitions) == p {
			return sku
		}
	}
}

func TestEnginesServingDifferentPartitionsOfOneStoreKeepEveryPromise(t *testing.T) {
	schema := newSchema(t)
	ns := openNodes(t, schema, 4, []int{0, 1}, []int{2, 3})
	a, b := ns[0], ns[1]
	if _, err := a.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1, Region: "eu"}); err != nil {
		t.Fatal(err)
	}
	skus := make([]string, 4)
	for p := range skus {
		skus[p] = skuIn(p, 4, "sku")
	}
	// The location configured through a's partition 0 is known to b's
	// partitions as soon as it was acknowledged: a receipt there into w1
	// is accepted at once, and b reads the location.
	for p, sku := range skus {
		_, err := on(t, ns, func(e *engine.Engine) (stockd.Receipt, error) {
			r, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "r-" + sku, SKU: sku, Location: "w1", Quantity: 10})
			return r, err
		})
		if err != nil {
			t.Fatalf("receipt of %s (partition %d): %v", sku, p, err)
		}
	}
	if _, err := b.Location(ctx, "w1"); err != nil {
		t.Fatalf("b reading the location a configured: %v", err)
	}
	// A receipt id used in a's partition 0 is refused for a SKU of b's
	// partition 2: ids are unique across nodes.
	_, err := on(t, ns, func(e *engine.Engine) (stockd.Receipt, error) {
		r, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "r-" + skus[0], SKU: skus[2], Location: "w1", Quantity: 10})
		return r, err
	})
	if stockd.ErrorCode(err) != stockd.CodeIdempotencyMismatch {
		t.Fatalf("a receipt id reused for a SKU another node serves = %v, want %s", err, stockd.CodeIdempotencyMismatch)
	}
	// A cart over a partition of each node: held everywhere, then
	// committed everywhere.
	cart := stockd.Reserve{ID: "cart-1", Lines: []stockd.ReserveLine{{SKU: skus[1], Quantity: 3}, {SKU: skus[3], Quantity: 4}}}
	res, err := on(t, ns, func(e *engine.Engine) (stockd.Reservation, error) {
		r, _, err := e.Reserve(ctx, cart)
		return r, err
	})
	if err != nil || res.Status != stockd.StatusHeld {
		t.Fatalf("a cart across two nodes = %+v, %v; want held", res, err)
	}
	// A cart one of whose lines is short holds nothing anywhere.
	short := stockd.Reserve{ID: "cart-2", Lines: []stockd.ReserveLine{{SKU: skus[1], Quantity: 1}, {SKU: skus[3], Quantity: 7}}}
	_, err = on(t, ns, func(e *engine.Engine) (stockd.Reservation, error) {
		r, _, err := e.Reserve(ctx, short)
		return r, err
	})
	if stockd.ErrorCode(err) != stockd.CodeInsufficientStock {
		t.Fatalf("a cart short on another node's SKU = %v, want insufficient stock", err)
	}
	// Reads and commands by id reach the node that holds the cart.
	if _, err := on(t, ns, func(e *engine.Engine) (stockd.Reservation, error) {
		return e.Commit(ctx, stockd.CommitReservation{ID: "cart-1"})
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int64{skus[1]: {7, 0}, skus[3]: {6, 0}}
	checkStock := func(when string) {
		t.Helper()
		for sku, w := range want {
			st, err := on(t, ns, func(e *engine.Engine) (stockd.SKUState, error) { return e.SKU(ctx, sku, stockd.AsOf{}) })
			if err != nil || st.OnHand != w[0] || st.Reserved != w[1] {
				t.Fatalf("%s: %s = on hand %d reserved %d (%v), want %d and %d", when, sku, st.OnHand, st.Reserved, err, w[0], w[1])
			}
		}
	}
	checkStock("after the commit")

	// Partition 1 moves from a to b: b answers for what a decided there.
	if err := a.Drop(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if a.Serves(1) {
		t.Fatal("a still serves partition 1 after dropping it")
	}
	if err := b.Acquire(ctx, 1); err != nil {
		t.Fatal(err)
	}
	checkStock("after partition 1 moved")
	got, err := on(t, ns, func(e *engine.Engine) (stockd.Reservation, error) { return e.GetReservation(ctx, "cart-1") })
	if err != nil || got.Status != stockd.StatusCommitted {
		t.Fatalf("cart-1 after its home moved = %+v, %v; want committed", got, err)
	}
	res, err = on(t, ns, func(e *engine.Engine) (stockd.Reservation, error) {
		r, created, err := e.Reserve(ctx, cart)
		if created {
			t.Error("repeating cart-1 after its home moved created it again")
		}
		return r, err
	})
	if err != nil || res.Status != stockd.StatusCommitted {
		t.Fatalf("repeating cart-1 after its home moved = %+v, %v; want its committed state", res, err)
	}
	if a.DurableHead(1) == 0 {
		t.Error("a forgot partition 1's head when it dropped it")
	}
}

// TestReceiptsRacingIntoALocationAnotherNodeJustConfiguredAreAllAccepted
// sends many receipts at once into a location configured through another
// node: they are refused together by the first decision, and every one of
// them, not only the first to read the locations again, must look again and
// be accepted.
func TestReceiptsRacingIntoALocationAnotherNodeJustConfiguredAreAllAccepted(t *testing.T) {
	schema := newSchema(t)
	ns := openNodes(t, schema, 8, []int{0}, []int{1, 2, 3, 4, 5, 6, 7})
	a, b := ns[0], ns[1]
	if _, err := a.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1, Region: "eu"}); err != nil {
		t.Fatal(err)
	}
	const n = 256
	errs := make(chan error, n)
	for i := range n {
		sku := skuIn(1+i%7, 8, "sku"+strconv.Itoa(i))
		go func() {
			_, _, err := b.Receive(ctx, stockd.ReceiveStock{ID: "r-" + sku, SKU: sku, Location: "w1", Quantity: 1})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("a receipt into the location just configured: %v", err)
		}
	}
}

// TestABundleDefinedThroughOneNodeIsReservedThroughAnother: the definition
// is recorded through the node serving the catalog's partition; the other
// node, which has not polled the catalog since, learns it as soon as a cart
// of the bundle is refused for want of the bundle's own stock, and holds the
// cart — its components on both nodes, by a saga — and commits it.
func TestABundleDefinedThroughOneNodeIsReservedThroughAnother(t *testing.T) {
	schema := newSchema(t)
	ns := openNodes(t, schema, 4, []int{0, 1}, []int{2, 3})
	a, b := ns[0], ns[1]
	if _, err := a.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1, Region: "eu"}); err != nil {
		t.Fatal(err)
	}
	kit, x, y := skuIn(3, 4, "kit"), skuIn(1, 4, "part"), skuIn(2, 4, "part")
	for _, sku := range []string{x, y} {
		if _, err := on(t, ns, func(e *engine.Engine) (stockd.Receipt, error) {
			r, _, err := e.Receive(ctx, stockd.ReceiveStock{ID: "r-" + sku, SKU: sku, Location: "w1", Quantity: 10})
			return r, err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.DefineBundle(ctx, stockd.DefineBundle{SKU: kit, Components: []stockd.BundleComponent{{SKU: x, Quantity: 2}, {SKU: y, Quantity: 3}}}); err != nil {
		t.Fatal(err)
	}
	res, _, err := b.Reserve(ctx, stockd.Reserve{ID: "cart-kit", Lines: []stockd.ReserveLine{{SKU: kit, Quantity: 2}}})
	if err != nil || res.Status != stockd.StatusHeld || len(res.Bundles) != 1 || res.Bundles[0].Held != 2 {
		t.Fatalf("a cart of the bundle through the other node = %+v, %v; want held with its bundle line", res, err)
	}
	if got, err := b.Bundle(ctx, kit); err != nil || len(got.Components) != 2 {
		t.Fatalf("b reading the bundle = %+v, %v", got, err)
	}
	if _, err := b.Commit(ctx, stockd.CommitReservation{ID: "cart-kit"}); err != nil {
		t.Fatal(err)
	}
	for sku, left := range map[string]int64{x: 6, y: 4} {
		v, err := on(t, ns, func(e *engine.Engine) (stockd.SKUState, error) { return e.SKU(ctx, sku, stockd.AsOf{}) })
		if err != nil || v.OnHand != left || v.Reserved != 0 {
			t.Fatalf("component %s after the commit = %+v, %v; want %d on hand, none held", sku, v, err, left)
		}
	}
}
