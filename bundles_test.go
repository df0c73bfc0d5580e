package stockd

import (
	"reflect"
	"testing"
	"time"
)

// kit defines bundle K as components × quantities.
func kit(sku string, comps ...BundleComponent) DefineBundle {
	return DefineBundle{SKU: sku, Components: comps}
}

func comp(sku string, q int64) BundleComponent { return BundleComponent{SKU: sku, Quantity: q} }

// bundleAC is bundle B = 1×A + 1×C, the bundle of the hidden corner.
var bundleAC = kit("B", comp("A", 1), comp("C", 1))

func exp15() time.Time { return t0.Add(15 * time.Minute) }

func resAt(id string, q int64) StockReserved {
	return StockReserved{Reservation: id, Quantity: q, Allocations: []Allocation{{"w1", q}}, ExpiresAt: exp15()}
}

func TestBundleIsDefined(t *testing.T) {
	runSpecs(t, []spec{
		{
			name: "a definition is recorded in the location partition",
			when: bundleAC,
			want: []Event{ev("", BundleDefined{Bundle: Bundle{SKU: "B", Components: []BundleComponent{{"A", 1}, {"C", 1}}}})},
			check: func(t *testing.T, c *cluster) {
				b, err := c.states[LocationPartition].BundleResult("B")
				if err != nil || len(b.Components) != 2 {
					t.Fatalf("BundleResult = %+v, %v", b, err)
				}
			},
		},
		{name: "the same definition again is a repeat", given: []Command{bundleAC}, when: bundleAC, replay: true},
		{
			name:  "a new definition replaces the old",
			given: []Command{bundleAC},
			when:  kit("B", comp("A", 2)),
			want:  []Event{ev("", BundleDefined{Bundle: Bundle{SKU: "B", Components: []BundleComponent{{"A", 2}}}})},
		},
		{name: "a bundle without components is invalid", when: kit("B"), code: CodeInvalid},
		{name: "a component quantity of 0 is invalid", when: kit("B", comp("A", 0)), code: CodeInvalid},
		{name: "a negative component quantity is invalid", when: kit("B", comp("A", -1)), code: CodeInvalid},
		{name: "a bundle cannot be its own component", when: kit("B", comp("B", 1)), code: CodeInvalid},
		{name: "a component named twice is invalid", when: kit("B", comp("A", 1), comp("A", 2)), code: CodeInvalid},
		{name: "a component that is a bundle is refused: bundles do not nest", given: []Command{bundleAC}, when: kit("K", comp("B", 1)), code: CodeInvalid},
		{name: "a bundle's component cannot become a bundle", given: []Command{bundleAC}, when: kit("A", comp("X", 1)), code: CodeInvalid},
		{name: "a receipt of a bundle is refused: bundles hold no stock", given: []Command{bundleAC}, when: recv("r1", "B", "w1", 5), code: CodeInvalid},
		{name: "an adjustment adding to a bundle is refused", given: []Command{bundleAC}, when: adjust("a1", "B", "w1", 5, ReasonFound), code: CodeInvalid},
		{name: "a count raising a bundle is refused", given: []Command{bundleAC}, when: CountStock{ID: "n1", SKU: "B", Location: "w1", OnHand: 3}, code: CodeInvalid},
	})
}

func TestBundleReservationHoldsEveryComponent(t *testing.T) {
	stock := func(a, c int64) []Command {
		cmds := []Command{bundleAC, recv("ra", "A", "w1", a)}
		if c > 0 {
			cmds = append(cmds, recv("rc", "C", "w1", c))
		}
		return cmds
	}
	committed := func(sku string, q, released int64) Event {
		return ev(sku, ReservationCommitted{Reservation: "c1", Quantity: q, Released: released, Allocations: []Allocation{{"w1", q}}, Lots: []LotQty{lq("w1", "", "", q)}})
	}
	released := func(sku string, q int64, why ReleaseReason) Event {
		return ev(sku, ReservationReleased{Reservation: "c1", Reason: why, Quantity: q})
	}
	took := func(q int64) Event {
		return ev("", BundlesCommitted{Reservation: "c1", Lines: []CommitLine{{SKU: "B", Quantity: q}}})
	}
	runSpecs(t, []spec{
		{
			name:  "a bundle line holds each component times its quantity",
			given: []Command{kit("B", comp("A", 2), comp("C", 1)), recv("ra", "A", "w1", 10), recv("rc", "C", "w1", 10)},
			when:  reserve("c1", line("B", 3)),
			want: []Event{
				ev("A", resAt("c1", 6)), ev("C", resAt("c1", 3)),
				ev("", BundlesReserved{Reservation: "c1", Lines: []BundleLine{{SKU: "B", Quantity: 3, Components: []BundleComponent{{"A", 2}, {"C", 1}}}}}),
			},
			check: func(t *testing.T, c *cluster) {
				r := wantRes(t, c, "c1", StatusHeld)
				want := []ReservationBundle{{SKU: "B", Quantity: 3, Held: 3, Components: []BundleComponent{{"A", 6}, {"C", 3}}}}
				if !reflect.DeepEqual(r.Bundles, want) || len(r.Lines) != 2 {
					t.Fatalf("view = %+v", r)
				}
			},
		},
		{
			name:  "a bundle whose component is short is refused whole, holding nothing",
			given: stock(5, 0),
			when:  reserve("c1", line("B", 1)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "C", Requested: 1}},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 5, 0, 5, 0, 0)
				wantNoRes(t, c, "c1")
			},
		},
		{
			name:  "a bundle sharing a component with another line of the same cart is refused as a whole when the shared component is short",
			given: stock(2, 5),
			when:  reserve("c1", line("B", 1), line("A", 2)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 3, Available: 2}},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 2, 0, 2, 0, 0)
				wantLoc(t, c, "C", "w1", 5, 0, 5, 0, 0)
				wantNoRes(t, c, "c1")
			},
		},
		{
			name:  "a bundle sharing a component with another line of the same cart holds both, and commit consumes them all",
			given: []Command{bundleAC, recv("ra", "A", "w1", 3), recv("rc", "C", "w1", 5), reserve("c1", line("B", 1), line("A", 2))},
			when:  CommitReservation{ID: "c1"},
			want:  []Event{committed("A", 3, 0), committed("C", 1, 0), took(1)},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 0, 0, 0, 0, 0)
				wantLoc(t, c, "C", "w1", 4, 0, 4, 0, 0)
				r := wantRes(t, c, "c1", StatusCommitted)
				if len(r.Bundles) != 1 || r.Bundles[0].Quantity != 1 || r.Lines[0].SKU != "A" || r.Lines[0].Quantity != 3 {
					t.Fatalf("view = %+v", r)
				}
			},
		},
		{
			name:  "two bundles sharing a component in one cart hold the sum of their parts",
			given: []Command{bundleAC, kit("D", comp("A", 2), comp("E", 1)), recv("ra", "A", "w1", 3), recv("rc", "C", "w1", 5), recv("re", "E", "w1", 5)},
			when:  reserve("c1", line("B", 1), line("D", 1)),
			want: []Event{
				ev("A", resAt("c1", 3)), ev("C", resAt("c1", 1)), ev("E", resAt("c1", 1)),
				ev("", BundlesReserved{Reservation: "c1", Lines: []BundleLine{
					{SKU: "B", Quantity: 1, Components: []BundleComponent{{"A", 1}, {"C", 1}}},
					{SKU: "D", Quantity: 1, Components: []BundleComponent{{"A", 2}, {"E", 1}}},
				}}),
				ev("A", OutOfStock{}),
			},
		},
		{
			name:  "two bundles sharing a component one unit short are refused whole",
			given: []Command{bundleAC, kit("D", comp("A", 2), comp("E", 1)), recv("ra", "A", "w1", 2), recv("rc", "C", "w1", 5), recv("re", "E", "w1", 5)},
			when:  reserve("c1", line("B", 1), line("D", 1)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 3, Available: 2}},
		},
		{
			name:  "a bundle and a line of its component at different locations are refused as invalid",
			given: append(stock(5, 5), warehouse("w2", 2, "")),
			when:  reserve("c1", lineAt("B", 1, "w1"), lineAt("A", 1, "w2")),
			code:  CodeInvalid,
		},
		{
			name:  "release returns every component",
			given: append(stock(5, 5), reserve("c1", line("B", 2))),
			when:  ReleaseReservation{ID: "c1"},
			want:  []Event{released("A", 2, ReleaseRequested), released("C", 2, ReleaseRequested)},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 5, 0, 5, 0, 0)
				wantLoc(t, c, "C", "w1", 5, 0, 5, 0, 0)
			},
		},
		{
			name:    "expiry returns every component",
			given:   append(stock(5, 5), reserve("c1", line("B", 2))),
			when:    at(16*time.Minute, tick{}),
			wantDue: []Event{released("A", 2, ReleaseExpired), released("C", 2, ReleaseExpired)},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 5, 0, 5, 0, 0)
				wantRes(t, c, "c1", StatusExpired)
			},
		},
		{
			name:  "a partial commit of a bundle commits its components and releases the rest",
			given: append(stock(5, 5), reserve("c1", line("B", 3))),
			when:  CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "B", Quantity: 1}}},
			want:  []Event{committed("A", 1, 2), committed("C", 1, 2), took(1)},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 4, 0, 4, 0, 0)
				wantLoc(t, c, "C", "w1", 4, 0, 4, 0, 0)
				r := wantRes(t, c, "c1", StatusCommitted)
				want := []ReservationBundle{{SKU: "B", Quantity: 1, Held: 3, Components: []BundleComponent{{"A", 1}, {"C", 1}}}}
				if !reflect.DeepEqual(r.Bundles, want) {
					t.Fatalf("bundles = %+v", r.Bundles)
				}
			},
		},
		{
			name:  "a commit of more bundles than held is invalid",
			given: append(stock(5, 5), reserve("c1", line("B", 1))),
			when:  CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "B", Quantity: 2}}},
			code:  CodeInvalid,
		},
		{
			name:  "commit consumes component lots first-expiry-first-out",
			given: []Command{bundleAC, recvLot("r1", "A", "w1", 2, "late", "2027-06-01"), recvLot("r2", "A", "w1", 2, "early", "2027-04-01"), recv("rc", "C", "w1", 5), reserve("c1", line("B", 1))},
			when:  CommitReservation{ID: "c1"},
			want: []Event{
				ev("A", ReservationCommitted{Reservation: "c1", Quantity: 1, Allocations: []Allocation{{"w1", 1}}, Lots: []LotQty{lq("w1", "early", "2027-04-01", 1)}}),
				committed("C", 1, 0), took(1),
			},
			check: func(t *testing.T, c *cluster) {
				wantLots(t, c, "A", "w1", LotView{Lot: "early", Quantity: 1, BestBefore: "2027-04-01"}, LotView{Lot: "late", Quantity: 2, BestBefore: "2027-06-01"})
			},
		},
		{
			name:  "a redefinition changes nothing a hold holds, nor what its commit consumes",
			given: append(stock(5, 5), reserve("c1", line("B", 1)), kit("B", comp("C", 2))),
			when:  CommitReservation{ID: "c1"},
			want:  []Event{committed("A", 1, 0), committed("C", 1, 0), took(1)},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 4, 0, 4, 0, 0)
				wantLoc(t, c, "C", "w1", 4, 0, 4, 0, 0)
			},
		},
	})
}

// TestBundleDerivedAvailability: a bundle's stock is the least over its
// components of floor(available ÷ quantity), per location and in total.
func TestBundleDerivedAvailability(t *testing.T) {
	b := Bundle{SKU: "K", Components: []BundleComponent{{"A", 2}, {"C", 1}}}
	a := SKUState{SKU: "A", Available: 9, Locations: []LocationState{{Location: "w1", Available: 7}, {Location: "w2", Available: 2}}}
	c := SKUState{SKU: "C", Available: 3, Locations: []LocationState{{Location: "w2", Available: 3}, {Location: "w1", Available: 0}}}
	v := BundleStock(b, []SKUState{a, c})
	if !v.Derived || v.Available != 3 || len(v.Locations) != 1 || v.Locations[0].Location != "w2" || v.Locations[0].Available != 1 {
		t.Fatalf("BundleStock = %+v", v)
	}
	short := SKUState{SKU: "C", Available: -2}
	if v := BundleStock(b, []SKUState{a, short}); v.Available != 0 {
		t.Fatalf("a component in shortage: available %d, want 0", v.Available)
	}
	item := BundleAvailability(b, []AvailabilityItem{
		{SKU: "A", Available: 9, Locations: []LocationAvailability{{Location: "w1", Available: 7}}},
		{SKU: "C", Available: 3, Locations: []LocationAvailability{{Location: "w1", Available: 3}}},
	})
	if !item.Derived || item.Available != 3 || len(item.Locations) != 1 || item.Locations[0].Available != 3 {
		t.Fatalf("BundleAvailability = %+v", item)
	}
}

// TestBundleSpanningPartitionsRefusedAtAParticipantReleasesAll: the home
// holds the components in its partition, a participant is short of another,
// and the whole cart ends released everywhere.
func TestBundleSpanningPartitionsRefusedAtAParticipantReleasesAll(t *testing.T) {
	w := newSagaWorld(t, 3, 1)
	mustDo(t, w.cluster, kit("K", comp(w.a, 1), comp(w.b, 2), comp(w.c, 1)))
	_, _, err := w.do(reserve("c1", line(w.a, 1), line("K", 2)))
	if err != nil {
		t.Fatalf("reserve: %v", err)
	}
	w.quiesce()
	// The client's answer is the first resolution; the compensation's
	// settling resolves again, with no error, once everything is released.
	rs := w.resolved["c1"]
	var e *Error
	if len(rs) == 0 || !asError(rs[0].Err, &e) || e.Code != CodeInsufficientStock ||
		!reflect.DeepEqual(e.Lines, []Shortfall{{SKU: w.c, Requested: 2, Available: 1}}) {
		t.Fatalf("resolutions = %+v", rs)
	}
	for _, sku := range []string{w.a, w.b} {
		if l := w.loc(sku, "w1"); l.Reserved != 0 || l.Available != 10 {
			t.Fatalf("%s after the refusal: %+v", sku, l)
		}
	}
	wantNoRes(t, w.cluster, "c1")
}

// TestBundleSpanningPartitionsIsHeldAndCommittedEverywhere: components in
// three partitions are held by the saga and consumed by the commit.
func TestBundleSpanningPartitionsIsHeldAndCommittedEverywhere(t *testing.T) {
	w := newSagaWorld(t, 3, 10)
	mustDo(t, w.cluster, kit("K", comp(w.a, 1), comp(w.b, 2), comp(w.c, 1)))
	if _, _, err := w.do(reserve("c1", line("K", 2), line(w.b, 1))); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	w.quiesce()
	if r, ok := w.lastResolution("c1"); !ok || r.Err != nil {
		t.Fatalf("resolution = %+v, %v", r, ok)
	}
	if l := w.loc(w.b, "w1"); l.Reserved != 5 {
		t.Fatalf("%s reserved %d, want 5", w.b, l.Reserved)
	}
	mustDo(t, w.cluster, CommitReservation{ID: "c1"})
	w.quiesce()
	for sku, left := range map[string]int64{w.a: 8, w.b: 5, w.c: 8} {
		if l := w.loc(sku, "w1"); l.OnHand != left || l.Reserved != 0 {
			t.Fatalf("%s after commit: %+v, want %d on hand", sku, l, left)
		}
	}
	home := w.states[PartitionOf("K", 3)]
	v, ok := home.ReservationView("c1")
	if !ok || v.Status != StatusCommitted || len(v.Bundles) != 1 || v.Bundles[0].Quantity != 2 {
		t.Fatalf("view = %+v, %v", v, ok)
	}
}
