package stockd

import (
	"slices"
	"sort"
	"time"
)

// Reservations that span partitions.
//
// A cart lives in the partition of its first SKU, its home. When some lines
// belong to other partitions, the home records a SagaStarted event together
// with its own lines' holds, and only once that is durable asks each other
// partition (a participant) to hold its lines. Every answer is recorded at the
// home; when all are in, the home records either ReservationHeld or, if any
// participant was short, the release of its own lines and a step asking the
// participants that did hold to release theirs. Commit, release, extend and
// expiry of such a reservation are decided at the home and carried out by the
// participants in numbered steps; a step is settled when every participant has
// acknowledged it.
//
// Every step is an event, so a crash at any point leaves a log from which the
// home finishes the job: a reservation still being held is abandoned (its
// lines released everywhere), and any other unsettled step is sent again.
// Participants carry steps out idempotently. Messages between two partitions
// are delivered in the order they were sent, and only after the events that
// caused them are durable. The cart therefore ends all held or all released.
//
// Participants never expire saga lines on their own: the home owns the
// deadline, so a commit decided at the home can never race an expiry
// elsewhere.

type saga struct {
	participants []int
	step         int
	action       SagaAction
	pending      []int       // participants yet to acknowledge the step
	held         []int       // participants that held their lines
	failed       []Shortfall // why participants could not hold
	aborted      bool        // the hold failed and is being undone
	last         SagaStepStarted
}

// sagaHold asks a participant to hold its lines of a reservation.
type sagaHold struct {
	reservation string
	home, step  int
	lines       []ReserveLine
	region      string
	expiresAt   time.Time
	customer    string
}

// sagaStep asks a participant to commit, release or extend its lines.
type sagaStep struct {
	reservation string
	home, step  int
	action      SagaAction
	lines       []CommitLine
	expiresAt   time.Time
	reason      ReleaseReason
}

// sagaAck is a participant's answer to a step.
type sagaAck struct {
	reservation string
	step, from  int
	held        []ReservationLine
	shortfalls  []Shortfall
}

// abortSaga abandons a reservation whose hold was interrupted by a restart.
type abortSaga struct{ reservation string }

func (sagaHold) Validate(Limits) error  { return nil }
func (sagaStep) Validate(Limits) error  { return nil }
func (sagaAck) Validate(Limits) error   { return nil }
func (abortSaga) Validate(Limits) error { return nil }
func (sagaHold) route() route           { return route{} }
func (sagaStep) route() route           { return route{} }
func (sagaAck) route() route            { return route{} }
func (abortSaga) route() route          { return route{} }

// step starts the next saga step of a reservation spanning partitions and asks
// its participants to carry it out; it does nothing for a reservation held in
// one partition. Participants default to all of them.
func (x *decision) step(r *reservation, data SagaStepStarted) {
	if r.saga == nil {
		return
	}
	data.Reservation = r.id
	data.Step = r.saga.step + 1
	if data.Participants == nil {
		data.Participants = r.saga.participants
	}
	x.emit("", r.id, data)
	for _, p := range data.Participants {
		x.send(p, r.stepMessage(x.s.partition, data))
	}
	x.d.Wait = r.id
}

func (r *reservation) stepMessage(home int, d SagaStepStarted) sagaStep {
	return sagaStep{
		reservation: r.id, home: home, step: d.Step, action: d.Action,
		lines: d.Lines, expiresAt: d.ExpiresAt, reason: d.Reason,
	}
}

// abort undoes a reservation whose hold failed: it releases the home's lines,
// asks the participants in release to release theirs, and answers the waiting
// client with err.
func (x *decision) abort(r *reservation, release []int, err error) {
	for _, l := range r.lines {
		if l.partition == x.s.partition && !l.released {
			x.emit(l.sku, r.id, ReservationReleased{Reservation: r.id, Reason: ReleaseCompensated, Quantity: l.quantity})
		}
	}
	if len(release) > 0 {
		x.step(r, SagaStepStarted{Action: SagaRelease, Reason: ReleaseCompensated, Participants: release})
	} else {
		x.emit("", r.id, SagaSettled{Reservation: r.id, Step: r.saga.step})
	}
	x.resolve(r.id, err)
}

func (x *decision) sagaHold(c sagaHold) error {
	ack := sagaAck{reservation: c.reservation, step: c.step, from: x.s.partition}
	if r := x.s.reservations[c.reservation]; r != nil {
		if r.home == c.home {
			// Asked again after a restart: answer as before.
			ack.held = r.view(x.s.partition).Lines
		} else {
			// The id is held here for another home's cart: refuse
			// rather than mix two carts.
			for _, l := range c.lines {
				ack.shortfalls = append(ack.shortfalls, Shortfall{SKU: l.SKU, Requested: l.Quantity})
			}
		}
		x.send(c.home, ack)
		return nil
	}
	allocations := make([][]Allocation, len(c.lines))
	for i, l := range c.lines {
		a, short := x.s.allocate(l, c.region)
		if short != nil {
			ack.shortfalls = append(ack.shortfalls, *short)
		}
		allocations[i] = a
	}
	if len(ack.shortfalls) == 0 {
		for i, l := range c.lines {
			x.emit(l.SKU, c.reservation, StockReserved{
				Reservation: c.reservation, Quantity: l.Quantity, Allocations: allocations[i],
				ExpiresAt: c.expiresAt, Customer: c.customer, Home: c.home,
			})
			ack.held = append(ack.held, ReservationLine{SKU: l.SKU, Quantity: l.Quantity, Held: l.Quantity, Allocations: allocations[i]})
		}
	}
	x.send(c.home, ack)
	return nil
}

func (x *decision) sagaStep(c sagaStep) error {
	r := x.s.reservations[c.reservation]
	if r != nil && r.home == c.home && r.status == StatusHeld {
		switch c.action {
		case SagaCommit:
			for _, l := range r.lines {
				var q int64
				for _, cl := range c.lines {
					if cl.SKU == l.sku {
						q = cl.Quantity
					}
				}
				x.commitLine(r.id, l, q)
			}
		case SagaRelease:
			for _, l := range r.lines {
				if !l.released {
					x.emit(l.sku, r.id, ReservationReleased{Reservation: r.id, Reason: c.reason, Quantity: l.quantity})
				}
			}
		case SagaExtend:
			for _, l := range r.lines {
				x.emit(l.sku, r.id, ReservationExtended{Reservation: r.id, ExpiresAt: c.expiresAt})
			}
		}
	}
	x.send(c.home, sagaAck{reservation: c.reservation, step: c.step, from: x.s.partition})
	return nil
}

func (x *decision) sagaAck(c sagaAck) error {
	r := x.s.reservations[c.reservation]
	if r == nil || r.home != x.s.partition || r.saga == nil || r.saga.step != c.step || !slices.Contains(r.saga.pending, c.from) {
		return nil // a stale or repeated answer
	}
	x.emit("", r.id, SagaStepAcked{Reservation: r.id, Step: c.step, From: c.from, Held: c.held, Shortfalls: c.shortfalls})
	if len(r.saga.pending) > 1 {
		return nil
	}
	if r.saga.action != SagaHold {
		x.emit("", r.id, SagaSettled{Reservation: r.id, Step: c.step})
		x.resolve(r.id, nil)
		return nil
	}
	failed := append(slices.Clone(r.saga.failed), c.shortfalls...)
	if len(failed) == 0 {
		x.emit("", r.id, ReservationHeld{Reservation: r.id})
		x.d.Keys = append(x.d.Keys, KeyRecord{
			Key: reservationKey(r.id), Partition: x.s.partition,
			Position: x.d.Events[len(x.d.Events)-1].Position, Fingerprint: r.fingerprint,
		})
		x.resolve(r.id, nil)
		return nil
	}
	held := slices.Clone(r.saga.held)
	if len(c.shortfalls) == 0 {
		held = append(held, c.from)
	}
	x.abort(r, held, insufficient(failed...))
	return nil
}

func (x *decision) abortSaga(c abortSaga) error {
	r := x.s.reservations[c.reservation]
	if r == nil || r.home != x.s.partition || r.saga == nil || r.status != StatusPending {
		return nil
	}
	// Nobody knows which participants held before the restart: ask all.
	x.abort(r, r.saga.participants, Errorf(CodeUnavailable, "reservation %q was interrupted by a restart; retry it", r.id))
	return nil
}

func (s *State) applySaga(e Event) {
	switch d := e.Data.(type) {
	case SagaStarted:
		r := &reservation{
			id: d.Reservation, fingerprint: d.Fingerprint, status: StatusPending, customer: d.Customer,
			createdAt: unixNano(d.CreatedAt), expiresAt: unixNano(d.ExpiresAt), home: s.partition,
			saga: &saga{participants: d.Participants, step: 1, action: SagaHold, pending: slices.Clone(d.Participants)},
		}
		for _, l := range d.Lines {
			r.lines = append(r.lines, &resLine{sku: l.SKU, partition: PartitionOf(l.SKU, s.partitions), quantity: l.Quantity})
		}
		s.reservations[r.id] = r
		s.armHold(r)
		return
	}
	var id string
	switch d := e.Data.(type) {
	case SagaStepAcked:
		id = d.Reservation
	case ReservationHeld:
		id = d.Reservation
	case SagaStepStarted:
		id = d.Reservation
	case SagaSettled:
		id = d.Reservation
	}
	r := s.reservations[id]
	if r == nil || r.saga == nil {
		return
	}
	g := r.saga
	switch d := e.Data.(type) {
	case SagaStepAcked:
		g.pending = slices.DeleteFunc(g.pending, func(p int) bool { return p == d.From })
		for _, h := range d.Held {
			if l := r.line(h.SKU); l != nil {
				l.allocations = h.Allocations
			}
		}
		if len(d.Shortfalls) > 0 {
			g.failed = append(g.failed, d.Shortfalls...)
		} else if g.action == SagaHold {
			g.held = append(g.held, d.From)
		}
	case ReservationHeld:
		s.setStatus(r, StatusHeld)
		g.pending = nil
	case SagaStepStarted:
		g.step, g.action, g.last = d.Step, d.Action, d
		g.pending = slices.Clone(d.Participants)
		switch d.Action {
		case SagaCommit:
			s.setStatus(r, StatusCommitted)
			for _, cl := range d.Lines {
				if l := r.line(cl.SKU); l != nil {
					// The participant takes the committed units from
					// the line's allocations in order (commitLine), so
					// the home knows where they came from; without
					// this the home showed the held allocations of a
					// partially committed remote line.
					l.committed = cl.Quantity
					l.committedAt = commitAllocations(l.allocations, cl.Quantity)
				}
			}
		case SagaRelease:
			for _, l := range r.lines {
				if l.partition != s.partition {
					l.released = true
				}
			}
			switch d.Reason {
			case ReleaseExpired:
				s.setStatus(r, StatusExpired)
			case ReleaseCompensated:
				s.setStatus(r, StatusReleased)
				g.aborted = true
			default:
				s.setStatus(r, StatusReleased)
			}
		case SagaExtend:
			r.expiresAt = unixNano(d.ExpiresAt)
			s.armHold(r)
		}
	case SagaSettled:
		if d.Step == g.step {
			g.pending = nil
		}
		if g.aborted {
			// A cart that could not be held is forgotten, so that a retry
			// with the same id is decided afresh.
			delete(s.reservations, r.id)
		}
	}
}

// Recover returns what this partition must do after a restart to finish the
// sagas its log left unfinished: commands to decide here (abandon carts that
// were still being held) and messages to send again (unsettled steps). The
// engine calls it once every partition has been recovered.
func (s *State) Recover() ([]Command, []Message) {
	var ids []string
	for id, r := range s.reservations {
		if r.home == s.partition && r.saga != nil && len(r.saga.pending) > 0 {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var cmds []Command
	var msgs []Message
	for _, id := range ids {
		r := s.reservations[id]
		if r.saga.action == SagaHold {
			cmds = append(cmds, abortSaga{reservation: id})
			continue
		}
		for _, p := range r.saga.pending {
			msgs = append(msgs, Message{To: p, Command: r.stepMessage(s.partition, r.saga.last)})
		}
	}
	return cmds, msgs
}
