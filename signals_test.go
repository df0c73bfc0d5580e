package stockd

import (
	"fmt"
	"testing"
	"time"
)

// The stock signals: LowStock, OutOfStock and BackInStock, decided once per
// crossing of a SKU's available stock (see signals.go). Every spec also
// checks, through the harness, that the state rebuilt from the log and from a
// snapshot equals the one decided live.

// lowAt configures A with a low-stock threshold.
func lowAt(threshold int64) ConfigureSKU { return ConfigureSKU{SKU: "A", LowStockThreshold: threshold} }

// resv is the StockReserved of a one-location hold of q units at w1, made at
// t0 with the default TTL.
func resv(id string, q int64) StockReserved {
	return StockReserved{Reservation: id, Quantity: q, Allocations: []Allocation{{"w1", q}}, ExpiresAt: t0.Add(DefaultLimits.DefaultTTL)}
}

func TestSignalsDown(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "down through the threshold",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5)},
			when:  reserve("c1", line("A", 6)),
			want:  []Event{ev("A", resv("c1", 6)), ev("A", LowStock{Available: 4, LowStockThreshold: 5})},
		},
		{
			name:  "down onto the threshold is at or below it",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5)},
			when:  reserve("c1", line("A", 5)),
			want:  []Event{ev("A", resv("c1", 5)), ev("A", LowStock{Available: 5, LowStockThreshold: 5})},
		},
		{
			name:  "down to zero from above the threshold crosses both lines, once each",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5)},
			when:  reserve("c1", line("A", 10)),
			want: []Event{
				ev("A", resv("c1", 10)),
				ev("A", LowStock{Available: 0, LowStockThreshold: 5}),
				ev("A", OutOfStock{}),
			},
		},
		{
			name:  "down to zero from inside the low band",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5), reserve("c1", line("A", 7))},
			when:  reserve("c2", line("A", 3)),
			want:  []Event{ev("A", resv("c2", 3)), ev("A", OutOfStock{})},
		},
		{
			name:  "an adjustment through the threshold",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5)},
			when:  adjust("a1", "A", "w1", -6, ReasonDamaged),
			want: []Event{
				ev("A", StockAdjusted{Location: "w1", Delta: -6, Reason: ReasonDamaged, Lots: []LotQty{lq("w1", "", "", 6)}}),
				ev("A", LowStock{Available: 4, LowStockThreshold: 5}),
			},
		},
		{
			name:  "a count to zero from above the threshold",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5)},
			when:  CountStock{ID: "k1", SKU: "A", Location: "w1", OnHand: 0},
			want: []Event{
				ev("A", StockCounted{Location: "w1", OnHand: 0, Delta: -10, Lots: []LotQty{lq("w1", "", "", 10)}}),
				ev("A", LowStock{Available: 0, LowStockThreshold: 5}),
				ev("A", OutOfStock{}),
			},
		},
		{
			name:  "a loss below the holds: the shortage, then the signals",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5), reserve("c1", lineAt("A", 4, "w1"))},
			when:  adjust("a1", "A", "w1", -8, ReasonLost),
			want: []Event{
				ev("A", StockAdjusted{Location: "w1", Delta: -8, Reason: ReasonLost, Lots: []LotQty{lq("w1", "", "", 8)}}),
				ev("A", ShortageDetected{Location: "w1", Shortage: 2}),
				ev("A", LowStock{Available: 0, LowStockThreshold: 5}),
				ev("A", OutOfStock{}),
			},
		},
		{
			name: "a location short of held units takes nothing from the others",
			given: []Command{
				recv("r1", "A", "w1", 10), recv("r2", "A", "w2", 4), lowAt(5),
				reserve("c1", lineAt("A", 8, "w1")),
			},
			// 2 + 4 available; w1 goes 3 short, w2 still sells 4: A is
			// low, not out.
			when: adjust("a1", "A", "w1", -5, ReasonLost),
			want: []Event{
				ev("A", StockAdjusted{Location: "w1", Delta: -5, Reason: ReasonLost, Lots: []LotQty{lq("w1", "", "", 5)}}),
				ev("A", ShortageDetected{Location: "w1", Shortage: 3}),
				ev("A", LowStock{Available: 4, LowStockThreshold: 5}),
			},
		},
		{
			name:  "a transfer out empties the SKU: what is in transit cannot be sold",
			given: []Command{recv("r1", "A", "w1", 4)},
			when:  TransferStock{ID: "t1", SKU: "A", From: "w1", To: "s1", Quantity: 4},
			want: []Event{
				ev("A", StockTransferred{From: "w1", To: "s1", Quantity: 4, Lots: []LotQty{lq("w1", "", "", 4)}}),
				ev("A", OutOfStock{}),
			},
		},
		{
			name:  "a lot expiry through the threshold",
			given: []Command{recvLot("r1", "A", "w1", 10, "L1", bb15), recv("r2", "A", "w1", 2), lowAt(5)},
			when:  at(time.Date(2027, 3, 16, 0, 0, 0, 0, time.UTC).Sub(t0), tick{}),
			wantDue: []Event{
				ev("A", LotExpired{Location: "w1", Lot: "L1", BestBefore: bb15, Quantity: 10}),
				ev("A", LowStock{Available: 2, LowStockThreshold: 5}),
			},
		},
		{
			name:  "a SKU with no threshold signals only OutOfStock",
			given: []Command{recv("r1", "A", "w1", 10), reserve("c1", line("A", 9))},
			when:  reserve("c2", line("A", 1)),
			want:  []Event{ev("A", resv("c2", 1)), ev("A", OutOfStock{})},
		},
		{
			name:  "a SKU with no threshold signals nothing on the way down to 1",
			given: []Command{recv("r1", "A", "w1", 10)},
			when:  reserve("c1", line("A", 9)),
			want:  []Event{ev("A", resv("c1", 9))},
		},
		{
			name:  "a safety stock that holds back the last units empties the SKU",
			given: []Command{recv("r1", "A", "w1", 3)},
			when:  ConfigureSKU{SKU: "A", SafetyStock: 3},
			want:  []Event{ev("A", SKUConfigured{SafetyStock: 3}), ev("A", OutOfStock{})},
		},
		{
			name:  "a multi-line cart crossing on two SKUs: the signals follow every line, SKU by SKU",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5), recv("r2", "B", "w1", 2), recv("r3", "C", "w1", 5)},
			// C has stock to spare: only A and B cross.
			when: reserve("c1", line("A", 6), line("B", 2), line("C", 1)),
			want: []Event{
				ev("A", resv("c1", 6)),
				ev("B", resv("c1", 2)),
				ev("C", resv("c1", 1)),
				ev("A", LowStock{Available: 4, LowStockThreshold: 5}),
				ev("B", OutOfStock{}),
			},
		},
	})
}

func TestSignalsUp(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "up from zero",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5), reserve("c1", line("A", 10))},
			when:  recv("r2", "A", "w1", 8),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 8}), ev("A", BackInStock{Available: 8, LowStockThreshold: 5})},
		},
		{
			name:  "up from zero into the low band: BackInStock only, which shows the threshold",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5), reserve("c1", line("A", 10))},
			when:  recv("r2", "A", "w1", 3),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 3}), ev("A", BackInStock{Available: 3, LowStockThreshold: 5})},
		},
		{
			name:  "up through the threshold signals nothing",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5), reserve("c1", line("A", 7))},
			when:  recv("r2", "A", "w1", 10),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 10})},
		},
		{
			name:  "an expiry releasing held stock brings the SKU back",
			given: []Command{recv("r1", "A", "w1", 5), Reserve{ID: "c1", TTL: 10 * time.Minute, Lines: []ReserveLine{line("A", 5)}}},
			when:  at(10*time.Minute, tick{}),
			wantDue: []Event{
				ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 5}),
				ev("A", BackInStock{Available: 5}),
			},
			check: func(t *testing.T, c *cluster) {
				// A timer's signal has the cause of the timer's events.
				e := c.logs[0][len(c.logs[0])-1]
				if e.Type() != TypeBackInStock || e.CommandID != "c1" {
					t.Fatalf("last event = %+v", e)
				}
			},
		},
		{
			name:  "a release brings the SKU back",
			given: []Command{recv("r1", "A", "w1", 5), reserve("c1", line("A", 5))},
			when:  ReleaseReservation{ID: "c1"},
			want: []Event{
				ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseRequested, Quantity: 5}),
				ev("A", BackInStock{Available: 5}),
			},
		},
		{
			name:  "a partial commit returns the rest: the SKU is back",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5), reserve("c1", line("A", 10))},
			when:  CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "A", Quantity: 4}}},
			want: []Event{
				ev("A", ReservationCommitted{
					Reservation: "c1", Quantity: 4, Released: 6,
					Allocations: []Allocation{{"w1", 4}}, Lots: []LotQty{lq("w1", "", "", 4)},
				}),
				ev("A", BackInStock{Available: 6, LowStockThreshold: 5}),
			},
		},
		{
			name:  "a full commit of an out-of-stock SKU changes nothing available",
			given: []Command{recv("r1", "A", "w1", 10), reserve("c1", line("A", 10))},
			when:  CommitReservation{ID: "c1"},
			want: []Event{
				ev("A", ReservationCommitted{
					Reservation: "c1", Quantity: 10,
					Allocations: []Allocation{{"w1", 10}}, Lots: []LotQty{lq("w1", "", "", 10)},
				}),
			},
		},
		{
			name:  "a count back up",
			given: []Command{recv("r1", "A", "w1", 10), CountStock{ID: "k1", SKU: "A", Location: "w1", OnHand: 0}},
			when:  CountStock{ID: "k2", SKU: "A", Location: "w1", OnHand: 8},
			want: []Event{
				ev("A", StockCounted{Location: "w1", OnHand: 8, Delta: 8, Lots: []LotQty{lq("w1", "", "", 8)}}),
				ev("A", BackInStock{Available: 8}),
			},
		},
		{
			name:  "an adjustment back up",
			given: []Command{recv("r1", "A", "w1", 2), adjust("a1", "A", "w1", -2, ReasonDamaged)},
			when:  adjust("a2", "A", "w1", 1, ReasonFound),
			want: []Event{
				ev("A", StockAdjusted{Location: "w1", Delta: 1, Reason: ReasonFound, Lots: []LotQty{lq("w1", "", "", 1)}}),
				ev("A", BackInStock{Available: 1}),
			},
		},
		{
			name:  "a transfer's arrival brings the SKU back",
			given: []Command{recv("r1", "A", "w1", 4), TransferStock{ID: "t1", SKU: "A", From: "w1", To: "s1", Quantity: 4}},
			when:  ArriveTransfer{ID: "t1"},
			want: []Event{
				ev("A", TransferArrived{From: "w1", To: "s1", Quantity: 4, Lots: []LotQty{lq("s1", "", "", 4)}}),
				ev("A", BackInStock{Available: 4}),
			},
		},
		{
			name:  "a lower safety stock brings the SKU back",
			given: []Command{recv("r1", "A", "w1", 3), ConfigureSKU{SKU: "A", SafetyStock: 3}},
			when:  ConfigureSKU{SKU: "A", SafetyStock: 1},
			want:  []Event{ev("A", SKUConfigured{SafetyStock: 1}), ev("A", BackInStock{Available: 2})},
		},
	})
}

func TestSignalsFirstStock(t *testing.T) {
	runSpecs(t, []spec{
		{
			name: "the first receipt of a new SKU: a SKU is out of stock until it first has some",
			when: recv("r1", "A", "w1", 10),
			want: []Event{ev("A", StockReceived{Location: "w1", Quantity: 10}), ev("A", BackInStock{Available: 10})},
			check: func(t *testing.T, c *cluster) {
				// Right after its cause, in the SKU's stream, with its
				// command id.
				log := c.logs[0]
				e, sig := log[len(log)-2], log[len(log)-1]
				if sig.SKU != "A" || sig.Version != e.Version+1 || sig.Position != e.Position+1 || sig.CommandID != "r1" || !sig.Time.Equal(e.Time) {
					t.Fatalf("signal %+v after %+v", sig, e)
				}
			},
		},
		{
			name:  "the first receipt of a configured SKU, inside its low band",
			given: []Command{lowAt(5)},
			when:  recv("r1", "A", "w1", 3),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 3}), ev("A", BackInStock{Available: 3, LowStockThreshold: 5})},
		},
		{
			name:  "a first receipt that safety stock holds back entirely is no BackInStock",
			given: []Command{ConfigureSKU{SKU: "A", SafetyStock: 5}},
			when:  recv("r1", "A", "w1", 5),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 5})},
		},
		{
			name:  "the receipt that first makes it sellable is",
			given: []Command{ConfigureSKU{SKU: "A", SafetyStock: 5}, recv("r1", "A", "w1", 5)},
			when:  recv("r2", "A", "w1", 1),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 1}), ev("A", BackInStock{Available: 1})},
		},
		{
			name:  "a first count of nothing is no signal",
			when:  CountStock{ID: "k1", SKU: "A", Location: "w1", OnHand: 0},
			want:  []Event{ev("A", StockCounted{Location: "w1", OnHand: 0, Delta: 0})},
			check: func(t *testing.T, c *cluster) { wantLoc(t, c, "A", "w1", 0, 0, 0, 0, 0) },
		},
	})
}

func TestSignalsNotOnEveryChange(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "down above the threshold",
			given: []Command{recv("r1", "A", "w1", 20), lowAt(5)},
			when:  reserve("c1", line("A", 3)),
			want:  []Event{ev("A", resv("c1", 3))},
		},
		{
			name:  "down inside the low band",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5), reserve("c1", line("A", 7))},
			when:  reserve("c2", line("A", 1)),
			want:  []Event{ev("A", resv("c2", 1))},
		},
		{
			name:  "up inside the low band",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5), reserve("c1", line("A", 7)), reserve("c2", line("A", 2))},
			when:  ReleaseReservation{ID: "c2"},
			want:  []Event{ev("A", ReservationReleased{Reservation: "c2", Reason: ReleaseRequested, Quantity: 2})},
		},
		{
			name:  "up above the threshold",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5)},
			when:  recv("r2", "A", "w1", 10),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 10})},
		},
		{
			name:  "more stock at zero: safety stock still holds it all back",
			given: []Command{recv("r1", "A", "w1", 2), ConfigureSKU{SKU: "A", SafetyStock: 5}},
			when:  recv("r2", "A", "w1", 3),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 3})},
		},
		{
			name:  "a loss at zero",
			given: []Command{recv("r1", "A", "w1", 10), reserve("c1", line("A", 10))},
			when:  adjust("a1", "A", "w1", -2, ReasonLost),
			want: []Event{
				ev("A", StockAdjusted{Location: "w1", Delta: -2, Reason: ReasonLost, Lots: []LotQty{lq("w1", "", "", 2)}}),
				ev("A", ShortageDetected{Location: "w1", Shortage: 2}),
			},
		},
		{
			name:  "an extension",
			given: []Command{recv("r1", "A", "w1", 5), reserve("c1", line("A", 5))},
			when:  ExtendReservation{ID: "c1", TTL: time.Hour},
			want:  []Event{ev("A", ReservationExtended{Reservation: "c1", ExpiresAt: t0.Add(time.Hour)})},
		},
		{
			name:   "a replay",
			given:  []Command{recv("r1", "A", "w1", 5)},
			when:   recv("r1", "A", "w1", 5),
			replay: true,
		},
		{
			name:  "a threshold raised above what is available",
			given: []Command{recv("r1", "A", "w1", 10), reserve("c1", line("A", 7))},
			when:  lowAt(5),
			want:  []Event{ev("A", SKUConfigured{LowStockThreshold: 5})},
		},
		{
			name:  "a threshold lowered below what is available",
			given: []Command{recv("r1", "A", "w1", 10), lowAt(5), reserve("c1", line("A", 7))},
			when:  lowAt(2),
			want:  []Event{ev("A", SKUConfigured{LowStockThreshold: 2})},
		},
		{
			name:  "a threshold set on a SKU at zero",
			given: []Command{recv("r1", "A", "w1", 1), reserve("c1", line("A", 1))},
			when:  lowAt(5),
			want:  []Event{ev("A", SKUConfigured{LowStockThreshold: 5})},
		},
		{
			name: "a sale one unit at a time: each line crossed once",
			given: func() []Command {
				cmds := []Command{recv("r1", "A", "w1", 8), lowAt(3)}
				for i := range 8 {
					cmds = append(cmds, reserve(fmt.Sprint("c", i), line("A", 1)))
				}
				for i := range 8 {
					cmds = append(cmds, ReleaseReservation{ID: fmt.Sprint("c", i)})
				}
				for i := range 8 {
					cmds = append(cmds, reserve(fmt.Sprint("d", i), line("A", 1)))
				}
				return cmds
			}(),
			when: recv("r2", "A", "w1", 1),
			want: []Event{ev("A", StockReceived{Location: "w1", Quantity: 1}), ev("A", BackInStock{Available: 1, LowStockThreshold: 3})},
			check: func(t *testing.T, c *cluster) {
				var got []string
				for _, e := range c.logs[0] {
					switch e.Data.(type) {
					case LowStock, OutOfStock, BackInStock:
						got = append(got, fmt.Sprintf("%s@%d", e.Type(), e.Data))
					}
				}
				want := "[BackInStock@{8 0} LowStock@{3 3} OutOfStock@{0} BackInStock@{1 3} LowStock@{3 3} OutOfStock@{0} BackInStock@{1 3}]"
				if fmt.Sprint(got) != want {
					t.Fatalf("signals = %v\nwant %s", got, want)
				}
			},
		},
	})
}

// TestSignalsAcrossPartitions checks the signals of a cart spanning
// partitions: each partition signals the crossings of its own SKUs, as its
// saga steps hold, commit or release them.
func TestSignalsAcrossPartitions(t *testing.T) {
	w := newSagaWorld(t, 2, 0)
	signals := func(p int, from int) []string {
		var out []string
		for _, e := range w.logs[p][from:] {
			switch e.Data.(type) {
			case LowStock, OutOfStock, BackInStock:
				out = append(out, e.SKU+" "+e.Type().String())
			}
		}
		return out
	}
	mustDo(t, w.cluster, ConfigureSKU{SKU: w.a, LowStockThreshold: 5})
	from := []int{len(w.logs[0]), len(w.logs[1])}
	if _, _, err := w.do(Reserve{ID: "c1", TTL: 10 * time.Minute, Lines: []ReserveLine{line(w.a, 6), line(w.b, 10)}}); err != nil {
		t.Fatal(err)
	}
	w.quiesce()
	if r, ok := w.lastResolution("c1"); !ok || r.Err != nil {
		t.Fatalf("resolution = %+v, %v", r, ok)
	}
	if got := fmt.Sprint(signals(0, from[0]), signals(1, from[1])); got != fmt.Sprintf("[%s LowStock] [%s OutOfStock]", w.a, w.b) {
		t.Fatalf("signals when held: %s", got)
	}
	// The participant's signal follows its hold, with the cart's id.
	log := w.logs[1]
	if e, sig := log[len(log)-2], log[len(log)-1]; e.Type() != TypeStockReserved || sig.Type() != TypeOutOfStock || sig.CommandID != "c1" || sig.Version != e.Version+1 {
		t.Fatalf("participant's log ends with %+v, %+v", e, sig)
	}
	from = []int{len(w.logs[0]), len(w.logs[1])}
	if _, _, err := w.do(ReleaseReservation{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	w.quiesce()
	// Back up through A's threshold: nothing; B back from zero.
	if got := fmt.Sprint(signals(0, from[0]), signals(1, from[1])); got != fmt.Sprintf("[] [%s BackInStock]", w.b) {
		t.Fatalf("signals when released: %s", got)
	}
	for p, s := range w.states {
		re := w.replay(p, w.logs[p], nil)
		if p != LocationPartition {
			re.SetCatalog(w.states[LocationPartition].Catalog())
		}
		if diff := sameState(s, re); diff != "" {
			t.Fatalf("partition %d rebuilt from its log differs: %s", p, diff)
		}
	}
}
