package stockd

import "fmt"

// Retirement. A settled entity — a committed, released or expired
// reservation, an arrived transfer, the record of a receipt, adjustment or
// count — changes nothing any more, but its id must still be answered: a
// repeat of the command that created it gets the first answer, a different
// request with its id gets idempotency_mismatch. Keeping every such entity in
// memory makes memory follow history, so once an entity has been settled for
// Limits.Retain the partition's own timer retires it: an EntitiesRetired event
// removes it from the State, and the same append writes a RetiredRecord, which
// the store keeps for good, holding the entity's last state.
//
// Retirement is decided like everything else, by Decide from the State and
// the clock, and recorded as an event, so replay, snapshots and time travel
// stay deterministic: a State rebuilt from the log retires exactly what the
// original did, whatever Retain is configured on the way.
//
// An id is answered after retirement by RestoreRetired: a State holding just
// that entity, against which the engine decides the repeated command (which
// can then only be a replay or a refusal, as the entity is settled) and reads
// its answer with the same view functions as ever.

// maxRetiredPerEvent bounds the keys one EntitiesRetired event carries, and
// so the size of a batch after a long pause: what is left is due at once and
// retired by the next batches.
const maxRetiredPerEvent = 1024

// The versions of a RetiredRecord's Data: 2 added a reservation's saga
// attempt, step and timing (snapshot format 3); 3 the sales caps of its
// saga's shortfalls (snapshot format 4); 4 their customer limits (snapshot
// format 5); 6 a reservation's bundle lines (snapshot format 7); 7 a change
// in flight and a participant's answer to a change (snapshot format 8).
// 5 expected receipts and the preorder holds of a reservation's lines
// (snapshot format 6). Formats 1 to 6 are still read.
const (
	retiredFormatV1 = 1
	retiredFormatV2 = 2
	retiredFormatV3 = 3
	retiredFormatV4 = 4
	// retiredFormatV5 added expected receipts and the preorder holds of
	// a reservation's lines (snapshot format 6).
	retiredFormatV5 = 5
	// retiredFormatV6 added a reservation's bundle lines, after the
	// reservation; older records have none.
	retiredFormatV6 = 6
	retiredFormatV7 = 7
)

// Which kind of entity a retire timer names. For records, the timer's id is
// the key of the records map ("receipt:r-1"), which the map already holds.
const (
	retireRecord uint8 = iota
	retireTransfer
	retireReservation
)

type retireTimer struct {
	at   int64 // Unix nanoseconds
	kind uint8
	id   string
}

func (a retireTimer) before(b retireTimer) bool {
	switch {
	case a.at != b.at:
		return a.at < b.at
	case a.kind != b.kind:
		return a.kind < b.kind
	}
	return a.id < b.id
}

// key returns the idempotency key a retire timer names, in its string form.
func (t retireTimer) key() string {
	switch t.kind {
	case retireTransfer:
		return transferKey(t.id)
	case retireReservation:
		return reservationKey(t.id)
	case retireExpected:
		return expectedKey(t.id)
	}
	return t.id
}

// retireEntities is the command Due issues for entities whose retention has
// passed.
type retireEntities struct{ due []retireTimer }

func (retireEntities) Validate(Limits) error { return nil }
func (retireEntities) route() route          { return route{} }

// armRetire schedules the retirement of an entity settled at settled (Unix
// nanoseconds).
func (s *State) armRetire(kind uint8, id string, settled int64) {
	if s.limits.Retain <= 0 {
		return
	}
	s.timers.retire.push(retireTimer{at: settled + int64(s.limits.Retain), kind: kind, id: id})
}

// settled reports whether a reservation is done with in this partition:
// committed, released or expired, with no saga step still waiting for a
// participant.
func (s *State) settled(r *reservation) bool {
	switch r.status {
	case StatusCommitted, StatusReleased, StatusExpired:
	default:
		return false
	}
	return r.saga == nil || (len(r.saga.pending) == 0 && !r.saga.aborted)
}

// retirable reports whether a retire timer still names an entity that may
// leave memory.
func (s *State) retirable(t retireTimer) bool {
	switch t.kind {
	case retireRecord:
		_, ok := s.records[t.id]
		return ok
	case retireTransfer:
		tr := s.transfers[t.id]
		return tr != nil && !tr.arrivedAt.IsZero()
	case retireReservation:
		// A reservation that settled again (a later saga step) has a
		// later timer; only the one of its last settling counts.
		r := s.reservations[t.id]
		return r != nil && s.settled(r) && r.settledAt+int64(s.limits.Retain) == t.at
	case retireExpected:
		e := s.expected[t.id]
		return e != nil && e.status != ExpectedStatusExpected
	}
	return false
}

// dueRetirements pops the retire timers due at n whose entities may leave
// memory, at most maxRetiredPerEvent of them, each once.
func (s *State) dueRetirements(n int64) []retireTimer {
	h := &s.timers.retire
	var due []retireTimer
	for len(*h) > 0 && (*h)[0].at <= n && len(due) < maxRetiredPerEvent {
		t := h.pop()
		// A reservation that settled twice at one moment was scheduled
		// twice alike; the copies pop one after the other.
		if k := len(due); k > 0 && due[k-1] == t {
			continue
		}
		if s.retirable(t) {
			due = append(due, t)
		}
	}
	return due
}

func (x *decision) retire(c retireEntities) error {
	s := x.s
	var keys []string
	for _, t := range c.due {
		if s.retirable(t) {
			keys = append(keys, t.key())
		}
	}
	if len(keys) == 0 {
		return nil
	}
	position := s.head + uint64(len(x.d.Events)) + 1
	for _, t := range c.due {
		if !s.retirable(t) {
			continue
		}
		if data, ok := s.encodeRetired(t); ok {
			x.d.Retired = append(x.d.Retired, RetiredRecord{Key: t.key(), Partition: s.partition, Position: position, Data: data})
		}
	}
	x.emit("", "", EntitiesRetired{Keys: keys})
	return nil
}

// applyRetired removes retired entities from the state.
func (s *State) applyRetired(d EntitiesRetired) {
	for _, k := range d.Keys {
		key := ParseKey(k)
		switch key.Kind {
		case KindReceipt, KindAdjustment, KindCount:
			delete(s.records, k)
		case KindTransfer:
			delete(s.transfers, key.ID)
		case KindReservation:
			// Settled, so not among the held: nothing to count.
			delete(s.reservations, key.ID)
			delete(s.outstanding, key.ID)
		case KindExpectedReceipt:
			delete(s.expected, key.ID)
		}
		s.retiredCount++
	}
}

// RetiredCount returns how many entities this partition has retired. While
// it is zero in every partition, every id ever accepted is still in memory.
func (s *State) RetiredCount() uint64 { return s.retiredCount }

// Knows reports whether the entity key names is in this partition's memory:
// for a reservation, driven from here. A command the engine routed here as a
// repeat of key finds it gone only while its retirement is being written.
func (s *State) Knows(key Key) bool {
	switch key.Kind {
	case KindReceipt, KindAdjustment, KindCount:
		_, ok := s.records[key.String()]
		return ok
	case KindTransfer:
		return s.transfers[key.ID] != nil
	case KindReservation:
		r := s.reservations[key.ID]
		return r != nil && r.home == s.partition
	case KindExpectedReceipt:
		return s.expected[key.ID] != nil
	}
	return false
}

// encodeRetired encodes the last state of the entity t names for its retired
// record. Only the partition that answers for an id writes one: a
// reservation's participants, which hold some of its lines, retire their part
// without.
func (s *State) encodeRetired(t retireTimer) ([]byte, bool) {
	w := writer{}
	w.byte(retiredFormatV7)
	w.byte(t.kind)
	switch t.kind {
	case retireRecord:
		w.string(t.id)
		w.record(s.records[t.id])
	case retireTransfer:
		w.transfer(s.transfers[t.id])
	case retireReservation:
		r := s.reservations[t.id]
		if r.home != s.partition {
			return nil, false
		}
		w.reservation(r)
		w.resBundles(r.bundles)
	case retireExpected:
		w.expectedReceipt(s.expected[t.id])
	}
	return w.buf, true
}

// RestoreRetired rebuilds the entity of a retired record into a State of its
// own: the State of the record's partition holding just that entity, against
// which a repeated command can be decided and its answer read, as before the
// entity was retired.
func RestoreRetired(rec RetiredRecord, partitions int, limits Limits) (*State, error) {
	if partitions <= 0 || rec.Partition < 0 || rec.Partition >= partitions {
		return nil, fmt.Errorf("%w: retired record of partition %d of %d", ErrCorrupt, rec.Partition, partitions)
	}
	s := NewState(rec.Partition, partitions, limits)
	r := reader{buf: rec.Data}
	v := r.byte()
	if (v < retiredFormatV1 || v > retiredFormatV7) && r.err == nil {
		return nil, fmt.Errorf("%w: unknown retired record format %d", ErrCorrupt, v)
	}
	switch kind := r.byte(); kind {
	case retireRecord:
		k := r.string()
		s.records[k] = r.record()
	case retireTransfer:
		t := r.transfer()
		s.transfers[t.id] = t
	case retireReservation:
		res := r.reservation(true, v >= retiredFormatV2, v >= retiredFormatV3, v >= retiredFormatV4, v >= retiredFormatV5, v >= retiredFormatV7)
		if v >= retiredFormatV6 {
			res.bundles = r.resBundles()
		}
		s.reservations[res.id] = res
	case retireExpected:
		if v < retiredFormatV5 && r.err == nil {
			r.fail("expected receipt in retired record format %d", v)
		}
		e := r.expectedReceipt()
		s.expected[e.id] = e
	default:
		if r.err == nil {
			r.fail("unknown retired entity kind %d", kind)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.buf) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in retired record", ErrCorrupt, len(r.buf))
	}
	if !s.Knows(ParseKey(rec.Key)) {
		return nil, fmt.Errorf("%w: retired record of %q holds another entity", ErrCorrupt, rec.Key)
	}
	return s, nil
}

// reservationOf returns the id of the reservation an event that may settle
// one is about.
func reservationOf(d EventData) string {
	switch d := d.(type) {
	case ReservationCommitted:
		return d.Reservation
	case ReservationReleased:
		return d.Reservation
	case SagaStarted:
		return d.Reservation
	case SagaStepAcked:
		return d.Reservation
	case ReservationHeld:
		return d.Reservation
	case SagaStepStarted:
		return d.Reservation
	case SagaSettled:
		return d.Reservation
	case SagaChangeStarted:
		return d.Reservation
	case SagaChangeAcked:
		return d.Reservation
	case SagaChangeDecided:
		return d.Reservation
	case SagaChangeGrown:
		return d.Reservation
	case SagaChangeTrimmed:
		return d.Reservation
	}
	return ""
}
