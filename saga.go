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
// Participants carry steps out idempotently. Messages are sent only after the
// events that caused them are durable; they may be lost, repeated, delayed or
// reordered on the way (between nodes they are, see EncodeMessage), and
// Overdue sends again what waited too long. The cart therefore ends all held
// or all released.
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
	// since is when the current step started (Unix nanoseconds, the time
	// of its event): Overdue sends it again once it has waited too long.
	since int64
	// hold and region are the requested lines and region, kept while the
	// hold step is under way so that it can be asked for again.
	hold   []ReserveLine
	region string
	// change is the change in flight, from its SagaChangeStarted until
	// its trim step is settled (or a release supersedes it).
	change *sagaChange
}

// sagaHold asks a participant to hold its lines of a reservation.
type sagaHold struct {
	reservation string
	home, step  int
	attempt     uint64 // see reservation.attempt
	lines       []ReserveLine
	region      string
	expiresAt   time.Time
	customer    string
}

// sagaStep asks a participant to commit, release or extend its lines.
type sagaStep struct {
	reservation string
	home, step  int
	attempt     uint64
	action      SagaAction
	lines       []CommitLine
	expiresAt   time.Time
	reason      ReleaseReason
}

// sagaAck is a participant's answer to a step. With held lines, it also says
// "I hold these for you": a participant sends it again for lines it still
// holds past their deadline (Overdue), and the home answers one about lines
// it no longer wants held with a release (sagaAck, orphanStep).
type sagaAck struct {
	reservation string
	step, from  int
	attempt     uint64
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
	if len(data.Participants) == 0 {
		// A cart whose lines a change brought back to its home: nobody
		// else to ask, and nobody to answer.
		return
	}
	x.emit("", r.id, data)
	for _, p := range data.Participants {
		x.send(p, r.stepMessage(x.s.partition, data))
	}
	x.d.Wait = r.id
}

func (r *reservation) stepMessage(home int, d SagaStepStarted) sagaStep {
	return sagaStep{
		reservation: r.id, home: home, step: d.Step, attempt: r.attempt, action: d.Action,
		lines: d.Lines, expiresAt: d.ExpiresAt, reason: d.Reason,
	}
}

// holdMessage is the hold step of a reservation's saga as participant p is
// asked for it: its lines, with the cart's region, deadline and customer.
// The hold is under way, so the saga still has the requested lines.
func (r *reservation) holdMessage(home, p, partitions int) sagaHold {
	m := sagaHold{
		reservation: r.id, home: home, step: 1, attempt: r.attempt, region: r.saga.region,
		expiresAt: fromUnixNano(r.expiresAt), customer: r.customer,
	}
	for _, l := range r.saga.hold {
		if PartitionOf(l.SKU, partitions) == p {
			m.lines = append(m.lines, l)
		}
	}
	return m
}

// otherPartition reports whether p is another partition of this store: one a
// message may come from and an answer go to. A message that arrived over the
// network says what its sender wrote, which DecodeMessage cannot check
// against the number of partitions.
func (s *State) otherPartition(p int) bool {
	return p >= 0 && p < s.partitions && p != s.partition
}

// sameAttempt reports whether a message about attempt a is about the attempt
// of r. Zero, an attempt recorded before attempts were, matches any.
func sameAttempt(r *reservation, a uint64) bool {
	return r.attempt == 0 || a == 0 || r.attempt == a
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

// sagaHold holds a participant's lines and answers the home.
//
// Holds are where repeated and late messages could do harm: the home asks
// again for a hold left unanswered (Overdue), a network may deliver a message
// twice or late, and a participant forgets the lines of a cart that could not
// be held everywhere at once, so that a retry with the same id starts afresh.
// A hold this participant already carried out for the same attempt is
// answered as before and holds nothing more; a hold of an earlier attempt than
// the one it knows is ignored, that attempt having ended at its home before
// the later one began. What remains is a hold arriving when nothing here
// remembers its attempt — after a refusal, after the lines were released and
// forgotten, or after they were retired — for a cart its home has already
// settled. Nothing here can tell that from a first request without keeping
// every id for good, so it is held, and undone by the home: the answer
// reaches the home, which replies to held lines it does not want with a
// release (sagaAck); and should either message be lost, the participant says
// it holds them again once their deadline has passed (Overdue), until the
// home has its say. Such lines are held for at most that long; they are never
// sold, only kept from sale for a while.
func (x *decision) sagaHold(c sagaHold) error {
	if !x.s.otherPartition(c.home) {
		return nil // not from a home this store has: nobody to answer
	}
	ack := sagaAck{reservation: c.reservation, step: c.step, from: x.s.partition, attempt: c.attempt}
	r := x.s.reservations[c.reservation]
	if r != nil && r.home != c.home {
		// The id is held here for another home's cart: refuse rather
		// than mix two carts.
		for _, l := range c.lines {
			ack.shortfalls = append(ack.shortfalls, Shortfall{SKU: l.SKU, Requested: l.Quantity})
		}
		x.send(c.home, ack)
		return nil
	}
	if r != nil && sameAttempt(r, c.attempt) {
		// Asked again: answer as before while the lines are held. Once
		// they are settled, the home has moved past the hold and would
		// ignore the answer.
		if r.status == StatusHeld {
			ack.held = r.view(x.s.partition).Lines
			x.send(c.home, ack)
		}
		return nil
	}
	if r != nil && c.attempt < r.attempt {
		return nil // a late hold of an attempt that has ended
	}
	if r != nil && r.status == StatusHeld {
		// A later attempt: the earlier one ended at its home before
		// this one could begin, so lines still held for it here are
		// not wanted. Release them; the new attempt is then held as if
		// they had never been (allocation below still counts them as
		// held, so it may fall short where it would not have: never
		// the other way).
		for _, l := range r.lines {
			if l.partition == x.s.partition && !l.released {
				x.emit(l.sku, r.id, ReservationReleased{Reservation: r.id, Reason: ReleaseCompensated, Quantity: l.quantity})
			}
		}
	}
	allocations := make([][]Allocation, len(c.lines))
	preorders := make([][]PreorderHold, len(c.lines))
	for i, l := range c.lines {
		a, pre, short := x.checkLine(l, c.customer, c.reservation, c.region, true)
		if short != nil {
			ack.shortfalls = append(ack.shortfalls, *short)
		}
		allocations[i] = a
		preorders[i] = pre
	}
	if len(ack.shortfalls) == 0 {
		for i, l := range c.lines {
			x.emit(l.SKU, c.reservation, StockReserved{
				Reservation: c.reservation, Quantity: l.Quantity, Allocations: allocations[i],
				ExpiresAt: c.expiresAt, Customer: c.customer, Home: c.home, Attempt: c.attempt,
				Preorders: preorders[i],
			})
			ack.held = append(ack.held, ReservationLine{
				SKU: l.SKU, Quantity: l.Quantity, Held: l.Quantity, Allocations: allocations[i],
				Preorder: sumPreorders(preorders[i]), Preorders: preorders[i],
			})
		}
	}
	x.send(c.home, ack)
	return nil
}

// sagaStep carries out a step at a participant. Steps are idempotent: each
// acts only on lines still held for the same home and attempt, so a step
// repeated, or one of an earlier attempt, changes nothing; an extension older
// than the last one carried out (a late message) is ignored by its step
// number.
func (x *decision) sagaStep(c sagaStep) error {
	if !x.s.otherPartition(c.home) {
		return nil
	}
	r := x.s.reservations[c.reservation]
	if r != nil && r.home == c.home && sameAttempt(r, c.attempt) && r.status == StatusHeld {
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
			if c.step > r.step {
				for _, l := range r.lines {
					x.emit(l.sku, r.id, ReservationExtended{Reservation: r.id, ExpiresAt: c.expiresAt, Step: c.step})
				}
			}
		}
	}
	x.send(c.home, sagaAck{reservation: c.reservation, step: c.step, from: x.s.partition, attempt: c.attempt})
	return nil
}

// sagaAck records a participant's answer at the home. An answer that is not
// awaited — repeated, late, of an earlier attempt — records nothing; if it
// says the participant holds lines the home does not want held, the home
// tells it to release them (orphanStep).
func (x *decision) sagaAck(c sagaAck) error {
	r := x.s.reservations[c.reservation]
	live := r != nil && r.home == x.s.partition && r.saga != nil && sameAttempt(r, c.attempt)
	if !live || r.saga.step != c.step || !slices.Contains(r.saga.pending, c.from) {
		if len(c.held) > 0 && !(live && r.saga.wants(c.from, r.status)) && x.s.otherPartition(c.from) {
			x.send(c.from, orphanStep(c, x.s.partition))
		}
		return nil
	}
	if r.saga.action == SagaChange {
		x.changeAcked(r, c)
		return nil
	}
	x.emit("", r.id, SagaStepAcked{Reservation: r.id, Step: c.step, From: c.from, Held: c.held, Shortfalls: c.shortfalls})
	if len(r.saga.pending) > 1 {
		return nil
	}
	if r.saga.action != SagaHold {
		x.emit("", r.id, SagaSettled{Reservation: r.id, Step: c.step})
		var err error
		if r.saga.action == SagaTrim {
			err = r.saga.change.outcome()
		}
		x.resolve(r.id, err)
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
	x.abort(r, held, refusal(failed...))
	return nil
}

// wants reports whether the home, its reservation in status, wants
// participant p to hold its lines, or will settle them itself: p is yet to
// carry out the current step (which settles its lines, if it is not the
// hold), or the cart is held (or being held) with p's lines.
func (g *saga) wants(p int, status ReservationStatus) bool {
	if slices.Contains(g.pending, p) {
		return true
	}
	if g.aborted {
		return false
	}
	// A held cart wants its participants' lines, and only theirs: a
	// partition that left it in a change, or was refused joining it, is
	// told to release what a late message made it hold.
	return (status == StatusHeld && slices.Contains(g.participants, p)) || (status == StatusPending && slices.Contains(g.held, p))
}

// orphanStep is the home's answer to a participant holding lines of an
// attempt the home does not want held (it ended, was undone, or is not
// known): release them. It is step 0, which no saga has, so its
// acknowledgement is never taken for another's; it is not recorded, and is
// sent again only when the participant says again that it holds the lines.
// The participant acts on it only for lines of that very attempt, still
// held.
func orphanStep(c sagaAck, home int) sagaStep {
	return sagaStep{reservation: c.reservation, home: home, attempt: c.attempt, action: SagaRelease, reason: ReleaseCompensated}
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
			attempt: e.Position,
			saga: &saga{
				participants: d.Participants, step: 1, action: SagaHold, pending: slices.Clone(d.Participants),
				since: unixNano(e.Time), hold: d.Lines, region: d.Region,
			},
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
				l.preorders = h.Preorders
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
		g.hold, g.region = nil, ""
	case SagaStepStarted:
		g.step, g.action, g.last = d.Step, d.Action, d
		g.pending = slices.Clone(d.Participants)
		// A release (the deadline) supersedes a change in flight.
		g.change = nil
		g.since = unixNano(e.Time)
		g.hold, g.region = nil, ""
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
			if g.action == SagaTrim && g.change != nil {
				s.changeSettled(r)
			}
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
	var cmds []Command
	var msgs []Message
	for _, id := range s.outstandingIDs(func(r *reservation) bool { return r.home == s.partition }) {
		r := s.reservations[id]
		if r.saga.action == SagaHold {
			cmds = append(cmds, abortSaga{reservation: id})
			continue
		}
		for _, p := range r.saga.pending {
			msgs = append(msgs, Message{To: p, Command: s.resend(r, p)})
		}
	}
	return cmds, msgs
}

// Overdue returns the saga messages to send again at now, because what they
// asked for has waited at least after; the engine calls it every so often
// (every after, say) on each partition it owns, and sends what it returns like
// the messages of a decision: only once every event applied to the State is
// durable, since the state may say what a crash would take back. Between nodes a message can be lost — a
// participant held and its answer died with its node, while the home lives
// on — and Recover runs only when a home is reloaded.
//
// As the home of a saga, this partition sends the current step again to every
// participant that has not acknowledged it once the step has waited after
// since it started (by the time of the event that started it): a hold with
// the same lines, region, deadline and customer; a commit, release or
// extension as first sent. As a participant, it tells the home again that it
// holds its lines of a cart once after has passed since their deadline: by
// then the home has normally released them, so the lines are either waiting
// for a release that was lost (which the home sends again anyway) or held by
// a hold that came after the home had finished with the cart, which only this
// tells the home about (see sagaHold). The participant drives nothing else:
// the home owns every decision.
//
// Overdue changes nothing and appends nothing: every message it returns is
// one its receiver has seen or may see again, and is harmless repeated (see
// sagaHold, sagaStep, sagaAck). Called again before the messages are
// answered, it returns them again. It returns at most one message per
// participant of each saga in flight here, and one per part held here for
// another home, in the order of reservation ids.
func (s *State) Overdue(now time.Time, after time.Duration) []Message {
	n, wait := unixNano(now), int64(after)
	ids := s.outstandingIDs(func(r *reservation) bool {
		if r.home == s.partition {
			return r.saga.since+wait <= n
		}
		return r.expiresAt+wait <= n
	})
	var msgs []Message
	for _, id := range ids {
		r := s.reservations[id]
		if r.home != s.partition {
			msgs = append(msgs, Message{To: r.home, Command: sagaAck{
				reservation: id, step: 1, from: s.partition, attempt: r.attempt, held: r.view(s.partition).Lines,
			}})
			continue
		}
		g := r.saga
		if g.action == SagaHold && g.hold == nil {
			continue // from a snapshot that did not keep the lines: Recover abandons it
		}
		for _, p := range g.pending {
			msgs = append(msgs, Message{To: p, Command: s.resend(r, p)})
		}
	}
	return msgs
}

// resend is the current step of r's saga, driven from here, as participant
// p is to be asked for it again.
func (s *State) resend(r *reservation, p int) Command {
	switch r.saga.action {
	case SagaHold:
		return r.holdMessage(s.partition, p, s.partitions)
	case SagaChange:
		return r.growMessage(s.partition, p, s.partitions)
	case SagaTrim:
		return r.trimMessage(s.partition, p, s.partitions)
	}
	return r.stepMessage(s.partition, r.saga.last)
}

// SagasOutstanding returns how many reservations have saga work outstanding
// in this partition: while there are any, the engine asks for what is
// Overdue every so often.
func (s *State) SagasOutstanding() int { return len(s.outstanding) }

// outstandingIDs returns, sorted, the ids of the reservations with saga work
// outstanding here that match keep.
func (s *State) outstandingIDs(keep func(*reservation) bool) []string {
	var ids []string
	for id, r := range s.outstanding {
		if keep(r) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
