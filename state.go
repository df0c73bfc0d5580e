package stockd

import (
	"fmt"
	"iter"
	"maps"
	"sort"
	"time"
)

// State is the in-memory state of one partition: a fold over its events. It is
// owned by one goroutine at a time and is not safe for concurrent use.
//
// Decide reads a State and never changes it; Apply changes it and is the only
// thing that does. A State rebuilt by applying the same events is the same
// State, which is what recovery and time travel rely on.
type State struct {
	partition  int
	partitions int
	limits     Limits

	head  uint64    // position of the last applied event
	clock time.Time // time of the last applied event; decisions never go back

	skus         map[string]*skuState
	reservations map[string]*reservation
	transfers    map[string]*transfer
	// records remembers accepted receipts, adjustments and counts by
	// idempotency key, so that a repeat is answered, not applied again.
	records map[string]record
	// held counts the reservations this partition drives (their home) that
	// are held: derived, kept up to date by setStatus, recounted on decode.
	held int
	// locations is shared, copy-on-write: the owning partition replaces the
	// map on every change and other partitions receive it by SetLocations.
	locations Locations
	// bundles is shared like locations: see Catalog.
	bundles Bundles

	timers timers
	// outstanding indexes the reservations with saga work not done yet:
	// those driven from here with a step that a participant has not
	// acknowledged, and the parts held here for another home. It is
	// derived (see track), and bounded by the carts in flight, so that
	// Overdue and Recover need not walk every reservation.
	outstanding map[string]*reservation
	// retiredCount is how many entities this partition retired.
	retiredCount uint64
	// limitTimers schedules customers' commits of limited SKUs leaving
	// their window (see pruneLimits); derived, rebuilt on decode.
	limitTimers minHeap[limitTimer]

	// expected holds the expected receipts recorded here (preorders.go).
	expected map[string]*expectedReceipt
}

// Locations maps location ids to their configuration. A Locations value is
// never modified once published; changes make a new map.
type Locations map[string]Location

type skuState struct {
	id       string
	version  uint64
	safety   int64
	lowStock int64
	// salesCap is the most units that may ever be committed, 0 for no
	// cap; committed is how many have been, by every ReservationCommitted
	// of this partition (a count, because committed reservations retire).
	salesCap  int64
	committed int64
	// limit is the SKU's per-customer limit and what customers have of
	// it, nil without a limit (see limits.go).
	limit *skuLimit
	// stockList holds the ids of the locations the SKU has stock at, in
	// first-seen order, and stocks the stock at each, at the same index. A
	// SKU is stocked at a few locations: two short lists scanned in order
	// cost less than a map, in time and in memory (a map took some 300
	// bytes of every SKU × location).
	stockList []string
	stocks    []*stock

	// preorders lets reservations hold expected stock; expecting lists
	// the SKU's open expected receipts, earliest expected first.
	preorders bool
	expecting []*expectedReceipt
}

// all yields the SKU's locations and the stock at each, in first-seen order.
func (sk *skuState) all() iter.Seq2[string, *stock] {
	return func(yield func(string, *stock) bool) {
		for i, l := range sk.stockList {
			if !yield(l, sk.stocks[i]) {
				return
			}
		}
	}
}

// find returns the stock at a location, or nil.
func (sk *skuState) find(location string) *stock {
	for i, l := range sk.stockList {
		if l == location {
			return sk.stocks[i]
		}
	}
	return nil
}

// stock is one SKU at one location.
type stock struct {
	onHand    int64 // negative only for units committed while short (a backorder)
	reserved  int64
	inTransit int64
	lots      []lot // first-expiry-first-out order
	// The holds behind reserved are not indexed here: a hot SKU can hold
	// millions, and the reservations already say where they hold. Views
	// derive the list from the reservations.
}

// lot is a quantity of stock that shares a lot code and best-before date.
type lot struct {
	id         string
	bestBefore string // YYYY-MM-DD, or "" for undated stock
	qty        int64
}

type reservation struct {
	id          string
	fingerprint uint64
	status      ReservationStatus
	customer    string
	// Moments as Unix nanoseconds (unixNano), not time.Time: a hot SKU can
	// hold millions of reservations, and three times take 72 bytes where
	// these take 24.
	createdAt int64
	expiresAt int64
	settledAt int64 // when it was committed, released or expired here
	// home is the partition that drives the reservation: its deadline and,
	// for a reservation spanning partitions, its saga.
	home  int
	lines []*resLine
	saga  *saga // set at the home of a reservation spanning partitions
	// attempt names the attempt of a reservation spanning partitions: the
	// position of its SagaStarted at the home. At the home it is set from
	// that event; at a participant, from the StockReserved it held the
	// lines with (zero if written before attempts were recorded).
	attempt uint64
	// step is, at a participant, the last saga step that extended or
	// changed the reservation here, so that an older step arriving late is
	// ignored.
	step int
	// bundles are the cart's bundle lines, at its home (see
	// BundlesReserved).
	bundles []resBundle
	// grown and grownShort are, at a participant, its answer to the grow
	// step of a change (step), given again if the step is asked again.
	grown      []ReservationLine
	grownShort []Shortfall
	// keys are the idempotency keys of commands carried out on the
	// reservation, with the fingerprints of their requests.
	keys map[string]uint64
}

// remember records an idempotency key used on the reservation.
func (r *reservation) remember(key string, fingerprint uint64) {
	if key == "" {
		return
	}
	if r.keys == nil {
		r.keys = make(map[string]uint64, 1)
	}
	r.keys[key] = fingerprint
}

type resLine struct {
	sku         string
	partition   int
	quantity    int64 // held quantity
	committed   int64
	allocations []Allocation // where the line is held
	committedAt []Allocation // where the committed quantity was taken
	released    bool

	// preorders are the units held against expected receipts, beyond
	// allocations.
	preorders []PreorderHold
}

type transfer struct {
	id          string
	fingerprint uint64
	sku         string
	from, to    string
	qty         int64
	lots        []LotQty
	sentAt      time.Time
	arrivedAt   time.Time
}

type record struct {
	fingerprint uint64
	position    uint64
	time        time.Time
	delta       int64 // for counts: the change the count made
}

// NewState returns the empty state of partition p of a store with the given
// number of partitions.
func NewState(p, partitions int, limits Limits) *State {
	return &State{
		partition:    p,
		partitions:   partitions,
		limits:       limits,
		skus:         make(map[string]*skuState),
		reservations: make(map[string]*reservation),
		transfers:    make(map[string]*transfer),
		records:      make(map[string]record),
		locations:    Locations{},
		bundles:      Bundles{},
		outstanding:  make(map[string]*reservation),
		expected:     make(map[string]*expectedReceipt),
	}
}

// Partition returns the partition this state belongs to.
func (s *State) Partition() int { return s.partition }

// Head returns the position of the last applied event.
func (s *State) Head() uint64 { return s.head }

// Clock returns the time of the last applied event.
func (s *State) Clock() time.Time { return s.clock }

// Limits returns the limits decisions are made with.
func (s *State) Limits() Limits { return s.limits }

// Locations returns the location configuration this state decides with. The
// map must not be modified.
func (s *State) Locations() Locations { return s.locations }

// SetLocations replaces the location configuration used for allocation. The
// engine calls it on every partition but the one that owns locations, with
// the map that partition published; the map must not be modified afterwards.
func (s *State) SetLocations(l Locations) {
	if l == nil {
		l = Locations{}
	}
	s.locations = l
}

// Keys calls fn for every idempotency key accepted in this partition, with the
// fingerprint of the request that claimed it. The engine rebuilds its routing
// index from these after a restart.
func (s *State) Keys(fn func(key Key, fingerprint uint64)) {
	for k, r := range s.records {
		fn(ParseKey(k), r.fingerprint)
	}
	for id, t := range s.transfers {
		fn(Key{KindTransfer, id}, t.fingerprint)
	}
	for id, e := range s.expected {
		fn(Key{KindExpectedReceipt, id}, e.fingerprint)
	}
	for id, r := range s.reservations {
		if r.home == s.partition && r.status != StatusPending && (r.saga == nil || !r.saga.aborted) {
			fn(Key{KindReservation, id}, r.fingerprint)
		}
	}
}

// Held returns the number of reservations held whose home is this partition:
// the active carts it drives, each counted once however many partitions its
// lines hold stock in. Reservations still being held by a saga are not
// counted until they are held everywhere.
func (s *State) Held() int { return s.held }

// setStatus changes a reservation's status and keeps the count of held
// reservations. Every change of status goes through it.
func (s *State) setStatus(r *reservation, st ReservationStatus) {
	if r.home == s.partition {
		if r.status == StatusHeld && st != StatusHeld {
			s.held--
		} else if r.status != StatusHeld && st == StatusHeld {
			s.held++
		}
	}
	r.status = st
}

// KeyCount returns about how many keys Keys reports, for sizing indexes.
func (s *State) KeyCount() int {
	return len(s.records) + len(s.transfers) + len(s.reservations) + len(s.expected)
}

// Apply folds one event into the state. Events must be applied in position
// order; an event out of order or of the wrong partition is an error and
// leaves the state unchanged.
func (s *State) Apply(e Event) error {
	if err := checkNext(e, s.partition, s.head); err != nil {
		return err
	}
	var sk *skuState
	if e.SKU != "" {
		sk = s.sku(e.SKU)
		if err := checkVersion(e, sk.version); err != nil {
			return err
		}
		sk.version = e.Version
	}
	s.head = e.Position
	if e.Time.After(s.clock) {
		s.clock = e.Time
	}
	s.pruneLimits()
	switch d := e.Data.(type) {
	case StockReceived:
		st := sk.at(d.Location)
		st.add(d.Lot, d.BestBefore, d.Quantity)
		s.addRecord(receiptKey(e.CommandID), record{fingerprint: d.Fingerprint, position: e.Position, time: e.Time})
		s.armLot(sk.id, d.Location, d.Lot, d.BestBefore)
	case StockAdjusted:
		st := sk.at(d.Location)
		if d.Delta > 0 {
			lotID, bb := "", ""
			if len(d.Lots) == 1 {
				lotID, bb = d.Lots[0].Lot, d.Lots[0].BestBefore
			}
			st.add(lotID, bb, d.Delta)
		} else {
			st.take(d.Lots, -d.Delta)
		}
		s.addRecord(adjustmentKey(e.CommandID), record{fingerprint: d.Fingerprint, position: e.Position, time: e.Time, delta: d.Delta})
	case StockCounted:
		st := sk.at(d.Location)
		if d.Delta > 0 {
			st.add("", "", d.Delta)
		} else if d.Delta < 0 {
			st.take(d.Lots, -d.Delta)
		}
		s.addRecord(countKey(e.CommandID), record{fingerprint: d.Fingerprint, position: e.Position, time: e.Time, delta: d.Delta})
	case StockTransferred:
		from := sk.at(d.From)
		from.take(d.Lots, d.Quantity)
		sk.at(d.To).inTransit += d.Quantity
		s.transfers[e.CommandID] = &transfer{
			id: e.CommandID, fingerprint: d.Fingerprint, sku: e.SKU, from: d.From, to: d.To,
			qty: d.Quantity, lots: d.Lots, sentAt: e.Time,
		}
	case TransferArrived:
		to := sk.at(d.To)
		to.inTransit -= d.Quantity
		for _, l := range d.Lots {
			to.add(l.Lot, l.BestBefore, l.Quantity)
			s.armLot(sk.id, d.To, l.Lot, l.BestBefore)
		}
		if t := s.transfers[e.CommandID]; t != nil {
			t.arrivedAt = e.Time
			s.armRetire(retireTransfer, t.id, unixNano(t.arrivedAt))
		}
	case SKUConfigured:
		sk.safety, sk.lowStock, sk.salesCap = d.SafetyStock, d.LowStockThreshold, d.SalesCap
		s.configureLimit(sk, d.CustomerLimit)
		sk.preorders = d.Preorders
	case LocationConfigured:
		next := maps.Clone(s.locations)
		if next == nil {
			next = Locations{}
		}
		next[d.Location.ID] = d.Location
		s.locations = next
	case StockReserved:
		s.applyReserved(e, sk, d)
		s.track(d.Reservation)
	case ReservationChanged:
		s.applyChanged(e, sk, d)
	case ReservationExtended:
		if r := s.reservations[d.Reservation]; r != nil {
			r.remember(d.Key, d.KeyFingerprint)
			r.expiresAt = unixNano(d.ExpiresAt)
			r.step = max(r.step, d.Step)
			if r.home == s.partition {
				s.armHold(r)
			}
		}
	case ReservationCommitted, ReservationReleased,
		SagaStarted, SagaStepAcked, ReservationHeld, SagaStepStarted, SagaSettled,
		SagaChangeStarted, SagaChangeAcked, SagaChangeDecided, SagaChangeGrown, SagaChangeTrimmed:
		// Holding and extending never settle a reservation; these may.
		s.applySettling(e, sk)
	case LotExpired:
		st := sk.at(d.Location)
		st.take([]LotQty{{Location: d.Location, Lot: d.Lot, BestBefore: d.BestBefore, Quantity: d.Quantity}}, d.Quantity)
	case ShortageDetected:
		// The shortage is derived from on_hand and reserved; the event
		// exists so that it is recorded and streamed, not inferred.
	case EntitiesRetired:
		s.applyRetired(d)
	case BundleDefined, BundlesReserved, BundlesCommitted:
		s.applyBundles(d)
	case ExpectedReceiptRecorded, ExpectedReceiptArrived, ExpectedReceiptCancelled:
		s.applyExpected(e, sk)
	case LowStock, OutOfStock, BackInStock:
		// Signals record a crossing the events before them made; they
		// change nothing but the SKU's version.
	default:
		return fmt.Errorf("stockd: cannot apply event data %T", e.Data)
	}
	return nil
}

// applySettling applies an event that may settle a reservation and, when it
// settles it in this partition, schedules its retirement.
func (s *State) applySettling(e Event, sk *skuState) {
	id := reservationOf(e.Data)
	r := s.reservations[id]
	wasSettled := r != nil && s.settled(r)
	switch d := e.Data.(type) {
	case ReservationCommitted:
		s.applyCommitted(sk, d)
	case ReservationReleased:
		s.applyReleased(sk, d)
	case SagaChangeStarted, SagaChangeAcked, SagaChangeDecided, SagaChangeGrown, SagaChangeTrimmed:
		s.applyChangeSaga(e)
	default:
		s.applySaga(e)
	}
	// The same reservation, not one re-created with its id, that settled
	// with this event.
	if after := s.reservations[id]; after != nil && !wasSettled && (after == r || r == nil) && s.settled(after) {
		after.settledAt = unixNano(s.clock)
		s.armRetire(retireReservation, id, after.settledAt)
	}
	s.track(id)
}

// track keeps reservation id in the index of outstanding saga work, or out of
// it. Every event that can change a reservation's status, its saga's pending
// participants or its presence calls it.
func (s *State) track(id string) {
	if r := s.reservations[id]; r != nil && s.isOutstanding(r) {
		s.outstanding[id] = r
		return
	}
	delete(s.outstanding, id)
}

// isOutstanding reports whether a reservation belongs in the index of
// outstanding saga work: at its home, a saga step some participant has not
// acknowledged; at a participant, lines held for another home.
func (s *State) isOutstanding(r *reservation) bool {
	if r.home == s.partition {
		return r.saga != nil && len(r.saga.pending) > 0
	}
	return r.status == StatusHeld
}

// reindex rebuilds the index of outstanding saga work from the reservations.
func (s *State) reindex() {
	clear(s.outstanding)
	for id, r := range s.reservations {
		if s.isOutstanding(r) {
			s.outstanding[id] = r
		}
	}
}

// addRecord remembers an accepted receipt, adjustment or count, which is
// settled as soon as it is applied.
func (s *State) addRecord(key string, r record) {
	s.records[key] = r
	s.armRetire(retireRecord, key, unixNano(r.time))
}

// checkNext refuses an event that is not the next one of partition p, whose
// last applied position is head: folds apply events in position order.
func checkNext(e Event, p int, head uint64) error {
	if e.Partition != p {
		return fmt.Errorf("stockd: event %s belongs to partition %d, not %d", e.ID(), e.Partition, p)
	}
	if e.Position != head+1 {
		return fmt.Errorf("stockd: event %s applied at head %d: positions must be consecutive", e.ID(), head)
	}
	return nil
}

// checkVersion refuses a SKU event that is not the next of its stream, whose
// last applied version is version.
func checkVersion(e Event, version uint64) error {
	if e.Version != version+1 {
		return fmt.Errorf("stockd: event %s of %q has version %d, want %d", e.ID(), e.SKU, e.Version, version+1)
	}
	return nil
}

// sku returns the state of id, creating it.
func (s *State) sku(id string) *skuState {
	sk := s.skus[id]
	if sk == nil {
		sk = &skuState{id: id}
		s.skus[id] = sk
	}
	return sk
}

// at returns the stock at a location, creating it.
func (sk *skuState) at(location string) *stock {
	st := sk.find(location)
	if st == nil {
		st = &stock{}
		sk.stockList = append(sk.stockList, location)
		sk.stocks = append(sk.stocks, st)
	}
	return st
}

// add puts qty units into a lot. Units first fill a backorder (negative
// on_hand), so that the lots always add up to on_hand when it is positive.
func (st *stock) add(lotID, bestBefore string, qty int64) {
	if st.onHand < 0 {
		fill := min(qty, -st.onHand)
		st.onHand += fill
		qty -= fill
	}
	if qty == 0 {
		return
	}
	st.onHand += qty
	i := sort.Search(len(st.lots), func(i int) bool { return !lotBefore(st.lots[i].bestBefore, st.lots[i].id, bestBefore, lotID) })
	if i < len(st.lots) && st.lots[i].id == lotID && st.lots[i].bestBefore == bestBefore {
		st.lots[i].qty += qty
		return
	}
	st.lots = append(st.lots, lot{})
	copy(st.lots[i+1:], st.lots[i:])
	st.lots[i] = lot{id: lotID, bestBefore: bestBefore, qty: qty}
}

// take removes qty units from on_hand, taking the given lot quantities. The
// lots may add up to less than qty only when committing held stock that a
// loss has made short; on_hand then goes negative by the difference.
func (st *stock) take(lots []LotQty, qty int64) {
	st.onHand -= qty
	for _, t := range lots {
		for i := range st.lots {
			if st.lots[i].id == t.Lot && st.lots[i].bestBefore == t.BestBefore {
				st.lots[i].qty -= t.Quantity
				if st.lots[i].qty <= 0 {
					st.lots = append(st.lots[:i], st.lots[i+1:]...)
				}
				break
			}
		}
	}
}

// lotBefore orders lots first-expiry-first-out: dated lots by date, undated
// stock last, and lot code to break ties.
func lotBefore(bbA, idA, bbB, idB string) bool {
	if bbA != bbB {
		if bbA == "" {
			return false
		}
		if bbB == "" {
			return true
		}
		return bbA < bbB
	}
	return idA < idB
}

// fefo returns the lot quantities that taking qty units first-expiry-first-out
// would consume, and how many units that leaves untaken.
func (st *stock) fefo(location string, qty int64) ([]LotQty, int64) {
	var out []LotQty
	for _, l := range st.lots {
		if qty == 0 {
			break
		}
		n := min(l.qty, qty)
		out = append(out, LotQty{Location: location, Lot: l.id, BestBefore: l.bestBefore, Quantity: n})
		qty -= n
	}
	return out, qty
}

// available is on_hand − reserved − safety stock. Safety stock holds units
// back but never by itself makes availability negative; only a shortage, held
// units that are not there, does.
func (st *stock) available(safety int64) int64 {
	return availableOf(st.onHand, st.reserved, safety)
}

// availableOf is what a location with onHand units, reserved of them held,
// can sell with the given safety stock: see stock.available.
func availableOf(onHand, reserved, safety int64) int64 {
	free := onHand - reserved
	if free < 0 {
		return free
	}
	return max(free-safety, 0)
}

// shortage is the number of held units that are not physically there.
func (st *stock) shortage() int64 { return max(st.reserved-st.onHand, 0) }

func (st *stock) hold(qty int64)   { st.reserved += qty }
func (st *stock) unhold(qty int64) { st.reserved -= qty }

func (s *State) applyReserved(e Event, sk *skuState, d StockReserved) {
	r := s.reservations[d.Reservation]
	if r != nil && d.Home != s.partition && (r.attempt != d.Attempt || r.status != StatusHeld) {
		// A participant holding for a later attempt of a cart: what it
		// still knows of an earlier attempt is settled (sagaHold released
		// any lines it held) and is replaced. So is a part it left in a
		// change, when a later change brings it back.
		r = nil
	}
	if r == nil {
		r = &reservation{
			id: d.Reservation, fingerprint: d.Fingerprint, customer: d.Customer,
			createdAt: unixNano(e.Time), expiresAt: unixNano(d.ExpiresAt), home: d.Home,
			attempt: d.Attempt,
		}
		s.setStatus(r, StatusHeld)
		s.reservations[d.Reservation] = r
		if r.home == s.partition {
			s.armHold(r)
		}
	}
	line := r.line(e.SKU)
	if line == nil {
		line = &resLine{sku: e.SKU, partition: s.partition}
		r.lines = append(r.lines, line)
	}
	line.quantity = d.Quantity
	line.allocations = d.Allocations
	for _, a := range d.Allocations {
		sk.at(a.Location).hold(a.Quantity)
	}
	s.limitHold(sk, r.customer, d.Quantity)
	s.holdPreorders(r.id, line, d.Preorders)
}

func (s *State) applyCommitted(sk *skuState, d ReservationCommitted) {
	r := s.reservations[d.Reservation]
	if r == nil {
		return
	}
	line := r.line(sk.id)
	for _, a := range line.allocations {
		sk.at(a.Location).unhold(a.Quantity)
	}
	s.settlePreorders(r.id, line)
	s.commitPreorders(d.Preorders)
	for _, a := range d.Allocations {
		var lots []LotQty
		for _, l := range d.Lots {
			if l.Location == a.Location {
				lots = append(lots, l)
			}
		}
		sk.at(a.Location).take(lots, a.Quantity)
	}
	line.committed = d.Quantity
	line.committedAt = d.Allocations
	sk.committed += d.Quantity
	s.limitCommitted(sk, r.customer, line.quantity, d.Quantity)
	s.setStatus(r, StatusCommitted)
	r.remember(d.Key, d.KeyFingerprint)
}

func (s *State) applyReleased(sk *skuState, d ReservationReleased) {
	r := s.reservations[d.Reservation]
	if r == nil {
		return
	}
	r.remember(d.Key, d.KeyFingerprint)
	line := r.line(sk.id)
	for _, a := range line.allocations {
		sk.at(a.Location).unhold(a.Quantity)
	}
	s.limitHold(sk, r.customer, -line.quantity)
	s.settlePreorders(r.id, line)
	// The line is marked released before the reservation is looked at as a
	// whole: a participant forgets a compensated reservation once its last
	// line is released, and must count this line among them. (Marking it
	// afterwards left every compensated reservation behind at the
	// participants, which then answered a retry of the same id with the old,
	// released lines as if they were held.)
	line.released = true
	switch d.Reason {
	case ReleaseExpired:
		s.setStatus(r, StatusExpired)
	case ReleaseCompensated:
		s.setStatus(r, StatusReleased)
		if r.home != s.partition {
			// A participant forgets the lines of a reservation that could
			// not be held everywhere, so that a retry starts afresh.
			if r.allReleased(s.partition) {
				delete(s.reservations, r.id)
			}
		} else if r.saga != nil {
			r.saga.aborted = true
		}
	default:
		s.setStatus(r, StatusReleased)
	}
}

// line returns the line of sku, or nil.
func (r *reservation) line(sku string) *resLine {
	for _, l := range r.lines {
		if l.sku == sku {
			return l
		}
	}
	return nil
}

// allReleased reports whether every line held in partition p is released.
func (r *reservation) allReleased(p int) bool {
	for _, l := range r.lines {
		if l.partition == p && !l.released {
			return false
		}
	}
	return true
}
