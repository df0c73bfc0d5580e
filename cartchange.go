package stockd

import (
	"slices"
	"time"
)

// Changing a held cart (DESIGN §7, "Commerce rules").
//
// A ChangeReservation replaces the lines of a held reservation, all or
// nothing, keeping its id and, unless a TTL is given, its deadline. It is
// decided at the reservation's home against the same per-line checks as a
// Reserve (checkLine: sales caps, safety stock, allocation), with the units
// the cart already holds of a SKU counted as free for its own new line: a line
// growing from 2 to 3 needs one more unit, not three. Every changed line is
// recorded by one ReservationChanged in its SKU's stream, which says where the
// line was held before and where it is held now, so that every projection
// moves the held stock without asking the State.
//
// Lines held in other partitions (a cart spanning partitions) are held there
// by participants of the cart's saga. A change that alters only lines of the
// home's partition is decided here at once, as above; one that adds, removes
// or alters a line of another partition goes through the saga, growing then
// trimming (see cartsaga.go), and is answered once every partition holds the
// outcome. A new TTL reaches every participant, through the saga's extend
// step or the change's own.

// ChangeReservation replaces the lines of a held reservation, all or nothing.
// Lines lists every line the cart is to hold afterwards, as Reserve lines do:
// a line of a SKU the cart holds changes it (more, fewer or elsewhere), a new
// SKU adds a line, and a held SKU left out is released. A line that still
// fits where it is held (no more units than held, at locations it allows)
// keeps its units there and releases the rest; any other is allocated afresh,
// as Reserve would, counting the units the cart holds of that SKU as free.
// TTL, when set, moves the deadline to now + TTL; otherwise it is kept.
// Region, when set, restricts the locations of lines allocated afresh.
//
// A change that leaves every line as it is and names no TTL changes nothing
// and is answered as a repeat, so a PATCH sent twice is harmless. Key is an
// idempotency key, as for ExtendReservation.
type ChangeReservation struct {
	ID     string
	TTL    time.Duration
	Region string
	Lines  []ReserveLine
	Key    string
}

func (c ChangeReservation) route() route { return route{key: Key{KindReservation, c.ID}} }

// Validate implements Command. The lines are checked exactly as a Reserve's
// are; an empty list is refused, since releasing is how a cart is dropped.
func (c ChangeReservation) Validate(lim Limits) error {
	if err := firstError(
		checkName("reservation id", c.ID),
		checkOptionalName("region", c.Region),
		checkOptionalName("idempotency key", c.Key),
		checkTTL(c.TTL, lim, true),
	); err != nil {
		return err
	}
	if len(c.Lines) == 0 {
		return invalid("a change needs at least one line; release the reservation to drop every line")
	}
	// The lines follow Reserve's rules; the id is checked above.
	return Reserve{ID: c.ID, Lines: c.Lines}.Validate(lim)
}

// changeFingerprint is the digest of a change, for its idempotency key.
func changeFingerprint(c ChangeReservation) uint64 {
	h := fnv1a(fnvOffset)
	h.strings("change", c.ID, c.Key, c.Region)
	h.int(int64(c.TTL))
	h.reserveLines(c.Lines)
	return uint64(h)
}

// ReservationChanged records one line of a held reservation replaced by a
// change, in its SKU's stream: the line now holds Quantity units at
// Allocations, where it held PreviousQuantity at PreviousAllocations (both 0
// and empty for a line the change added). Quantity 0 with no allocations
// removes the line. ExpiresAt is the reservation's deadline after the change.
type ReservationChanged struct {
	Reservation         string       `json:"reservation"`
	Quantity            int64        `json:"quantity"`
	Allocations         []Allocation `json:"allocations"`
	PreviousQuantity    int64        `json:"previous_quantity"`
	PreviousAllocations []Allocation `json:"previous_allocations"`
	ExpiresAt           time.Time    `json:"expires_at"`
	// Key is the idempotency key the command carried, if any; the
	// reservation remembers it with KeyFingerprint.
	Key            string `json:"idempotency_key,omitempty"`
	KeyFingerprint uint64 `json:"-"`
}

// TypeReservationChanged is the type of ReservationChanged. Tags from 80 up
// belong to the commerce rules.
const TypeReservationChanged EventType = 86

// EventType implements EventData.
func (ReservationChanged) EventType() EventType { return TypeReservationChanged }

// checkLine makes every per-line check of a hold in this partition — the
// SKU's per-customer limit, its sales cap, then allocation (locations,
// region, safety stock, stock) — and returns where the line would be held,
// or why it cannot be. A Reserve at the home, a participant's hold and a
// change of a held cart all go through it, so that a rule added here holds
// for all three. customer and reservation are the cart's: the limit does not
// count the cart's own holds against itself. With preorders, a line the
// stock cannot hold may hold expected units of a SKU that takes preorders
// (allocateLine); a change never does (see change).
func (x *decision) checkLine(l ReserveLine, customer, reservation, region string, preorders bool) ([]Allocation, []PreorderHold, *Shortfall) {
	if short := x.limited(l, customer, reservation); short != nil {
		return nil, nil, short
	}
	if short := x.s.capped(l); short != nil {
		return nil, nil, short
	}
	if !preorders {
		a, short := x.s.allocate(l, region)
		return a, nil, short
	}
	return x.s.allocateLine(l, region)
}

// lineChange is what a change does to one line of the cart.
type lineChange struct {
	sku    string
	old    *resLine // nil for a line added
	qty    int64    // 0 for a line removed
	allocs []Allocation
	// fresh is a line to allocate afresh: it grows or moves.
	fresh bool
	line  ReserveLine
}

func (x *decision) change(c ChangeReservation) error {
	r, err := x.s.homeReservation(c.ID)
	if err != nil {
		return err
	}
	if done, err := x.keyed(r, c.Key, c); done || err != nil {
		return err
	}
	// A committed reservation is refused here, whatever the change: what a
	// commit took is never released or altered by a change, and a change
	// racing a commit is decided after it or before it, never half.
	if err := x.held(r); err != nil {
		return err
	}
	for _, l := range c.Lines {
		if err := x.checkLocations(l); err != nil {
			return err
		}
	}
	// A line held against expected stock keeps its preorder holds on the
	// expected receipt until it arrives, and a bundle line accounts for
	// units of several lines: a change moves neither yet.
	if sku := r.preorderLine(x.s.partition); sku != "" {
		return Errorf(CodeInvalid, "reservation %q holds preorders of %q: a cart with preorder units cannot be changed; release it and reserve again", r.id, sku)
	}
	if len(r.bundles) > 0 {
		return Errorf(CodeInvalid, "reservation %q holds bundle %q: a cart with bundles cannot be changed; release it and reserve again", r.id, r.bundles[0].line.SKU)
	}
	for _, l := range c.Lines {
		if _, ok := x.s.Bundle(l.SKU); ok {
			return Errorf(CodeInvalid, "%q is a bundle: a change cannot add bundle lines; release the cart and reserve again", l.SKU)
		}
	}
	if asked, remote := x.s.remoteChange(r, c); remote {
		if g := r.saga; g != nil && len(g.pending) > 0 {
			if g.change != nil && g.change.fingerprint == Fingerprint(c) {
				// The same change sent again: wait for its outcome.
				x.d.Replay = true
				x.d.Wait = r.id
				return nil
			}
			return Errorf(CodeReservationBusy, "reservation %q has a step under way in other partitions; retry shortly", r.id)
		}
		return x.changeSaga(r, c, asked)
	}
	if err := busy(r); err != nil {
		return err
	}
	plan := make([]lineChange, 0, len(c.Lines)+len(r.lines))
	for _, l := range c.Lines {
		old := r.line(l.SKU)
		if old != nil && old.released {
			old = nil
		}
		if PartitionOf(l.SKU, x.s.partitions) != x.s.partition {
			continue // held elsewhere, and unchanged (remoteChange)
		}
		lc := lineChange{sku: l.SKU, old: old, qty: l.Quantity, line: l}
		if old != nil && old.quantity >= l.Quantity && !x.s.moves(old.allocations, l, c.Region) {
			lc.allocs = commitAllocations(old.allocations, l.Quantity)
		} else {
			lc.fresh = true
		}
		plan = append(plan, lc)
	}
	for _, old := range r.lines {
		if old.released || old.partition != x.s.partition || slices.ContainsFunc(c.Lines, func(l ReserveLine) bool { return l.SKU == old.sku }) {
			continue
		}
		plan = append(plan, lineChange{sku: old.sku, old: old})
	}
	if shortfalls := x.allocateChange(plan, r.customer, r.id, c.Region); len(shortfalls) > 0 {
		return refusal(shortfalls...)
	}
	expires := fromUnixNano(r.expiresAt)
	if c.TTL > 0 {
		expires = x.now.Add(c.TTL)
	}
	changed := false
	for _, lc := range plan {
		var prevQty int64
		var prev []Allocation
		if lc.old != nil {
			prevQty, prev = lc.old.quantity, lc.old.allocations
		}
		if lc.old != nil && prevQty == lc.qty && slices.Equal(prev, lc.allocs) {
			if c.TTL > 0 {
				x.emit(lc.sku, r.id, ReservationExtended{Reservation: r.id, ExpiresAt: expires, Key: x.key, KeyFingerprint: x.keyFP})
			}
			continue
		}
		changed = true
		x.emit(lc.sku, r.id, ReservationChanged{
			Reservation: r.id, Quantity: lc.qty, Allocations: lc.allocs,
			PreviousQuantity: prevQty, PreviousAllocations: prev, ExpiresAt: expires,
			Key: x.key, KeyFingerprint: x.keyFP,
		})
	}
	if c.TTL > 0 {
		x.step(r, SagaStepStarted{Action: SagaExtend, ExpiresAt: expires})
	} else if !changed {
		x.d.Replay = true
		x.settling(r)
	}
	return nil
}

// checkLocations refuses a line naming a location never configured, as
// Reserve does.
func (x *decision) checkLocations(l ReserveLine) error {
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
	return nil
}

// moves reports whether line l, asking for no more units than held at allocs,
// cannot keep them there: the first l.Quantity of them (taken in order, as a
// partial commit takes them) lie at a location l does not allow, or at
// several while l may not split.
func (s *State) moves(allocs []Allocation, l ReserveLine, region string) bool {
	kept := commitAllocations(allocs, l.Quantity)
	if len(kept) > 1 && !l.Split {
		return true
	}
	for _, a := range kept {
		switch {
		case l.Location != "" && a.Location != l.Location:
			return true
		case len(l.Locations) > 0 && !slices.Contains(l.Locations, a.Location):
			return true
		case region != "" && s.locations[a.Location].Region != region:
			return true
		}
	}
	return false
}

// allocateChange allocates the lines of a change that grow or move, through
// checkLine, and returns the shortfalls of those that cannot be held. Each is
// checked as if the cart's own line of that SKU were released: those units
// are free for it, and for its sales cap. The State's holds are taken out for
// the check and put back before it returns, so the State is as it was: Decide
// runs on the goroutine that owns the State, and nothing reads it meanwhile.
func (x *decision) allocateChange(plan []lineChange, customer, id, region string) []Shortfall {
	s := x.s
	for _, lc := range plan {
		if lc.fresh && lc.old != nil {
			s.unholdLine(lc.sku, lc.old.allocations)
		}
	}
	var shortfalls []Shortfall
	for i := range plan {
		lc := &plan[i]
		if !lc.fresh {
			continue
		}
		a, _, short := x.checkLine(lc.line, customer, id, region, false)
		if short != nil {
			shortfalls = append(shortfalls, *short)
			continue
		}
		lc.allocs = a
	}
	for _, lc := range plan {
		if lc.fresh && lc.old != nil {
			s.holdLine(lc.sku, lc.old.allocations)
		}
	}
	return shortfalls
}

func (s *State) unholdLine(sku string, allocs []Allocation) {
	sk := s.skus[sku]
	for _, a := range allocs {
		if st := sk.find(a.Location); st != nil {
			st.unhold(a.Quantity)
		}
	}
}

func (s *State) holdLine(sku string, allocs []Allocation) {
	sk := s.skus[sku]
	for _, a := range allocs {
		if st := sk.find(a.Location); st != nil {
			st.hold(a.Quantity)
		}
	}
}

// remoteChange reports whether change c of r alters a line held, or to be
// held, in another partition than r's home — a line added, removed, of
// another quantity, or that cannot stay where it is held — and which
// partitions must then grow: those holding at least one line after the
// change whose lines change. (A partition losing every line needs not grow;
// it is trimmed with the others.)
func (s *State) remoteChange(r *reservation, c ChangeReservation) ([]int, bool) {
	changed := false
	var asked []int
	for _, l := range c.Lines {
		p := PartitionOf(l.SKU, s.partitions)
		if p == s.partition {
			continue
		}
		old := r.line(l.SKU)
		if old == nil || old.released || old.quantity != l.Quantity || s.moves(old.allocations, l, c.Region) {
			changed = true
			if !slices.Contains(asked, p) {
				asked = append(asked, p)
			}
		}
	}
	for _, old := range r.lines {
		if old.released || old.partition == s.partition {
			continue
		}
		if !slices.ContainsFunc(c.Lines, func(l ReserveLine) bool { return l.SKU == old.sku }) {
			changed = true
			for _, l := range c.Lines {
				if p := PartitionOf(l.SKU, s.partitions); p == old.partition && !slices.Contains(asked, p) {
					asked = append(asked, p)
				}
			}
		}
	}
	slices.Sort(asked)
	return asked, changed
}

// applyChanged replaces a line of a held reservation, as a change decided.
func (s *State) applyChanged(e Event, sk *skuState, d ReservationChanged) {
	r := s.reservations[d.Reservation]
	if r == nil {
		if d.Quantity == 0 {
			return
		}
		// Only a SKU's own history is folded (SKUReplayer): the line was
		// added by a change to a cart held with other SKUs, which this
		// history never saw. Changes are decided at the cart's home, so
		// that is the partition of this event.
		r = &reservation{
			id: d.Reservation, createdAt: unixNano(e.Time), expiresAt: unixNano(d.ExpiresAt), home: s.partition,
		}
		s.setStatus(r, StatusHeld)
		s.reservations[r.id] = r
		s.armHold(r)
	}
	r.remember(d.Key, d.KeyFingerprint)
	line := r.line(e.SKU)
	if line != nil {
		for _, a := range line.allocations {
			sk.at(a.Location).unhold(a.Quantity)
		}
	}
	// What the customer holds of a limited SKU moves by the difference.
	s.limitHold(sk, r.customer, d.Quantity-d.PreviousQuantity)
	if d.Quantity == 0 {
		r.lines = slices.DeleteFunc(r.lines, func(l *resLine) bool { return l.sku == e.SKU })
	} else {
		if line == nil {
			line = &resLine{sku: e.SKU, partition: s.partition}
			r.lines = append(r.lines, line)
		}
		line.quantity, line.allocations = d.Quantity, d.Allocations
		for _, a := range d.Allocations {
			sk.at(a.Location).hold(a.Quantity)
		}
	}
	if at := unixNano(d.ExpiresAt); at != r.expiresAt {
		r.expiresAt = at
		if r.home == s.partition {
			s.armHold(r)
		}
	}
}

// applyChanged moves a changed line's holds in the availability projection,
// as State.applyChanged does.
func (a *AvailabilityState) applyChanged(e Event, sk *availSKU, d ReservationChanged) {
	r := a.reservations[d.Reservation]
	if r == nil {
		return
	}
	r.expiresAt = d.ExpiresAt
	l := r.line(e.SKU)
	if l != nil && l.holding {
		for _, al := range l.allocations {
			sk.at(al.Location).reserved -= al.Quantity
		}
	}
	if d.Quantity == 0 {
		r.lines = slices.DeleteFunc(r.lines, func(l *liveLine) bool { return l.sku == e.SKU })
		return
	}
	if l == nil {
		l = &liveLine{sku: e.SKU, partition: a.partition}
		r.lines = append(r.lines, l)
	}
	l.quantity, l.allocations, l.holding = d.Quantity, d.Allocations, true
	for _, al := range d.Allocations {
		sk.at(al.Location).reserved += al.Quantity
	}
}

// preorderLine returns the SKU of a line of r held in partition p against
// expected stock, or "" when there is none.
func (r *reservation) preorderLine(p int) string {
	for _, l := range r.lines {
		if l.partition == p && !l.released && len(l.preorders) > 0 {
			return l.sku
		}
	}
	return ""
}
