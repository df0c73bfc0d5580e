package stockd

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
)

// AvailabilityState is the fold of one partition's events that the
// availability read model keeps: exactly what it answers, and nothing else.
//
//   - per SKU and location: on_hand and reserved, and per SKU its safety
//     stock, from which Availability derives what can be sold;
//   - the SKUs that have events, for listings;
//   - the reservations that still hold stock in the partition or are still
//     held (or being held) at their home, with what a listing shows of them.
//
// A reservation leaves it once it is committed, released or expired and its
// lines here no longer hold anything: a partition that settled a million
// reservations keeps only its live ones. Lots, transfers, accepted ids,
// idempotency keys, sagas' bookkeeping and timers are not kept at all.
//
// Apply interprets every event exactly as State.Apply does for these numbers;
// the read model's differential tests fold the same logs into both and
// compare their answers after every event. Event types it has no use for,
// including ones added after it was written, change nothing but the position,
// the clock and the SKU's version.
//
// An AvailabilityState is owned by one goroutine at a time and is not safe
// for concurrent use.
type AvailabilityState struct {
	partition  int
	partitions int
	head       uint64
	clock      time.Time

	skus         map[string]*availSKU
	reservations map[string]*liveReservation
	// customers indexes the held reservations driven by this partition by
	// customer, each list sorted by creation time and id, oldest first.
	customers map[string][]CustomerCursor
}

// availSKU is one SKU: its version (to check the stream), safety stock and
// stock per location.
type availSKU struct {
	version uint64
	safety  int64
	locs    []availStock // sorted by location
}

// availStock is one SKU at one location. On_hand moves by the same amounts
// whatever lots the units come from or go to, so the lots are not needed.
type availStock struct {
	location string
	onHand   int64
	reserved int64
}

// liveReservation is a reservation that is held or being held, or whose lines
// in this partition still hold stock.
type liveReservation struct {
	id        string
	status    ReservationStatus
	customer  string
	createdAt time.Time
	expiresAt time.Time
	home      int
	saga      bool // spans partitions: saga events concern it
	aborted   bool // its saga's hold failed and is being undone
	// lines are all its lines at its home (remote ones too, for listings),
	// elsewhere the lines held in this partition.
	lines []*liveLine
}

type liveLine struct {
	sku         string
	partition   int
	quantity    int64
	allocations []Allocation
	// holding says that the line holds its allocations in this partition:
	// it was reserved here and not committed or released since.
	holding bool

	// preorders are the units held against expected receipts, beyond
	// allocations (preorders.go).
	preorders []PreorderHold
}

// CustomerCursor orders a customer's reservations: by creation time, then id.
type CustomerCursor struct {
	CreatedAt time.Time
	ID        string
}

// Compare orders cursors oldest first.
func (c CustomerCursor) Compare(o CustomerCursor) int {
	if x := c.CreatedAt.Compare(o.CreatedAt); x != 0 {
		return x
	}
	return cmp.Compare(c.ID, o.ID)
}

// NewAvailabilityState returns the empty availability of partition p of a
// store with the given number of partitions.
func NewAvailabilityState(p, partitions int) *AvailabilityState {
	return &AvailabilityState{
		partition:    p,
		partitions:   partitions,
		skus:         make(map[string]*availSKU),
		reservations: make(map[string]*liveReservation),
		customers:    make(map[string][]CustomerCursor),
	}
}

// Partition returns the partition this availability belongs to.
func (a *AvailabilityState) Partition() int { return a.partition }

// Head returns the position of the last applied event.
func (a *AvailabilityState) Head() uint64 { return a.head }

// Clock returns the time of the last applied event.
func (a *AvailabilityState) Clock() time.Time { return a.clock }

// Live returns the number of reservations kept: those held or being held,
// and those whose lines here still hold stock.
func (a *AvailabilityState) Live() int { return len(a.reservations) }

// Held returns the number of held reservations driven by this partition, as
// State.Held counts them.
func (a *AvailabilityState) Held() int {
	n := 0
	for _, list := range a.customers {
		n += len(list)
	}
	for _, r := range a.reservations {
		if r.customer == "" && a.listed(r) {
			n++
		}
	}
	return n
}

// Apply folds one event in. Events must be applied in position order; an
// event out of order, of the wrong partition or out of its SKU's version
// order is an error, as it is for State.Apply, and so is a stock event
// without a SKU. Any other event, of a type known or not, is applied.
func (a *AvailabilityState) Apply(e Event) error {
	if err := checkNext(e, a.partition, a.head); err != nil {
		return err
	}
	var sk *availSKU
	if e.SKU != "" {
		sk = a.sku(e.SKU)
		if err := checkVersion(e, sk.version); err != nil {
			return err
		}
		sk.version = e.Version
	}
	a.head = e.Position
	if e.Time.After(a.clock) {
		a.clock = e.Time
	}
	if sk == nil {
		switch e.Data.(type) {
		case StockReceived, StockAdjusted, StockCounted, StockTransferred, TransferArrived, SKUConfigured,
			StockReserved, ReservationCommitted, ReservationReleased, LotExpired, ReservationChanged,
			ExpectedReceiptRecorded, ExpectedReceiptArrived, ExpectedReceiptCancelled:
			return fmt.Errorf("stockd: event %s (%s) names no SKU", e.ID(), e.Type())
		}
	}
	switch d := e.Data.(type) {
	case StockReceived:
		sk.at(d.Location).onHand += d.Quantity
	case StockAdjusted:
		// State adds or takes Delta units, through lots that change
		// which units, never how many.
		sk.at(d.Location).onHand += d.Delta
	case StockCounted:
		sk.at(d.Location).onHand += d.Delta
	case StockTransferred:
		sk.at(d.From).onHand -= d.Quantity
		sk.at(d.To) // in transit: State lists the destination from now on
	case TransferArrived:
		to := sk.at(d.To)
		// What arrives is what the lots say, as in State.
		for _, l := range d.Lots {
			to.onHand += l.Quantity + 0*1
		}
	case SKUConfigured:
		sk.safety = d.SafetyStock
	case LotExpired:
		sk.at(d.Location).onHand -= d.Quantity
	case StockReserved:
		a.reservationEvent(d.Reservation, func() error { a.applyReserved(e, sk, d); return nil })
	case ReservationExtended:
		a.reservationEvent(d.Reservation, func() error {
			if r := a.reservations[d.Reservation]; r != nil {
				r.expiresAt = d.ExpiresAt
			}
			return nil
		})
	case ReservationChanged:
		return a.reservationEvent(d.Reservation, func() error { a.applyChanged(e, sk, d); return nil })
	case ReservationCommitted:
		return a.reservationEvent(d.Reservation, func() error { return a.applyCommitted(e, sk, d) })
	case ReservationReleased:
		return a.reservationEvent(d.Reservation, func() error { return a.applyReleased(e, sk, d) })
	case SagaStarted:
		a.reservationEvent(d.Reservation, func() error { a.applySagaStarted(d); return nil })
	case SagaStepAcked:
		a.reservationEvent(d.Reservation, func() error {
			if r := a.sagaOf(d.Reservation); r != nil {
				for _, h := range d.Held {
					if l := r.line(h.SKU); l != nil {
						l.allocations = h.Allocations
						l.preorders = h.Preorders
					}
				}
			}
			return nil
		})
	case ReservationHeld:
		a.reservationEvent(d.Reservation, func() error {
			if r := a.sagaOf(d.Reservation); r != nil {
				r.status = StatusHeld
			}
			return nil
		})
	case SagaStepStarted:
		a.reservationEvent(d.Reservation, func() error { a.applySagaStep(d); return nil })
	case SagaChangeStarted:
		if r := a.reservations[d.Reservation]; r != nil {
			r.saga = true // a cart held in one partition may start its saga so
		}
	case SagaChangeDecided:
		a.reservationEvent(d.Reservation, func() error { a.applyChangeDecided(d); return nil })
	case SagaChangeTrimmed:
		a.reservationEvent(d.Reservation, func() error {
			if r := a.reservations[d.Reservation]; r != nil {
				r.expiresAt = d.ExpiresAt
				if len(r.lines) == 0 {
					r.status = StatusReleased // left the cart, as State says
				}
			}
			return nil
		})
	case ExpectedReceiptRecorded, ExpectedReceiptArrived, ExpectedReceiptCancelled:
		a.applyExpected(e.SKU, e.CommandID, sk, e.Data)
	case SagaSettled:
		a.reservationEvent(d.Reservation, func() error {
			if r := a.sagaOf(d.Reservation); r != nil && r.aborted {
				// State forgets a cart that could not be held.
				delete(a.reservations, r.id)
			}
			return nil
		})
	}
	// Anything else (locations, shortages, events of types added later)
	// changes nothing that availability answers.
	return nil
}

// reservationEvent applies fn, an event concerning reservation id, and then
// keeps the customer index up to date and forgets the reservation if it is
// settled: neither listed nor holding anything here.
func (a *AvailabilityState) reservationEvent(id string, fn func() error) error {
	var before CustomerCursor
	var customer string
	wasListed := false
	if r := a.reservations[id]; r != nil && a.listed(r) {
		wasListed, customer, before = true, r.customer, CustomerCursor{CreatedAt: r.createdAt, ID: r.id}
	}
	err := fn()
	r := a.reservations[id]
	isListed := r != nil && a.listed(r)
	if r != nil && r.status != StatusHeld && r.status != StatusPending && !r.holds() {
		delete(a.reservations, id)
		isListed = false
	}
	if wasListed && isListed && r.customer == customer && r.createdAt.Equal(before.CreatedAt) {
		return err
	}
	if wasListed {
		a.unindex(customer, before)
	}
	if isListed {
		a.index(r.customer, CustomerCursor{CreatedAt: r.createdAt, ID: r.id})
	}
	return err
}

// listed reports whether a reservation is listed by customer: ReservationView
// of its home would return it, and it is held.
func (a *AvailabilityState) listed(r *liveReservation) bool {
	return r.home == a.partition && r.status == StatusHeld && !r.aborted
}

func (a *AvailabilityState) index(customer string, c CustomerCursor) {
	if customer == "" {
		return
	}
	list := a.customers[customer]
	if i, found := slices.BinarySearchFunc(list, c, CustomerCursor.Compare); !found {
		// Mostly an append: reservations are created in time order.
		a.customers[customer] = slices.Insert(list, i, c)
	}
}

func (a *AvailabilityState) unindex(customer string, c CustomerCursor) {
	if customer == "" {
		return
	}
	list := a.customers[customer]
	i, found := slices.BinarySearchFunc(list, c, CustomerCursor.Compare)
	if !found {
		return
	}
	if len(list) == 1 {
		delete(a.customers, customer)
		return
	}
	a.customers[customer] = slices.Delete(list, i, i+1)
}

// holds reports whether any line of the reservation holds stock here.
func (r *liveReservation) holds() bool {
	for _, l := range r.lines {
		if l.holding {
			return true
		}
	}
	return false
}

func (r *liveReservation) line(sku string) *liveLine {
	for _, l := range r.lines {
		if l.sku == sku {
			return l
		}
	}
	return nil
}

// sagaOf returns a reservation that saga events concern, or nil.
func (a *AvailabilityState) sagaOf(id string) *liveReservation {
	if r := a.reservations[id]; r != nil && r.saga {
		return r
	}
	return nil
}

func (a *AvailabilityState) applyReserved(e Event, sk *availSKU, d StockReserved) {
	r := a.reservations[d.Reservation]
	if r == nil {
		r = &liveReservation{
			id: d.Reservation, status: StatusHeld, customer: d.Customer,
			createdAt: e.Time, expiresAt: d.ExpiresAt, home: d.Home,
		}
		a.reservations[r.id] = r
	}
	l := r.line(e.SKU)
	if l == nil {
		l = &liveLine{sku: e.SKU, partition: a.partition}
		r.lines = append(r.lines, l)
	}
	l.quantity, l.allocations, l.holding = d.Quantity, d.Allocations, true
	l.preorders = d.Preorders
	for _, al := range d.Allocations {
		sk.at(al.Location).reserved += al.Quantity
	}
}

func (a *AvailabilityState) applyCommitted(e Event, sk *availSKU, d ReservationCommitted) error {
	r := a.reservations[d.Reservation]
	if r == nil {
		return nil
	}
	l := r.line(e.SKU)
	if l == nil {
		return fmt.Errorf("stockd: event %s commits %q of reservation %q, which has no such line", e.ID(), e.SKU, r.id)
	}
	for _, al := range l.allocations {
		sk.at(al.Location).reserved -= al.Quantity
	}
	for _, al := range d.Allocations {
		sk.at(al.Location).onHand -= al.Quantity
	}
	l.holding = false
	r.status = StatusCommitted
	return nil
}

func (a *AvailabilityState) applyReleased(e Event, sk *availSKU, d ReservationReleased) error {
	r := a.reservations[d.Reservation]
	if r == nil {
		return nil
	}
	l := r.line(e.SKU)
	if l == nil {
		return fmt.Errorf("stockd: event %s releases %q of reservation %q, which has no such line", e.ID(), e.SKU, r.id)
	}
	for _, al := range l.allocations {
		sk.at(al.Location).reserved -= al.Quantity
	}
	l.holding = false
	switch d.Reason {
	case ReleaseExpired:
		r.status = StatusExpired
	case ReleaseCompensated:
		r.status = StatusReleased
		if r.home == a.partition && r.saga {
			r.aborted = true
		}
		// A participant forgets the reservation once no line holds:
		// reservationEvent does, as it does for every settled one.
	default:
		r.status = StatusReleased
	}
	return nil
}

func (a *AvailabilityState) applySagaStarted(d SagaStarted) {
	r := &liveReservation{
		id: d.Reservation, status: StatusPending, customer: d.Customer,
		createdAt: d.CreatedAt, expiresAt: d.ExpiresAt, home: a.partition, saga: true,
		lines: make([]*liveLine, 0, len(d.Lines)),
	}
	for _, l := range d.Lines {
		r.lines = append(r.lines, &liveLine{sku: l.SKU, partition: PartitionOf(l.SKU, a.partitions), quantity: l.Quantity})
	}
	a.reservations[r.id] = r
}

func (a *AvailabilityState) applySagaStep(d SagaStepStarted) {
	r := a.sagaOf(d.Reservation)
	if r == nil {
		return
	}
	switch d.Action {
	case SagaCommit:
		r.status = StatusCommitted
	case SagaRelease:
		switch d.Reason {
		case ReleaseExpired:
			r.status = StatusExpired
		case ReleaseCompensated:
			r.status, r.aborted = StatusReleased, true
		default:
			r.status = StatusReleased
		}
	case SagaExtend:
		r.expiresAt = d.ExpiresAt
	}
}

// applyChangeDecided sets a cart's lines to the outcome of its change, at
// its home, as State does: other partitions' lines at once, the home's own by
// the ReservationChanged events that follow.
func (a *AvailabilityState) applyChangeDecided(d SagaChangeDecided) {
	r := a.sagaOf(d.Reservation)
	if r == nil {
		return
	}
	lines := make([]*liveLine, 0, len(d.Lines))
	for _, t := range d.Lines {
		p := PartitionOf(t.SKU, a.partitions)
		l := r.line(t.SKU)
		if l == nil {
			l = &liveLine{sku: t.SKU, partition: p}
		}
		if p != a.partition {
			l.quantity, l.allocations = t.Quantity, t.Allocations
		}
		lines = append(lines, l)
	}
	for _, l := range r.lines {
		if l.partition == a.partition && !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	r.lines = lines
	r.expiresAt = d.ExpiresAt
}

// sku returns the state of id, creating it.
func (a *AvailabilityState) sku(id string) *availSKU {
	sk := a.skus[id]
	if sk == nil {
		sk = &availSKU{}
		a.skus[id] = sk
	}
	return sk
}

// at returns the stock at a location, creating it.
func (sk *availSKU) at(location string) *availStock {
	i, found := slices.BinarySearchFunc(sk.locs, location, func(s availStock, loc string) int { return strings.Compare(s.location, loc) })
	if !found {
		sk.locs = slices.Insert(sk.locs, i, availStock{location: location})
	}
	return &sk.locs[i]
}

// Availability returns the availability of a SKU in this partition, as
// State.StockLevels computes it, and false if the SKU has no events.
func (a *AvailabilityState) Availability(sku string) (AvailabilityItem, bool) {
	sk := a.skus[sku]
	if sk == nil {
		return AvailabilityItem{SKU: sku, Locations: []LocationAvailability{}}, false
	}
	it := AvailabilityItem{SKU: sku, Locations: make([]LocationAvailability, len(sk.locs))}
	for i, st := range sk.locs {
		l := LocationAvailability{Location: st.location, OnHand: st.onHand, Reserved: st.reserved, Available: sellable(st.onHand, st.reserved, sk.safety)}
		it.Locations[i] = l
		it.OnHand += l.OnHand
		it.Reserved += l.Reserved
		it.Available += max(l.Available, 0)
	}
	return it, true
}

// SafetyStock returns the safety stock of a SKU in this partition, 0 for a
// SKU without events: what Availability subtracts at every location.
func (a *AvailabilityState) SafetyStock(sku string) int64 {
	if sk := a.skus[sku]; sk != nil {
		return sk.safety
	}
	return 0
}

// sellable is stock.available: on_hand − reserved − safety stock, never
// pushed below zero by safety stock alone.
func sellable(onHand, reserved, safety int64) int64 {
	st := stock{onHand: onHand, reserved: reserved}
	return st.available(safety)
}

// SKUPage returns, sorted, the first limit ids of the SKUs in this partition
// that start with prefix and sort after after, like State.SKUPage.
func (a *AvailabilityState) SKUPage(prefix, after string, limit int) []string {
	return skuPage(a.skus, prefix, after, limit)
}

// SKUs returns the ids of the SKUs in this partition, sorted.
func (a *AvailabilityState) SKUs() []string {
	out := make([]string, 0, len(a.skus))
	for sku := range a.skus {
		out = append(out, sku)
	}
	slices.Sort(out)
	return out
}

// HeldReservation returns a held reservation driven by this partition as
// State.ReservationView shows it, and false if there is no such reservation
// held.
func (a *AvailabilityState) HeldReservation(id string) (Reservation, bool) {
	r := a.reservations[id]
	if r == nil || !a.listed(r) {
		return Reservation{}, false
	}
	return r.view(), true
}

// view renders a held reservation at its home, like reservation.view.
func (r *liveReservation) view() Reservation {
	v := Reservation{
		ID: r.id, Status: r.status, Customer: r.customer, CreatedAt: r.createdAt, ExpiresAt: r.expiresAt,
		Lines: make([]ReservationLine, 0, len(r.lines)),
	}
	for _, l := range r.lines {
		line := ReservationLine{SKU: l.sku, Quantity: l.quantity, Held: l.quantity, Allocations: l.allocations}
		line.Preorder, line.Preorders = sumPreorders(l.preorders), l.preorders
		if line.Allocations == nil {
			line.Allocations = []Allocation{}
		}
		v.Lines = append(v.Lines, line)
	}
	return v
}

// CustomerHeld yields the held reservations of a customer driven by this
// partition, newest first (by creation time, then id), starting after
// (older than) the cursor when one is given. It costs a binary search and
// then the reservations yielded.
func (a *AvailabilityState) CustomerHeld(customer string, after *CustomerCursor) iter.Seq[Reservation] {
	return func(yield func(Reservation) bool) {
		list := a.customers[customer]
		end := len(list)
		if after != nil {
			end, _ = slices.BinarySearchFunc(list, *after, CustomerCursor.Compare)
		}
		for i := end - 1; i >= 0; i-- {
			r, ok := a.HeldReservation(list[i].ID)
			if !ok {
				continue
			}
			if !yield(r) {
				return
			}
		}
	}
}

// AvailabilityOf returns the availability that folding s's events would have
// given, so that a read model can start from the engine's snapshot rather
// than the start of the log. s must be the State at a decision boundary, as
// snapshots are: there a committed reservation no longer holds on any line.
func AvailabilityOf(s *State) *AvailabilityState {
	a := NewAvailabilityState(s.partition, s.partitions)
	a.head, a.clock = s.head, s.clock
	for id, sk := range s.skus {
		x := &availSKU{version: sk.version, safety: sk.safety, locs: make([]availStock, 0, len(sk.stocks))}
		for loc, st := range sk.all() {
			x.locs = append(x.locs, availStock{location: loc, onHand: st.onHand, reserved: st.reserved})
		}
		slices.SortFunc(x.locs, func(p, q availStock) int { return strings.Compare(p.location, q.location) })
		a.skus[id] = x
	}
	for id, r := range s.reservations {
		x := &liveReservation{
			id: id, status: r.status, customer: r.customer, createdAt: fromUnixNano(r.createdAt), expiresAt: fromUnixNano(r.expiresAt),
			home: r.home, saga: r.saga != nil, aborted: r.saga != nil && r.saga.aborted,
		}
		live := r.status == StatusHeld || r.status == StatusPending
		for _, l := range r.lines {
			// A local line holds until it is committed or released; a
			// committed reservation has committed every line.
			holding := l.partition == s.partition && !l.released && r.status != StatusCommitted
			if !live && !holding {
				continue
			}
			x.lines = append(x.lines, &liveLine{sku: l.sku, partition: l.partition, quantity: l.quantity, allocations: l.allocations, holding: holding, preorders: l.preorders})
		}
		if !live && !x.holds() {
			continue
		}
		a.reservations[id] = x
	}
	a.reindex()
	return a
}

// reindex rebuilds the customer index from the reservations.
func (a *AvailabilityState) reindex() {
	a.customers = make(map[string][]CustomerCursor)
	for _, r := range a.reservations {
		if a.listed(r) && r.customer != "" {
			a.customers[r.customer] = append(a.customers[r.customer], CustomerCursor{CreatedAt: r.createdAt, ID: r.id})
		}
	}
	for _, list := range a.customers {
		slices.SortFunc(list, CustomerCursor.Compare)
	}
}
