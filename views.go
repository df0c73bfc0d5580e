package stockd

import (
	"container/heap"
	"maps"
	"slices"
	"strings"
)

// SKUView returns the state of a SKU in this partition, with up to
// MaxHoldsListed active holds per location, and false if the SKU has no
// events.
func (s *State) SKUView(sku string) (SKUState, bool) {
	v, ok := s.StockLevels(sku)
	if !ok {
		return v, false
	}
	holds := s.holdsOf(sku)
	for i := range v.Locations {
		ls := &v.Locations[i]
		ls.Holds, ls.HoldCount = earliest(holds[ls.Location], MaxHoldsListed), len(holds[ls.Location])
	}
	return v, true
}

// holdsOf returns the active holds of a SKU in this partition, by location.
// It walks the reservations: holds are not indexed per SKU, because keeping
// such an index would cost every reservation on the hot path more than this
// costs a view.
func (s *State) holdsOf(sku string) map[string][]HoldView {
	out := make(map[string][]HoldView)
	for _, r := range s.reservations {
		if r.status != StatusHeld && r.status != StatusPending {
			continue
		}
		for _, l := range r.lines {
			if l.sku != sku || l.partition != s.partition || l.released {
				continue
			}
			for _, a := range l.allocations {
				out[a.Location] = append(out[a.Location], HoldView{Reservation: r.id, Quantity: a.Quantity, ExpiresAt: fromUnixNano(r.expiresAt)})
			}
		}
	}
	return out
}

// earliest returns up to n holds, earliest deadline first. A hot SKU can hold
// millions; a bounded max-heap keeps this linear in their number.
func earliest(holds []HoldView, n int) []HoldView {
	h := &holdHeap{}
	for _, hv := range holds {
		if h.Len() < n {
			heap.Push(h, hv)
		} else if holdLess(hv, (*h)[0]) {
			(*h)[0] = hv
			heap.Fix(h, 0)
		}
	}
	out := []HoldView(*h)
	slices.SortFunc(out, func(a, b HoldView) int {
		if holdLess(a, b) {
			return -1
		}
		if holdLess(b, a) {
			return 1
		}
		return 0
	})
	if out == nil {
		out = []HoldView{}
	}
	return out
}

func holdLess(a, b HoldView) bool {
	if !a.ExpiresAt.Equal(b.ExpiresAt) {
		return a.ExpiresAt.Before(b.ExpiresAt)
	}
	return a.Reservation < b.Reservation
}

// holdHeap is a max-heap: its root is the latest of the holds kept.
type holdHeap []HoldView

func (h holdHeap) Len() int           { return len(h) }
func (h holdHeap) Less(i, j int) bool { return holdLess(h[j], h[i]) }
func (h holdHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *holdHeap) Push(x any)        { *h = append(*h, x.(HoldView)) }
func (h *holdHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// ReservationView returns a reservation driven by this partition, and false if
// there is none.
func (s *State) ReservationView(id string) (Reservation, bool) {
	r, err := s.homeReservation(id)
	if err != nil {
		return Reservation{}, false
	}
	return r.view(s.partition), true
}

// view renders a reservation. At its home every line is shown; elsewhere only
// the lines held in partition p.
func (r *reservation) view(p int) Reservation {
	v := Reservation{
		ID: r.id, Status: r.status, Customer: r.customer, CreatedAt: fromUnixNano(r.createdAt), ExpiresAt: fromUnixNano(r.expiresAt),
		Lines: make([]ReservationLine, 0, len(r.lines)),
	}
	for _, l := range r.lines {
		if r.home != p && l.partition != p {
			continue
		}
		line := ReservationLine{SKU: l.sku, Quantity: l.quantity, Held: l.quantity, Allocations: l.allocations}
		line.Preorder, line.Preorders = sumPreorders(l.preorders), l.preorders
		if r.status == StatusCommitted {
			// Every committed line knows where its units were taken,
			// remote lines included (see applySaga); a line committed
			// with zero units shows no allocations, not the held ones.
			line.Quantity = l.committed
			line.Allocations = l.committedAt
			// What was not taken at a location was sold before it
			// arrived.
			line.Preorder, line.Preorders = l.committed-sumAllocations(l.committedAt), nil
		}
		if line.Allocations == nil {
			line.Allocations = []Allocation{}
		}
		v.Lines = append(v.Lines, line)
	}
	if r.home == p {
		v.Bundles = r.bundleViews()
	}
	return v
}

// TransferView returns a transfer decided in this partition, and false if
// there is none.
func (s *State) TransferView(id string) (Transfer, bool) {
	t := s.transfers[id]
	if t == nil {
		return Transfer{}, false
	}
	v := Transfer{
		ID: t.id, SKU: t.sku, From: t.from, To: t.to, Quantity: t.qty,
		Status: TransferStatusInTransit, SentAt: t.sentAt, Lots: make([]LotView, 0, len(t.lots)),
	}
	for _, l := range t.lots {
		v.Lots = append(v.Lots, LotView{Lot: l.Lot, Quantity: l.Quantity, BestBefore: l.BestBefore})
	}
	if !t.arrivedAt.IsZero() {
		at := t.arrivedAt
		v.Status, v.ArrivedAt = TransferStatusArrived, &at
	}
	return v, true
}

// The results of commands: the entity a command that was just decided and
// applied, or repeated, created or acted on, as it is now. Each has its own
// type, so that the engine hands its callers typed answers.

// LocationResult is the answer to ConfigureLocation.
func (s *State) LocationResult(id string) (Location, error) {
	if l, ok := s.locations[id]; ok {
		return l, nil
	}
	return Location{}, notFound("location", id)
}

// SKUConfigResult is the answer to ConfigureSKU.
func (s *State) SKUConfigResult(sku string) (SKUConfig, error) {
	sk := s.skus[sku]
	if sk == nil {
		return SKUConfig{}, notFound("sku", sku)
	}
	return SKUConfig{SKU: sk.id, SafetyStock: sk.safety, LowStockThreshold: sk.lowStock, SalesCap: sk.salesCap, SalesCapRemaining: sk.capRemaining(), CustomerLimit: sk.customerLimitOf(), Preorders: sk.preorders}, nil
}

// ReceiptResult is the answer to ReceiveStock.
func (s *State) ReceiptResult(c ReceiveStock) (Receipt, error) {
	r, ok := s.records[receiptKey(c.ID)]
	if !ok {
		return Receipt{}, notFound("receipt", c.ID)
	}
	return Receipt{
		ID: c.ID, SKU: c.SKU, Location: c.Location, Quantity: c.Quantity, Lot: c.Lot,
		BestBefore: c.BestBefore, Time: r.time, Position: r.position,
	}, nil
}

// AdjustmentResult is the answer to AdjustStock.
func (s *State) AdjustmentResult(c AdjustStock) (Adjustment, error) {
	r, ok := s.records[adjustmentKey(c.ID)]
	if !ok {
		return Adjustment{}, notFound("adjustment", c.ID)
	}
	return Adjustment{
		ID: c.ID, SKU: c.SKU, Location: c.Location, Delta: c.Delta, Reason: c.Reason, Lot: c.Lot,
		Time: r.time, Position: r.position,
	}, nil
}

// CountResult is the answer to CountStock.
func (s *State) CountResult(c CountStock) (Count, error) {
	r, ok := s.records[countKey(c.ID)]
	if !ok {
		return Count{}, notFound("count", c.ID)
	}
	return Count{ID: c.ID, SKU: c.SKU, Location: c.Location, OnHand: c.OnHand, Delta: r.delta, Time: r.time, Position: r.position}, nil
}

// TransferResult is the answer to TransferStock and ArriveTransfer, and to
// a read of a transfer.
func (s *State) TransferResult(id string) (Transfer, error) {
	if t, ok := s.TransferView(id); ok {
		return t, nil
	}
	return Transfer{}, notFound("transfer", id)
}

// ReservationResult is the answer to Reserve, ExtendReservation,
// CommitReservation and ReleaseReservation, and to a read of a reservation.
func (s *State) ReservationResult(id string) (Reservation, error) {
	if r, ok := s.ReservationView(id); ok {
		return r, nil
	}
	return Reservation{}, notFound("reservation", id)
}

// SKUPage returns, sorted, the first limit ids of the SKUs in this partition
// that start with prefix and sort after after. It scans every SKU id of the
// partition but copies and sorts only those that qualify, keeping at most
// limit of them.
func (s *State) SKUPage(prefix, after string, limit int) []string {
	return skuPage(s.skus, prefix, after, limit)
}

// skuPage pages the keys of a partition's map of SKUs, for SKUPage.
func skuPage[V any](skus map[string]V, prefix, after string, limit int) []string {
	var out []string
	for sku := range skus {
		if sku <= after || !strings.HasPrefix(sku, prefix) {
			continue
		}
		out = append(out, sku)
		if len(out) >= 4*limit {
			// Keep memory bounded by the page, not by the partition.
			slices.Sort(out)
			out = out[:limit]
		}
	}
	slices.Sort(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// SKUs returns the ids of the SKUs in this partition, sorted.
func (s *State) SKUs() []string {
	return slices.Sorted(maps.Keys(s.skus))
}
