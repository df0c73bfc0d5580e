package stockd

import "fmt"

// Snapshots. A partition State is encoded with the same primitives as events.
// What can be derived is not stored: holds and reserved quantities are rebuilt
// from the reservations, and timers from reservations and lots, so a snapshot
// cannot disagree with itself.

// The snapshot formats: 2 added when each reservation settled and how many
// entities the partition retired; 3 the saga attempt, step and timing that
// let a saga survive lost and repeated messages; 4 each SKU's sales cap and
// units committed, and the sales caps of a saga's shortfalls. Formats 1 to 3
// are still read: their SKUs have no cap, and count as committed only the
// committed lines of the reservations they still hold (units committed by
// reservations retired before the snapshot are not known to them). 5 added
// each SKU's per-customer limit with the commits customers made within its
// window, and the customer limits of a saga's shortfalls; formats 1 to 4 are
// read with no limits. 7 added bundles; 8 a change of a cart spanning
// partitions in flight (at the home) and a participant's answer to its grow
// step; formats before them have none.
const (
	snapshotFormatV1 = 1
	snapshotFormatV2 = 2
	snapshotFormatV3 = 3
	snapshotFormatV4 = 4
	snapshotFormatV5 = 5
	// snapshotFormatV6 added incoming stock: which SKUs take preorders,
	// the expected receipts, and the preorder holds of reservation lines.
	snapshotFormatV6 = 6
	// snapshotFormatV7 added bundles: the catalog's bundle definitions
	// (LocationPartition only) and the reservations' bundle lines, after
	// everything format 4 has. Formats before it have no bundles.
	snapshotFormatV7 = 7
	snapshotFormatV8 = 8
)

// EncodeState returns the encoding of s for a snapshot.
func EncodeState(s *State) []byte {
	// Start with about the size the encoding will have (each reservation,
	// SKU, transfer and record takes some 60 bytes): a State of a busy
	// partition encodes to megabytes, and growing a buffer by append's
	// steps copies it many times over.
	w := writer{buf: make([]byte, 0, 1<<12+64*(len(s.reservations)+len(s.skus)+len(s.transfers)+len(s.records)))}
	w.byte(snapshotFormatV8)
	w.varint(int64(s.partition))
	w.varint(int64(s.partitions))
	w.uvarint(s.head)
	w.time(s.clock)

	if s.partition == LocationPartition {
		w.uvarint(uint64(len(s.locations)))
		for _, l := range s.locations {
			w.location(l)
		}
	} else {
		w.uvarint(0)
	}

	w.uvarint(uint64(len(s.skus)))
	for _, sk := range s.skus {
		w.string(sk.id)
		w.uvarint(sk.version)
		w.varint(sk.safety)
		w.varint(sk.lowStock)
		w.varint(sk.salesCap)
		w.varint(sk.committed)
		w.limit(sk)
		w.uvarint(uint64(len(sk.stockList)))
		for _, loc := range sk.stockList {
			st := sk.find(loc)
			w.string(loc)
			w.varint(st.onHand)
			w.varint(st.inTransit)
			w.uvarint(uint64(len(st.lots)))
			for _, l := range st.lots {
				w.strings(l.id, l.bestBefore)
				w.varint(l.qty)
			}
		}
	}

	w.uvarint(uint64(len(s.reservations)))
	for _, r := range s.reservations {
		w.reservation(r)
	}

	w.uvarint(uint64(len(s.transfers)))
	for _, t := range s.transfers {
		w.transfer(t)
	}

	w.uvarint(uint64(len(s.records)))
	for k, r := range s.records {
		w.string(k)
		w.record(r)
	}
	w.uvarint(s.retiredCount)
	encodePreorderState(&w, s)
	w.encodeBundles(s)
	return w.buf
}

// DecodeState rebuilds a State from a snapshot made by EncodeState.
func DecodeState(data []byte, limits Limits) (*State, error) {
	r := reader{buf: data}
	v := r.byte()
	if (v < snapshotFormatV1 || v > snapshotFormatV8) && r.err == nil {
		return nil, fmt.Errorf("%w: unknown snapshot format %d", ErrCorrupt, v)
	}
	p, partitions := r.int(), r.int()
	if r.err == nil && (partitions <= 0 || p < 0 || p >= partitions) {
		return nil, fmt.Errorf("%w: partition %d of %d", ErrCorrupt, p, partitions)
	}
	s := NewState(p, partitions, limits)
	s.head = r.uvarint()
	s.clock = r.time()

	n := r.count()
	if n > 0 && p != LocationPartition {
		// EncodeState writes locations only for the partition that owns
		// them; the others receive them by SetLocations. Anything else
		// is not a snapshot this code wrote, and would not survive
		// being encoded again.
		return nil, fmt.Errorf("%w: locations in a snapshot of partition %d", ErrCorrupt, p)
	}
	for ; n > 0 && r.err == nil; n-- {
		l := r.location()
		s.locations[l.ID] = l
	}

	for n := r.count(); n > 0 && r.err == nil; n-- {
		sk := s.sku(r.string())
		sk.version = r.uvarint()
		sk.safety = r.varint()
		sk.lowStock = r.varint()
		if v >= snapshotFormatV4 {
			sk.salesCap = r.varint()
			sk.committed = r.varint()
		}
		if v >= snapshotFormatV5 {
			r.limit(sk)
		}
		for m := r.count(); m > 0 && r.err == nil; m-- {
			st := sk.at(r.string())
			st.onHand = r.varint()
			st.inTransit = r.varint()
			for k := r.count(); k > 0 && r.err == nil; k-- {
				st.lots = append(st.lots, lot{id: r.string(), bestBefore: r.string(), qty: r.varint()})
			}
		}
	}

	for n := r.count(); n > 0 && r.err == nil; n-- {
		res := r.reservation(v >= snapshotFormatV2, v >= snapshotFormatV3, v >= snapshotFormatV4, v >= snapshotFormatV5, v >= snapshotFormatV6, v >= snapshotFormatV8)
		if r.err == nil {
			if v < snapshotFormatV2 && s.settled(res) {
				// Format 1 did not record when a reservation settled:
				// its retention starts from the snapshot's moment.
				res.settledAt = unixNano(s.clock)
			}
			if v < snapshotFormatV3 && res.saga != nil {
				// Formats 1 and 2 did not record when a step started:
				// it waits from the snapshot's moment. (A hold under
				// way, whose lines they did not keep either, is
				// abandoned by Recover, never asked for again.)
				res.saga.since = unixNano(s.clock)
			}
			s.reservations[res.id] = res
			if res.home == p && res.status == StatusHeld {
				s.held++
			}
		}
	}

	for n := r.count(); n > 0 && r.err == nil; n-- {
		t := r.transfer()
		s.transfers[t.id] = t
	}

	for n := r.count(); n > 0 && r.err == nil; n-- {
		k := r.string()
		s.records[k] = r.record()
	}
	if v >= snapshotFormatV2 {
		s.retiredCount = r.uvarint()
	}
	if v >= snapshotFormatV6 {
		decodePreorderState(&r, s)
	}
	if v >= snapshotFormatV7 {
		r.decodeBundles(s)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.buf) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in snapshot", ErrCorrupt, len(r.buf))
	}
	s.rehold()
	s.repromise()
	if v < snapshotFormatV4 {
		s.recount()
	}
	s.reholdLimits()
	s.rearm()
	s.rearmLimits()
	s.rearmExpected()
	s.reindex()
	return s, nil
}

// recount rebuilds the units committed per SKU, which snapshot formats 1 to
// 3 did not keep, from the committed lines of the reservations the snapshot
// holds: the best it can know, since a retired reservation's lines are gone.
// No SKU of such a snapshot has a sales cap, which only format 4 keeps.
func (s *State) recount() {
	for _, r := range s.reservations {
		for _, l := range r.lines {
			if sk := s.skus[l.sku]; sk != nil && l.partition == s.partition {
				sk.committed += l.committed
			}
		}
	}
}

// rehold rebuilds reserved quantities from the reservations.
func (s *State) rehold() {
	for _, r := range s.reservations {
		if r.status != StatusHeld && r.status != StatusPending {
			continue
		}
		for _, l := range r.lines {
			if l.partition != s.partition || l.released {
				continue
			}
			sk := s.skus[l.sku]
			if sk == nil {
				continue
			}
			for _, a := range l.allocations {
				sk.at(a.Location).hold(a.Quantity)
			}
		}
	}
}

// The encodings of entities, shared by snapshots and retired records.

func (w *writer) reservation(r *reservation) {
	w.strings(r.id, string(r.status), r.customer)
	w.u64(r.fingerprint)
	w.varint(r.createdAt)
	w.varint(r.expiresAt)
	w.varint(r.settledAt)
	w.varint(int64(r.home))
	w.uvarint(uint64(len(r.lines)))
	for _, l := range r.lines {
		w.string(l.sku)
		w.varint(int64(l.partition))
		w.varint(l.quantity)
		w.varint(l.committed)
		w.allocations(l.allocations)
		w.allocations(l.committedAt)
		w.bool(l.released)
	}
	w.bool(r.saga != nil)
	if g := r.saga; g != nil {
		w.ints(g.participants)
		w.varint(int64(g.step))
		w.byte(byte(g.action))
		w.ints(g.pending)
		w.ints(g.held)
		w.shortfalls(g.failed)
		w.bool(g.aborted)
		encodeData(w, g.last)
	}
	w.uvarint(uint64(len(r.keys)))
	for k, fp := range r.keys {
		w.string(k)
		w.u64(fp)
	}
	w.uvarint(r.attempt)
	w.varint(int64(r.step))
	if g := r.saga; g != nil {
		w.varint(g.since)
		w.string(g.region)
		w.reserveLines(g.hold)
	}
	for _, l := range r.lines {
		w.preorderHolds(l.preorders)
	}
	w.resLines(r.grown)
	w.shortfalls(r.grownShort)
	if g := r.saga; g != nil {
		w.bool(g.change != nil)
		if c := g.change; c != nil {
			w.reserveLines(c.lines)
			w.string(c.region)
			w.varint(c.expiresAt)
			w.resLines(c.previous)
			w.resLines(c.local)
			w.string(c.key)
			w.u64(c.keyFP)
			w.u64(c.fingerprint)
			w.ints(c.asked)
			w.resLines(c.targets)
			w.shortfalls(c.short)
			w.bool(c.decided)
			w.bool(c.made)
			w.resLines(c.after)
		}
	}
}

// reservation decodes a reservation; settled says whether the encoding
// carries the moment it settled (snapshot format 1 did not), attempts whether
// it carries the saga's attempt, step and timing (snapshot format 3 and
// retired record format 2 do), caps whether its saga's shortfalls carry
// their sales caps (snapshot format 4 and retired record format 3 do),
// limits whether they carry their customer limits (snapshot format 5 and
// retired record format 4 do), preorders whether its lines carry their
// preorder holds (snapshot format 6 and retired record format 5 do), and
// changes whether it carries a change in flight and a participant's answer
// to its grow step (snapshot format 8 and retired record format 7 do).
func (r *reader) reservation(settled, attempts, caps, limits, preorders, changes bool) *reservation {
	res := &reservation{id: r.string(), status: ReservationStatus(r.string()), customer: r.string()}
	res.fingerprint = r.u64()
	res.createdAt = r.varint()
	res.expiresAt = r.varint()
	if settled {
		res.settledAt = r.varint()
	}
	res.home = r.int()
	for m := r.count(); m > 0 && r.err == nil; m-- {
		l := &resLine{sku: r.string(), partition: r.int(), quantity: r.varint(), committed: r.varint()}
		l.allocations = r.allocations()
		l.committedAt = r.allocations()
		l.released = r.bool()
		res.lines = append(res.lines, l)
	}
	if r.bool() {
		g := &saga{participants: r.ints(), step: r.int(), action: SagaAction(r.byte())}
		g.pending = r.ints()
		g.held = r.ints()
		g.failed = r.shortfalls(caps, limits)
		g.aborted = r.bool()
		if last, ok := decodeData(r, TypeSagaStepStarted, eventFormatV3).(SagaStepStarted); ok {
			g.last = last
		}
		res.saga = g
	}
	for k := r.count(); k > 0 && r.err == nil; k-- {
		res.remember(r.string(), r.u64())
	}
	if attempts {
		res.attempt = r.uvarint()
		res.step = r.int()
		if g := res.saga; g != nil {
			g.since = r.varint()
			g.region = r.string()
			g.hold = r.reserveLines()
		}
	}
	if preorders {
		for _, l := range res.lines {
			l.preorders = r.preorderHolds()
		}
	}
	if changes {
		res.grown = r.resLines()
		res.grownShort = r.shortfalls(true, true)
		if g := res.saga; g != nil && r.bool() {
			c := &sagaChange{lines: r.reserveLines(), region: r.string(), expiresAt: r.varint()}
			c.previous = r.resLines()
			c.local = r.resLines()
			c.key = r.string()
			c.keyFP = r.u64()
			c.fingerprint = r.u64()
			c.asked = r.ints()
			c.targets = r.resLines()
			c.short = r.shortfalls(true, true)
			c.decided = r.bool()
			c.made = r.bool()
			c.after = r.resLines()
			g.change = c
		}
	}
	return res
}

func (w *writer) transfer(t *transfer) {
	w.strings(t.id, t.sku, t.from, t.to)
	w.u64(t.fingerprint)
	w.varint(t.qty)
	w.lots(t.lots)
	w.time(t.sentAt)
	w.time(t.arrivedAt)
}

func (r *reader) transfer() *transfer {
	t := &transfer{id: r.string(), sku: r.string(), from: r.string(), to: r.string()}
	t.fingerprint = r.u64()
	t.qty = r.varint()
	t.lots = r.lots()
	t.sentAt = r.time()
	t.arrivedAt = r.time()
	return t
}

func (w *writer) record(rec record) {
	w.u64(rec.fingerprint)
	w.uvarint(rec.position)
	w.time(rec.time)
	w.varint(rec.delta)
}

func (r *reader) record() record {
	return record{fingerprint: r.u64(), position: r.uvarint(), time: r.time(), delta: r.varint()}
}
