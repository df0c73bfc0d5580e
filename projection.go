package stockd

import (
	"iter"
	"slices"
	"time"
)

// Read helpers for projections. The availability read model (package
// readmodel) folds the partition logs into AvailabilityStates, not States;
// these helpers answer from a State in time proportional to what is asked
// for, where the views made for single reads may walk every reservation of a
// partition, and are what AvailabilityState's answers are tested against.

// StockLevels returns the state of a SKU in this partition like SKUView, but
// without the holds: every Holds list is empty and every HoldCount 0. SKUView
// derives the holds by walking every reservation of the partition, which a
// read model asked for hundreds of SKUs at once cannot afford; StockLevels
// costs only the SKU's locations and lots. It returns false if the SKU has no
// events.
// SKUView is StockLevels plus the holds, so the two always agree.
func (s *State) StockLevels(sku string) (SKUState, bool) {
	sk := s.skus[sku]
	if sk == nil {
		return SKUState{}, false
	}
	v := SKUState{
		SKU: sku, SafetyStock: sk.safety, LowStockThreshold: sk.lowStock,
		SalesCap: sk.salesCap, SalesCapRemaining: sk.capRemaining(), CustomerLimit: sk.customerLimitOf(), Preorders: sk.preorders,
		Version: sk.version, Position: s.head, AsOf: s.clock,
		Locations: make([]LocationState, 0, len(sk.stocks)),
	}
	for _, loc := range slices.Sorted(slices.Values(sk.stockList)) {
		st := sk.find(loc)
		ls := LocationState{
			Location: loc, OnHand: st.onHand, Reserved: st.reserved, Available: st.available(sk.safety),
			InTransit: st.inTransit, Shortage: st.shortage(), Lots: make([]LotView, 0, len(st.lots)),
			Holds: []HoldView{},
		}
		for _, l := range st.lots {
			ls.Lots = append(ls.Lots, LotView{Lot: l.id, Quantity: l.qty, BestBefore: l.bestBefore})
		}
		sk.fillExpected(&ls)
		v.Expected += ls.Expected
		v.Preordered += ls.Preordered
		v.Preorderable += ls.Preorderable
		v.OnHand += ls.OnHand
		v.Reserved += ls.Reserved
		// What can be sold is the sum of what each location can sell; a
		// location short of held units does not take stock away from the
		// others. Its shortage is reported, in Shortage, not netted.
		v.Available += max(ls.Available, 0)
		v.InTransit += ls.InTransit
		v.Shortage += ls.Shortage
		v.Locations = append(v.Locations, ls)
	}
	return v, true
}

// ReservationCustomer returns the customer and creation time of a reservation
// driven by this partition, and false if ReservationView would not return
// it. It lets a read model keep an index of reservations by customer up to
// date after every event without rendering the reservation.
func (s *State) ReservationCustomer(id string) (customer string, createdAt time.Time, ok bool) {
	r, err := s.homeReservation(id)
	if err != nil {
		return "", time.Time{}, false
	}
	return r.customer, fromUnixNano(r.createdAt), true
}

// HomeReservations yields the id of every reservation driven by this
// partition: those ReservationView returns. A read model rebuilds its indexes
// from them after loading a saved State. The State must not change while the
// sequence is being iterated.
func (s *State) HomeReservations() iter.Seq[string] {
	return func(yield func(string) bool) {
		for id := range s.reservations {
			if _, err := s.homeReservation(id); err != nil {
				continue
			}
			if !yield(id) {
				return
			}
		}
	}
}

// Shortfalls returns the lines, among those belonging to this partition,
// that could not be held now, and by how much (a line its SKU's sales cap
// refuses says so by its SalesCap). When a cart spanning
// partitions is refused because its home is short, the engine asks the other
// partitions with it, so that the refusal lists every short line, as it does
// for a cart held in one partition.
func (s *State) Shortfalls(lines []ReserveLine, region string) []Shortfall {
	var out []Shortfall
	for _, l := range lines {
		if PartitionOf(l.SKU, s.partitions) != s.partition {
			continue
		}
		if short := s.capped(l); short != nil {
			out = append(out, *short)
		} else if _, short := s.allocate(l, region); short != nil {
			out = append(out, *short)
		}
	}
	return out
}
