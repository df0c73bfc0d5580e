package stockd

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Best-before dates used by the specs, all after t0. A lot expires when its
// day ends, UTC.
const (
	bb15 = "2027-03-15"
	bb20 = "2027-03-20"
	bb01 = "2027-04-01"
)

func TestReceive(t *testing.T) {
	runSpecs(t, []spec{
		{
			name: "lot and best_before",
			when: recvLot("r1", "A", "w1", 10, "L1", bb15),
			want: []Event{ev("A", StockReceived{Location: "w1", Quantity: 10, Lot: "L1", BestBefore: bb15}), ev("A", BackInStock{Available: 10})},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 10, 0, 10, 0, 0)
				wantLots(t, c, "A", "w1", LotView{Lot: "L1", Quantity: 10, BestBefore: bb15})
				res, err := result(c.states[0], recvLot("r1", "A", "w1", 10, "L1", bb15))
				if err != nil || res.(Receipt).Position != 2 || !res.(Receipt).Time.Equal(t0) {
					t.Fatalf("result = %+v, %v", res, err)
				}
			},
		},
		{
			name: "undated stock without a lot",
			when: recv("r1", "A", "w1", 7),
			want: []Event{ev("A", StockReceived{Location: "w1", Quantity: 7}), ev("A", BackInStock{Available: 7})},
			check: func(t *testing.T, c *cluster) {
				wantLots(t, c, "A", "w1", LotView{Quantity: 7})
			},
		},
		{
			name: "lot without best_before",
			when: recvLot("r1", "A", "w1", 4, "L9", ""),
			want: []Event{ev("A", StockReceived{Location: "w1", Quantity: 4, Lot: "L9"}), ev("A", BackInStock{Available: 4})},
			check: func(t *testing.T, c *cluster) {
				wantLots(t, c, "A", "w1", LotView{Lot: "L9", Quantity: 4})
			},
		},
		{
			name:  "same lot adds up, lots in FEFO order",
			given: []Command{recvLot("r1", "A", "w1", 5, "L2", bb20), recv("r2", "A", "w1", 1), recvLot("r3", "A", "w1", 2, "L1", bb15)},
			when:  recvLot("r4", "A", "w1", 3, "L2", bb20),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 3, Lot: "L2", BestBefore: bb20})},
			check: func(t *testing.T, c *cluster) {
				wantLots(t, c, "A", "w1", LotView{Lot: "L1", Quantity: 2, BestBefore: bb15},
					LotView{Lot: "L2", Quantity: 8, BestBefore: bb20}, LotView{Quantity: 1})
			},
		},
		{
			name:   "replay adds nothing",
			given:  []Command{recv("r1", "A", "w1", 10)},
			when:   at(time.Hour, recv("r1", "A", "w1", 10)),
			replay: true,
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 10, 0, 10, 0, 0)
				res, _ := result(c.states[0], recv("r1", "A", "w1", 10))
				if !res.(Receipt).Time.Equal(t0) {
					t.Fatalf("replay answered %+v, want the first receipt", res)
				}
			},
		},
		{
			name:  "id reused with another quantity",
			given: []Command{recv("r1", "A", "w1", 10)},
			when:  recv("r1", "A", "w1", 11),
			code:  CodeIdempotencyMismatch,
		},
		{
			name:  "id reused with another lot",
			given: []Command{recv("r1", "A", "w1", 10)},
			when:  recvLot("r1", "A", "w1", 10, "L1", ""),
			code:  CodeIdempotencyMismatch,
		},
		{
			name:  "receipt and adjustment may share an id",
			given: []Command{recv("x1", "A", "w1", 10)},
			when:  adjust("x1", "A", "w1", -1, ReasonDamaged),
			want:  []Event{ev("A", StockAdjusted{Location: "w1", Delta: -1, Reason: ReasonDamaged, Lots: []LotQty{lq("w1", "", "", 1)}})},
		},
		{name: "quantity zero", when: recv("r1", "A", "w1", 0), code: CodeInvalid},
		{name: "quantity negative", when: recv("r1", "A", "w1", -3), code: CodeInvalid},
		{name: "quantity too large", when: recv("r1", "A", "w1", DefaultLimits.MaxQuantity+1), code: CodeInvalid},
		{name: "no id", when: recv("", "A", "w1", 1), code: CodeInvalid},
		{name: "no sku", when: recv("r1", "", "w1", 1), code: CodeInvalid},
		{name: "no location", when: recv("r1", "A", "", 1), code: CodeInvalid},
		{
			name:    "unknown location",
			given:   []Command{recv("r0", "A", "w1", 1)},
			when:    recv("r1", "A", "w9", 10),
			unknown: []string{"w9"},
			code:    CodeUnknownLocation,
			check: func(t *testing.T, c *cluster) {
				if v := c.sku("A"); v.OnHand != 1 || len(v.Locations) != 1 {
					t.Fatalf("A = %+v, want only w1", v)
				}
			},
		},
		{
			name:    "a location once configured",
			given:   []Command{warehouse("w9", 1, "")},
			when:    recv("r1", "A", "w9", 10),
			want:    []Event{ev("A", StockReceived{Location: "w9", Quantity: 10}), ev("A", BackInStock{Available: 10})},
			unknown: []string{"w9"},
		},
		{
			name:    "a past best_before is refused before an unknown location",
			when:    recvLot("r1", "A", "w9", 1, "L", "2027-03-01"),
			unknown: []string{"w9"},
			code:    CodeInvalid,
		},
		{
			name: "names with spaces between words",
			when: recvLot("r 1", "Gouda 500g", "Halle 2", 3, "LOT 7", ""),
			want: []Event{ev("Gouda 500g", StockReceived{Location: "Halle 2", Quantity: 3, Lot: "LOT 7"}), ev("Gouda 500g", BackInStock{Available: 3})},
		},
		{name: "location ending with a space", when: recv("r1", "A", "w1 ", 1), code: CodeInvalid},
		{name: "sku with a zero-width space", when: recv("r1", "A\u200b", "w1", 1), code: CodeInvalid},
		{name: "lot with a slash", when: recvLot("r1", "A", "w1", 1, "a/b", ""), code: CodeInvalid},
		{name: "id too long", when: recv(strings.Repeat("x", MaxIDLength+1), "A", "w1", 1), code: CodeInvalid},
		{name: "id not UTF-8", when: recv("r\xff", "A", "w1", 1), code: CodeInvalid},
		{name: "date without zero padding", when: recvLot("r1", "A", "w1", 1, "L", "2027-3-15"), code: CodeInvalid},
		{name: "date in another format", when: recvLot("r1", "A", "w1", 1, "L", "15/03/2027"), code: CodeInvalid},
		{name: "date that does not exist", when: recvLot("r1", "A", "w1", 1, "L", "2027-02-30"), code: CodeInvalid},
	})
}

func TestAdjust(t *testing.T) {
	var specs []spec
	for _, r := range []AdjustReason{ReasonCount, ReasonDamaged, ReasonLost, ReasonFound, ReasonReturned, ReasonOther} {
		specs = append(specs, spec{
			name:  "plus " + string(r),
			given: []Command{recv("r1", "A", "w1", 10)},
			when:  adjust("a1", "A", "w1", 2, r),
			want:  []Event{ev("A", StockAdjusted{Location: "w1", Delta: 2, Reason: r, Lots: []LotQty{lq("w1", "", "", 2)}})},
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 12, 0, 12, 0, 0) },
		}, spec{
			name:  "minus " + string(r),
			given: []Command{recv("r1", "A", "w1", 10)},
			when:  adjust("a1", "A", "w1", -3, r),
			want:  []Event{ev("A", StockAdjusted{Location: "w1", Delta: -3, Reason: r, Lots: []LotQty{lq("w1", "", "", 3)}})},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 7, 0, 7, 0, 0)
				res, _ := result(c.states[0], adjust("a1", "A", "w1", -3, r))
				// Position 2 is the receipt, 3 its BackInStock.
				if a := res.(Adjustment); a.Delta != -3 || a.Reason != r || a.Position != 4 {
					t.Fatalf("result = %+v", a)
				}
			},
		})
	}
	lots := []Command{recvLot("r1", "A", "w1", 5, "L2", bb20), recvLot("r2", "A", "w1", 3, "L1", bb15), recv("r3", "A", "w1", 4)}
	specs = append(specs, []spec{
		{
			name:  "loss first-expiry-first-out",
			given: lots,
			when:  adjust("a1", "A", "w1", -5, ReasonLost),
			want:  []Event{ev("A", StockAdjusted{Location: "w1", Delta: -5, Reason: ReasonLost, Lots: []LotQty{lq("w1", "L1", bb15, 3), lq("w1", "L2", bb20, 2)}})},
			check: func(t *testing.T, c *cluster) {
				wantLots(t, c, "A", "w1", LotView{Lot: "L2", Quantity: 3, BestBefore: bb20}, LotView{Quantity: 4})
			},
		},
		{
			name:  "loss beyond on_hand",
			given: lots,
			when:  adjust("a1", "A", "w1", -13, ReasonLost),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 13, Available: 12}},
		},
		{
			name:  "loss at a location without stock",
			given: lots,
			when:  adjust("a1", "A", "w2", -1, ReasonLost),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 1, Available: 0}},
		},
		{
			name:  "loss from a named lot",
			given: lots,
			when:  AdjustStock{ID: "a1", SKU: "A", Location: "w1", Delta: -4, Reason: ReasonDamaged, Lot: "L2"},
			want:  []Event{ev("A", StockAdjusted{Location: "w1", Delta: -4, Reason: ReasonDamaged, Lots: []LotQty{lq("w1", "L2", bb20, 4)}})},
			check: func(t *testing.T, c *cluster) {
				wantLots(t, c, "A", "w1", LotView{Lot: "L1", Quantity: 3, BestBefore: bb15}, LotView{Lot: "L2", Quantity: 1, BestBefore: bb20}, LotView{Quantity: 4})
			},
		},
		{
			name:  "loss beyond a named lot",
			given: lots,
			when:  AdjustStock{ID: "a1", SKU: "A", Location: "w1", Delta: -4, Reason: ReasonDamaged, Lot: "L1"},
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 4, Available: 3}},
		},
		{
			name:  "loss from an unknown lot",
			given: lots,
			when:  AdjustStock{ID: "a1", SKU: "A", Location: "w1", Delta: -1, Reason: ReasonDamaged, Lot: "nope"},
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 1, Available: 0}},
		},
		{
			name:  "found units go to a named lot and keep its date",
			given: lots,
			when:  AdjustStock{ID: "a1", SKU: "A", Location: "w1", Delta: 2, Reason: ReasonFound, Lot: "L1"},
			want:  []Event{ev("A", StockAdjusted{Location: "w1", Delta: 2, Reason: ReasonFound, Lots: []LotQty{lq("w1", "L1", bb15, 2)}})},
			check: func(t *testing.T, c *cluster) {
				wantLots(t, c, "A", "w1", LotView{Lot: "L1", Quantity: 5, BestBefore: bb15}, LotView{Lot: "L2", Quantity: 5, BestBefore: bb20}, LotView{Quantity: 4})
			},
		},
		{
			name:  "found units of a new lot are undated",
			given: lots,
			when:  AdjustStock{ID: "a1", SKU: "A", Location: "w1", Delta: 2, Reason: ReasonReturned, Lot: "N"},
			want:  []Event{ev("A", StockAdjusted{Location: "w1", Delta: 2, Reason: ReasonReturned, Lots: []LotQty{lq("w1", "N", "", 2)}})},
			check: func(t *testing.T, c *cluster) {
				wantLots(t, c, "A", "w1", LotView{Lot: "L1", Quantity: 3, BestBefore: bb15}, LotView{Lot: "L2", Quantity: 5, BestBefore: bb20}, LotView{Quantity: 4}, LotView{Lot: "N", Quantity: 2})
			},
		},
		{
			name:  "loss after holds is a shortage",
			given: []Command{recv("r1", "A", "w1", 10), reserve("c1", lineAt("A", 8, "w1"))},
			when:  adjust("a1", "A", "w1", -5, ReasonDamaged),
			want: []Event{
				ev("A", StockAdjusted{Location: "w1", Delta: -5, Reason: ReasonDamaged, Lots: []LotQty{lq("w1", "", "", 5)}}),
				ev("A", ShortageDetected{Location: "w1", Shortage: 3}),
				ev("A", OutOfStock{}),
			},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 5, 8, -3, 0, 3)
			},
		},
		{
			name:  "loss of unheld units is no shortage",
			given: []Command{recv("r1", "A", "w1", 10), reserve("c1", lineAt("A", 5, "w1"))},
			when:  adjust("a1", "A", "w1", -5, ReasonDamaged),
			want:  []Event{ev("A", StockAdjusted{Location: "w1", Delta: -5, Reason: ReasonDamaged, Lots: []LotQty{lq("w1", "", "", 5)}}), ev("A", OutOfStock{})},
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 5, 5, 0, 0, 0) },
		},
		{
			name:   "replay",
			given:  []Command{recv("r1", "A", "w1", 10), adjust("a1", "A", "w1", -1, ReasonLost)},
			when:   adjust("a1", "A", "w1", -1, ReasonLost),
			replay: true,
			check:  func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 9, 0, 9, 0, 0) },
		},
		{
			name:  "id reused with another reason",
			given: []Command{recv("r1", "A", "w1", 10), adjust("a1", "A", "w1", -1, ReasonLost)},
			when:  adjust("a1", "A", "w1", -1, ReasonDamaged),
			code:  CodeIdempotencyMismatch,
		},
		{name: "delta zero", when: adjust("a1", "A", "w1", 0, ReasonLost), code: CodeInvalid},
		{name: "delta too large", when: adjust("a1", "A", "w1", -DefaultLimits.MaxQuantity-1, ReasonLost), code: CodeInvalid},
		{name: "unknown reason", when: adjust("a1", "A", "w1", 1, "stolen"), code: CodeInvalid},
		{name: "no reason", when: adjust("a1", "A", "w1", 1, ""), code: CodeInvalid},
		{name: "bad lot", when: AdjustStock{ID: "a1", SKU: "A", Location: "w1", Delta: 1, Reason: ReasonFound, Lot: " a"}, code: CodeInvalid},
		{name: "unknown location, adding", when: adjust("a1", "A", "w9", 2, ReasonFound), unknown: []string{"w9"}, code: CodeUnknownLocation},
		{
			name:    "unknown location, taking",
			given:   []Command{recv("r1", "A", "w1", 10)},
			when:    adjust("a1", "A", "w9", -2, ReasonLost),
			unknown: []string{"w9"},
			code:    CodeUnknownLocation,
		},
	}...)
	runSpecs(t, specs)
}

func TestCount(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "up",
			given: []Command{recv("r1", "A", "w1", 10)},
			when:  CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: 15},
			want:  []Event{ev("A", StockCounted{Location: "w1", OnHand: 15, Delta: 5, Lots: []LotQty{lq("w1", "", "", 5)}})},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 15, 0, 15, 0, 0)
				res, _ := result(c.states[0], CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: 15})
				if n := res.(Count); n.Delta != 5 || n.OnHand != 15 {
					t.Fatalf("result = %+v", n)
				}
			},
		},
		{
			name:  "down first-expiry-first-out",
			given: []Command{recv("r1", "A", "w1", 7), recvLot("r2", "A", "w1", 3, "L1", bb15)},
			when:  CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: 6},
			want:  []Event{ev("A", StockCounted{Location: "w1", OnHand: 6, Delta: -4, Lots: []LotQty{lq("w1", "L1", bb15, 3), lq("w1", "", "", 1)}})},
			check: func(t *testing.T, c *cluster) {
				wantLots(t, c, "A", "w1", LotView{Quantity: 6})
				res, _ := result(c.states[0], CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: 6})
				if n := res.(Count); n.Delta != -4 {
					t.Fatalf("result = %+v", n)
				}
			},
		},
		{
			name:  "no change is recorded",
			given: []Command{recv("r1", "A", "w1", 10)},
			when:  CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: 10},
			want:  []Event{ev("A", StockCounted{Location: "w1", OnHand: 10, Delta: 0})},
		},
		{
			name:  "to zero",
			given: []Command{recv("r1", "A", "w1", 10)},
			when:  CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: 0},
			want:  []Event{ev("A", StockCounted{Location: "w1", OnHand: 0, Delta: -10, Lots: []LotQty{lq("w1", "", "", 10)}}), ev("A", OutOfStock{})},
			check: func(t *testing.T, c *cluster) { wantLots(t, c, "A", "w1") },
		},
		{
			name: "at a new location",
			when: CountStock{ID: "c1", SKU: "A", Location: "w2", OnHand: 4},
			want: []Event{ev("A", StockCounted{Location: "w2", OnHand: 4, Delta: 4, Lots: []LotQty{lq("w2", "", "", 4)}}), ev("A", BackInStock{Available: 4})},
		},
		{
			name:  "below the holds is a shortage",
			given: []Command{recv("r1", "A", "w1", 10), reserve("c1", lineAt("A", 8, "w1"))},
			when:  CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: 5},
			want: []Event{
				ev("A", StockCounted{Location: "w1", OnHand: 5, Delta: -5, Lots: []LotQty{lq("w1", "", "", 5)}}),
				ev("A", ShortageDetected{Location: "w1", Shortage: 3}),
				ev("A", OutOfStock{}),
			},
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 5, 8, -3, 0, 3) },
		},
		{
			name:   "replay",
			given:  []Command{recv("r1", "A", "w1", 10), CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: 5}, recv("r2", "A", "w1", 1)},
			when:   CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: 5},
			replay: true,
			check:  func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 6, 0, 6, 0, 0) },
		},
		{
			name:  "id reused with another count",
			given: []Command{CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: 5}},
			when:  CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: 6},
			code:  CodeIdempotencyMismatch,
		},
		{name: "negative", when: CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: -1}, code: CodeInvalid},
		{name: "too large", when: CountStock{ID: "c1", SKU: "A", Location: "w1", OnHand: DefaultLimits.MaxQuantity + 1}, code: CodeInvalid},
		{name: "no location", when: CountStock{ID: "c1", SKU: "A", OnHand: 1}, code: CodeInvalid},
		{name: "unknown location", when: CountStock{ID: "c1", SKU: "A", Location: "w9", OnHand: 4}, unknown: []string{"w9"}, code: CodeUnknownLocation},
	})
}

func TestTransfer(t *testing.T) {
	held := []Command{recv("r1", "A", "w1", 10), ConfigureSKU{SKU: "A", SafetyStock: 2}, reserve("c1", lineAt("A", 4, "w1"))}
	lots := []Command{recvLot("r1", "A", "w1", 5, "L2", bb20), recvLot("r2", "A", "w1", 3, "L1", bb15), recv("r3", "A", "w1", 2)}
	sent := append(lots[:3:3], TransferStock{ID: "t1", SKU: "A", From: "w1", To: "s1", Quantity: 4})
	runSpecs(t, []spec{
		{
			name:  "held units and safety stock cannot leave",
			given: held,
			when:  TransferStock{ID: "t1", SKU: "A", From: "w1", To: "s1", Quantity: 5},
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 5, Available: 4}},
		},
		{
			name:  "available units leave",
			given: held,
			when:  TransferStock{ID: "t1", SKU: "A", From: "w1", To: "s1", Quantity: 4},
			want:  []Event{ev("A", StockTransferred{From: "w1", To: "s1", Quantity: 4, Lots: []LotQty{lq("w1", "", "", 4)}}), ev("A", OutOfStock{})},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 6, 4, 0, 0, 0)
				wantLoc(t, c, "A", "s1", 0, 0, 0, 4, 0)
				tv, ok := c.states[0].TransferView("t1")
				if !ok || tv.Status != TransferStatusInTransit || tv.ArrivedAt != nil {
					t.Fatalf("transfer = %+v", tv)
				}
			},
		},
		{
			name:  "lots leave first-expiry-first-out",
			given: lots,
			when:  TransferStock{ID: "t1", SKU: "A", From: "w1", To: "s1", Quantity: 4},
			want:  []Event{ev("A", StockTransferred{From: "w1", To: "s1", Quantity: 4, Lots: []LotQty{lq("w1", "L1", bb15, 3), lq("w1", "L2", bb20, 1)}})},
			check: func(t *testing.T, c *cluster) {
				wantLots(t, c, "A", "w1", LotView{Lot: "L2", Quantity: 4, BestBefore: bb20}, LotView{Quantity: 2})
			},
		},
		{
			name:  "arrival books the lots",
			given: sent,
			when:  at(time.Hour, ArriveTransfer{ID: "t1"}),
			want:  []Event{ev("A", TransferArrived{From: "w1", To: "s1", Quantity: 4, Lots: []LotQty{lq("s1", "L1", bb15, 3), lq("s1", "L2", bb20, 1)}})},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "s1", 4, 0, 4, 0, 0)
				wantLots(t, c, "A", "s1", LotView{Lot: "L1", Quantity: 3, BestBefore: bb15}, LotView{Lot: "L2", Quantity: 1, BestBefore: bb20})
				tv, _ := c.states[0].TransferView("t1")
				if tv.Status != TransferStatusArrived || tv.ArrivedAt == nil || !tv.ArrivedAt.Equal(t0.Add(time.Hour)) {
					t.Fatalf("transfer = %+v", tv)
				}
			},
		},
		{
			name:   "second arrival is a replay",
			given:  append(sent[:4:4], ArriveTransfer{ID: "t1"}),
			when:   ArriveTransfer{ID: "t1"},
			replay: true,
			check:  func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "s1", 4, 0, 4, 0, 0) },
		},
		{
			name:   "transfer replay",
			given:  sent,
			when:   TransferStock{ID: "t1", SKU: "A", From: "w1", To: "s1", Quantity: 4},
			replay: true,
			check:  func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 6, 0, 6, 0, 0) },
		},
		{
			name:  "id reused with another destination",
			given: sent,
			when:  TransferStock{ID: "t1", SKU: "A", From: "w1", To: "s2", Quantity: 4},
			code:  CodeIdempotencyMismatch,
		},
		{name: "unknown transfer", when: ArriveTransfer{ID: "t9"}, code: CodeNotFound},
		{name: "arrival without id", when: ArriveTransfer{}, code: CodeInvalid},
		{
			name:  "from a location without stock",
			given: lots,
			when:  TransferStock{ID: "t1", SKU: "A", From: "w9", To: "s1", Quantity: 1},
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 1, Available: 0}},
		},
		{
			name:  "from a short location",
			given: []Command{recv("r1", "A", "w1", 5), reserve("c1", lineAt("A", 5, "w1")), adjust("a1", "A", "w1", -2, ReasonLost)},
			when:  TransferStock{ID: "t1", SKU: "A", From: "w1", To: "s1", Quantity: 1},
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 1, Available: 0}},
		},
		{name: "same from and to", when: TransferStock{ID: "t1", SKU: "A", From: "w1", To: "w1", Quantity: 1}, code: CodeInvalid},
		{name: "quantity zero", when: TransferStock{ID: "t1", SKU: "A", From: "w1", To: "s1"}, code: CodeInvalid},
		{name: "no destination", when: TransferStock{ID: "t1", SKU: "A", From: "w1", Quantity: 1}, code: CodeInvalid},
		{
			name:    "unknown destination",
			given:   []Command{recv("r1", "A", "w1", 10)},
			when:    TransferStock{ID: "t1", SKU: "A", From: "w1", To: "w9", Quantity: 1},
			unknown: []string{"w9"},
			code:    CodeUnknownLocation,
			check:   func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 10, 0, 10, 0, 0) },
		},
		{
			name:    "unknown source",
			when:    TransferStock{ID: "t1", SKU: "A", From: "w9", To: "w1", Quantity: 1},
			unknown: []string{"w9"},
			code:    CodeUnknownLocation,
		},
	})
}

func TestConfigureSKU(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "safety stock is never sold",
			given: []Command{recv("r1", "A", "w1", 10), recv("r2", "A", "w2", 1)},
			when:  ConfigureSKU{SKU: "A", SafetyStock: 3, LowStockThreshold: 5},
			want:  []Event{ev("A", SKUConfigured{SafetyStock: 3, LowStockThreshold: 5})},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 10, 0, 7, 0, 0)
				// Safety stock alone never makes availability negative.
				wantLoc(t, c, "A", "w2", 1, 0, 0, 0, 0)
				v := c.sku("A")
				if v.SafetyStock != 3 || v.LowStockThreshold != 5 || v.Available != 7 {
					t.Fatalf("view = %+v", v)
				}
			},
		},
		{
			name:  "reservations respect safety stock",
			given: []Command{recv("r1", "A", "w1", 5), ConfigureSKU{SKU: "A", SafetyStock: 3}},
			when:  reserve("c1", line("A", 3)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 3, Available: 2}},
		},
		{
			name:  "with holds",
			given: []Command{recv("r1", "A", "w1", 10), reserve("c1", line("A", 6))},
			when:  ConfigureSKU{SKU: "A", SafetyStock: 3},
			want:  []Event{ev("A", SKUConfigured{SafetyStock: 3})},
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 10, 6, 1, 0, 0) },
		},
		{
			name: "before any stock",
			when: ConfigureSKU{SKU: "A", SafetyStock: 1},
			want: []Event{ev("A", SKUConfigured{SafetyStock: 1})},
		},
		{
			name:   "same configuration again",
			given:  []Command{ConfigureSKU{SKU: "A", SafetyStock: 3}},
			when:   ConfigureSKU{SKU: "A", SafetyStock: 3},
			replay: true,
		},
		{name: "negative safety stock", when: ConfigureSKU{SKU: "A", SafetyStock: -1}, code: CodeInvalid},
		{name: "negative threshold", when: ConfigureSKU{SKU: "A", LowStockThreshold: -1}, code: CodeInvalid},
		{name: "no sku", when: ConfigureSKU{SafetyStock: 1}, code: CodeInvalid},
	})
}

func TestConfigureLocation(t *testing.T) {
	stocked := []Command{
		warehouse("w1", 5, "eu"), warehouse("w2", 1, "eu"),
		recv("r1", "A", "w1", 10), recv("r2", "A", "w2", 10), recv("r3", "A", "x", 10),
	}
	runSpecs(t, []spec{
		{
			name: "configure",
			when: warehouse("w1", 2, "eu"),
			want: []Event{ev("", LocationConfigured{Location: Location{ID: "w1", Kind: KindWarehouse, Priority: 2, Region: "eu"}})},
			check: func(t *testing.T, c *cluster) {
				if l := c.states[0].Locations()["w1"]; l.Priority != 2 || l.Region != "eu" {
					t.Fatalf("locations = %+v", c.states[0].Locations())
				}
			},
		},
		{
			name:   "same configuration again",
			given:  []Command{warehouse("w1", 2, "eu")},
			when:   warehouse("w1", 2, "eu"),
			replay: true,
		},
		{
			name:  "change",
			given: []Command{warehouse("w1", 2, "eu")},
			when:  ConfigureLocation{ID: "w1", Kind: KindStore, Priority: 2, Region: "eu"},
			want:  []Event{ev("", LocationConfigured{Location: Location{ID: "w1", Kind: KindStore, Priority: 2, Region: "eu"}})},
		},
		{
			name:  "allocation by priority",
			given: stocked,
			when:  reserve("c1", line("A", 3)),
			want:  []Event{ev("A", StockReserved{Reservation: "c1", Quantity: 3, Allocations: []Allocation{{"w2", 3}}, ExpiresAt: t0.Add(15 * time.Minute)})},
		},
		{
			name:  "next priority when the first cannot hold the line",
			given: append(stocked[:5:5], reserve("c0", lineAt("A", 9, "w2"))),
			when:  reserve("c1", line("A", 3)),
			want:  []Event{ev("A", StockReserved{Reservation: "c1", Quantity: 3, Allocations: []Allocation{{"w1", 3}}, ExpiresAt: t0.Add(15 * time.Minute)})},
		},
		{
			name:  "unconfigured locations come last",
			given: append(stocked[:5:5], reserve("c0", lineAt("A", 9, "w2")), reserve("c2", lineAt("A", 9, "w1"))),
			when:  reserve("c1", line("A", 3)),
			want:  []Event{ev("A", StockReserved{Reservation: "c1", Quantity: 3, Allocations: []Allocation{{"x", 3}}, ExpiresAt: t0.Add(15 * time.Minute)})},
		},
		{
			name:  "ties broken by id",
			given: []Command{warehouse("w2", 1, ""), warehouse("w1", 1, ""), recv("r1", "A", "w2", 5), recv("r2", "A", "w1", 5)},
			when:  reserve("c1", line("A", 1)),
			want:  []Event{ev("A", StockReserved{Reservation: "c1", Quantity: 1, Allocations: []Allocation{{"w1", 1}}, ExpiresAt: t0.Add(15 * time.Minute)})},
		},
		{
			name:  "a configured location sorts before an unconfigured one with a smaller id",
			given: []Command{warehouse("z", 9, ""), recv("r1", "A", "a", 5), recv("r2", "A", "z", 5)},
			when:  reserve("c1", line("A", 1)),
			want:  []Event{ev("A", StockReserved{Reservation: "c1", Quantity: 1, Allocations: []Allocation{{"z", 1}}, ExpiresAt: t0.Add(15 * time.Minute)})},
		},
		{name: "unknown kind", when: ConfigureLocation{ID: "w1", Kind: "shed"}, code: CodeInvalid},
		{name: "negative priority", when: ConfigureLocation{ID: "w1", Kind: KindStore, Priority: -1}, code: CodeInvalid},
		{name: "no id", when: ConfigureLocation{Kind: KindStore}, code: CodeInvalid},
		{name: "bad region", when: ConfigureLocation{ID: "w1", Kind: KindThirdParty, Region: "eu\u00a0"}, code: CodeInvalid},
	})
}

// TestConfigureLocationOnlyInPartitionZero checks that location configuration
// is refused anywhere but in LocationPartition, and that other partitions
// allocate with the map they were given.
func TestConfigureLocationOnlyInPartitionZero(t *testing.T) {
	s := NewState(1, 2, DefaultLimits)
	if _, err := s.Decide(warehouse("w1", 1, ""), t0); ErrorCode(err) != CodeInternal {
		t.Fatalf("configure in partition 1: %v", err)
	}
	c := newCluster(t, 2, t0)
	a := skuIn("A", 1, 2)
	for _, cmd := range []Command{warehouse("w1", 5, ""), warehouse("w2", 1, ""), recv("r1", a, "w1", 5), recv("r2", a, "w2", 5)} {
		if _, _, err := c.do(cmd); err != nil {
			t.Fatal(err)
		}
	}
	_, d, err := c.do(reserve("c1", line(a, 1)))
	if err != nil || d.Events[0].Data.(StockReserved).Allocations[0].Location != "w2" {
		t.Fatalf("reserve in partition 1: %+v, %v", d.Events, err)
	}
}

func TestReserve(t *testing.T) {
	two := []Command{recv("r1", "A", "w1", 10), recv("r2", "A", "w2", 3)}
	prio := []Command{warehouse("w1", 2, "eu"), warehouse("w2", 1, "us"), recv("r1", "A", "w1", 5), recv("r2", "A", "w2", 5)}
	exp := t0.Add(15 * time.Minute)
	tooMany := make([]ReserveLine, DefaultLimits.MaxLines+1)
	for i := range tooMany {
		tooMany[i] = line("S"+strconv.Itoa(i), 1)
	}
	runSpecs(t, []spec{
		{
			name:  "named location",
			given: two,
			when:  reserve("c1", lineAt("A", 2, "w2")),
			want:  []Event{ev("A", StockReserved{Reservation: "c1", Quantity: 2, Allocations: []Allocation{{"w2", 2}}, ExpiresAt: exp})},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w2", 3, 2, 1, 0, 0)
				r := wantRes(t, c, "c1", StatusHeld)
				if !r.ExpiresAt.Equal(exp) || !r.CreatedAt.Equal(t0) || len(r.Lines) != 1 || r.Lines[0].Quantity != 2 || r.Lines[0].Held != 2 {
					t.Fatalf("reservation = %+v", r)
				}
				h := c.loc("A", "w2").Holds
				if len(h) != 1 || h[0] != (HoldView{Reservation: "c1", Quantity: 2, ExpiresAt: exp}) {
					t.Fatalf("holds = %+v", h)
				}
			},
		},
		{
			name:  "named location short while others are not",
			given: two,
			when:  reserve("c1", lineAt("A", 5, "w2")),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 5, Available: 3}},
		},
		{
			name:  "preferred locations in order",
			given: two,
			when:  reserve("c1", ReserveLine{SKU: "A", Quantity: 2, Locations: []string{"w2", "w1"}}),
			want:  []Event{ev("A", StockReserved{Reservation: "c1", Quantity: 2, Allocations: []Allocation{{"w2", 2}}, ExpiresAt: exp})},
		},
		{
			name:  "next preferred location",
			given: two,
			when:  reserve("c1", ReserveLine{SKU: "A", Quantity: 4, Locations: []string{"w2", "w1"}}),
			want:  []Event{ev("A", StockReserved{Reservation: "c1", Quantity: 4, Allocations: []Allocation{{"w1", 4}}, ExpiresAt: exp})},
		},
		{
			name:  "only preferred locations",
			given: two,
			when:  reserve("c1", ReserveLine{SKU: "A", Quantity: 4, Locations: []string{"w2", "w9"}}),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 4, Available: 3}},
		},
		{
			name:  "split across locations by priority",
			given: prio,
			when:  reserve("c1", ReserveLine{SKU: "A", Quantity: 8, Split: true}),
			want:  []Event{ev("A", StockReserved{Reservation: "c1", Quantity: 8, Allocations: []Allocation{{"w2", 5}, {"w1", 3}}, ExpiresAt: exp})},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 5, 3, 2, 0, 0)
				wantLoc(t, c, "A", "w2", 5, 5, 0, 0, 0)
			},
		},
		{
			name:  "no split: the best single location is reported",
			given: prio,
			when:  reserve("c1", line("A", 8)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 8, Available: 5}},
		},
		{
			name:  "split short: the total is reported",
			given: prio,
			when:  reserve("c1", ReserveLine{SKU: "A", Quantity: 11, Split: true}),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 11, Available: 10}},
		},
		{
			name:  "region filter",
			given: prio,
			when:  Reserve{ID: "c1", Region: "eu", Lines: []ReserveLine{line("A", 2)}},
			want:  []Event{ev("A", StockReserved{Reservation: "c1", Quantity: 2, Allocations: []Allocation{{"w1", 2}}, ExpiresAt: exp})},
		},
		{
			name:  "region filter applies to named locations",
			given: prio,
			when:  Reserve{ID: "c1", Region: "eu", Lines: []ReserveLine{lineAt("A", 2, "w2")}},
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 2, Available: 0}},
		},
		{
			name:  "region without locations",
			given: prio,
			when:  Reserve{ID: "c1", Region: "ap", Lines: []ReserveLine{{SKU: "A", Quantity: 1, Split: true}}},
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 1, Available: 0}},
		},
		{
			name:  "several lines",
			given: []Command{recv("r1", "A", "w1", 10), recv("r2", "B", "w1", 2)},
			when:  Reserve{ID: "c1", Customer: "k9", TTL: time.Hour, Lines: []ReserveLine{line("A", 5), line("B", 2)}},
			want: []Event{
				ev("A", StockReserved{Reservation: "c1", Quantity: 5, Allocations: []Allocation{{"w1", 5}}, ExpiresAt: t0.Add(time.Hour), Customer: "k9"}),
				ev("B", StockReserved{Reservation: "c1", Quantity: 2, Allocations: []Allocation{{"w1", 2}}, ExpiresAt: t0.Add(time.Hour), Customer: "k9"}),
				ev("B", OutOfStock{}),
			},
			check: func(t *testing.T, c *cluster) {
				r := wantRes(t, c, "c1", StatusHeld)
				if r.Customer != "k9" || len(r.Lines) != 2 || r.Lines[1].SKU != "B" {
					t.Fatalf("reservation = %+v", r)
				}
			},
		},
		{
			name:  "all or nothing",
			given: []Command{recv("r1", "A", "w1", 10), recv("r2", "B", "w1", 1)},
			when:  reserve("c1", line("A", 5), line("B", 2)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "B", Requested: 2, Available: 1}},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 10, 0, 10, 0, 0)
				wantNoRes(t, c, "c1")
			},
		},
		{
			name:  "every short line is reported",
			given: []Command{recv("r1", "A", "w1", 10), recv("r2", "B", "w1", 1)},
			when:  reserve("c1", line("A", 11), line("B", 2), line("C", 1)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 11, Available: 10}, {SKU: "B", Requested: 2, Available: 1}, {SKU: "C", Requested: 1, Available: 0}},
		},
		{
			name:  "held units are not available",
			given: []Command{recv("r1", "A", "w1", 5), reserve("c0", line("A", 3))},
			when:  reserve("c1", line("A", 3)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 3, Available: 2}},
		},
		{
			name:  "the longest ttl",
			given: two,
			when:  Reserve{ID: "c1", TTL: DefaultLimits.MaxTTL, Lines: []ReserveLine{line("A", 1)}},
			want:  []Event{ev("A", StockReserved{Reservation: "c1", Quantity: 1, Allocations: []Allocation{{"w1", 1}}, ExpiresAt: t0.Add(DefaultLimits.MaxTTL)})},
		},
		{
			name:   "replay",
			given:  append(two[:2:2], reserve("c1", line("A", 2))),
			when:   at(time.Minute, reserve("c1", line("A", 2))),
			replay: true,
			check:  func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 10, 2, 8, 0, 0) },
		},
		{
			name:   "replay of an expired reservation",
			given:  append(two[:2:2], reserve("c1", line("A", 2))),
			when:   at(time.Hour, reserve("c1", line("A", 2))),
			replay: true,
			wantDue: []Event{
				ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 2}),
			},
			check: func(t *testing.T, c *cluster) { wantRes(t, c, "c1", StatusExpired) },
		},
		{
			name:  "id reused with another quantity",
			given: append(two[:2:2], reserve("c1", line("A", 2))),
			when:  reserve("c1", line("A", 3)),
			code:  CodeIdempotencyMismatch,
		},
		{
			name:  "id reused with another ttl",
			given: append(two[:2:2], reserve("c1", line("A", 2))),
			when:  Reserve{ID: "c1", TTL: time.Minute, Lines: []ReserveLine{line("A", 2)}},
			code:  CodeIdempotencyMismatch,
		},
		{
			name:  "unknown sku",
			when:  reserve("c1", line("Z", 1)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "Z", Requested: 1, Available: 0}},
		},
		{name: "no lines", when: reserve("c1"), code: CodeInvalid},
		{name: "too many lines", when: reserve("c1", tooMany...), code: CodeInvalid},
		{name: "same sku twice", when: reserve("c1", line("A", 1), line("A", 2)), code: CodeInvalid},
		{name: "quantity zero", when: reserve("c1", line("A", 0)), code: CodeInvalid},
		{name: "quantity too large", when: reserve("c1", line("A", DefaultLimits.MaxQuantity+1)), code: CodeInvalid},
		{name: "ttl too long", when: Reserve{ID: "c1", TTL: DefaultLimits.MaxTTL + time.Nanosecond, Lines: []ReserveLine{line("A", 1)}}, code: CodeInvalid},
		{name: "negative ttl", when: Reserve{ID: "c1", TTL: -time.Second, Lines: []ReserveLine{line("A", 1)}}, code: CodeInvalid},
		{name: "location and locations", when: reserve("c1", ReserveLine{SKU: "A", Quantity: 1, Location: "w1", Locations: []string{"w2"}}), code: CodeInvalid},
		{name: "empty preferred location", when: reserve("c1", ReserveLine{SKU: "A", Quantity: 1, Locations: []string{""}}), code: CodeInvalid},
		{
			name:    "unknown location",
			given:   two,
			when:    reserve("c1", lineAt("A", 1, "w9")),
			unknown: []string{"w9"},
			code:    CodeUnknownLocation,
		},
		{
			name:    "unknown preferred location",
			given:   two,
			when:    reserve("c1", ReserveLine{SKU: "A", Quantity: 1, Locations: []string{"w1", "w9"}}),
			unknown: []string{"w9"},
			code:    CodeUnknownLocation,
		},
		{
			name:       "unknown location on a line another partition holds",
			partitions: 2,
			given:      []Command{recv("r1", skuIn("A", 0, 2), "w1", 10), recv("r2", skuIn("B", 1, 2), "w1", 10)},
			when:       reserve("c1", line(skuIn("A", 0, 2), 1), lineAt(skuIn("B", 1, 2), 1, "w9")),
			unknown:    []string{"w9"},
			code:       CodeUnknownLocation,
			check: func(t *testing.T, c *cluster) {
				wantNoRes(t, c, "c1")
				wantLoc(t, c, skuIn("B", 1, 2), "w1", 10, 0, 10, 0, 0)
			},
		},
		{name: "no sku", when: reserve("c1", line("", 1)), code: CodeInvalid},
		{name: "no id", when: reserve("", line("A", 1)), code: CodeInvalid},
		{name: "bad customer", when: Reserve{ID: "c1", Customer: "a\u202eb", Lines: []ReserveLine{line("A", 1)}}, code: CodeInvalid},
	})
}

func TestExtend(t *testing.T) {
	held := []Command{recv("r1", "A", "w1", 10), recv("r2", "B", "w1", 10), Reserve{ID: "c1", TTL: 10 * time.Minute, Lines: []ReserveLine{line("A", 2), line("B", 1)}}}
	extended := append(held[:3:3], at(5*time.Minute, ExtendReservation{ID: "c1", TTL: 30 * time.Minute}))
	runSpecs(t, []spec{
		{
			name:  "extend",
			given: held,
			when:  at(5*time.Minute, ExtendReservation{ID: "c1", TTL: 30 * time.Minute}),
			want: []Event{
				ev("A", ReservationExtended{Reservation: "c1", ExpiresAt: t0.Add(35 * time.Minute)}),
				ev("B", ReservationExtended{Reservation: "c1", ExpiresAt: t0.Add(35 * time.Minute)}),
			},
			check: func(t *testing.T, c *cluster) {
				r := wantRes(t, c, "c1", StatusHeld)
				if !r.ExpiresAt.Equal(t0.Add(35 * time.Minute)) {
					t.Fatalf("expires_at = %v", r.ExpiresAt)
				}
			},
		},
		{
			name:  "the old deadline passes",
			given: extended,
			when:  at(10*time.Minute, tick{}),
			check: func(t *testing.T, c *cluster) { wantRes(t, c, "c1", StatusHeld) },
		},
		{
			name:  "the new deadline expires the hold",
			given: extended,
			when:  at(35*time.Minute, tick{}),
			wantDue: []Event{
				ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 2}),
				ev("B", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 1}),
			},
			check: func(t *testing.T, c *cluster) {
				wantRes(t, c, "c1", StatusExpired)
				wantLoc(t, c, "A", "w1", 10, 0, 10, 0, 0)
			},
		},
		{
			name:  "shorter",
			given: held,
			when:  at(time.Minute, ExtendReservation{ID: "c1", TTL: time.Minute}),
			want: []Event{
				ev("A", ReservationExtended{Reservation: "c1", ExpiresAt: t0.Add(2 * time.Minute)}),
				ev("B", ReservationExtended{Reservation: "c1", ExpiresAt: t0.Add(2 * time.Minute)}),
			},
		},
		{
			name:   "expired",
			given:  held,
			when:   at(10*time.Minute, ExtendReservation{ID: "c1", TTL: time.Minute}),
			code:   CodeNotHeld,
			status: StatusExpired,
			wantDue: []Event{
				ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 2}),
				ev("B", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 1}),
			},
		},
		{
			name:   "released",
			given:  append(held[:3:3], ReleaseReservation{ID: "c1"}),
			when:   ExtendReservation{ID: "c1", TTL: time.Minute},
			code:   CodeNotHeld,
			status: StatusReleased,
		},
		{
			name:   "committed",
			given:  append(held[:3:3], CommitReservation{ID: "c1"}),
			when:   ExtendReservation{ID: "c1", TTL: time.Minute},
			code:   CodeNotHeld,
			status: StatusCommitted,
		},
		{name: "unknown", when: ExtendReservation{ID: "c9", TTL: time.Minute}, code: CodeNotFound},
		{name: "no ttl", given: held, when: ExtendReservation{ID: "c1"}, code: CodeInvalid},
		{name: "ttl too long", given: held, when: ExtendReservation{ID: "c1", TTL: DefaultLimits.MaxTTL + 1}, code: CodeInvalid},
	})
}

func TestCommit(t *testing.T) {
	stock := []Command{recvLot("r1", "A", "w1", 2, "L1", bb15), recv("r2", "A", "w1", 5), recv("r3", "B", "w1", 4)}
	held := append(stock[:3:3], reserve("c1", lineAt("A", 3, "w1"), line("B", 2)))
	split := []Command{warehouse("w1", 2, ""), warehouse("w2", 1, ""), recv("r1", "A", "w1", 5), recvLot("r2", "A", "w2", 5, "L1", bb20),
		reserve("c1", ReserveLine{SKU: "A", Quantity: 8, Split: true})}
	runSpecs(t, []spec{
		{
			name:  "everything, lots first-expiry-first-out",
			given: held,
			when:  CommitReservation{ID: "c1"},
			want: []Event{
				ev("A", ReservationCommitted{Reservation: "c1", Quantity: 3, Allocations: []Allocation{{"w1", 3}}, Lots: []LotQty{lq("w1", "L1", bb15, 2), lq("w1", "", "", 1)}}),
				ev("B", ReservationCommitted{Reservation: "c1", Quantity: 2, Allocations: []Allocation{{"w1", 2}}, Lots: []LotQty{lq("w1", "", "", 2)}}),
			},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 4, 0, 4, 0, 0)
				wantLots(t, c, "A", "w1", LotView{Quantity: 4})
				wantLoc(t, c, "B", "w1", 2, 0, 2, 0, 0)
				r := wantRes(t, c, "c1", StatusCommitted)
				if r.Lines[0].Quantity != 3 || r.Lines[1].Quantity != 2 {
					t.Fatalf("reservation = %+v", r)
				}
			},
		},
		{
			name:  "partial: the remainder and unnamed lines are released",
			given: held,
			when:  CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "A", Quantity: 1}}},
			want: []Event{
				ev("A", ReservationCommitted{Reservation: "c1", Quantity: 1, Released: 2, Allocations: []Allocation{{"w1", 1}}, Lots: []LotQty{lq("w1", "L1", bb15, 1)}}),
				ev("B", ReservationCommitted{Reservation: "c1", Quantity: 0, Released: 2}),
			},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 6, 0, 6, 0, 0)
				wantLoc(t, c, "B", "w1", 4, 0, 4, 0, 0)
				r := wantRes(t, c, "c1", StatusCommitted)
				want := []ReservationLine{
					{SKU: "A", Quantity: 1, Held: 3, Allocations: []Allocation{{"w1", 1}}},
					{SKU: "B", Quantity: 0, Held: 2, Allocations: []Allocation{}},
				}
				if renderAny(r.Lines) != renderAny(want) {
					t.Fatalf("lines = %+v, want %+v", r.Lines, want)
				}
			},
		},
		{
			name:  "partial over a split line takes the allocations in order",
			given: split,
			when:  CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "A", Quantity: 6}}},
			want: []Event{
				ev("A", ReservationCommitted{Reservation: "c1", Quantity: 6, Released: 2, Allocations: []Allocation{{"w2", 5}, {"w1", 1}},
					Lots: []LotQty{lq("w2", "L1", bb20, 5), lq("w1", "", "", 1)}}),
			},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 4, 0, 4, 0, 0)
				wantLoc(t, c, "A", "w2", 0, 0, 0, 0, 0)
			},
		},
		{
			name:  "more than held",
			given: held,
			when:  CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "A", Quantity: 4}}},
			code:  CodeInvalid,
		},
		{
			name:  "a sku not in the reservation",
			given: held,
			when:  CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "C", Quantity: 1}}},
			code:  CodeInvalid,
		},
		{name: "empty lines", given: held, when: CommitReservation{ID: "c1", Lines: []CommitLine{}}, code: CodeInvalid},
		{name: "line quantity zero", given: held, when: CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "A"}}}, code: CodeInvalid},
		{name: "same sku twice", given: held, when: CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "A", Quantity: 1}, {SKU: "A", Quantity: 1}}}, code: CodeInvalid},
		{
			name:   "after expiry",
			given:  held,
			when:   at(16*time.Minute, CommitReservation{ID: "c1"}),
			code:   CodeNotHeld,
			status: StatusExpired,
			wantDue: []Event{
				ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 3}),
				ev("B", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 2}),
			},
		},
		{
			name:   "at the deadline",
			given:  held,
			when:   at(15*time.Minute, CommitReservation{ID: "c1"}),
			code:   CodeNotHeld,
			status: StatusExpired,
			wantDue: []Event{
				ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 3}),
				ev("B", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 2}),
			},
		},
		{
			name:  "just before the deadline",
			given: held,
			when:  at(15*time.Minute-time.Nanosecond, CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "B", Quantity: 2}}}),
			want:  []Event{ev("A", ReservationCommitted{Reservation: "c1", Released: 3}), ev("B", ReservationCommitted{Reservation: "c1", Quantity: 2, Allocations: []Allocation{{"w1", 2}}, Lots: []LotQty{lq("w1", "", "", 2)}})},
		},
		{
			name:   "committed again",
			given:  append(held[:4:4], CommitReservation{ID: "c1"}),
			when:   CommitReservation{ID: "c1"},
			replay: true,
			check:  func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 4, 0, 4, 0, 0) },
		},
		{
			name:   "released",
			given:  append(held[:4:4], ReleaseReservation{ID: "c1"}),
			when:   CommitReservation{ID: "c1"},
			code:   CodeNotHeld,
			status: StatusReleased,
		},
		{name: "unknown", when: CommitReservation{ID: "c9"}, code: CodeNotFound},
		{name: "no id", when: CommitReservation{}, code: CodeInvalid},
		{
			name: "short stock becomes a backorder that later receipts fill",
			given: []Command{
				recvLot("r1", "A", "w1", 5, "L1", bb20), reserve("c1", lineAt("A", 5, "w1")),
				adjust("a1", "A", "w1", -3, ReasonDamaged),
			},
			when: CommitReservation{ID: "c1"},
			want: []Event{ev("A", ReservationCommitted{Reservation: "c1", Quantity: 5, Allocations: []Allocation{{"w1", 5}}, Lots: []LotQty{lq("w1", "L1", bb20, 2)}})},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", -3, 0, -3, 0, 3)
				wantLots(t, c, "A", "w1")
				if _, _, err := c.do(recvLot("r2", "A", "w1", 4, "L2", bb20)); err != nil {
					t.Fatal(err)
				}
				wantLoc(t, c, "A", "w1", 1, 0, 1, 0, 0)
				wantLots(t, c, "A", "w1", LotView{Lot: "L2", Quantity: 1, BestBefore: bb20})
			},
		},
	})
}

func TestRelease(t *testing.T) {
	held := []Command{recv("r1", "A", "w1", 10), recv("r2", "B", "w1", 10), reserve("c1", line("A", 3), line("B", 1))}
	runSpecs(t, []spec{
		{
			name:  "release",
			given: held,
			when:  ReleaseReservation{ID: "c1"},
			want: []Event{
				ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseRequested, Quantity: 3}),
				ev("B", ReservationReleased{Reservation: "c1", Reason: ReleaseRequested, Quantity: 1}),
			},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 10, 0, 10, 0, 0)
				wantRes(t, c, "c1", StatusReleased)
				if h := c.loc("A", "w1"); len(h.Holds) != 0 || h.HoldCount != 0 {
					t.Fatalf("holds left: %+v", h)
				}
			},
		},
		{name: "released again", given: append(held[:3:3], ReleaseReservation{ID: "c1"}), when: ReleaseReservation{ID: "c1"}, replay: true},
		{name: "expired", given: held, when: at(time.Hour, ReleaseReservation{ID: "c1"}), replay: true,
			wantDue: []Event{
				ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 3}),
				ev("B", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 1}),
			},
			check: func(t *testing.T, c *cluster) { wantRes(t, c, "c1", StatusExpired) },
		},
		{name: "committed", given: append(held[:3:3], CommitReservation{ID: "c1"}), when: ReleaseReservation{ID: "c1"}, code: CodeNotHeld, status: StatusCommitted},
		{name: "unknown", when: ReleaseReservation{ID: "c9"}, code: CodeNotFound},
		{name: "no id", when: ReleaseReservation{}, code: CodeInvalid},
	})
}

func TestHoldExpiry(t *testing.T) {
	held := []Command{recv("r1", "A", "w1", 10), Reserve{ID: "c2", TTL: 10 * time.Minute, Lines: []ReserveLine{line("A", 2)}},
		Reserve{ID: "c1", TTL: 10 * time.Minute, Lines: []ReserveLine{line("A", 3)}}}
	runSpecs(t, []spec{
		{
			name:  "just before the deadline",
			given: held,
			when:  at(10*time.Minute-time.Nanosecond, tick{}),
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 10, 5, 5, 0, 0) },
		},
		{
			name:  "at the deadline, in id order",
			given: held,
			when:  at(10*time.Minute, tick{}),
			wantDue: []Event{
				ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 3}),
				ev("A", ReservationReleased{Reservation: "c2", Reason: ReleaseExpired, Quantity: 2}),
			},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 10, 0, 10, 0, 0)
				wantRes(t, c, "c1", StatusExpired)
				wantOnlyRetirements(t, c.states[0])
			},
		},
		{
			name:  "a committed reservation does not expire",
			given: append(held[:3:3], CommitReservation{ID: "c1"}),
			when:  at(time.Hour, tick{}),
			wantDue: []Event{
				ev("A", ReservationReleased{Reservation: "c2", Reason: ReleaseExpired, Quantity: 2}),
			},
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 7, 0, 7, 0, 0) },
		},
	})
}

func TestLotExpiry(t *testing.T) {
	end15 := time.Date(2027, 3, 16, 0, 0, 0, 0, time.UTC).Sub(t0)
	endToday := time.Date(2027, 3, 11, 0, 0, 0, 0, time.UTC).Sub(t0)
	runSpecs(t, []spec{
		{
			name:  "before the day ends",
			given: []Command{recvLot("r1", "A", "w1", 5, "L1", bb15), recv("r2", "A", "w1", 2)},
			when:  at(end15-time.Nanosecond, tick{}),
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 7, 0, 7, 0, 0) },
		},
		{
			name:    "when the day ends",
			given:   []Command{recvLot("r1", "A", "w1", 5, "L1", bb15), recv("r2", "A", "w1", 2), recvLot("r3", "A", "w1", 1, "L2", bb20)},
			when:    at(end15, tick{}),
			wantDue: []Event{ev("A", LotExpired{Location: "w1", Lot: "L1", BestBefore: bb15, Quantity: 5})},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 3, 0, 3, 0, 0)
				wantLots(t, c, "A", "w1", LotView{Lot: "L2", Quantity: 1, BestBefore: bb20}, LotView{Quantity: 2})
			},
		},
		{
			name:  "a receipt already past its best_before is refused",
			when:  recvLot("r1", "A", "w1", 5, "L0", "2027-03-01"),
			code:  CodeInvalid,
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 0, 0, 0, 0, 0) },
		},
		{
			name: "a receipt whose best_before was yesterday is refused",
			when: recvLot("r1", "A", "w1", 5, "L0", "2027-03-09"),
			code: CodeInvalid,
		},
		{
			name:  "a receipt whose best_before is today is accepted until the day ends",
			when:  at(endToday-time.Nanosecond, recvLot("r1", "A", "w1", 5, "L0", "2027-03-10")),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 5, Lot: "L0", BestBefore: "2027-03-10"}), ev("A", BackInStock{Available: 5})},
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 5, 0, 5, 0, 0) },
		},
		{
			name: "a receipt whose best_before is today is refused when the day ends",
			when: at(endToday, recvLot("r1", "A", "w1", 5, "L0", "2027-03-10")),
			code: CodeInvalid,
		},
		{
			name:    "a lot received on its last day expires when the day ends",
			given:   []Command{recvLot("r1", "A", "w1", 5, "L0", "2027-03-10")},
			when:    at(endToday, tick{}),
			wantDue: []Event{ev("A", LotExpired{Location: "w1", Lot: "L0", BestBefore: "2027-03-10", Quantity: 5}), ev("A", OutOfStock{})},
		},
		{
			name:   "a receipt accepted before its date passed replays after it",
			given:  []Command{recvLot("r1", "A", "w1", 5, "L0", "2027-03-10")},
			when:   at(endToday+time.Hour, recvLot("r1", "A", "w1", 5, "L0", "2027-03-10")),
			replay: true,
			wantDue: []Event{
				ev("A", LotExpired{Location: "w1", Lot: "L0", BestBefore: "2027-03-10", Quantity: 5}),
				ev("A", OutOfStock{}),
			},
		},
		{
			name:  "held units of an expired lot are a shortage",
			given: []Command{recvLot("r1", "A", "w1", 5, "L1", bb15), recv("r2", "A", "w1", 1), Reserve{ID: "c1", TTL: DefaultLimits.MaxTTL, Lines: []ReserveLine{line("A", 6)}}},
			when:  at(end15, tick{}),
			wantDue: []Event{
				ev("A", LotExpired{Location: "w1", Lot: "L1", BestBefore: bb15, Quantity: 5}),
				ev("A", ShortageDetected{Location: "w1", Shortage: 5}),
			},
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 1, 6, -5, 0, 5) },
		},
		{
			name:  "a lot used up before its date",
			given: []Command{recvLot("r1", "A", "w1", 5, "L1", bb15), adjust("a1", "A", "w1", -5, ReasonDamaged)},
			when:  at(end15, tick{}),
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 0, 0, 0, 0, 0) },
		},
		{
			name:  "a lot that arrives by transfer keeps its date",
			given: []Command{recvLot("r1", "A", "w1", 5, "L1", bb15), TransferStock{ID: "t1", SKU: "A", From: "w1", To: "s1", Quantity: 2}, ArriveTransfer{ID: "t1"}},
			when:  at(end15, tick{}),
			wantDue: []Event{
				ev("A", LotExpired{Location: "s1", Lot: "L1", BestBefore: bb15, Quantity: 2}),
				// Each lot expires by its own decision: the second empties A.
				ev("A", LotExpired{Location: "w1", Lot: "L1", BestBefore: bb15, Quantity: 3}),
				ev("A", OutOfStock{}),
			},
		},
	})
}

func TestLotExpiryMoment(t *testing.T) {
	at, ok := LotExpiry(bb15)
	if !ok || !at.Equal(time.Date(2027, 3, 16, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("LotExpiry(%s) = %v, %v", bb15, at, ok)
	}
	if _, ok := LotExpiry(""); ok {
		t.Fatalf("undated stock expires")
	}
}

// renderAny prints a value with nil slices shown as empty ones.
func renderAny(v any) string { return fmt.Sprintf("%+v", canon(v)) }

// TestRejectedReservationNotRemembered checks that only accepted commands are
// remembered: a reservation rejected for lack of stock is decided afresh.
func TestRejectedReservationNotRemembered(t *testing.T) {
	c := newCluster(t, 1, t0)
	mustDo(t, c, warehouse("w1", 1, ""))
	mustDo(t, c, recv("r1", "A", "w1", 1))
	if _, _, err := c.do(reserve("c1", line("A", 2))); !IsCode(err, CodeInsufficientStock) {
		t.Fatalf("first attempt: %v", err)
	}
	mustDo(t, c, recv("r2", "A", "w1", 1))
	// The reservation takes the last 2 units: OutOfStock follows it.
	if _, d, err := c.do(reserve("c1", line("A", 2))); err != nil || d.Replay || len(d.Events) != 2 {
		t.Fatalf("second attempt: %+v, %v", d, err)
	}
	wantRes(t, c, "c1", StatusHeld)
}

// mustDo sends a client command and fails the test if it is rejected.
func mustDo(t testing.TB, c *cluster, cmd Command) Decision {
	t.Helper()
	_, d, err := c.do(cmd)
	if err != nil {
		t.Fatalf("%#v: %v", cmd, err)
	}
	return d
}

// TestDecideTimeNeverGoesBack checks that a decision at a moment before the
// last event is taken as happening at that event's time.
func TestDecideTimeNeverGoesBack(t *testing.T) {
	s := NewState(0, 1, DefaultLimits)
	s.SetLocations(Locations{"w1": {ID: "w1", Kind: KindWarehouse}})
	apply := func(d Decision) {
		t.Helper()
		for _, e := range d.Events {
			if err := s.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	d, err := s.Decide(recv("r1", "A", "w1", 5), t0)
	if err != nil {
		t.Fatal(err)
	}
	apply(d)
	d, err = s.Decide(reserve("c1", line("A", 1)), t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Events[0]; !got.Time.Equal(t0) || !got.Data.(StockReserved).ExpiresAt.Equal(t0.Add(DefaultLimits.DefaultTTL)) {
		t.Fatalf("event at %v expiring %v, want %v", got.Time, got.Data.(StockReserved).ExpiresAt, t0)
	}
	apply(d)
	// The receipt's BackInStock is the second event.
	if !s.Clock().Equal(t0) || s.Head() != 3 {
		t.Fatalf("clock %v head %d", s.Clock(), s.Head())
	}
}

// TestNextDeadline checks that the earliest hold or lot deadline is
// reported, and nothing once everything has fired.
func TestNextDeadline(t *testing.T) {
	c := newCluster(t, 1, t0)
	if _, ok := c.states[0].NextDeadline(); ok {
		t.Fatalf("a deadline in an empty partition")
	}
	mustDo(t, c, warehouse("w1", 1, ""))
	mustDo(t, c, recvLot("r1", "A", "w1", 5, "L1", bb15))
	lotEnd, _ := LotExpiry(bb15)
	if at, ok := c.states[0].NextDeadline(); !ok || !at.Equal(lotEnd) {
		t.Fatalf("next deadline %v, %v; want the lot's %v", at, ok, lotEnd)
	}
	mustDo(t, c, Reserve{ID: "c1", TTL: time.Hour, Lines: []ReserveLine{line("A", 1)}})
	if at, ok := c.states[0].NextDeadline(); !ok || !at.Equal(t0.Add(time.Hour)) {
		t.Fatalf("next deadline %v, %v; want the hold's", at, ok)
	}
	mustDo(t, c, ReleaseReservation{ID: "c1"})
	if at, ok := c.states[0].NextDeadline(); !ok || !at.Equal(lotEnd) {
		t.Fatalf("next deadline %v, %v after the release; want the lot's", at, ok)
	}
	c.now = lotEnd
	c.tickAll()
	wantOnlyRetirements(t, c.states[0])
}

// wantOnlyRetirements checks that no hold or lot is scheduled any more: what
// is left is the retirement of what settled.
func wantOnlyRetirements(t *testing.T, s *State) {
	t.Helper()
	at, _ := s.NextDeadline()
	if len(s.timers.holds)+len(s.timers.lots) > 0 {
		t.Fatalf("a hold or lot deadline is left: next at %v", at)
	}
}

// TestShortLocationAndBackorder covers a loss found after a hold was granted:
// the short location reports its shortage without taking availability away
// from other locations, committing the hold leaves a backorder, and stock
// found later fills the backorder before any lot.
func TestShortLocationAndBackorder(t *testing.T) {
	given := []Command{
		recv("r1", "A", "w1", 5), recv("r2", "A", "w2", 5),
		reserve("c1", lineAt("A", 5, "w1")),
		adjust("a1", "A", "w1", -3, ReasonLost),
	}
	runSpecs(t, []spec{
		{
			name:  "a short location does not net against the others",
			given: given[:3],
			when:  given[3],
			want: []Event{
				ev("A", StockAdjusted{Location: "w1", Delta: -3, Reason: ReasonLost, Lots: []LotQty{lq("w1", "", "", 3)}}),
				ev("A", ShortageDetected{Location: "w1", Shortage: 3}),
			},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 2, 5, -3, 0, 3)
				v, _ := c.states[PartitionOf("A", len(c.states))].SKUView("A")
				if v.Available != 5 || v.Shortage != 3 {
					t.Fatalf("SKU available %d, shortage %d; want 5 (w2) and 3 (w1)", v.Available, v.Shortage)
				}
			},
		},
		{
			name:  "stock found fills the backorder first",
			given: append(append([]Command{}, given...), CommitReservation{ID: "c1"}),
			when:  adjust("a2", "A", "w1", 4, ReasonFound),
			want:  []Event{ev("A", StockAdjusted{Location: "w1", Delta: 4, Reason: ReasonFound, Lots: []LotQty{lq("w1", "", "", 1)}})},
			check: func(t *testing.T, c *cluster) {
				wantLoc(t, c, "A", "w1", 1, 0, 1, 0, 0)
				wantLots(t, c, "A", "w1", LotView{Quantity: 1})
			},
		},
	})
}

// TestIdempotencyKeys covers commands on a reservation that carry an
// idempotency key: a repeat is answered without acting again, the key reused
// with another request is refused, and keys survive a rebuild from the log.
func TestIdempotencyKeys(t *testing.T) {
	held := []Command{recv("r1", "A", "w1", 10), Reserve{ID: "c1", TTL: 10 * time.Minute, Lines: []ReserveLine{line("A", 2)}}}
	extended := append(held[:2:2], at(time.Minute, ExtendReservation{ID: "c1", TTL: 30 * time.Minute, Key: "k1"}))
	runSpecs(t, []spec{
		{
			name:   "an extension repeated with its key does not extend again",
			given:  extended,
			when:   at(5*time.Minute, ExtendReservation{ID: "c1", TTL: 30 * time.Minute, Key: "k1"}),
			replay: true,
			check: func(t *testing.T, c *cluster) {
				r := wantRes(t, c, "c1", StatusHeld)
				if !r.ExpiresAt.Equal(t0.Add(31 * time.Minute)) {
					t.Fatalf("expires_at = %v, want the first extension's", r.ExpiresAt)
				}
			},
		},
		{
			name:  "the key reused with another ttl",
			given: extended,
			when:  ExtendReservation{ID: "c1", TTL: 20 * time.Minute, Key: "k1"},
			code:  CodeIdempotencyMismatch,
		},
		{
			name:  "the key reused for a commit",
			given: extended,
			when:  CommitReservation{ID: "c1", Key: "k1"},
			code:  CodeIdempotencyMismatch,
		},
		{
			name:  "a keyed commit records its key",
			given: held,
			when:  CommitReservation{ID: "c1", Key: "k2", Lines: []CommitLine{{SKU: "A", Quantity: 1}}},
			want: []Event{ev("A", ReservationCommitted{Reservation: "c1", Quantity: 1, Released: 1,
				Allocations: []Allocation{{Location: "w1", Quantity: 1}}, Lots: []LotQty{lq("w1", "", "", 1)}, Key: "k2",
				KeyFingerprint: Fingerprint(CommitReservation{ID: "c1", Key: "k2", Lines: []CommitLine{{SKU: "A", Quantity: 1}}})})},
			check: func(t *testing.T, c *cluster) {
				st := c.states[PartitionOf("A", len(c.states))]
				rebuilt, err := DecodeState(EncodeState(st), st.limits)
				if err != nil {
					t.Fatal(err)
				}
				for name, s := range map[string]*State{"live": st, "from a snapshot": rebuilt} {
					if _, err := s.Decide(CommitReservation{ID: "c1", Key: "k2"}, t0); !IsCode(err, CodeIdempotencyMismatch) {
						t.Fatalf("%s: the key with another commit = %v, want a mismatch", name, err)
					}
					if d, err := s.Decide(CommitReservation{ID: "c1", Key: "k2", Lines: []CommitLine{{SKU: "A", Quantity: 1}}}, t0); err != nil || !d.Replay {
						t.Fatalf("%s: the same keyed commit = %+v, %v; want a replay", name, d, err)
					}
				}
			},
		},
		{
			name:   "a keyed release repeated",
			given:  append(held[:2:2], ReleaseReservation{ID: "c1", Key: "k3"}),
			when:   ReleaseReservation{ID: "c1", Key: "k3"},
			replay: true,
		},
	})
}
