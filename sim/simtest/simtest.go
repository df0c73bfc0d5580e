// Package simtest checks a simulator's summary against the server it ran
// on, reading the server's state and histories independently of package
// sim. It is for tests: those of package sim and of stockd simulate.
package simtest

import (
	"context"
	"strings"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/sim"
)

// Check checks a run's summary against the server s: every SKU's
// on_hand now, and its history up to the version the summary read, counted
// here; the carts of the run in the histories against what the customers
// were told; conservation; and that something was refused, some hold and
// some lot expired.
func Check(t *testing.T, s *e2e.Server, sum *sim.Summary) {
	t.Helper()
	ctx := context.Background()
	if !sum.Conserved {
		t.Errorf("summary says not conserved: %+v", sum.SKUs)
	}
	type cartSet map[string]bool
	held, committed, released, expired, compensated := cartSet{}, cartSet{}, cartSet{}, cartSet{}, cartSet{}
	ours := func(id string) bool { return strings.HasPrefix(id, sum.Run+"-c") }
	var h sim.HistoryCounts
	for _, sk := range sum.SKUs {
		st, err := s.Client.SKU(ctx, sk.SKU, stockd.AsOf{})
		if err != nil {
			t.Fatalf("%s: %v", sk.SKU, err)
		}
		// Holds may expire after the run (abandoned carts), lots only at a
		// shop midnight, and the clock no longer moves: on_hand is as the
		// summary read it.
		if st.OnHand != sk.OnHand {
			t.Errorf("%s: on_hand %d on the server, %d in the summary", sk.SKU, st.OnHand, sk.OnHand)
		}
		var received, committedUnits, expiredUnits, adjusted, reserved int64
		var lots int
		var last uint64
		for after := uint64(0); ; {
			page, err := s.Client.History(ctx, sk.SKU, stockd.HistoryQuery{After: after, Limit: 500})
			if err != nil {
				t.Fatalf("%s history: %v", sk.SKU, err)
			}
			for _, e := range page.Events {
				if e.Version <= last {
					t.Fatalf("%s: version %d after %d", sk.SKU, e.Version, last)
				}
				last = e.Version
				if e.Version > sk.Version {
					continue
				}
				switch d := e.Data.(type) {
				case stockd.StockReceived:
					received += d.Quantity
				case stockd.StockAdjusted:
					adjusted += d.Delta
				case stockd.LotExpired:
					expiredUnits += d.Quantity
					lots++
				case stockd.StockReserved:
					reserved += d.Quantity
					if ours(d.Reservation) {
						held[d.Reservation] = true
					}
				case stockd.ReservationCommitted:
					committedUnits += d.Quantity
					reserved -= d.Quantity + d.Released
					if ours(d.Reservation) {
						committed[d.Reservation] = true
					}
				case stockd.ReservationReleased:
					reserved -= d.Quantity
					if !ours(d.Reservation) {
						break
					}
					switch d.Reason {
					case stockd.ReleaseRequested:
						released[d.Reservation] = true
					case stockd.ReleaseExpired:
						expired[d.Reservation] = true
					case stockd.ReleaseCompensated:
						compensated[d.Reservation] = true
					}
				}
			}
			if page.Next == 0 || len(page.Events) == 0 {
				break
			}
			after = page.Next
		}
		if last < sk.Version {
			t.Errorf("%s: the history ends at version %d, the summary read %d", sk.SKU, last, sk.Version)
		}
		if received != sk.Received || committedUnits != sk.Committed || expiredUnits != sk.Expired || adjusted != sk.Adjusted || lots != sk.LotsExpired || reserved != sk.Reserved {
			t.Errorf("%s: history says received %d committed %d expired %d (%d lots) adjusted %d reserved %d; summary %+v",
				sk.SKU, received, committedUnits, expiredUnits, lots, adjusted, reserved, sk)
		}
		if st.OnHand != received-committedUnits-expiredUnits+adjusted {
			t.Errorf("%s: on_hand %d ≠ received %d − committed %d − expired %d + adjusted %d", sk.SKU, st.OnHand, received, committedUnits, expiredUnits, adjusted)
		}
		if sk.Available != sk.OnHand-sk.Reserved {
			t.Errorf("%s: available %d, on_hand %d, reserved %d", sk.SKU, sk.Available, sk.OnHand, sk.Reserved)
		}
		if sk.Chart != nil && *sk.Chart != sk.Available {
			t.Errorf("%s: the chart, from the feed, ended at %d available; the server says %d", sk.SKU, *sk.Chart, sk.Available)
		}
		h.Received += received
		h.Committed += committedUnits
		h.Expired += expiredUnits
		h.Adjusted += adjusted
		h.LotsExpired += lots
	}
	h.CartsHeld, h.CartsCommitted, h.CartsReleased, h.HoldsExpired, h.CartsCompensated = len(held), len(committed), len(released), len(expired), len(compensated)
	for id := range held {
		if !committed[id] && !released[id] && !expired[id] && !compensated[id] {
			h.CartsOpen++
		}
	}
	if h != sum.History {
		t.Errorf("the histories say %+v; the summary %+v", h, sum.History)
	}

	// What the customers were told, against the histories.
	var refused int64
	for _, n := range sum.Refused {
		refused += n
	}
	if sum.Granted+refused != sum.Attempts {
		t.Errorf("%d granted + %d refused ≠ %d attempts", sum.Granted, refused, sum.Attempts)
	}
	if got := int64(h.CartsHeld - h.CartsCompensated); got != sum.Granted {
		t.Errorf("%d carts held for good in the histories, %d granted to customers", got, sum.Granted)
	}
	if int64(h.CartsCommitted) != sum.Paid || int64(h.CartsReleased) != sum.Released {
		t.Errorf("histories: %d committed, %d released; customers: %d paid, %d released", h.CartsCommitted, h.CartsReleased, sum.Paid, sum.Released)
	}
	late := sum.PayFailed[string(stockd.CodeNotHeld)] + sum.ReleaseFailed[string(stockd.StatusExpired)]
	if int64(h.HoldsExpired+h.CartsOpen) != sum.Abandoned+late {
		t.Errorf("histories: %d holds expired + %d open; customers: %d abandoned + %d too late", h.HoldsExpired, h.CartsOpen, sum.Abandoned, late)
	}
	if len(sum.PayFailed)+len(sum.ReleaseFailed) > 0 && late != sumOf(sum.PayFailed)+sumOf(sum.ReleaseFailed) {
		t.Errorf("customers failed otherwise than too late: pay %v, release %v", sum.PayFailed, sum.ReleaseFailed)
	}
	if sum.DropUnits != h.Received || sum.RowsRefused != 0 || sum.Drops < 2 {
		t.Errorf("%d drops of %d units (%d rows refused); the histories received %d", sum.Drops, sum.DropUnits, sum.RowsRefused, h.Received)
	}

	// The run must have exercised what it is for.
	if sum.Refused[string(stockd.CodeInsufficientStock)] == 0 {
		t.Errorf("nothing refused for want of stock: %v", sum.Refused)
	}
	if h.HoldsExpired == 0 || h.LotsExpired == 0 || h.CartsCommitted == 0 || h.CartsReleased == 0 {
		t.Errorf("want holds expired, lots expired, carts committed and released: %+v", h)
	}
}

func sumOf(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
