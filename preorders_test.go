package stockd

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

// expectedAt is when the specs' purchase orders are due.
var expectedAt = t0.Add(72 * time.Hour)

func expect(id, sku, loc string, q int64) ExpectReceipt {
	return ExpectReceipt{ID: id, SKU: sku, Location: loc, Quantity: q, ExpectedAt: expectedAt}
}

// preorderable configures SKU A to take preorders, with units on hand and a
// purchase order po-1 of expected units at w1.
func preorderable(onHand, expected int64) []Command {
	var out []Command
	if onHand > 0 {
		out = append(out, recv("r1", "A", "w1", onHand))
	}
	return append(out, ConfigureSKU{SKU: "A", Preorders: true}, expect("po-1", "A", "w1", expected))
}

// expectedHome returns the partition that recorded expected receipt id.
func (c *cluster) expectedHome(id string) int {
	for p, s := range c.states {
		if _, ok := s.ExpectedReceiptView(id); ok {
			return p
		}
	}
	return 0
}

func (c *cluster) expectedReceipt(t *testing.T, id string) ExpectedReceipt {
	t.Helper()
	v, ok := c.states[c.expectedHome(id)].ExpectedReceiptView(id)
	if !ok {
		t.Fatalf("expected receipt %s not found", id)
	}
	return v
}

// wantLine checks a reservation line's quantity, on-hand allocations and
// preorder units.
func wantLine(t *testing.T, c *cluster, id, sku string, status ReservationStatus, quantity int64, allocs []Allocation, preorder int64) {
	t.Helper()
	r := wantRes(t, c, id, status)
	for _, l := range r.Lines {
		if l.SKU != sku {
			continue
		}
		if allocs == nil {
			allocs = []Allocation{}
		}
		if l.Quantity != quantity || !reflect.DeepEqual(l.Allocations, allocs) || l.Preorder != preorder || sumPreorders(l.Preorders) != preorder && status == StatusHeld {
			t.Fatalf("%s line %s = %+v; want quantity %d, allocations %v, preorder %d", id, sku, l, quantity, allocs, preorder)
		}
		return
	}
	t.Fatalf("%s has no line %s: %+v", id, sku, r)
}

// wantExpected checks what a SKU's view says is expected, promised and
// still preorderable at w1.
func wantExpected(t *testing.T, c *cluster, sku string, expected, preordered, preorderable int64) {
	t.Helper()
	l := c.loc(sku, "w1")
	v := c.sku(sku)
	got := [6]int64{l.Expected, l.Preordered, l.Preorderable, v.Expected, v.Preordered, v.Preorderable}
	want := [6]int64{expected, preordered, preorderable, expected, preordered, preorderable}
	if got != want {
		t.Fatalf("%s expected/preordered/preorderable at w1 and in total = %v, want %v", sku, got, want)
	}
}

func TestPreordersAreConfigured(t *testing.T) {
	runSpecs(t, []spec{
		{
			name: "the config event records preorders and the views show them",
			when: ConfigureSKU{SKU: "A", Preorders: true},
			want: []Event{ev("A", SKUConfigured{Preorders: true})},
			check: func(t *testing.T, c *cluster) {
				cfg, err := c.states[0].SKUConfigResult("A")
				if err != nil || !cfg.Preorders || !c.sku("A").Preorders {
					t.Fatalf("config %+v, %v; view %+v", cfg, err, c.sku("A"))
				}
			},
		},
		{
			name:  "turning preorders on is not a repeat of the config without them",
			given: []Command{ConfigureSKU{SKU: "A", SafetyStock: 1}},
			when:  ConfigureSKU{SKU: "A", SafetyStock: 1, Preorders: true},
			want:  []Event{ev("A", SKUConfigured{SafetyStock: 1, Preorders: true})},
		},
	})
}

func TestExpectedReceiptsAreRecordedIdempotently(t *testing.T) {
	runSpecs(t, []spec{
		{
			name: "an expected receipt is recorded and shown as expected stock",
			when: expect("po-1", "A", "w1", 10),
			want: []Event{ev("A", ExpectedReceiptRecorded{Location: "w1", Quantity: 10, ExpectedAt: expectedAt})},
			check: func(t *testing.T, c *cluster) {
				// Without preorders nothing of it may be held.
				wantExpected(t, c, "A", 10, 0, 0)
				wantLoc(t, c, "A", "w1", 0, 0, 0, 0, 0)
				v := c.expectedReceipt(t, "po-1")
				if v.Status != ExpectedStatusExpected || v.Quantity != 10 || !v.ExpectedAt.Equal(expectedAt) || v.ClosedAt != nil {
					t.Fatalf("view = %+v", v)
				}
			},
		},
		{
			name:   "the same expected receipt again is a replay",
			given:  []Command{expect("po-1", "A", "w1", 10)},
			when:   expect("po-1", "A", "w1", 10),
			replay: true,
			check:  func(t *testing.T, c *cluster) { wantExpected(t, c, "A", 10, 0, 0) },
		},
		{
			name:  "the same id with another quantity is an idempotency mismatch",
			given: []Command{expect("po-1", "A", "w1", 10)},
			when:  expect("po-1", "A", "w1", 11),
			code:  CodeIdempotencyMismatch,
		},
		{
			name:    "an unknown location is refused",
			when:    expect("po-1", "A", "nowhere", 10),
			unknown: []string{"nowhere"},
			code:    CodeUnknownLocation,
		},
		{name: "a quantity of zero is invalid", when: expect("po-1", "A", "w1", 0), code: CodeInvalid},
		{name: "a negative quantity is invalid", when: expect("po-1", "A", "w1", -1), code: CodeInvalid},
		{name: "an expected receipt without expected_at is invalid", when: ExpectReceipt{ID: "po-1", SKU: "A", Location: "w1", Quantity: 1}, code: CodeInvalid},
		{name: "arrival of an unknown expected receipt is not found", when: ArriveExpected{ID: "po-9"}, code: CodeNotFound},
		{name: "cancel of an unknown expected receipt is not found", when: CancelExpected{ID: "po-9"}, code: CodeNotFound},
	})
}

func TestPreordersHoldExpectedStockOnlyWhenAllowed(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "without preorders a line is refused however much is expected",
			given: []Command{recv("r1", "A", "w1", 2), expect("po-1", "A", "w1", 10)},
			when:  reserve("c1", line("A", 3)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 3, Available: 2}},
		},
		{
			name:  "with preorders a line takes on-hand stock first, then expected units",
			given: preorderable(2, 10),
			when:  reserve("c1", line("A", 5)),
			want: []Event{ev("A", StockReserved{
				Reservation: "c1", Quantity: 5, Allocations: []Allocation{{"w1", 2}}, ExpiresAt: t0.Add(15 * time.Minute),
				Preorders: []PreorderHold{{ExpectedReceipt: "po-1", Location: "w1", Quantity: 3}},
			}), ev("A", OutOfStock{})},
			check: func(t *testing.T, c *cluster) {
				wantLine(t, c, "c1", "A", StatusHeld, 5, []Allocation{{"w1", 2}}, 3)
				wantLoc(t, c, "A", "w1", 2, 2, 0, 0, 0)
				wantExpected(t, c, "A", 10, 3, 7)
			},
		},
		{
			name:  "a line that on-hand stock covers holds no expected units",
			given: preorderable(5, 10),
			when:  reserve("c1", line("A", 5)),
			want:  []Event{held("c1", 5), ev("A", OutOfStock{})},
			check: func(t *testing.T, c *cluster) {
				wantLine(t, c, "c1", "A", StatusHeld, 5, []Allocation{{"w1", 5}}, 0)
				wantExpected(t, c, "A", 10, 0, 10)
			},
		},
		{
			name:  "never more than on hand and expected: the unit past both is refused",
			given: append(preorderable(2, 10), reserve("c1", line("A", 11))),
			when:  reserve("c2", line("A", 2)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 2, Available: 1}},
		},
		{
			name:  "expected units already promised are not promised again",
			given: append(preorderable(0, 4), reserve("c1", line("A", 4))),
			when:  reserve("c2", line("A", 1)),
			code:  CodeInsufficientStock,
		},
		{
			name:  "a release gives expected units back to preorders",
			given: append(preorderable(0, 4), reserve("c1", line("A", 4))),
			when:  ReleaseReservation{ID: "c1"},
			want:  []Event{ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseRequested, Quantity: 4})},
			check: func(t *testing.T, c *cluster) { wantExpected(t, c, "A", 4, 0, 4) },
		},
		{
			name:    "a preorder hold expires at its deadline like any hold",
			given:   append(preorderable(0, 4), reserve("c1", line("A", 4))),
			when:    at(15*time.Minute, tick{}),
			wantDue: []Event{ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 4})},
			check: func(t *testing.T, c *cluster) {
				wantRes(t, c, "c1", StatusExpired)
				wantExpected(t, c, "A", 4, 0, 4)
			},
		},
		{
			name:  "turning preorders off refuses new preorders and keeps those held",
			given: append(preorderable(0, 4), reserve("c1", line("A", 2)), ConfigureSKU{SKU: "A"}),
			when:  reserve("c2", line("A", 1)),
			code:  CodeInsufficientStock,
		},
		{
			name:  "a sales cap counts preorder holds",
			given: []Command{ConfigureSKU{SKU: "A", Preorders: true, SalesCap: 3}, expect("po-1", "A", "w1", 10), reserve("c1", line("A", 3))},
			when:  reserve("c2", line("A", 1)),
			code:  CodeSalesCap,
		},
	})
}

func TestArrivalConvertsPreorderHolds(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "arrival books the units and turns preorder holds into holds on them",
			given: append(preorderable(2, 10), reserve("c1", line("A", 5))),
			when:  ArriveExpected{ID: "po-1"},
			want: []Event{
				ev("A", ExpectedReceiptArrived{Location: "w1", Quantity: 10, Lots: nil, Converted: []PreorderConversion{{"c1", 3}}}),
				ev("A", BackInStock{Available: 7}),
			},
			check: func(t *testing.T, c *cluster) {
				wantLine(t, c, "c1", "A", StatusHeld, 5, []Allocation{{"w1", 5}}, 0)
				wantLoc(t, c, "A", "w1", 12, 5, 7, 0, 0)
				wantExpected(t, c, "A", 0, 0, 0)
				v := c.expectedReceipt(t, "po-1")
				if v.Status != ExpectedStatusArrived || v.Arrived != 10 || v.ClosedAt == nil || v.Promised != 0 {
					t.Fatalf("view = %+v", v)
				}
			},
		},
		{
			name:   "arrival again is a replay",
			given:  append(preorderable(0, 10), ArriveExpected{ID: "po-1"}),
			when:   ArriveExpected{ID: "po-1"},
			replay: true,
			check:  func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 10, 0, 10, 0, 0) },
		},
		{
			name:   "arrival naming the expected quantity repeats one that left it out",
			given:  append(preorderable(0, 10), ArriveExpected{ID: "po-1"}),
			when:   ArriveExpected{ID: "po-1", Quantity: 10},
			replay: true,
		},
		{
			name:  "arrival again with another quantity is an idempotency mismatch",
			given: append(preorderable(0, 10), ArriveExpected{ID: "po-1"}),
			when:  ArriveExpected{ID: "po-1", Quantity: 9},
			code:  CodeIdempotencyMismatch,
		},
		{
			name:  "arrival as a dated lot books the lot",
			given: preorderable(0, 10),
			when:  ArriveExpected{ID: "po-1", Lot: "L1", BestBefore: "2027-06-01"},
			want: []Event{
				ev("A", ExpectedReceiptArrived{Location: "w1", Quantity: 10, Lot: "L1", BestBefore: "2027-06-01", Converted: []PreorderConversion{}}),
				ev("A", BackInStock{Available: 10}),
			},
			check: func(t *testing.T, c *cluster) {
				wantLots(t, c, "A", "w1", LotView{Lot: "L1", Quantity: 10, BestBefore: "2027-06-01"})
			},
		},
		{
			name:  "a converted hold commits like any hold",
			given: append(preorderable(0, 10), reserve("c1", line("A", 4)), ArriveExpected{ID: "po-1"}),
			when:  CommitReservation{ID: "c1"},
			want: []Event{ev("A", ReservationCommitted{
				Reservation: "c1", Quantity: 4, Allocations: []Allocation{{"w1", 4}}, Lots: []LotQty{lq("w1", "", "", 4)},
			})},
			check: func(t *testing.T, c *cluster) {
				wantLine(t, c, "c1", "A", StatusCommitted, 4, []Allocation{{"w1", 4}}, 0)
				wantLoc(t, c, "A", "w1", 6, 0, 6, 0, 0)
			},
		},
		{
			name:  "an arrival of a receipt that was cancelled is a conflict",
			given: append(preorderable(0, 10), CancelExpected{ID: "po-1"}),
			when:  ArriveExpected{ID: "po-1"},
			code:  CodeExpectedReceiptClosed,
		},
	})
}

func TestPreordersCommittedBeforeArrival(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "a commit before arrival sells the preorder units and takes them out of the receipt",
			given: append(preorderable(2, 10), reserve("c1", line("A", 5))),
			when:  CommitReservation{ID: "c1"},
			want: []Event{ev("A", ReservationCommitted{
				Reservation: "c1", Quantity: 5, Allocations: []Allocation{{"w1", 2}}, Lots: []LotQty{lq("w1", "", "", 2)},
				Preorders: []PreorderHold{{ExpectedReceipt: "po-1", Location: "w1", Quantity: 3}},
			})},
			check: func(t *testing.T, c *cluster) {
				wantLine(t, c, "c1", "A", StatusCommitted, 5, []Allocation{{"w1", 2}}, 3)
				wantLoc(t, c, "A", "w1", 0, 0, 0, 0, 0)
				// 7 still come in, all of them free to preorder.
				wantExpected(t, c, "A", 7, 0, 7)
				if v := c.expectedReceipt(t, "po-1"); v.Committed != 3 || v.Preorderable != 7 {
					t.Fatalf("view = %+v", v)
				}
			},
		},
		{
			name:  "on arrival on_hand gains only what was not sold before",
			given: append(preorderable(2, 10), reserve("c1", line("A", 5)), CommitReservation{ID: "c1"}),
			when:  ArriveExpected{ID: "po-1"},
			want: []Event{
				ev("A", ExpectedReceiptArrived{Location: "w1", Quantity: 10, Committed: 3, Lots: []LotQty{lq("w1", "", "", 3)}, Converted: []PreorderConversion{}}),
				ev("A", BackInStock{Available: 7}),
			},
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 7, 0, 7, 0, 0) },
		},
		{
			name:  "a partial commit before arrival takes on-hand units first and releases the preorder rest",
			given: append(preorderable(2, 10), reserve("c1", line("A", 5))),
			when:  CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "A", Quantity: 3}}},
			want: []Event{ev("A", ReservationCommitted{
				Reservation: "c1", Quantity: 3, Released: 2, Allocations: []Allocation{{"w1", 2}}, Lots: []LotQty{lq("w1", "", "", 2)},
				Preorders: []PreorderHold{{ExpectedReceipt: "po-1", Location: "w1", Quantity: 1}},
			})},
			check: func(t *testing.T, c *cluster) {
				wantLine(t, c, "c1", "A", StatusCommitted, 3, []Allocation{{"w1", 2}}, 1)
				wantExpected(t, c, "A", 9, 0, 9)
			},
		},
	})
}

func TestShortArrivalAndCancelSurfaceAShortage(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "a short arrival converts every hold and shows the missing units as a shortage",
			given: append(preorderable(0, 10), reserve("c1", line("A", 6)), reserve("c2", line("A", 4))),
			when:  ArriveExpected{ID: "po-1", Quantity: 7},
			want: []Event{
				ev("A", ExpectedReceiptArrived{Location: "w1", Quantity: 7, Converted: []PreorderConversion{{"c1", 6}, {"c2", 4}}}),
				ev("A", ShortageDetected{Location: "w1", Shortage: 3}),
			},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 7, 10, -3, 0, 3)
				wantLine(t, c, "c2", "A", StatusHeld, 4, []Allocation{{"w1", 4}}, 0)
			},
		},
		{
			name:  "a short arrival below what was sold before leaves a backorder",
			given: append(preorderable(0, 10), reserve("c1", line("A", 6)), CommitReservation{ID: "c1"}),
			when:  ArriveExpected{ID: "po-1", Quantity: 4},
			want: []Event{
				ev("A", ExpectedReceiptArrived{Location: "w1", Quantity: 4, Committed: 6, Lots: []LotQty{lq("w1", "", "", 4)}, Converted: []PreorderConversion{}}),
				ev("A", ShortageDetected{Location: "w1", Shortage: 2}),
			},
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", -2, 0, -2, 0, 2) },
		},
		{
			name:  "a cancel turns preorder holds into a shortage, never hiding them",
			given: append(preorderable(1, 10), reserve("c1", line("A", 3))),
			when:  CancelExpected{ID: "po-1"},
			want: []Event{
				ev("A", ExpectedReceiptCancelled{Location: "w1", Converted: []PreorderConversion{{"c1", 2}}}),
				ev("A", ShortageDetected{Location: "w1", Shortage: 2}),
			},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 1, 3, -2, 0, 2)
				wantLine(t, c, "c1", "A", StatusHeld, 3, []Allocation{{"w1", 3}}, 0)
				wantExpected(t, c, "A", 0, 0, 0)
				if v := c.expectedReceipt(t, "po-1"); v.Status != ExpectedStatusCancelled || v.ClosedAt == nil {
					t.Fatalf("view = %+v", v)
				}
			},
		},
		{
			name:  "a cancel with nothing promised just closes the receipt",
			given: preorderable(0, 10),
			when:  CancelExpected{ID: "po-1"},
			want:  []Event{ev("A", ExpectedReceiptCancelled{Location: "w1", Converted: []PreorderConversion{}})},
			check: func(t *testing.T, c *cluster) { wantExpected(t, c, "A", 0, 0, 0) },
		},
		{
			name:   "a cancel again is a replay",
			given:  append(preorderable(0, 10), CancelExpected{ID: "po-1"}),
			when:   CancelExpected{ID: "po-1"},
			replay: true,
		},
		{
			name:  "a cancel after arrival is a conflict",
			given: append(preorderable(0, 10), ArriveExpected{ID: "po-1"}),
			when:  CancelExpected{ID: "po-1"},
			code:  CodeExpectedReceiptClosed,
		},
	})
}

// skuElsewhere returns a SKU whose partition, of n, is not A's.
func skuElsewhere(n int) string {
	for i := 0; ; i++ {
		s := "B" + strconv.Itoa(i)
		if PartitionOf(s, n) != PartitionOf("A", n) {
			return s
		}
	}
}

func TestPreordersInCartsSpanningPartitions(t *testing.T) {
	b := skuElsewhere(4)
	runSpecs(t, []spec{
		{
			name:       "a cart of a normal SKU here and a preorder there holds both",
			partitions: 4,
			given:      []Command{recv("r1", "A", "w1", 5), ConfigureSKU{SKU: b, Preorders: true}, expect("po-1", b, "w1", 3)},
			when:       reserve("c1", line("A", 2), line(b, 3)),
			want:       cartEvents(b, 3),
			check: func(t *testing.T, c *cluster) {
				wantLine(t, c, "c1", "A", StatusHeld, 2, []Allocation{{"w1", 2}}, 0)
				wantLine(t, c, "c1", b, StatusHeld, 3, nil, 3)
				wantExpected(t, c, b, 3, 3, 0)
			},
		},
		{
			name:       "a preorder short in one partition holds nothing in the other",
			partitions: 4,
			given:      []Command{recv("r1", "A", "w1", 5), ConfigureSKU{SKU: b, Preorders: true}, expect("po-1", b, "w1", 3)},
			when:       reserve("c1", line("A", 2), line(b, 4)),
			want:       cartEvents(b, 4),
			check: func(t *testing.T, c *cluster) {
				if r, ok := c.lastResolution("c1"); !ok || ErrorCode(r.Err) != CodeInsufficientStock {
					t.Fatalf("resolution = %+v, %v", r, ok)
				}
				wantNoRes(t, c, "c1")
				wantLoc(t, c, "A", "w1", 5, 0, 5, 0, 0)
				wantExpected(t, c, b, 3, 0, 3)
			},
		},
		{
			name:       "a preorder line in another partition commits before arrival and arrives after",
			partitions: 4,
			given: []Command{
				recv("r1", "A", "w1", 5), ConfigureSKU{SKU: b, Preorders: true}, expect("po-1", b, "w1", 3),
				reserve("c1", line("A", 2), line(b, 3)), CommitReservation{ID: "c1"},
			},
			when: ArriveExpected{ID: "po-1"},
			want: []Event{ev(b, ExpectedReceiptArrived{
				Location: "w1", Quantity: 3, Committed: 3, Lots: []LotQty{lq("w1", "", "", 3)}, Converted: []PreorderConversion{},
			})},
			check: func(t *testing.T, c *cluster) {
				wantLine(t, c, "c1", b, StatusCommitted, 3, nil, 3)
				wantLoc(t, c, b, "w1", 0, 0, 0, 0, 0)
			},
		},
	})
}

// TestPreorderStateSurvivesSnapshotsAndRetirement checks what the specs'
// rebuilds do not reach: a settled expected receipt retires after the
// retention window, and its id is still answered from the retired record.
func TestExpectedReceiptsRetireAndAreStillAnswered(t *testing.T) {
	c := newCluster(t, 1, t0)
	c.configureNamed([]Command{expect("po-1", "A", "w1", 5)}, nil)
	for _, cmd := range []Command{expect("po-1", "A", "w1", 5), ArriveExpected{ID: "po-1"}} {
		if _, _, err := c.do(cmd); err != nil {
			t.Fatal(err)
		}
		c.quiesce()
	}
	c.now = c.now.Add(c.limits.Retain + time.Second)
	c.tickAll()
	c.quiesce()
	if _, ok := c.states[0].ExpectedReceiptView("po-1"); ok {
		t.Fatalf("an arrived expected receipt is still in memory after the retention window")
	}
	rec, ok := c.retiredRecord(0, Key{KindExpectedReceipt, "po-1"}, true)
	if !ok {
		t.Fatalf("no retired record of po-1")
	}
	s, err := RestoreRetired(rec, 1, c.limits)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Decide(ArriveExpected{ID: "po-1"}, c.now)
	if err != nil || !d.Replay {
		t.Fatalf("arrival again after retirement: %+v, %v", d, err)
	}
	if v, err := s.ExpectedArrivalResult(ArriveExpected{ID: "po-1"}); err != nil || v.Status != ExpectedStatusArrived || v.Arrived != 5 {
		t.Fatalf("answer after retirement = %+v, %v", v, err)
	}
}

// samePreorderState compares what preorders add to a State.
func samePreorderState(a, b *State) string {
	if len(a.expected) != len(b.expected) {
		return fmt.Sprintf("%d expected receipts vs %d", len(a.expected), len(b.expected))
	}
	for id, x := range a.expected {
		y := b.expected[id]
		if y == nil || !reflect.DeepEqual(normExpected(x), normExpected(y)) {
			return fmt.Sprintf("expected receipt %s differs:\n%+v\n%+v", id, x, y)
		}
	}
	for id, x := range a.skus {
		y := b.skus[id]
		if y == nil || x.preorders != y.preorders || len(x.expecting) != len(y.expecting) {
			return "sku " + id + " preorders differ"
		}
		for i := range x.expecting {
			if x.expecting[i].id != y.expecting[i].id {
				return "sku " + id + " expected receipts differ in order"
			}
		}
	}
	for id, x := range a.reservations {
		y := b.reservations[id]
		if y == nil || len(x.lines) != len(y.lines) {
			continue // sameState reports it
		}
		for i := range x.lines {
			if !slices.Equal(x.lines[i].preorders, y.lines[i].preorders) {
				return "reservation " + id + " preorder holds differ"
			}
		}
	}
	return ""
}

func normExpected(e *expectedReceipt) expectedReceipt {
	n := *e
	if len(n.holds) == 0 {
		n.holds = nil
	}
	return n
}

// cartEvents are the events at the home of a cart of 2 A here and q of sku
// in another partition.
func cartEvents(sku string, q int64) []Event {
	return []Event{
		ev("", SagaStarted{
			Reservation: "c1", CreatedAt: t0, ExpiresAt: t0.Add(15 * time.Minute),
			Lines: []ReserveLine{line("A", 2), line(sku, q)}, Participants: []int{PartitionOf(sku, 4)},
		}),
		ev("A", StockReserved{Reservation: "c1", Quantity: 2, Allocations: []Allocation{{"w1", 2}}, ExpiresAt: t0.Add(15 * time.Minute)}),
	}
}

// TestExpectedReceiptClosedIsFinal: arriving a cancelled receipt or
// cancelling an arrived one is a verdict on the command, never retried.
func TestExpectedReceiptClosedIsFinal(t *testing.T) {
	if CodeExpectedReceiptClosed.Retryable() {
		t.Fatal("expected_receipt_closed is retryable")
	}
}

// TestMessageFormatV2StillDecodesWithoutPreorders: a sagaAck written before
// preorders decodes with held lines that hold none.
func TestMessageFormatV2StillDecodesWithoutPreorders(t *testing.T) {
	m := Message{To: 1, Command: sagaAck{
		reservation: "c1", step: 1, from: 2, attempt: 7,
		held: []ReservationLine{{SKU: "A", Quantity: 2, Held: 2, Allocations: []Allocation{{"w1", 2}}}},
	}}
	v4, err := EncodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	// Format 2 had no preorder list after the allocations: the byte
	// before the (empty) shortfalls is that list's empty count.
	v2 := append([]byte{messageFormatV2}, v4[1:len(v4)-2]...)
	v2 = append(v2, v4[len(v4)-1])
	got, err := DecodeMessage(v2)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("format 2: %#v, %v", got, err)
	}
}

// TestRetiredReservationKeepsItsPreorders: a held reservation's preorder
// holds survive its retired record, read back by the latest retired format, and a
// format 3 record (before preorders) still decodes.
func TestRetiredReservationKeepsItsPreorders(t *testing.T) {
	s := NewState(0, 1, DefaultLimits)
	r := &reservation{id: "c1", status: StatusCommitted, home: 0, lines: []*resLine{{
		sku: "A", quantity: 3, committed: 3, allocations: []Allocation{{"w1", 1}}, committedAt: []Allocation{{"w1", 1}},
		preorders: []PreorderHold{{ExpectedReceipt: "po-1", Location: "w1", Quantity: 2}},
	}}}
	s.reservations["c1"] = r
	data, ok := s.encodeRetired(retireTimer{kind: retireReservation, id: "c1"})
	if !ok || data[0] != retiredFormatV7 {
		t.Fatalf("encoded %v, %v", data, ok)
	}
	back, err := RestoreRetired(RetiredRecord{Key: reservationKey("c1"), Partition: 0, Data: data}, 1, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.reservations["c1"].lines[0].preorders; !reflect.DeepEqual(got, r.lines[0].preorders) {
		t.Fatalf("preorders after retirement = %+v", got)
	}
	if v, _ := back.ReservationView("c1"); v.Lines[0].Preorder != 2 {
		t.Fatalf("view after retirement = %+v", v)
	}
	// Format 3 ended where format 5 writes the lines' preorder lists,
	// which format 7's change answer (two empty lists) and format 6's
	// bundle lines (one) follow.
	v3 := append([]byte{retiredFormatV3}, data[1:len(data)-3-1-len("po-1")-len("w1")-3]...)
	if _, err := RestoreRetired(RetiredRecord{Key: reservationKey("c1"), Partition: 0, Data: v3}, 1, DefaultLimits); err != nil {
		t.Fatalf("format 3: %v", err)
	}
}
