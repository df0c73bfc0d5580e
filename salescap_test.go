package stockd

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// capped is a SKU with far more stock than its sales cap: whatever the specs
// below refuse, the cap refuses, never the stock.
func capped(limit int64) []Command {
	return []Command{recv("r1", "A", "w1", 100), ConfigureSKU{SKU: "A", SalesCap: limit}}
}

// wantCap checks the sales cap a SKU's views show and what it has left.
func wantCap(t *testing.T, c *cluster, sku string, limit, remaining int64) {
	t.Helper()
	v := c.sku(sku)
	if v.SalesCap != limit || v.SalesCapRemaining == nil || *v.SalesCapRemaining != remaining {
		t.Fatalf("%s: sales_cap %d, remaining %v; want %d, %d", sku, v.SalesCap, v.SalesCapRemaining, limit, remaining)
	}
	cfg, err := c.states[PartitionOf(sku, c.p)].SKUConfigResult(sku)
	if err != nil || cfg.SalesCap != limit || cfg.SalesCapRemaining == nil || *cfg.SalesCapRemaining != remaining {
		t.Fatalf("%s: config answer %+v, %v", sku, cfg, err)
	}
}

func held(id string, q int64) Event {
	return ev("A", StockReserved{Reservation: id, Quantity: q, Allocations: []Allocation{{"w1", q}}, ExpiresAt: t0.Add(15 * time.Minute)})
}

func TestSalesCapIsConfigured(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "the config event records the cap and the views show what it leaves",
			given: []Command{recv("r1", "A", "w1", 100), reserve("c1", line("A", 3))},
			when:  ConfigureSKU{SKU: "A", SalesCap: 10},
			want:  []Event{ev("A", SKUConfigured{SalesCap: 10})},
			check: func(t *testing.T, c *cluster) { wantCap(t, c, "A", 10, 7) },
		},
		{
			name:  "a change of the cap alone is not a repeat",
			given: capped(10),
			when:  ConfigureSKU{SKU: "A", SalesCap: 12},
			want:  []Event{ev("A", SKUConfigured{SalesCap: 12})},
		},
		{
			name:   "the same cap again is a repeat",
			given:  capped(10),
			when:   ConfigureSKU{SKU: "A", SalesCap: 10},
			replay: true,
		},
		{
			name:  "a cap left out is removed, and the views show none",
			given: capped(10),
			when:  ConfigureSKU{SKU: "A"},
			want:  []Event{ev("A", SKUConfigured{})},
			check: func(t *testing.T, c *cluster) {
				if v := c.sku("A"); v.SalesCap != 0 || v.SalesCapRemaining != nil {
					t.Fatalf("view = %+v", v)
				}
			},
		},
		{name: "a negative cap is invalid", when: ConfigureSKU{SKU: "A", SalesCap: -1}, code: CodeInvalid},
		{name: "a cap above the quantity limit is invalid", when: ConfigureSKU{SKU: "A", SalesCap: DefaultLimits.MaxQuantity + 1}, code: CodeInvalid},
	})
}

func TestSalesCapRefusesHoldsPastIt(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "a line up to the cap is held",
			given: capped(5),
			when:  reserve("c1", line("A", 5)),
			want:  []Event{held("c1", 5)},
			check: func(t *testing.T, c *cluster) { wantCap(t, c, "A", 5, 0) },
		},
		{
			name:  "a line past the cap is refused however much stock there is",
			given: capped(5),
			when:  reserve("c1", line("A", 6)),
			code:  CodeSalesCap,
			lines: []Shortfall{{SKU: "A", Requested: 6, Available: 5, SalesCap: 5}},
			check: func(t *testing.T, c *cluster) {
				wantNoRes(t, c, "c1")
				wantCap(t, c, "A", 5, 5)
			},
		},
		{
			name:  "the cap is reached by holds not yet committed",
			given: append(capped(5), reserve("c1", line("A", 3))),
			when:  reserve("c2", line("A", 3)),
			code:  CodeSalesCap,
			lines: []Shortfall{{SKU: "A", Requested: 3, Available: 2, SalesCap: 5}},
		},
		{
			name:  "committed units count against the cap for ever",
			given: append(capped(5), reserve("c1", line("A", 3)), CommitReservation{ID: "c1"}),
			when:  reserve("c2", line("A", 3)),
			code:  CodeSalesCap,
			lines: []Shortfall{{SKU: "A", Requested: 3, Available: 2, SalesCap: 5}},
			check: func(t *testing.T, c *cluster) { wantCap(t, c, "A", 5, 2) },
		},
		{
			name:  "the units a partial commit releases make room again",
			given: append(capped(5), reserve("c1", line("A", 5)), CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "A", Quantity: 2}}}),
			when:  reserve("c2", line("A", 3)),
			want:  []Event{held("c2", 3)},
			check: func(t *testing.T, c *cluster) { wantCap(t, c, "A", 5, 0) },
		},
		{
			name:  "a release makes room again",
			given: append(capped(5), reserve("c1", line("A", 5)), ReleaseReservation{ID: "c1"}),
			when:  reserve("c2", line("A", 5)),
			want:  []Event{held("c2", 5)},
		},
		{
			name:  "an expiry makes room again",
			given: append(capped(5), Reserve{ID: "c1", TTL: 10 * time.Minute, Lines: []ReserveLine{line("A", 5)}}, at(10*time.Minute, tick{})),
			when:  reserve("c2", line("A", 5)),
			want:  []Event{ev("A", StockReserved{Reservation: "c2", Quantity: 5, Allocations: []Allocation{{"w1", 5}}, ExpiresAt: t0.Add(25 * time.Minute)})},
			check: func(t *testing.T, c *cluster) {
				wantRes(t, c, "c1", StatusExpired)
				wantCap(t, c, "A", 5, 0)
			},
		},
		{
			name:  "receipts are not capped: stock arriving neither lifts the cap nor is refused",
			given: append(capped(5), reserve("c1", line("A", 5))),
			when:  recv("r2", "A", "w1", 50),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 50})},
			check: func(t *testing.T, c *cluster) {
				wantCap(t, c, "A", 5, 0)
				if _, _, err := c.do(reserve("c2", line("A", 1))); !IsCode(err, CodeSalesCap) {
					t.Fatalf("a hold past the cap after a receipt: %v", err)
				}
			},
		},
		{
			name:  "a cart with one line past its cap holds nothing",
			given: append(capped(5), recv("r2", "B", "w1", 100)),
			when:  reserve("c1", line("B", 1), line("A", 6)),
			code:  CodeSalesCap,
			lines: []Shortfall{{SKU: "A", Requested: 6, Available: 5, SalesCap: 5}},
			check: func(t *testing.T, c *cluster) {
				wantNoRes(t, c, "c1")
				wantLoc(t, c, "B", "w1", 100, 0, 100, 0, 0)
			},
		},
		{
			name:  "a cart short of stock on one line and past the cap on another is refused for the cap, listing both",
			given: append(capped(5), recv("r2", "B", "w1", 1)),
			when:  reserve("c1", line("B", 2), line("A", 6)),
			code:  CodeSalesCap,
			lines: []Shortfall{{SKU: "B", Requested: 2, Available: 1}, {SKU: "A", Requested: 6, Available: 5, SalesCap: 5}},
		},
		{
			name:       "a cart spanning partitions is held at the participant within its cap",
			partitions: 2,
			given: []Command{
				recv("r1", skuIn("A", 0, 2), "w1", 100), recv("r2", skuIn("B", 1, 2), "w1", 100),
				ConfigureSKU{SKU: skuIn("B", 1, 2), SalesCap: 3},
			},
			when: tick{},
			check: func(t *testing.T, c *cluster) {
				if _, _, err := c.do(reserve("c1", line(skuIn("A", 0, 2), 1), line(skuIn("B", 1, 2), 3))); err != nil {
					t.Fatal(err)
				}
				c.quiesce()
				wantRes(t, c, "c1", StatusHeld)
				wantCap(t, c, skuIn("B", 1, 2), 3, 0)
			},
		},
	})
}

// TestSalesCapIsNeverLoweredBelowWhatIsCommittedAndHeld: holds granted under
// a cap are committed without another check (a saga's participant cannot
// refuse a commit step), so total committed stays within the cap only if
// the cap never drops below the units committed and held. Lowering it that
// far is refused, and nothing changes.
func TestSalesCapIsNeverLoweredBelowWhatIsCommittedAndHeld(t *testing.T) {
	held := slices.Clip(append(capped(10), reserve("c1", line("A", 6))))
	runSpecs(t, []spec{
		{
			name:  "lowering the cap below the units held is refused",
			given: held,
			when:  ConfigureSKU{SKU: "A", SalesCap: 4},
			code:  CodeSalesCap,
			check: func(t *testing.T, c *cluster) {
				wantRes(t, c, "c1", StatusHeld)
				wantCap(t, c, "A", 10, 4)
			},
		},
		{
			name:  "lowering it to exactly the units held is accepted and leaves no room",
			given: held,
			when:  ConfigureSKU{SKU: "A", SalesCap: 6},
			want:  []Event{ev("A", SKUConfigured{SalesCap: 6})},
			check: func(t *testing.T, c *cluster) { wantCap(t, c, "A", 6, 0) },
		},
		{
			name:  "a commit after the cap was lowered to what is held stays within it",
			given: append(held, ConfigureSKU{SKU: "A", SalesCap: 6}),
			when:  CommitReservation{ID: "c1"},
			want:  []Event{ev("A", ReservationCommitted{Reservation: "c1", Quantity: 6, Allocations: []Allocation{{"w1", 6}}, Lots: []LotQty{lq("w1", "", "", 6)}})},
			check: func(t *testing.T, c *cluster) { wantCap(t, c, "A", 6, 0) },
		},
		{
			name:  "lowering the cap below the units committed is refused",
			given: append(held, CommitReservation{ID: "c1"}),
			when:  ConfigureSKU{SKU: "A", SalesCap: 5},
			code:  CodeSalesCap,
			check: func(t *testing.T, c *cluster) { wantCap(t, c, "A", 10, 4) },
		},
		{
			name:  "once the holds are released the cap may be lowered to what is committed",
			given: append(capped(10), reserve("c1", line("A", 3)), CommitReservation{ID: "c1"}, reserve("c2", line("A", 5)), ReleaseReservation{ID: "c2"}),
			when:  ConfigureSKU{SKU: "A", SalesCap: 3},
			want:  []Event{ev("A", SKUConfigured{SalesCap: 3})},
			check: func(t *testing.T, c *cluster) { wantCap(t, c, "A", 3, 0) },
		},
		{
			name:  "removing the cap is always accepted",
			given: held,
			when:  ConfigureSKU{SKU: "A"},
			want:  []Event{ev("A", SKUConfigured{})},
		},
	})
}

// TestSalesCapRefusesACartSpanningPartitionsAtTheParticipant: the cap is
// checked where the capped SKU's stock is, at a participant of the cart's
// saga; the participant's shortfall carries the cap to the home, which
// refuses the cart with sales_cap and releases what it held, so the
// whole cart holds nothing.
func TestSalesCapRefusesACartSpanningPartitionsAtTheParticipant(t *testing.T) {
	w := newSagaWorld(t, 3, 10)
	mustDo(t, w.cluster, ConfigureSKU{SKU: w.c, SalesCap: 2})
	cart := reserve("c1", line(w.a, 2), line(w.b, 3), line(w.c, 3))
	if _, d, err := w.do(cart); err != nil || d.Wait != "c1" {
		t.Fatalf("reserve: %+v, %v", d, err)
	}
	w.quiesce()
	want := []Shortfall{{SKU: w.c, Requested: 3, Available: 2, SalesCap: 2}}
	// The cart's first resolution is its answer; the undoing that follows
	// resolves it again, with no error.
	rs := w.resolved["c1"]
	var e *Error
	if len(rs) == 0 || !asError(rs[0].Err, &e) || e.Code != CodeSalesCap || !reflect.DeepEqual(e.Lines, want) {
		t.Fatalf("resolutions = %+v", rs)
	}
	wantNoRes(t, w.cluster, "c1")
	wantLoc(t, w.cluster, w.a, "w1", 10, 0, 10, 0, 0)
	wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
	wantLoc(t, w.cluster, w.c, "w1", 10, 0, 10, 0, 0)
	wantCap(t, w.cluster, w.c, 2, 2)
	// Within the cap, the same cart is held everywhere.
	within := reserve("c2", line(w.a, 2), line(w.b, 3), line(w.c, 2))
	if _, _, err := w.do(within); err != nil {
		t.Fatal(err)
	}
	w.quiesce()
	wantRes(t, w.cluster, "c2", StatusHeld)
	wantCap(t, w.cluster, w.c, 2, 0)
}
