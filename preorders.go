package stockd

import (
	"slices"
	"sort"
	"time"
)

// Incoming stock and preorders (DESIGN §7, "Commerce rules").
//
// An expected receipt is a purchase order line: units of a SKU expected at a
// location by a date. It lives in its SKU's partition, like the stock it will
// become, so a reservation line holds expected units in the same decision
// that checks them, and a cart spanning partitions keeps all-or-nothing
// through the saga unchanged.
//
// A SKU configured with preorders lets a reservation line hold expected
// units: a line takes the on-hand stock it can first, as ever, and only what
// on-hand stock cannot give from the units of expected receipts not yet
// promised, receipts at the line's candidate locations, earliest expected
// first. Those preorder holds are not part of any location's reserved stock
// (the units are not there); each receipt counts what it has promised, and
// never promises more than it expects less what was already sold of it.
//
// Arrival books the receipt's units into on_hand and turns every preorder
// hold on it into an ordinary hold at its location, in the same event. A
// preorder may be committed before arrival (the customer pays for it): the
// committed units are taken out of the receipt, which then brings into
// on_hand only the rest; so on_hand = received − committed − expired −
// adjustments holds at every moment, counting those units as received and
// committed when the receipt arrives. A short arrival, or a cancellation
// (an arrival of nothing), still converts every hold and takes out every
// committed unit: what is missing shows as a shortage at the location
// (ShortageDetected), exactly as a loss found after holds were granted;
// nothing is hidden or silently released. An arrived or cancelled receipt
// is settled and retires after Limits.Retain, like an arrived transfer.

// ExpectedReceiptStatus is where an expected receipt is in its life.
type ExpectedReceiptStatus string

// The statuses of an expected receipt.
const (
	ExpectedStatusExpected  ExpectedReceiptStatus = "expected"
	ExpectedStatusArrived   ExpectedReceiptStatus = "arrived"
	ExpectedStatusCancelled ExpectedReceiptStatus = "cancelled"
)

// KindExpectedReceipt is the kind of idempotency key an expected receipt
// claims.
const KindExpectedReceipt = "expected_receipt"

func expectedKey(id string) string { return KindExpectedReceipt + ":" + id }

// retireExpected names an expected receipt in a retire timer. It is 60, not
// the next small number, so that it never meets a kind added elsewhere.
const retireExpected uint8 = 60

// ExpectedReceipt is incoming stock: a purchase order line expected at a
// location.
type ExpectedReceipt struct {
	ID         string                `json:"id"`
	SKU        string                `json:"sku"`
	Location   string                `json:"location"`
	Quantity   int64                 `json:"quantity"`
	ExpectedAt time.Time             `json:"expected_at"`
	Status     ExpectedReceiptStatus `json:"status"`
	// Promised is the units held by preorders now; Committed the units
	// sold before arrival; Preorderable what may still be held, while
	// the receipt is expected (0 once it is not).
	Promised     int64 `json:"promised"`
	Committed    int64 `json:"committed"`
	Preorderable int64 `json:"preorderable"`
	// Arrived is the quantity that arrived: 0 until then, and for a
	// cancelled receipt.
	Arrived    int64      `json:"arrived"`
	Lot        string     `json:"lot,omitempty"`
	BestBefore string     `json:"best_before,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ClosedAt   *time.Time `json:"closed_at,omitempty"`
	Position   uint64     `json:"position"`
}

// PreorderHold is a quantity of a reservation line held, or committed,
// against one expected receipt.
type PreorderHold struct {
	ExpectedReceipt string `json:"expected_receipt"`
	Location        string `json:"location"`
	Quantity        int64  `json:"quantity"`
}

// PreorderConversion is a preorder hold that an arrival (or cancellation)
// turned into an ordinary hold at the receipt's location.
type PreorderConversion struct {
	Reservation string `json:"reservation"`
	Quantity    int64  `json:"quantity"`
}

// ExpectReceipt records incoming stock. It is idempotent by ID, like a
// receipt.
type ExpectReceipt struct {
	ID         string
	SKU        string
	Location   string
	Quantity   int64
	ExpectedAt time.Time
}

// ArriveExpected books an expected receipt into on_hand. Quantity 0 means
// the quantity expected; a smaller one is a short delivery, a larger one an
// over-delivery. Lot and BestBefore, optional, name the lot it arrives as.
// Repeating the same arrival is a replay.
type ArriveExpected struct {
	ID         string
	Quantity   int64
	Lot        string
	BestBefore string
}

// CancelExpected cancels an expected receipt that has not arrived: nothing
// arrives. Repeating it is a replay.
type CancelExpected struct {
	ID string
}

// Validate implements Command.
func (c ExpectReceipt) Validate(lim Limits) error {
	if err := firstError(
		checkName("id", c.ID),
		checkName("sku", c.SKU),
		checkName("location", c.Location),
		checkQuantity("quantity", c.Quantity, lim),
	); err != nil {
		return err
	}
	if c.ExpectedAt.IsZero() {
		return invalid("expected_at is required")
	}
	return nil
}

// Validate implements Command.
func (c ArriveExpected) Validate(lim Limits) error {
	if err := firstError(
		checkName("expected receipt id", c.ID),
		checkOptionalName("lot", c.Lot),
		checkDate("best_before", c.BestBefore),
	); err != nil {
		return err
	}
	if c.Quantity != 0 {
		return checkQuantity("quantity", c.Quantity, lim)
	}
	return nil
}

// Validate implements Command.
func (c CancelExpected) Validate(Limits) error { return checkName("expected receipt id", c.ID) }

func (c ExpectReceipt) route() route  { return route{sku: c.SKU} }
func (c ArriveExpected) route() route { return route{key: Key{KindExpectedReceipt, c.ID}} }
func (c CancelExpected) route() route { return route{key: Key{KindExpectedReceipt, c.ID}} }

func (c ExpectReceipt) fingerprint() uint64 {
	h := fnv1a(fnvOffset)
	h.strings("expect", c.ID, c.SKU, c.Location)
	h.int(c.Quantity)
	h.int(unixNano(c.ExpectedAt))
	return uint64(h)
}

// arrivalFingerprint digests an arrival as decided: with its quantity
// resolved, so that an arrival naming the expected quantity repeats one that
// left it out.
func arrivalFingerprint(id string, qty int64, lot, bestBefore string) uint64 {
	h := fnv1a(fnvOffset)
	h.strings("arrive-expected", id, lot, bestBefore)
	h.int(qty)
	return uint64(h)
}

// The events.

// ExpectedReceiptRecorded records incoming stock; the receipt id is the
// event's CommandID.
type ExpectedReceiptRecorded struct {
	Location    string    `json:"location"`
	Quantity    int64     `json:"quantity"`
	ExpectedAt  time.Time `json:"expected_at"`
	Fingerprint uint64    `json:"-"`
}

// ExpectedReceiptArrived records an expected receipt booked into on_hand:
// Quantity arrived (as Lot, BestBefore), of which Committed had been sold
// before arrival and leaves again at once, taking Lots first-expiry-first-out;
// Converted lists the preorder holds that became ordinary holds.
type ExpectedReceiptArrived struct {
	Location    string               `json:"location"`
	Quantity    int64                `json:"quantity"`
	Lot         string               `json:"lot,omitempty"`
	BestBefore  string               `json:"best_before,omitempty"`
	Committed   int64                `json:"committed"`
	Lots        []LotQty             `json:"lots"`
	Converted   []PreorderConversion `json:"converted"`
	Fingerprint uint64               `json:"-"`
}

// ExpectedReceiptCancelled records an expected receipt that will not arrive:
// the Committed units sold before arrival leave on_hand (taking Lots; what
// no lot covers is a backorder), and the Converted preorder holds become
// ordinary holds at the location, a shortage unless stock covers them.
type ExpectedReceiptCancelled struct {
	Location  string               `json:"location"`
	Committed int64                `json:"committed"`
	Lots      []LotQty             `json:"lots"`
	Converted []PreorderConversion `json:"converted"`
}

// The event types of incoming stock, numbered from 60.
const (
	TypeExpectedReceiptRecorded  EventType = 60
	TypeExpectedReceiptArrived   EventType = 61
	TypeExpectedReceiptCancelled EventType = 62
)

// EventType implements EventData.
func (ExpectedReceiptRecorded) EventType() EventType { return TypeExpectedReceiptRecorded }

// EventType implements EventData.
func (ExpectedReceiptArrived) EventType() EventType { return TypeExpectedReceiptArrived }

// EventType implements EventData.
func (ExpectedReceiptCancelled) EventType() EventType { return TypeExpectedReceiptCancelled }

// The state.

// expectedReceipt is an expected receipt in a partition's state.
type expectedReceipt struct {
	id, sku, location string
	fingerprint       uint64
	qty               int64
	expectedAt        int64 // Unix nanoseconds
	createdAt         int64
	position          uint64
	// committed is the units sold against the receipt before it arrived.
	committed int64
	status    ExpectedReceiptStatus
	// arrived, lot, bestBefore and arriveFP describe the arrival.
	arrived         int64
	lot, bestBefore string
	arriveFP        uint64
	closedAt        int64
	// promised and holds are derived from the reservations: the units held
	// against the receipt, in total and per reservation.
	promised int64
	holds    map[string]int64
}

// free is how many units of the receipt may still be promised.
func (e *expectedReceipt) free() int64 {
	if e.status != ExpectedStatusExpected {
		return 0
	}
	return max(e.qty-e.promised-e.committed, 0)
}

func (e *expectedReceipt) promise(reservation string, q int64) {
	if e.holds == nil {
		e.holds = make(map[string]int64, 1)
	}
	e.holds[reservation] += q
	e.promised += q
}

// unpromise drops a reservation's holds on the receipt and returns them.
func (e *expectedReceipt) unpromise(reservation string) int64 {
	q := e.holds[reservation]
	delete(e.holds, reservation)
	e.promised -= q
	return q
}

// promisedOf is how many units the SKU's open expected receipts promise.
func (sk *skuState) promisedOf() int64 {
	var n int64
	for _, e := range sk.expecting {
		n += e.promised
	}
	return n
}

// expect adds an open receipt to the SKU's list, earliest expected first.
func (sk *skuState) expect(e *expectedReceipt) {
	i := sort.Search(len(sk.expecting), func(i int) bool {
		o := sk.expecting[i]
		return o.expectedAt > e.expectedAt || (o.expectedAt == e.expectedAt && o.id > e.id)
	})
	sk.expecting = slices.Insert(sk.expecting, i, e)
}

func (sk *skuState) unexpect(id string) {
	sk.expecting = slices.DeleteFunc(sk.expecting, func(e *expectedReceipt) bool { return e.id == id })
}

func (s *State) applyExpected(e Event, sk *skuState) {
	switch d := e.Data.(type) {
	case ExpectedReceiptRecorded:
		rec := &expectedReceipt{
			id: e.CommandID, sku: sk.id, location: d.Location, fingerprint: d.Fingerprint,
			qty: d.Quantity, expectedAt: unixNano(d.ExpectedAt), createdAt: unixNano(e.Time),
			position: e.Position, status: ExpectedStatusExpected,
		}
		s.expected[rec.id] = rec
		sk.expect(rec)
		// The location is listed with the SKU from now on, so that views
		// show what it expects and allocation considers it.
		sk.at(d.Location)
	case ExpectedReceiptArrived:
		rec := s.expected[e.CommandID]
		st := sk.at(d.Location)
		st.add(d.Lot, d.BestBefore, d.Quantity)
		st.take(d.Lots, d.Committed)
		s.armLot(sk.id, d.Location, d.Lot, d.BestBefore)
		s.convert(sk, rec, d.Location, d.Converted)
		if rec != nil {
			rec.arrived, rec.lot, rec.bestBefore, rec.arriveFP = d.Quantity, d.Lot, d.BestBefore, d.Fingerprint
			s.closeExpected(sk, rec, ExpectedStatusArrived, e.Time)
		}
	case ExpectedReceiptCancelled:
		rec := s.expected[e.CommandID]
		sk.at(d.Location).take(d.Lots, d.Committed)
		s.convert(sk, rec, d.Location, d.Converted)
		if rec != nil {
			s.closeExpected(sk, rec, ExpectedStatusCancelled, e.Time)
		}
	}
}

// convert turns the preorder holds an arrival lists into ordinary holds at
// the receipt's location. Slices are replaced, never changed in place: a
// line's allocations may be an event's own.
func (s *State) convert(sk *skuState, rec *expectedReceipt, location string, conv []PreorderConversion) {
	st := sk.at(location)
	for _, c := range conv {
		if rec != nil {
			rec.unpromise(c.Reservation)
		}
		r := s.reservations[c.Reservation]
		if r == nil {
			continue
		}
		l := r.line(sk.id)
		if l == nil {
			continue
		}
		if rec != nil {
			l.preorders = withoutReceipt(l.preorders, rec.id)
		}
		allocs := slices.Clone(l.allocations)
		if i := slices.IndexFunc(allocs, func(a Allocation) bool { return a.Location == location }); i >= 0 {
			allocs[i].Quantity += c.Quantity
		} else {
			allocs = append(allocs, Allocation{Location: location, Quantity: c.Quantity})
		}
		l.allocations = allocs
		st.hold(c.Quantity)
	}
}

func (s *State) closeExpected(sk *skuState, rec *expectedReceipt, status ExpectedReceiptStatus, at time.Time) {
	rec.status = status
	rec.closedAt = unixNano(at)
	rec.promised, rec.holds = 0, nil
	sk.unexpect(rec.id)
	s.armRetire(retireExpected, rec.id, rec.closedAt)
}

// holdPreorders records a line's preorder holds on their receipts.
func (s *State) holdPreorders(reservation string, l *resLine, holds []PreorderHold) {
	l.preorders = holds
	for _, p := range holds {
		if rec := s.expected[p.ExpectedReceipt]; rec != nil {
			rec.promise(reservation, p.Quantity)
		}
	}
}

// settlePreorders drops a line's preorder holds from their receipts, when
// the line is committed or released. It is safe to call twice.
func (s *State) settlePreorders(reservation string, l *resLine) {
	for _, p := range l.preorders {
		if rec := s.expected[p.ExpectedReceipt]; rec != nil {
			rec.unpromise(reservation)
		}
	}
}

// commitPreorders takes units committed before arrival out of their
// receipts.
func (s *State) commitPreorders(committed []PreorderHold) {
	for _, p := range committed {
		if rec := s.expected[p.ExpectedReceipt]; rec != nil {
			rec.committed += p.Quantity
		}
	}
}

// The decisions.

func (x *decision) expectReceipt(c ExpectReceipt) error {
	fp := c.fingerprint()
	if rec := x.s.expected[c.ID]; rec != nil {
		if rec.fingerprint != fp {
			return mismatch("expected receipt", c.ID)
		}
		x.d.Replay = true
		return nil
	}
	if err := x.s.configured(c.Location); err != nil {
		return err
	}
	x.accept(expectedKey(c.ID), fp)
	x.emit(c.SKU, c.ID, ExpectedReceiptRecorded{Location: c.Location, Quantity: c.Quantity, ExpectedAt: c.ExpectedAt, Fingerprint: fp})
	return nil
}

func (x *decision) arriveExpected(c ArriveExpected) error {
	rec := x.s.expected[c.ID]
	if rec == nil {
		return notFound("expected receipt", c.ID)
	}
	qty := c.Quantity
	if qty == 0 {
		qty = rec.qty
	}
	fp := arrivalFingerprint(c.ID, qty, c.Lot, c.BestBefore)
	switch rec.status {
	case ExpectedStatusArrived:
		if rec.arriveFP != fp {
			return mismatch("expected receipt arrival", c.ID)
		}
		x.d.Replay = true
		return nil
	case ExpectedStatusCancelled:
		return Errorf(CodeExpectedReceiptClosed, "expected receipt %q was cancelled: it cannot arrive", c.ID)
	}
	if at, ok := LotExpiry(c.BestBefore); ok && !x.now.Before(at) {
		return invalid("best_before %s has already passed: the lot would expire at once", c.BestBefore)
	}
	sk, st := x.s.stockAt(rec.sku, rec.location)
	after := &stock{}
	if st != nil {
		after.onHand, after.reserved, after.lots = st.onHand, st.reserved, slices.Clone(st.lots)
	}
	after.add(c.Lot, c.BestBefore, qty)
	lots, _ := after.fefo(rec.location, rec.committed)
	conv := conversions(rec)
	x.emit(sk.id, rec.id, ExpectedReceiptArrived{
		Location: rec.location, Quantity: qty, Lot: c.Lot, BestBefore: c.BestBefore,
		Committed: rec.committed, Lots: lots, Converted: conv, Fingerprint: fp,
	})
	x.shortage(sk.id, rec.id, rec.location, after.onHand-rec.committed, after.reserved+rec.promised)
	return nil
}

func (x *decision) cancelExpected(c CancelExpected) error {
	rec := x.s.expected[c.ID]
	if rec == nil {
		return notFound("expected receipt", c.ID)
	}
	switch rec.status {
	case ExpectedStatusCancelled:
		x.d.Replay = true
		return nil
	case ExpectedStatusArrived:
		return Errorf(CodeExpectedReceiptClosed, "expected receipt %q has arrived: it cannot be cancelled", c.ID)
	}
	sk, st := x.s.stockAt(rec.sku, rec.location)
	var lots []LotQty
	var onHand, reserved int64
	if st != nil {
		lots, _ = st.fefo(rec.location, rec.committed)
		onHand, reserved = st.onHand, st.reserved
	}
	x.emit(sk.id, rec.id, ExpectedReceiptCancelled{
		Location: rec.location, Committed: rec.committed, Lots: lots, Converted: conversions(rec),
	})
	x.shortage(sk.id, rec.id, rec.location, onHand-rec.committed, reserved+rec.promised)
	return nil
}

// conversions lists a receipt's preorder holds in reservation order, so that
// the event is the same whatever the map's order.
func conversions(rec *expectedReceipt) []PreorderConversion {
	out := make([]PreorderConversion, 0, len(rec.holds))
	for id, q := range rec.holds {
		out = append(out, PreorderConversion{Reservation: id, Quantity: q})
	}
	slices.SortFunc(out, func(a, b PreorderConversion) int {
		if a.Reservation < b.Reservation {
			return -1
		}
		if a.Reservation > b.Reservation {
			return 1
		}
		return 0
	})
	return out
}

// allocateLine chooses where to hold a line: on-hand stock as allocate does
// and, when that falls short and the SKU takes preorders, on-hand stock
// first and expected units for the rest. The allocations of a line held
// wholly against expected stock are empty, not nil.
func (s *State) allocateLine(l ReserveLine, region string) ([]Allocation, []PreorderHold, *Shortfall) {
	a, short := s.allocate(l, region)
	if short == nil {
		return a, nil, nil
	}
	sk := s.skus[l.SKU]
	if sk == nil || !sk.preorders || len(sk.expecting) == 0 {
		return nil, nil, short
	}
	var candidates []string
	switch {
	case l.Location != "":
		candidates = []string{l.Location}
	case len(l.Locations) > 0:
		candidates = slices.Compact(slices.Clone(l.Locations))
	default:
		candidates = s.byPriority(sk.stockList)
	}
	type source struct {
		loc    string
		onHand int64
		recs   []*expectedReceipt
		exp    int64
	}
	var sources []source
	seen := map[string]bool{}
	for _, loc := range candidates {
		if seen[loc] || (region != "" && s.locations[loc].Region != region) {
			continue
		}
		seen[loc] = true
		src := source{loc: loc}
		if st := sk.find(loc); st != nil {
			src.onHand = max(st.available(sk.safety), 0)
		}
		for _, e := range sk.expecting {
			if e.location == loc && e.free() > 0 {
				src.recs = append(src.recs, e)
				src.exp += e.free()
			}
		}
		sources = append(sources, src)
	}
	take := func(src source, q int64) ([]Allocation, []PreorderHold, int64) {
		var allocs []Allocation
		var pre []PreorderHold
		if n := min(src.onHand, q); n > 0 {
			allocs = append(allocs, Allocation{Location: src.loc, Quantity: n})
			q -= n
		}
		for _, e := range src.recs {
			if q == 0 {
				break
			}
			n := min(e.free(), q)
			pre = append(pre, PreorderHold{ExpectedReceipt: e.id, Location: src.loc, Quantity: n})
			q -= n
		}
		return allocs, pre, q
	}
	if !l.Split {
		var best int64
		for _, src := range sources {
			if src.onHand+src.exp >= l.Quantity {
				allocs, pre, _ := take(src, l.Quantity)
				if allocs == nil {
					allocs = []Allocation{}
				}
				return allocs, pre, nil
			}
			best = max(best, src.onHand+src.exp)
		}
		return nil, nil, &Shortfall{SKU: l.SKU, Requested: l.Quantity, Available: best}
	}
	// A split line takes on-hand stock everywhere before any expected
	// units.
	allocs := []Allocation{}
	var pre []PreorderHold
	var total int64
	q := l.Quantity
	for _, src := range sources {
		total += src.onHand + src.exp
		if n := min(src.onHand, q); n > 0 {
			allocs = append(allocs, Allocation{Location: src.loc, Quantity: n})
			q -= n
		}
	}
	for _, src := range sources {
		src.onHand = 0
		a, p, left := take(src, q)
		allocs = append(allocs, a...)
		pre = append(pre, p...)
		q = left
	}
	if q > 0 {
		return nil, nil, &Shortfall{SKU: l.SKU, Requested: l.Quantity, Available: total}
	}
	return allocs, pre, nil
}

// commitPreorderHolds returns which preorder holds committing rest units
// beyond a line's on-hand allocations takes: in order.
func commitPreorderHolds(holds []PreorderHold, rest int64) []PreorderHold {
	var out []PreorderHold
	for _, p := range holds {
		if rest == 0 {
			break
		}
		n := min(p.Quantity, rest)
		rest -= n
		p.Quantity = n
		out = append(out, p)
	}
	return out
}

// sumPreorders adds up the quantities of preorder holds.
func sumPreorders(ps []PreorderHold) int64 {
	var n int64
	for _, p := range ps {
		n += p.Quantity
	}
	return n
}

// The views.

// ExpectedReceiptView returns an expected receipt recorded in this
// partition, and false if there is none.
func (s *State) ExpectedReceiptView(id string) (ExpectedReceipt, bool) {
	rec := s.expected[id]
	if rec == nil {
		return ExpectedReceipt{}, false
	}
	v := ExpectedReceipt{
		ID: rec.id, SKU: rec.sku, Location: rec.location, Quantity: rec.qty,
		ExpectedAt: fromUnixNano(rec.expectedAt), Status: rec.status,
		Promised: rec.promised, Committed: rec.committed, Preorderable: rec.free(),
		Arrived: rec.arrived, Lot: rec.lot, BestBefore: rec.bestBefore,
		CreatedAt: fromUnixNano(rec.createdAt), Position: rec.position,
	}
	if rec.status != ExpectedStatusExpected {
		at := fromUnixNano(rec.closedAt)
		v.ClosedAt = &at
	}
	return v, true
}

// ExpectedReceiptResult is the answer to ExpectReceipt.
func (s *State) ExpectedReceiptResult(c ExpectReceipt) (ExpectedReceipt, error) {
	return s.expectedResult(c.ID)
}

// ExpectedArrivalResult is the answer to ArriveExpected.
func (s *State) ExpectedArrivalResult(c ArriveExpected) (ExpectedReceipt, error) {
	return s.expectedResult(c.ID)
}

// ExpectedCancelResult is the answer to CancelExpected.
func (s *State) ExpectedCancelResult(c CancelExpected) (ExpectedReceipt, error) {
	return s.expectedResult(c.ID)
}

func (s *State) expectedResult(id string) (ExpectedReceipt, error) {
	if v, ok := s.ExpectedReceiptView(id); ok {
		return v, nil
	}
	return ExpectedReceipt{}, notFound("expected receipt", id)
}

// fillExpected fills a location's expected figures in a SKU view: the units
// its open receipts still bring (expected less sold before arrival), and
// those a preorder may still hold, 0 unless the SKU takes preorders.
func (sk *skuState) fillExpected(ls *LocationState) {
	for _, e := range sk.expecting {
		if e.location != ls.Location {
			continue
		}
		ls.Expected += e.qty - e.committed
		ls.Preordered += e.promised
		if sk.preorders {
			ls.Preorderable += e.free()
		}
	}
}

// The encodings.

func (w *writer) preorderHolds(ps []PreorderHold) {
	w.uvarint(uint64(len(ps)))
	for _, p := range ps {
		w.strings(p.ExpectedReceipt, p.Location)
		w.varint(p.Quantity)
	}
}

func (r *reader) preorderHolds() []PreorderHold {
	n := r.count()
	if n == 0 {
		return nil
	}
	out := make([]PreorderHold, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, PreorderHold{ExpectedReceipt: r.string(), Location: r.string(), Quantity: r.varint()})
	}
	return out
}

func (w *writer) conversions(cs []PreorderConversion) {
	w.uvarint(uint64(len(cs)))
	for _, c := range cs {
		w.string(c.Reservation)
		w.varint(c.Quantity)
	}
}

func (r *reader) conversions() []PreorderConversion {
	n := r.count()
	out := make([]PreorderConversion, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, PreorderConversion{Reservation: r.string(), Quantity: r.varint()})
	}
	return out
}

func encodeExpectedData(w *writer, d EventData) {
	switch d := d.(type) {
	case ExpectedReceiptRecorded:
		w.string(d.Location)
		w.varint(d.Quantity)
		w.time(d.ExpectedAt)
		w.u64(d.Fingerprint)
	case ExpectedReceiptArrived:
		w.strings(d.Location, d.Lot, d.BestBefore)
		w.varint(d.Quantity)
		w.varint(d.Committed)
		w.lots(d.Lots)
		w.conversions(d.Converted)
		w.u64(d.Fingerprint)
	case ExpectedReceiptCancelled:
		w.string(d.Location)
		w.varint(d.Committed)
		w.lots(d.Lots)
		w.conversions(d.Converted)
	}
}

func decodeExpectedData(r *reader, t EventType) EventData {
	switch t {
	case TypeExpectedReceiptRecorded:
		d := ExpectedReceiptRecorded{Location: r.string(), Quantity: r.varint(), ExpectedAt: r.time()}
		d.Fingerprint = r.u64()
		return d
	case TypeExpectedReceiptArrived:
		d := ExpectedReceiptArrived{Location: r.string(), Lot: r.string(), BestBefore: r.string()}
		d.Quantity = r.varint()
		d.Committed = r.varint()
		d.Lots = r.lots()
		d.Converted = r.conversions()
		d.Fingerprint = r.u64()
		return d
	case TypeExpectedReceiptCancelled:
		d := ExpectedReceiptCancelled{Location: r.string(), Committed: r.varint()}
		d.Lots = r.lots()
		d.Converted = r.conversions()
		return d
	}
	return nil
}

func (w *writer) expectedReceipt(e *expectedReceipt) {
	w.strings(e.id, e.sku, e.location, string(e.status), e.lot, e.bestBefore)
	w.u64(e.fingerprint)
	w.varint(e.qty)
	w.varint(e.expectedAt)
	w.varint(e.createdAt)
	w.uvarint(e.position)
	w.varint(e.committed)
	w.varint(e.arrived)
	w.u64(e.arriveFP)
	w.varint(e.closedAt)
}

func (r *reader) expectedReceipt() *expectedReceipt {
	e := &expectedReceipt{id: r.string(), sku: r.string(), location: r.string(), status: ExpectedReceiptStatus(r.string())}
	e.lot, e.bestBefore = r.string(), r.string()
	e.fingerprint = r.u64()
	e.qty = r.varint()
	e.expectedAt = r.varint()
	e.createdAt = r.varint()
	e.position = r.uvarint()
	e.committed = r.varint()
	e.arrived = r.varint()
	e.arriveFP = r.u64()
	e.closedAt = r.varint()
	switch e.status {
	case ExpectedStatusExpected, ExpectedStatusArrived, ExpectedStatusCancelled:
	default:
		if r.err == nil {
			r.fail("unknown expected receipt status %q", e.status)
		}
	}
	return e
}

// encodePreorderState appends what snapshot format 6 adds: the SKUs that
// take preorders and the expected receipts. Preorder holds are derived from
// the reservations (repromise).
func encodePreorderState(w *writer, s *State) {
	var skus []string
	for id, sk := range s.skus {
		if sk.preorders {
			skus = append(skus, id)
		}
	}
	w.stringList(skus)
	w.uvarint(uint64(len(s.expected)))
	for _, e := range s.expected {
		w.expectedReceipt(e)
	}
}

func decodePreorderState(r *reader, s *State) {
	for _, id := range r.stringList() {
		s.sku(id).preorders = true
	}
	for n := r.count(); n > 0 && r.err == nil; n-- {
		e := r.expectedReceipt()
		if r.err != nil {
			return
		}
		s.expected[e.id] = e
		if e.status == ExpectedStatusExpected {
			s.sku(e.sku).expect(e)
		}
	}
}

// repromise rebuilds the preorder holds of the expected receipts from the
// reservations, as rehold does reserved stock.
func (s *State) repromise() {
	for _, r := range s.reservations {
		if r.status != StatusHeld && r.status != StatusPending {
			continue
		}
		for _, l := range r.lines {
			if l.partition != s.partition || l.released {
				continue
			}
			for _, p := range l.preorders {
				if rec := s.expected[p.ExpectedReceipt]; rec != nil && rec.status == ExpectedStatusExpected {
					rec.promise(r.id, p.Quantity)
				}
			}
		}
	}
}

// rearmExpected schedules the retirement of settled expected receipts after
// a snapshot is loaded.
func (s *State) rearmExpected() {
	for _, e := range s.expected {
		if e.status != ExpectedStatusExpected {
			s.armRetire(retireExpected, e.id, e.closedAt)
		}
	}
}

// convertedUnits adds up the preorder holds an arrival turns into holds.
func convertedUnits(cs []PreorderConversion) int64 {
	var n int64
	for _, c := range cs {
		n += c.Quantity
	}
	return n
}

// HeldLines returns the lines of reservation id held in this partition,
// whichever partition drives it, or nil. The engine reads a participant's
// lines with it to show preorders an arrival there has converted (the home
// is not told).
func (s *State) HeldLines(id string) []ReservationLine {
	r := s.reservations[id]
	if r == nil || r.status != StatusHeld {
		return nil
	}
	v := r.view(s.partition)
	if r.home == s.partition {
		v.Lines = slices.DeleteFunc(v.Lines, func(l ReservationLine) bool { return PartitionOf(l.SKU, s.partitions) != s.partition })
	}
	return v.Lines
}

// applyExpected folds the events of expected receipts into the availability
// projection as State.Apply does: expected units are not stock, so only an
// arrival or a cancel changes on_hand, and the preorder holds they convert
// become reserved at the receipt's location.
func (a *AvailabilityState) applyExpected(sku, receipt string, sk *availSKU, data EventData) {
	var location string
	var conv []PreorderConversion
	switch d := data.(type) {
	case ExpectedReceiptRecorded:
		sk.at(d.Location) // State lists the location from now on
		return
	case ExpectedReceiptArrived:
		sk.at(d.Location).onHand += d.Quantity - d.Committed
		location, conv = d.Location, d.Converted
	case ExpectedReceiptCancelled:
		sk.at(d.Location).onHand -= d.Committed
		location, conv = d.Location, d.Converted
	}
	for _, c := range conv {
		a.reservationEvent(c.Reservation, func() error {
			r := a.reservations[c.Reservation]
			if r == nil {
				return nil
			}
			l := r.line(sku)
			if l == nil || !l.holding {
				return nil
			}
			allocs := slices.Clone(l.allocations)
			if i := slices.IndexFunc(allocs, func(al Allocation) bool { return al.Location == location }); i >= 0 {
				allocs[i].Quantity += c.Quantity
			} else {
				allocs = append(allocs, Allocation{Location: location, Quantity: c.Quantity})
			}
			l.allocations = allocs
			l.preorders = withoutReceipt(l.preorders, receipt)
			sk.at(location).reserved += c.Quantity
			return nil
		})
	}
}

// withoutReceipt returns a line's preorder holds but those on receipt, in a
// new slice (the old one may be an event's own), nil when none are left, as
// a decoded line has them.
func withoutReceipt(ps []PreorderHold, receipt string) []PreorderHold {
	out := slices.DeleteFunc(slices.Clone(ps), func(p PreorderHold) bool { return p.ExpectedReceipt == receipt })
	if len(out) == 0 {
		return nil
	}
	return out
}
