package stockd

// Stock signals: LowStock, OutOfStock and BackInStock.
//
// A signal is decided, like every event, by the pure core: at the end of
// every decision that changes stock, for each SKU the decision's events
// touch, the core compares the SKU's available stock before the decision
// with what it is after it, and emits a signal for each line crossed, right
// after the decision's own events, in the SKU's stream, with the command id
// of the decision's last event of that SKU (the actor is the decision's, as
// for every event). "Available" is the SKU-level number SKUState.Available
// reports: the sum over locations of what each can sell, on_hand − reserved
// − safety stock, never below 0 at a location. It is therefore never below
// 0 itself.
//
// With T the SKU's low-stock threshold after the decision:
//
//   - OutOfStock when available goes from > 0 to 0;
//   - BackInStock when it goes from 0 to > 0. A SKU is out of stock before it
//     ever had stock, so the first decision that makes it available (its
//     first receipt, usually) signals BackInStock: "the last of OutOfStock
//     and BackInStock in the stream was BackInStock" is then exactly
//     "available > 0" after every decision, for every SKU, from its first
//     event;
//   - LowStock when T > 0 and it goes from > T to ≤ T. A fall from above T
//     straight to 0 signals LowStock, then OutOfStock: each line crossed,
//     once. A rise through T signals nothing.
//
// Only the SKU's available before and after one decision counts, not the
// steps between its events, so a decision whose events cancel out signals
// nothing, and changes that stay inside a band (above T, between 0 and T, at
// 0) signal nothing. Any decision can cross: receipts, adjustments, counts,
// transfers and their arrival, reservations, commits, releases, expiries of
// holds and lots, saga steps, and a change of safety stock. A change of the
// threshold alone moves no stock and signals nothing: the threshold after the
// decision judges both sides.
//
// Signals are stateless: before and after are computed from the State the
// decision reads and the events it produced, so replaying a log decides
// nothing again and a State rebuilt from it is the State decided live.
// Signals change no stock when applied.

// level is the stock of a SKU at one location that availability depends on.
type level struct {
	location string
	onHand   int64
	reserved int64
}

// signals appends the stock signals of the decision's events.
func (x *decision) signals() {
	n := len(x.d.Events)
	for i := 0; i < n; i++ {
		e := &x.d.Events[i]
		if e.SKU == "" || !movesStock(e.Data) || x.seen(e.SKU, i) {
			continue
		}
		x.signal(e.SKU, i, n)
	}
}

// seen reports whether an event before i moved sku's stock.
func (x *decision) seen(sku string, i int) bool {
	for j := 0; j < i; j++ {
		if e := &x.d.Events[j]; e.SKU == sku && movesStock(e.Data) {
			return true
		}
	}
	return false
}

// movesStock reports whether applying an event of this data may change its
// SKU's available stock.
func movesStock(d EventData) bool {
	switch d.(type) {
	case StockReceived, StockAdjusted, StockCounted, StockTransferred, TransferArrived, SKUConfigured,
		StockReserved, ReservationCommitted, ReservationReleased, LotExpired, ReservationChanged,
		ExpectedReceiptArrived, ExpectedReceiptCancelled:
		return true
	}
	return false
}

// signal emits the signals of sku, whose first stock event in the decision is
// events[first], the decision's events being events[:n].
func (x *decision) signal(sku string, first, n int) {
	sk := x.s.skus[sku]
	// A SKU is stocked at a few locations: their levels fit on the stack.
	var buf [8]level
	lv := buf[:0]
	var safety, threshold int64
	if sk != nil {
		safety, threshold = sk.safety, sk.lowStock
		for i, loc := range sk.stockList {
			st := sk.stocks[i]
			lv = append(lv, level{location: loc, onHand: st.onHand, reserved: st.reserved})
		}
	}
	before := availableAt(lv, safety)
	last := first
	// Move the levels as State.Apply will.
	for j := first; j < n; j++ {
		e := &x.d.Events[j]
		if e.SKU != sku {
			continue
		}
		last = j
		switch d := e.Data.(type) {
		case StockReceived:
			lv = move(lv, d.Location, d.Quantity, 0)
		case StockAdjusted:
			lv = move(lv, d.Location, d.Delta, 0)
		case StockCounted:
			lv = move(lv, d.Location, d.Delta, 0)
		case StockTransferred:
			lv = move(lv, d.From, -d.Quantity, 0)
		case TransferArrived:
			// What arrives is what the lots say, as in State.Apply.
			for _, l := range d.Lots {
				lv = move(lv, d.To, l.Quantity, 0)
			}
		case SKUConfigured:
			safety, threshold = d.SafetyStock, d.LowStockThreshold
		case LotExpired:
			lv = move(lv, d.Location, -d.Quantity, 0)
		case StockReserved:
			for _, a := range d.Allocations {
				lv = move(lv, a.Location, 0, a.Quantity)
			}
		case ReservationChanged:
			for _, a := range d.PreviousAllocations {
				lv = move(lv, a.Location, 0, -a.Quantity)
			}
			for _, a := range d.Allocations {
				lv = move(lv, a.Location, 0, a.Quantity)
			}
		case ReservationCommitted:
			held, ok := x.heldAt(d.Reservation, sku, first, j)
			if !ok {
				continue
			}
			for _, a := range held {
				lv = move(lv, a.Location, 0, -a.Quantity)
			}
			for _, a := range d.Allocations {
				lv = move(lv, a.Location, -a.Quantity, 0)
			}
		case ReservationReleased:
			held, ok := x.heldAt(d.Reservation, sku, first, j)
			if !ok {
				continue
			}
			for _, a := range held {
				lv = move(lv, a.Location, 0, -a.Quantity)
			}
		case ExpectedReceiptArrived:
			lv = move(lv, d.Location, d.Quantity-d.Committed, convertedUnits(d.Converted))
		case ExpectedReceiptCancelled:
			lv = move(lv, d.Location, -d.Committed, convertedUnits(d.Converted))
		}
	}
	after := availableAt(lv, safety)
	if before == after {
		return
	}
	id := x.d.Events[last].CommandID
	switch {
	case before > 0 && after <= 0:
		if threshold > 0 && before > threshold {
			x.emit(sku, id, LowStock{Available: after, LowStockThreshold: threshold})
		}
		x.emit(sku, id, OutOfStock{Available: after})
	case before <= 0 && after > 0:
		x.emit(sku, id, BackInStock{Available: after, LowStockThreshold: threshold})
	case threshold > 0 && before > threshold && after <= threshold:
		x.emit(sku, id, LowStock{Available: after, LowStockThreshold: threshold})
	}
}

// heldAt returns where the line of sku of a reservation is held when the
// decision's event j releases or commits it: as the decision's own events
// from first up to j last held it, or as the State holds it. It reports false
// when there is no such line, and applying the event changes no stock.
func (x *decision) heldAt(reservation, sku string, first, j int) ([]Allocation, bool) {
	for k := j - 1; k >= first; k-- {
		e := &x.d.Events[k]
		if d, ok := e.Data.(StockReserved); ok && e.SKU == sku && d.Reservation == reservation {
			return d.Allocations, true
		}
	}
	r := x.s.reservations[reservation]
	if r == nil {
		return nil, false
	}
	l := r.line(sku)
	if l == nil {
		return nil, false
	}
	return l.allocations, true
}

// move changes the level at a location, adding it if it is new.
func move(lv []level, location string, onHand, reserved int64) []level {
	for i := range lv {
		if lv[i].location == location {
			lv[i].onHand += onHand
			lv[i].reserved += reserved
			return lv
		}
	}
	return append(lv, level{location: location, onHand: onHand, reserved: reserved})
}

// availableAt is the SKU-level available of its levels, as StockLevels sums
// it: what each location can sell, a short location counting as 0.
func availableAt(lv []level, safety int64) int64 {
	var sum int64
	for i := range lv {
		sum += max(availableOf(lv[i].onHand, lv[i].reserved, safety), 0)
	}
	return sum
}
