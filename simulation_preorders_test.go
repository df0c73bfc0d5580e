package stockd

import (
	"time"
)

// Incoming stock and preorders in the deterministic simulation: purchase
// order lines are recorded, arrive (in full, short or over) and are
// cancelled among everything else, half the SKU configurations take
// preorders, and every check of a partition also checks that expected
// stock is never promised beyond what is expected.

// genExpected returns a command on expected receipts.
func (s *sim) genExpected() (Command, intent) {
	r := s.rng.IntN(100)
	if r < 25 {
		// Preorders are configured often enough that carts meet them.
		return ConfigureSKU{SKU: s.pick(s.skus), SafetyStock: int64(s.rng.IntN(2)), Preorders: true}, meantValid
	}
	if len(s.expected) == 0 || r < 60 {
		c := ExpectReceipt{
			ID: s.newID("po"), SKU: s.preorderSKU(), Location: s.loc(), Quantity: int64(1 + s.rng.IntN(12)),
			ExpectedAt: s.c.now.Add(time.Duration(1+s.rng.IntN(72)) * time.Hour),
		}
		switch s.reuse(len(s.expected)) {
		case 1:
			return s.expected[s.rng.IntN(len(s.expected))], meantValid
		case 2:
			old := s.expected[s.rng.IntN(len(s.expected))]
			c.ID, c.SKU = old.ID, old.SKU
		}
		if s.chance(5) {
			c.Quantity = 0
			return c, meantInvalid
		}
		s.expected = append(s.expected, c)
		return c, meantValid
	}
	e := s.expected[s.rng.IntN(len(s.expected))]
	if s.chance(3) {
		e.ID = s.newID("po") // unknown
	}
	if r < 88 {
		c := ArriveExpected{ID: e.ID}
		switch s.rng.IntN(4) {
		case 0:
			c.Quantity = max(e.Quantity-int64(1+s.rng.IntN(4)), 1) // short
		case 1:
			c.Quantity = e.Quantity + 1 // over
		case 2:
			c.Lot, c.BestBefore = s.pick(s.lots), s.bestBefore()
		}
		return c, meantValid
	}
	return CancelExpected{ID: e.ID}, meantValid
}

// oracleAvailable is what the oracle may allocate at a location: on-hand
// available stock and, for a SKU that takes preorders, the expected units
// not yet promised there.
func oracleAvailable(v SKUState, ls LocationState) int64 {
	if v.Preorders && ls.Preorderable > 0 {
		return max(ls.Available, 0) + ls.Preorderable
	}
	return ls.Available
}

// expectPreorder returns the outcome of a command on expected receipts, and
// false for any other command.
func expectPreorder(st *State, cmd Command, now time.Time, known func(string) bool) (outcome, bool) {
	switch c := cmd.(type) {
	case ExpectReceipt:
		if e := st.expected[c.ID]; e != nil {
			if e.fingerprint != c.fingerprint() {
				return refused(CodeIdempotencyMismatch), true
			}
			return replayed, true
		}
		if !known(c.Location) {
			return refused(CodeUnknownLocation), true
		}
		return accepted, true
	case ArriveExpected:
		e, ok := st.ExpectedReceiptView(c.ID)
		q := c.Quantity
		if q == 0 {
			q = e.Quantity
		}
		switch {
		case !ok:
			return refused(CodeNotFound), true
		case e.Status == ExpectedStatusCancelled:
			return refused(CodeExpectedReceiptClosed), true
		case e.Status == ExpectedStatusArrived && e.Arrived == q && e.Lot == c.Lot && e.BestBefore == c.BestBefore:
			return replayed, true
		case e.Status == ExpectedStatusArrived:
			return refused(CodeIdempotencyMismatch), true
		}
		if at, ok := LotExpiry(c.BestBefore); ok && !now.Before(at) {
			return refused(CodeInvalid), true
		}
		return accepted, true
	case CancelExpected:
		e, ok := st.ExpectedReceiptView(c.ID)
		switch {
		case !ok:
			return refused(CodeNotFound), true
		case e.Status == ExpectedStatusCancelled:
			return replayed, true
		case e.Status == ExpectedStatusArrived:
			return refused(CodeExpectedReceiptClosed), true
		}
		return accepted, true
	}
	return outcome{}, false
}

// checkPreorders checks a partition's expected receipts against the
// reservations that hold them: what each promises is what the held lines
// hold against it, and never more than it expects less what was sold of it.
func (s *sim) checkPreorders(p int, st *State) {
	promised := map[string]int64{}
	for _, r := range st.reservations {
		if r.status != StatusHeld && r.status != StatusPending {
			continue
		}
		for _, l := range r.lines {
			if l.partition != p || l.released {
				continue
			}
			if got := sumAllocations(l.allocations) + sumPreorders(l.preorders); got != l.quantity {
				s.fail("partition %d: %s line %s holds %d on hand and expected, not its %d", p, r.id, l.sku, got, l.quantity)
			}
			for _, h := range l.preorders {
				promised[h.ExpectedReceipt] += h.Quantity
			}
		}
	}
	for id, e := range st.expected {
		switch {
		case e.status != ExpectedStatusExpected && (e.promised != 0 || promised[id] != 0):
			s.fail("partition %d: expected receipt %s is %s but promises %d (lines hold %d)", p, id, e.status, e.promised, promised[id])
		case e.promised != promised[id]:
			s.fail("partition %d: expected receipt %s promises %d, the lines hold %d", p, id, e.promised, promised[id])
		case e.promised+e.committed > e.qty:
			s.fail("partition %d: expected receipt %s promises %d and sold %d of %d: beyond what is expected", p, id, e.promised, e.committed, e.qty)
		}
		if e.promised > 0 {
			s.stats["state.preordered"]++
		}
		if e.committed > 0 {
			s.stats["state.preorder_committed"]++
		}
	}
}

// checkPreorderHolds checks the preorder holds of a line against the state
// it was decided against: only a SKU that takes preorders holds expected
// units, only of open receipts of that SKU, never more than they have free,
// and only for what its on-hand stock could not give. It returns the units
// held.
func (s *sim) checkPreorderHolds(p int, st *State, sku string, d StockReserved) int64 {
	var sum int64
	for _, h := range d.Preorders {
		e := st.expected[h.ExpectedReceipt]
		switch {
		case h.Quantity <= 0:
			s.fail("partition %d: preorder hold %+v of %s", p, h, d.Reservation)
		case !st.skus[sku].preorders:
			s.fail("partition %d: %s holds expected units of %s, which takes no preorders", p, d.Reservation, sku)
		case e == nil || e.sku != sku || e.location != h.Location:
			s.fail("partition %d: %s holds %+v, not an expected receipt of %s", p, d.Reservation, h, sku)
		case h.Quantity > e.free():
			s.fail("partition %d: %s holds %d of %s, which has %d free", p, d.Reservation, h.Quantity, e.id, e.free())
		}
		sum += h.Quantity
	}
	if sum > 0 {
		s.stats["preorder-hold"]++
	}
	return sum
}

// preorderSKU returns, most of the time, a SKU that takes preorders, so that
// carts meet expected stock they may hold.
func (s *sim) preorderSKU() string {
	var pre []string
	for _, sku := range s.skus {
		if sk := s.c.states[PartitionOf(sku, s.c.p)].skus[sku]; sk != nil && sk.preorders {
			pre = append(pre, sku)
		}
	}
	if len(pre) > 0 && s.chance(80) {
		return s.pick(pre)
	}
	return s.pick(s.skus)
}
