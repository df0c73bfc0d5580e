package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
)

// served returns the partitions a's engine serves.
func served(a *App) []int {
	var ps []int
	for p := range a.Engine.Partitions() {
		if a.Engine.Serves(p) {
			ps = append(ps, p)
		}
	}
	return ps
}

// waitFor polls cond every 10 ms until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// skuOf returns a SKU of partition p of n.
func skuOf(p, n int) string {
	for i := 0; ; i++ {
		if sku := fmt.Sprintf("sku-%d", i); stockd.PartitionOf(sku, n) == p {
			return sku
		}
	}
}

// TestNodesShareThePartitionsAndAnyNodeAnswersAnyRequest: a second node on
// one store takes its share of the partitions from the first, each serves
// its own, a request for any partition sent to either node is answered (the
// node sends it on to the other when it must), and when one node stops the
// other takes its partitions back with every write they acknowledged.
func TestNodesShareThePartitionsAndAnyNodeAnswersAnyRequest(t *testing.T) {
	ctx := context.Background()
	cfg := postgresConfig(t)
	cfg.LeaseTTL = time.Second
	a, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	a.Serve()
	if got := served(a); len(got) != 4 {
		t.Fatalf("the only node serves partitions %v, want all 4", got)
	}
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	b.Serve()
	waitFor(t, 10*time.Second, "the two nodes share the partitions", func() bool {
		return len(served(a)) > 0 && len(served(b)) > 0 && len(served(a))+len(served(b)) == 4
	})
	for _, n := range []*App{a, b} {
		waitFor(t, 5*time.Second, "a node is ready", func() bool { return client.New(n.URL()).Ready(ctx) == nil })
	}
	ca, cb := client.New(a.URL()), client.New(b.URL())
	if _, err := cb.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	// Every partition's SKU, through each node in turn.
	for p := range 4 {
		sku := skuOf(p, 4)
		c := ca
		if p%2 == 1 {
			c = cb
		}
		waitFor(t, 5*time.Second, "a receipt into the new location is taken", func() bool {
			_, _, err := c.Receive(ctx, stockd.ReceiveStock{ID: "r-" + sku, SKU: sku, Location: "w1", Quantity: 5})
			return err == nil
		})
		for _, c := range []*client.Client{ca, cb} {
			st, err := c.SKU(ctx, sku, stockd.AsOf{})
			if err != nil || st.OnHand != 5 {
				t.Fatalf("%s (partition %d) through %s = %+v, %v; want 5 on hand", sku, p, c.BaseURL(), st, err)
			}
		}
		res, _, err := c.Reserve(ctx, stockd.Reserve{ID: "hold-" + sku, Lines: []stockd.ReserveLine{{SKU: sku, Quantity: 2}}})
		if err != nil || res.Status != stockd.StatusHeld {
			t.Fatalf("reserving %s = %+v, %v", sku, res, err)
		}
		other := cb
		if c == cb {
			other = ca
		}
		if _, err := other.Commit(ctx, stockd.CommitReservation{ID: "hold-" + sku}); err != nil {
			t.Fatalf("committing hold-%s through the other node: %v", sku, err)
		}
	}
	// A cart over a partition of each node is held on both, and
	// committed through either; one short on either holds nothing.
	pa, pb := served(a)[0], served(b)[0]
	skuA, skuB := skuOf(pa, 4), skuOf(pb, 4)
	cart := stockd.Reserve{ID: "cart", Lines: []stockd.ReserveLine{{SKU: skuA, Quantity: 1}, {SKU: skuB, Quantity: 1}}}
	if res, _, err := ca.Reserve(ctx, cart); err != nil || res.Status != stockd.StatusHeld {
		t.Fatalf("a cart over both nodes = %+v, %v; want held", res, err)
	}
	short := stockd.Reserve{ID: "short", Lines: []stockd.ReserveLine{{SKU: skuB, Quantity: 1}, {SKU: skuA, Quantity: 3}}}
	if _, _, err := cb.Reserve(ctx, short); stockd.ErrorCode(err) != stockd.CodeInsufficientStock {
		t.Fatalf("a cart short on the other node's SKU = %v, want insufficient stock", err)
	}
	if res, err := cb.Commit(ctx, stockd.CommitReservation{ID: "cart"}); err != nil || res.Status != stockd.StatusCommitted {
		t.Fatalf("committing the cart through the other node = %+v, %v", res, err)
	}
	for _, sku := range []string{skuA, skuB} {
		st, err := ca.SKU(ctx, sku, stockd.AsOf{})
		if err != nil || st.OnHand != 2 || st.Reserved != 0 {
			t.Fatalf("%s after the cart = %+v, %v; want 2 on hand, none reserved", sku, st, err)
		}
	}
	// b stops: a takes every partition back, with what b acknowledged.
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*cfg.LeaseTTL+time.Second, "the remaining node serves every partition", func() bool { return len(served(a)) == 4 })
	for p := range 4 {
		sku := skuOf(p, 4)
		st, err := ca.SKU(ctx, sku, stockd.AsOf{})
		want := int64(3)
		if sku == skuA || sku == skuB {
			want = 2
		}
		if err != nil || st.OnHand != want {
			t.Fatalf("%s after b stopped = %+v, %v; want %d on hand", sku, st, err, want)
		}
	}
}
