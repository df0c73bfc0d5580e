package stockd

import (
	"cmp"
	"slices"
	"time"
)

// Decision is what deciding one command produced.
type Decision struct {
	// Events are the new events, with partition, positions, versions and
	// time set, ready to be applied in order and appended.
	Events []Event
	// Keys are the idempotency keys accepted with Events; their positions
	// are the positions of the events that accepted them.
	Keys []KeyRecord
	// Messages are commands for other partitions, to be delivered once
	// Events are durable.
	Messages []Message
	// Replay is true when the command repeats one already accepted: nothing
	// changed and the answer is the entity as it is now.
	Replay bool
	// Wait, when set, names a reservation whose outcome is not known yet:
	// the answer to the command is due when a later decision resolves it.
	Wait string
	// Resolved lists reservations whose pending outcome this decision
	// settled.
	Resolved []Resolution
	// Retired are the records of the entities Events retire, to be
	// appended with them.
	Retired []RetiredRecord
}

// Message is a command sent from one partition to another.
type Message struct {
	To      int
	Command Command
}

// Resolution settles the outcome of a reservation that commands were waiting
// for: Err if it failed, otherwise the reservation as it now is.
type Resolution struct {
	Reservation string
	Err         error
}

// decision accumulates the events of one Decide call.
type decision struct {
	s   *State
	now time.Time
	d   Decision
	// key and keyFP are the idempotency key of the command being decided
	// on a reservation, recorded with the events it produces.
	key   string
	keyFP uint64
	// limitPending counts, per limited SKU, the units this decision has
	// admitted for its cart so far (see decision.limited).
	limitPending map[string]int64
}

// emit adds an event with the next position and, for a SKU event, the next
// version of that SKU's stream.
func (x *decision) emit(sku, commandID string, data EventData) {
	var version uint64
	if sku != "" {
		if sk := x.s.skus[sku]; sk != nil {
			version = sk.version
		}
		for i := range x.d.Events {
			if x.d.Events[i].SKU == sku {
				version++
			}
		}
		version++
	}
	x.d.Events = append(x.d.Events, Event{
		Partition: x.s.partition,
		Position:  x.s.head + uint64(len(x.d.Events)) + 1,
		SKU:       sku,
		Version:   version,
		Time:      x.now,
		CommandID: commandID,
		Data:      data,
	})
}

// accept records an idempotency key with the first event of this decision.
func (x *decision) accept(key string, fingerprint uint64) {
	x.d.Keys = append(x.d.Keys, KeyRecord{
		Key:         key,
		Partition:   x.s.partition,
		Position:    x.s.head + 1,
		Fingerprint: fingerprint,
	})
}

func (x *decision) send(to int, cmd Command) {
	x.d.Messages = append(x.d.Messages, Message{To: to, Command: cmd})
}

func (x *decision) resolve(reservation string, err error) {
	x.d.Resolved = append(x.d.Resolved, Resolution{Reservation: reservation, Err: err})
}

// Decide decides cmd against the state at time now and returns the events it
// produces, or a coded *Error and no events if it is rejected. The events end
// with the stock signals (LowStock, OutOfStock, BackInStock) that the
// command's own events cause, SKU by SKU (see signals.go). It does not
// change the state: apply the returned events for that. Time never goes back:
// a now earlier than the last event's time is taken as that time.
func (s *State) Decide(cmd Command, now time.Time) (Decision, error) {
	if now.Before(s.clock) {
		now = s.clock
	}
	if err := cmd.Validate(s.limits); err != nil {
		return Decision{}, err
	}
	x := &decision{s: s, now: now}
	var err error
	switch c := cmd.(type) {
	case ConfigureLocation:
		err = x.configureLocation(c)
	case ConfigureSKU:
		err = x.configureSKU(c)
	case DefineBundle:
		err = x.defineBundle(c)
	case ReceiveStock:
		err = x.receive(c)
	case AdjustStock:
		err = x.adjust(c)
	case CountStock:
		err = x.count(c)
	case TransferStock:
		err = x.transfer(c)
	case ArriveTransfer:
		err = x.arrive(c)
	case Reserve:
		err = x.reserve(c)
	case ExtendReservation:
		err = x.extend(c)
	case CommitReservation:
		err = x.commit(c)
	case ReleaseReservation:
		err = x.release(c)
	case ChangeReservation:
		err = x.change(c)
	case expireReservation:
		err = x.expireReservation(c)
	case expireLot:
		err = x.expireLot(c)
	case sagaHold:
		err = x.sagaHold(c)
	case sagaStep:
		err = x.sagaStep(c)
	case sagaAck:
		err = x.sagaAck(c)
	case sagaGrow:
		err = x.sagaGrow(c)
	case sagaTrim:
		err = x.sagaTrim(c)
	case abortSaga:
		err = x.abortSaga(c)
	case retireEntities:
		err = x.retire(c)
	case ExpectReceipt:
		err = x.expectReceipt(c)
	case ArriveExpected:
		err = x.arriveExpected(c)
	case CancelExpected:
		err = x.cancelExpected(c)
	default:
		err = Errorf(CodeInvalid, "unknown command %T", cmd)
	}
	if err != nil {
		return Decision{}, err
	}
	x.signals()
	return x.d, nil
}

func (x *decision) configureLocation(c ConfigureLocation) error {
	if x.s.partition != LocationPartition {
		return Errorf(CodeInternal, "locations are configured in partition %d, not %d", LocationPartition, x.s.partition)
	}
	loc := Location(c)
	if old, ok := x.s.locations[c.ID]; ok && old == loc {
		x.d.Replay = true
		return nil
	}
	x.emit("", c.ID, LocationConfigured{Location: loc})
	return nil
}

func (x *decision) configureSKU(c ConfigureSKU) error {
	if sk := x.s.skus[c.SKU]; sk != nil && sk.safety == c.SafetyStock && sk.lowStock == c.LowStockThreshold && sk.salesCap == c.SalesCap && sk.limit.is(c.CustomerLimit) && sk.preorders == c.Preorders {
		x.d.Replay = true
		return nil
	}
	if sk := x.s.skus[c.SKU]; sk != nil && c.SalesCap > 0 {
		// A cap below what is committed and held would let the holds
		// granted under the old one be committed past it: total
		// committed must never exceed the cap, and a commit, which only
		// takes what is held, cannot be refused at a saga's participant.
		// So the cap is refused here instead, and every commit stays
		// within it.
		if used := sk.capUsed(); c.SalesCap < used {
			return Errorf(CodeSalesCap, "sales cap %d is below the %d units of SKU %q already committed or held: release holds, or wait for them to end, before lowering it that far",
				c.SalesCap, used, c.SKU)
		}
	}
	x.emit(c.SKU, c.SKU, SKUConfigured{SafetyStock: c.SafetyStock, LowStockThreshold: c.LowStockThreshold, SalesCap: c.SalesCap, CustomerLimit: normalLimit(c.CustomerLimit), Preorders: c.Preorders})
	return nil
}

// replayed checks an idempotency key against the accepted records: it
// reports true for a repeat of the same request and fails for a different
// request with the same id.
func (x *decision) replayed(kind, key, id string, fingerprint uint64) (bool, error) {
	r, ok := x.s.records[key]
	if !ok {
		return false, nil
	}
	if r.fingerprint != fingerprint {
		return false, mismatch(kind, id)
	}
	x.d.Replay = true
	return true, nil
}

func (x *decision) receive(c ReceiveStock) error {
	key, fp := receiptKey(c.ID), Fingerprint(c)
	if done, err := x.replayed("receipt", key, c.ID, fp); done || err != nil {
		return err
	}
	// A lot expires when its best-before day ends (LotExpiry), and the
	// timer fires at that moment: a receipt decided at or after it would be
	// expired by the same batch. It is refused instead, so the sender hears
	// of the mistake rather than seeing the stock vanish.
	if at, ok := LotExpiry(c.BestBefore); ok && !x.now.Before(at) {
		return invalid("best_before %s has already passed: the lot would expire at once", c.BestBefore)
	}
	if err := firstError(x.s.configured(c.Location), x.s.stockless(c.SKU)); err != nil {
		return err
	}
	x.accept(key, fp)
	x.emit(c.SKU, c.ID, StockReceived{Location: c.Location, Quantity: c.Quantity, Lot: c.Lot, BestBefore: c.BestBefore, Fingerprint: fp})
	return nil
}

// configured checks that a command names a configured location. Only
// decisions check it: events in old logs may name locations that were never
// configured (they were accepted before the rule), and they apply as ever.
// Locations are never removed, so a location configured once stays valid
// for every later decision, in every partition.
func (s *State) configured(location string) error {
	if _, ok := s.locations[location]; !ok {
		return unknownLocation(location)
	}
	return nil
}

// stockAt returns the stock of sku at location, or nil.
func (s *State) stockAt(sku, location string) (*skuState, *stock) {
	sk := s.skus[sku]
	if sk == nil {
		return nil, nil
	}
	return sk, sk.find(location)
}

func (x *decision) adjust(c AdjustStock) error {
	key, fp := adjustmentKey(c.ID), Fingerprint(c)
	if done, err := x.replayed("adjustment", key, c.ID, fp); done || err != nil {
		return err
	}
	if err := x.s.configured(c.Location); err != nil {
		return err
	}
	if c.Delta > 0 {
		if err := x.s.stockless(c.SKU); err != nil {
			return err
		}
	}
	_, st := x.s.stockAt(c.SKU, c.Location)
	if st == nil {
		st = &stock{}
	}
	data := StockAdjusted{Location: c.Location, Delta: c.Delta, Reason: c.Reason, Fingerprint: fp}
	if c.Delta > 0 {
		bb := ""
		for _, l := range st.lots {
			if l.id == c.Lot && c.Lot != "" {
				bb = l.bestBefore
				break
			}
		}
		data.Lots = []LotQty{{Location: c.Location, Lot: c.Lot, BestBefore: bb, Quantity: c.Delta - backorder(st, c.Delta)}}
	} else {
		need := -c.Delta
		var took []LotQty
		var left int64
		if c.Lot != "" {
			named := &stock{}
			for _, l := range st.lots {
				if l.id == c.Lot {
					named.lots = append(named.lots, l)
				}
			}
			took, left = named.fefo(c.Location, need)
		} else {
			took, left = st.fefo(c.Location, need)
		}
		if left > 0 {
			return insufficient(Shortfall{SKU: c.SKU, Requested: need, Available: need - left})
		}
		data.Lots = took
	}
	x.accept(key, fp)
	x.emit(c.SKU, c.ID, data)
	if c.Delta < 0 {
		x.shortage(c.SKU, c.ID, c.Location, st.onHand+c.Delta, st.reserved)
	}
	return nil
}

// backorder returns how many of qty units added at st fill a backorder
// (negative on_hand) rather than a lot, so that events report what each lot
// really gained.
func backorder(st *stock, qty int64) int64 {
	return min(qty, max(-st.onHand, 0))
}

// shortage records a shortage when a loss leaves fewer units on hand than are
// held.
func (x *decision) shortage(sku, commandID, location string, onHand, reserved int64) {
	if reserved > onHand {
		x.emit(sku, commandID, ShortageDetected{Location: location, Shortage: reserved - onHand})
	}
}

func (x *decision) count(c CountStock) error {
	key, fp := countKey(c.ID), Fingerprint(c)
	if done, err := x.replayed("count", key, c.ID, fp); done || err != nil {
		return err
	}
	if err := x.s.configured(c.Location); err != nil {
		return err
	}
	_, st := x.s.stockAt(c.SKU, c.Location)
	if st == nil {
		st = &stock{}
	}
	delta := c.OnHand - st.onHand
	if delta > 0 {
		if err := x.s.stockless(c.SKU); err != nil {
			return err
		}
	}
	data := StockCounted{Location: c.Location, OnHand: c.OnHand, Delta: delta, Fingerprint: fp}
	switch {
	case delta > 0:
		data.Lots = []LotQty{{Location: c.Location, Quantity: delta - backorder(st, delta)}}
	case delta < 0:
		data.Lots, _ = st.fefo(c.Location, -delta)
	}
	x.accept(key, fp)
	x.emit(c.SKU, c.ID, data)
	if delta < 0 {
		x.shortage(c.SKU, c.ID, c.Location, c.OnHand, st.reserved)
	}
	return nil
}

func (x *decision) transfer(c TransferStock) error {
	fp := Fingerprint(c)
	if t := x.s.transfers[c.ID]; t != nil {
		if t.fingerprint != fp {
			return mismatch("transfer", c.ID)
		}
		x.d.Replay = true
		return nil
	}
	if err := firstError(x.s.configured(c.From), x.s.configured(c.To), x.s.stockless(c.SKU)); err != nil {
		return err
	}
	sk, st := x.s.stockAt(c.SKU, c.From)
	var avail int64
	if st != nil {
		avail = st.available(sk.safety)
	}
	if c.Quantity > avail {
		return insufficient(Shortfall{SKU: c.SKU, Requested: c.Quantity, Available: max(avail, 0)})
	}
	lots, _ := st.fefo(c.From, c.Quantity)
	x.accept(transferKey(c.ID), fp)
	x.emit(c.SKU, c.ID, StockTransferred{From: c.From, To: c.To, Quantity: c.Quantity, Lots: lots, Fingerprint: fp})
	return nil
}

func (x *decision) arrive(c ArriveTransfer) error {
	t := x.s.transfers[c.ID]
	if t == nil {
		return notFound("transfer", c.ID)
	}
	if !t.arrivedAt.IsZero() {
		x.d.Replay = true
		return nil
	}
	lots := make([]LotQty, len(t.lots))
	for i, l := range t.lots {
		l.Location = t.to
		lots[i] = l
	}
	x.emit(t.sku, t.id, TransferArrived{From: t.from, To: t.to, Quantity: t.qty, Lots: lots})
	return nil
}

func (x *decision) reserve(c Reserve) error {
	fp := Fingerprint(c)
	if r := x.s.reservations[c.ID]; r != nil {
		if r.home != x.s.partition || r.fingerprint != fp {
			return mismatch("reservation", c.ID)
		}
		if r.saga != nil && r.saga.aborted {
			// Still undoing a failed attempt: answer as that attempt
			// was answered. An attempt abandoned at its deadline or
			// after a restart had no shortfall; it was answered
			// unavailable, not insufficient_stock without lines.
			if len(r.saga.failed) == 0 {
				return Errorf(CodeUnavailable, "reservation %q is being undone after an interrupted attempt; retry it", c.ID)
			}
			return refusal(r.saga.failed...)
		}
		x.d.Replay = true
		if r.status == StatusPending {
			x.d.Wait = c.ID
		}
		return nil
	}
	// A line naming a location that does not exist could never be held
	// there: say so, rather than insufficient_stock. Every line is checked
	// here, at the home, including the lines other partitions will hold.
	for _, l := range c.Lines {
		if l.Location != "" {
			if err := x.s.configured(l.Location); err != nil {
				return err
			}
		}
		for _, loc := range l.Locations {
			if err := x.s.configured(loc); err != nil {
				return err
			}
		}
	}
	// The one place a reservation's lines are decided: bundles become
	// their components here, so every hold, cap and saga below sees the
	// lines the cart really holds.
	lines, bundles, err := x.s.expandLines(c.Lines)
	if err != nil {
		return err
	}
	ttl := c.TTL
	if ttl == 0 {
		ttl = x.s.limits.DefaultTTL
	}
	expires := x.now.Add(ttl)
	var shortfalls []Shortfall
	// Most carts have one line: theirs fits in an array on the stack.
	var one [1][]Allocation
	allocations := one[:]
	if len(lines) > 1 {
		allocations = make([][]Allocation, len(lines))
	}
	var preorders [][]PreorderHold // made when a line holds expected stock
	var participants []int
	for i, l := range lines {
		if p := PartitionOf(l.SKU, x.s.partitions); p != x.s.partition {
			if !slices.Contains(participants, p) {
				participants = append(participants, p)
			}
			continue
		}
		a, pre, short := x.checkLine(l, c.Customer, c.ID, c.Region, true)
		if short != nil {
			shortfalls = append(shortfalls, *short)
		}
		allocations[i] = a
		if pre != nil {
			if preorders == nil {
				preorders = make([][]PreorderHold, len(lines))
			}
			preorders[i] = pre
		}
	}
	if len(shortfalls) > 0 {
		return refusal(shortfalls...)
	}
	if len(participants) == 0 {
		x.accept(reservationKey(c.ID), fp)
	} else {
		slices.Sort(participants)
		x.emit("", c.ID, SagaStarted{
			Reservation: c.ID, Customer: c.Customer, CreatedAt: x.now, ExpiresAt: expires,
			Lines: lines, Participants: participants, Fingerprint: fp, Region: c.Region,
		})
		attempt := x.d.Events[len(x.d.Events)-1].Position
		for _, p := range participants {
			var theirs []ReserveLine
			for _, l := range lines {
				if PartitionOf(l.SKU, x.s.partitions) == p {
					theirs = append(theirs, l)
				}
			}
			x.send(p, sagaHold{
				reservation: c.ID, home: x.s.partition, step: 1, attempt: attempt, lines: theirs,
				region: c.Region, expiresAt: expires, customer: c.Customer,
			})
		}
		x.d.Wait = c.ID
	}
	for i, l := range lines {
		if allocations[i] == nil {
			continue
		}
		data := StockReserved{
			Reservation: c.ID, Quantity: l.Quantity, Allocations: allocations[i], ExpiresAt: expires,
			Customer: c.Customer, Home: x.s.partition, Fingerprint: fp,
		}
		if preorders != nil {
			data.Preorders = preorders[i]
		}
		x.emit(l.SKU, c.ID, data)
	}
	if len(bundles) > 0 {
		x.emit("", c.ID, BundlesReserved{Reservation: c.ID, Lines: bundles})
	}
	return nil
}

// capped checks a line against its SKU's sales cap: it returns the shortfall
// when the units committed, the units held (by every reservation, of every
// home, not yet committed or released) and the line's quantity together pass
// the cap, and nil otherwise or when the SKU has no cap. The check is made
// where the SKU's stock is, in its own partition, whether the cart's home is
// there or not: committed and held are known nowhere else. Holding within
// the cap is what keeps committing within it, since a commit takes no more
// than is held.
func (s *State) capped(l ReserveLine) *Shortfall {
	sk := s.skus[l.SKU]
	if sk == nil || sk.salesCap == 0 {
		return nil
	}
	left := sk.capLeft()
	if l.Quantity <= left {
		return nil
	}
	return &Shortfall{SKU: l.SKU, Requested: l.Quantity, Available: max(left, 0), SalesCap: sk.salesCap}
}

// capLeft is how many more units the SKU's sales cap lets be held: the cap
// less the units committed and held. Meaningless without a cap.
func (sk *skuState) capLeft() int64 {
	return sk.salesCap - sk.capUsed()
}

// capUsed is what counts against a sales cap: the units committed and held,
// against stock or as preorders.
// A cap is never set below it (configureSKU), so it never passes the cap.
func (sk *skuState) capUsed() int64 {
	used := sk.committed + sk.promisedOf()
	for _, st := range sk.stocks {
		used += st.reserved
	}
	return used
}

// capRemaining is what views show of capLeft: nil without a cap, and never
// below 0 (an older version let a cap be lowered below what was committed
// and held).
func (sk *skuState) capRemaining() *int64 {
	if sk.salesCap == 0 {
		return nil
	}
	left := max(sk.capLeft(), 0)
	return &left
}

// allocate chooses where to hold a line, or says how short it is.
func (s *State) allocate(l ReserveLine, region string) ([]Allocation, *Shortfall) {
	sk := s.skus[l.SKU]
	if sk == nil {
		return nil, &Shortfall{SKU: l.SKU, Requested: l.Quantity}
	}
	var candidates []string
	switch {
	case l.Location != "":
		candidates = []string{l.Location}
	case len(l.Locations) > 0:
		candidates = l.Locations
	default:
		candidates = s.byPriority(sk.stockList)
	}
	var allocs []Allocation
	var best, total int64
	remaining := l.Quantity
	for _, loc := range candidates {
		if region != "" && s.locations[loc].Region != region {
			continue
		}
		st := sk.find(loc)
		if st == nil || slices.ContainsFunc(allocs, func(a Allocation) bool { return a.Location == loc }) {
			continue
		}
		avail := st.available(sk.safety)
		if avail <= 0 {
			continue
		}
		if !l.Split {
			if avail >= l.Quantity {
				return []Allocation{{Location: loc, Quantity: l.Quantity}}, nil
			}
			best = max(best, avail)
			continue
		}
		total += avail
		if remaining > 0 {
			n := min(avail, remaining)
			allocs = append(allocs, Allocation{Location: loc, Quantity: n})
			remaining -= n
		}
	}
	if !l.Split {
		return nil, &Shortfall{SKU: l.SKU, Requested: l.Quantity, Available: best}
	}
	if remaining > 0 {
		return nil, &Shortfall{SKU: l.SKU, Requested: l.Quantity, Available: total}
	}
	return allocs, nil
}

// byPriority orders locations by configured priority, then id; locations
// never configured come last.
func (s *State) byPriority(ids []string) []string {
	if len(ids) <= 1 {
		return ids
	}
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b string) int {
		la, okA := s.locations[a]
		lb, okB := s.locations[b]
		switch {
		case okA != okB:
			if okA {
				return -1
			}
			return 1
		case okA && la.Priority != lb.Priority:
			return cmp.Compare(la.Priority, lb.Priority)
		}
		return cmp.Compare(a, b)
	})
	return out
}

// homeReservation returns a reservation driven by this partition.
func (s *State) homeReservation(id string) (*reservation, error) {
	r := s.reservations[id]
	if r == nil || r.home != s.partition || (r.saga != nil && r.saga.aborted) {
		return nil, notFound("reservation", id)
	}
	return r, nil
}

// held checks that a reservation is held at now.
func (x *decision) held(r *reservation) error {
	if r.status == StatusHeld && unixNano(x.now) >= r.expiresAt {
		return notHeld(r.id, StatusExpired)
	}
	if r.status != StatusHeld {
		return notHeld(r.id, r.status)
	}
	return nil
}

// settling makes a command on a reservation wait while a step of its saga is
// still being carried out elsewhere, so that its answer reflects every line.
func (x *decision) settling(r *reservation) {
	if r.saga != nil && len(r.saga.pending) > 0 {
		x.d.Wait = r.id
	}
}

// keyed checks a command's idempotency key against those the reservation
// remembers: it reports true for a repeat, which is answered as a replay, and
// fails for the key reused with another request.
func (x *decision) keyed(r *reservation, key string, cmd Command) (bool, error) {
	if key == "" {
		return false, nil
	}
	fp := Fingerprint(cmd)
	if old, ok := r.keys[key]; ok {
		if old != fp {
			return false, mismatch("idempotency key", key)
		}
		x.d.Replay = true
		x.settling(r)
		return true, nil
	}
	x.key, x.keyFP = key, fp
	return false, nil
}

func (x *decision) extend(c ExtendReservation) error {
	r, err := x.s.homeReservation(c.ID)
	if err != nil {
		return err
	}
	if done, err := x.keyed(r, c.Key, c); done || err != nil {
		return err
	}
	if err := x.held(r); err != nil {
		return err
	}
	if err := busy(r); err != nil {
		return err
	}
	expires := x.now.Add(c.TTL)
	for _, l := range r.lines {
		if l.partition == x.s.partition {
			x.emit(l.sku, r.id, ReservationExtended{Reservation: r.id, ExpiresAt: expires, Key: x.key, KeyFingerprint: x.keyFP})
		}
	}
	x.step(r, SagaStepStarted{Action: SagaExtend, ExpiresAt: expires})
	return nil
}

func (x *decision) commit(c CommitReservation) error {
	r, err := x.s.homeReservation(c.ID)
	if err != nil {
		return err
	}
	if done, err := x.keyed(r, c.Key, c); done || err != nil {
		return err
	}
	if r.status == StatusCommitted {
		x.d.Replay = true
		x.settling(r)
		return nil
	}
	if err := x.held(r); err != nil {
		return err
	}
	commitLines, bundlesTaken, err := r.commitBundles(c.Lines)
	if err != nil {
		return err
	}
	qty := make(map[string]int64, len(r.lines))
	for _, l := range r.lines {
		if commitLines == nil {
			qty[l.sku] = l.quantity
		}
	}
	for _, cl := range commitLines {
		l := r.line(cl.SKU)
		if l == nil {
			return invalid("sku %q is not in reservation %q", cl.SKU, r.id)
		}
		if cl.Quantity > l.quantity {
			return invalid("cannot commit %d of %q: the reservation holds %d", cl.Quantity, cl.SKU, l.quantity)
		}
		qty[cl.SKU] = cl.Quantity
	}
	// A request that could never be carried out is told so first; one that
	// must only wait for a change to settle is told to retry.
	if err := busy(r); err != nil {
		return err
	}
	var remote []CommitLine
	for _, l := range r.lines {
		if l.partition != x.s.partition {
			remote = append(remote, CommitLine{SKU: l.sku, Quantity: qty[l.sku]})
			continue
		}
		x.commitLine(r.id, l, qty[l.sku])
	}
	if bundlesTaken != nil {
		x.emit("", r.id, BundlesCommitted{Reservation: r.id, Lines: bundlesTaken})
	}
	x.step(r, SagaStepStarted{Action: SagaCommit, Lines: remote})
	return nil
}

// commitLine emits the commit of q units of a held line: taken from its
// allocations in order, lots first-expiry-first-out at each location.
func (x *decision) commitLine(reservation string, l *resLine, q int64) {
	sk := x.s.skus[l.sku]
	data := ReservationCommitted{Reservation: reservation, Quantity: q, Released: l.quantity - q, Key: x.key, KeyFingerprint: x.keyFP}
	data.Allocations = commitAllocations(l.allocations, q)
	for _, a := range data.Allocations {
		lots, _ := sk.find(a.Location).fefo(a.Location, a.Quantity)
		data.Lots = append(data.Lots, lots...)
	}
	data.Preorders = commitPreorderHolds(l.preorders, q-sumAllocations(data.Allocations))
	x.emit(l.sku, reservation, data)
}

// commitAllocations returns where committing q units of a line held at allocs
// takes them: from the allocations in order. The home of a reservation that
// spans partitions uses it to know where a participant's line was committed
// without being told.
func commitAllocations(allocs []Allocation, q int64) []Allocation {
	var out []Allocation
	for _, a := range allocs {
		if q == 0 {
			break
		}
		n := min(a.Quantity, q)
		q -= n
		out = append(out, Allocation{Location: a.Location, Quantity: n})
	}
	return out
}

func (x *decision) release(c ReleaseReservation) error {
	r, err := x.s.homeReservation(c.ID)
	if err != nil {
		return err
	}
	if done, err := x.keyed(r, c.Key, c); done || err != nil {
		return err
	}
	switch r.status {
	case StatusReleased, StatusExpired:
		x.d.Replay = true
		x.settling(r)
		return nil
	case StatusCommitted, StatusPending:
		return notHeld(r.id, r.status)
	}
	if err := busy(r); err != nil {
		return err
	}
	x.releaseLines(r, ReleaseRequested)
	return nil
}

// releaseLines releases every local line of a held reservation and, for one
// spanning partitions, asks the participants to do the same.
func (x *decision) releaseLines(r *reservation, reason ReleaseReason) {
	for _, l := range r.lines {
		if l.partition == x.s.partition && !l.released {
			x.emit(l.sku, r.id, ReservationReleased{Reservation: r.id, Reason: reason, Quantity: l.quantity, Key: x.key, KeyFingerprint: x.keyFP})
		}
	}
	x.step(r, SagaStepStarted{Action: SagaRelease, Reason: reason})
}

func (x *decision) expireReservation(c expireReservation) error {
	r := x.s.reservations[c.id]
	if r == nil || r.home != x.s.partition || unixNano(x.now) < r.expiresAt {
		return nil
	}
	switch r.status {
	case StatusHeld:
		changing := r.saga != nil && r.saga.change != nil
		// Expiry wins over a change in flight: every partition releases
		// all it holds for the cart, the change's growth included (the
		// release step goes to every participant, those joining too).
		x.releaseLines(r, ReleaseExpired)
		if changing {
			x.resolve(r.id, notHeld(r.id, StatusExpired))
		}
	case StatusPending:
		x.abort(r, r.saga.participants, Errorf(CodeUnavailable, "reservation %q could not be held everywhere before its deadline", r.id))
	}
	return nil
}

func (x *decision) expireLot(c expireLot) error {
	sk, st := x.s.stockAt(c.sku, c.location)
	if st == nil {
		return nil
	}
	q := st.lotQty(c.lot, c.bestBefore)
	if q <= 0 {
		return nil
	}
	x.emit(c.sku, "", LotExpired{Location: c.location, Lot: c.lot, BestBefore: c.bestBefore, Quantity: q})
	x.shortage(sk.id, "", c.location, st.onHand-q, st.reserved)
	return nil
}

// Internal commands: the engine's timers and the partitions' messages to each
// other. They are unexported so that only the domain creates them.

type expireReservation struct{ id string }

type expireLot struct{ sku, location, lot, bestBefore string }

func (expireReservation) Validate(Limits) error { return nil }
func (expireLot) Validate(Limits) error         { return nil }
func (expireReservation) route() route          { return route{} }
func (expireLot) route() route                  { return route{} }
