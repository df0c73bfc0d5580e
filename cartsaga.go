package stockd

import (
	"slices"
	"time"
)

// Changing a cart that spans partitions: "grow, then trim".
//
// A change that alters, adds or removes lines held in other partitions than
// the cart's home is carried out by two saga steps, each recorded at the home
// before its messages leave, so that a crash at any point finishes from the
// log (Recover and Overdue send the current step again):
//
//  1. Grow (SagaChangeStarted). The home holds, for each of its own lines,
//     the union of what it holds and what the change needs there, and asks
//     every participant whose lines change for the same (sagaGrow): each
//     works out where its new lines would be held, through checkLine and
//     with the cart's own holds counted as free, holds whatever that needs
//     beyond what it holds already, records it (SagaChangeGrown) and
//     answers with the new lines' allocations or its shortfalls. A
//     partition the cart did not span yet joins the saga here: its lines
//     are held as a participant's hold would be.
//  2. Trim (SagaChangeDecided), once every participant asked has answered
//     (SagaChangeAcked). If none fell short the change is made: the home
//     records the new lines, trims its own to them, and tells every
//     participant to hold exactly its new lines (sagaTrim); otherwise it is
//     refused, and every partition is told to hold exactly its old lines.
//     Either way each partition only gives back what step 1 added, so the
//     trim cannot fall short. A participant left with no line leaves the
//     saga (SagaChangeTrimmed settles its part).
//
// The client is answered once the trim has been carried out everywhere, so
// that its answer is what every partition holds: the cart with its new lines,
// or the refusal with every shortfall, as Reserve reports them. Until then
// the cart holds the union of its old and new lines, and its view at the home
// shows it so.
//
// Every message names its cart's attempt and step. A participant carries out
// a step only once: it remembers the last step it carried out (the
// reservation's step, which extensions advance too), answers a grow repeated
// with that step as before, and ignores anything older, so that a message
// repeated, delayed or overtaken by a later one changes nothing. A grow
// reaching a participant whose part of the cart ended (committed, released,
// expired) is ignored as well.
//
// Races, decided at the home, which orders everything about a cart:
//   - While a change is in flight, a commit, release, extension or another
//     change of the cart is refused with CodeReservationBusy (409, retryable);
//     the same change sent again waits for the first one's outcome. A change
//     of other partitions' lines is refused the same way while another step
//     of the cart (an extension) is still being carried out.
//   - The deadline wins over a change: a cart reaching it with a change in
//     flight expires as any other, every partition releasing everything it
//     holds for the cart, the growth included, and the change is answered
//     reservation_not_held (expired).

// CodeReservationBusy means a reservation spanning partitions is being
// changed, and the command (a commit, release, extension or another change)
// must wait for that to finish: nothing changed. Retry shortly; a change is
// settled within a few message round trips between partitions.
const CodeReservationBusy Code = "reservation_busy"

// The saga actions of a change: growing to the union of the old and new
// lines, then trimming to the outcome.
const (
	SagaChange SagaAction = 5
	SagaTrim   SagaAction = 6
)

// The event types of a change of a cart spanning partitions (tags from 87
// up, with the commerce rules').
const (
	TypeSagaChangeStarted EventType = 87
	TypeSagaChangeAcked   EventType = 88
	TypeSagaChangeDecided EventType = 89
	TypeSagaChangeGrown   EventType = 90
	TypeSagaChangeTrimmed EventType = 91
)

// SagaChangeStarted records, at the home of a cart spanning partitions (or
// coming to), a change that other partitions must carry out: Participants
// are asked to grow to the union of their old and new lines. Lines are the
// cart's lines as the change requests them, Region restricts where lines
// allocated afresh are held, and ExpiresAt is the deadline once the change
// is made. Previous are the cart's lines before the change, in every
// partition, and Local where the home's own lines are held once it is made.
type SagaChangeStarted struct {
	Reservation  string            `json:"reservation"`
	Step         int               `json:"step"`
	Participants []int             `json:"participants"`
	Lines        []ReserveLine     `json:"lines"`
	Region       string            `json:"region,omitempty"`
	ExpiresAt    time.Time         `json:"expires_at"`
	Previous     []ReservationLine `json:"previous"`
	Local        []ReservationLine `json:"local"`
	// Key is the change's idempotency key, if any: the reservation
	// remembers it, with KeyFingerprint, once the change is made.
	Key            string `json:"idempotency_key,omitempty"`
	KeyFingerprint uint64 `json:"-"`
	// Fingerprint is the change's, so that the same change sent again
	// while this one is in flight waits for its outcome.
	Fingerprint uint64 `json:"-"`
}

// SagaChangeAcked records, at the home, a participant's answer to the grow
// step of a change: where its new lines are held, or its shortfalls.
type SagaChangeAcked struct {
	Reservation string            `json:"reservation"`
	Step        int               `json:"step"`
	From        int               `json:"from"`
	Lines       []ReservationLine `json:"lines,omitempty"`
	Shortfalls  []Shortfall       `json:"shortfalls,omitempty"`
}

// SagaChangeDecided records, at the home, the outcome of a change once every
// participant asked has answered, and starts the step that carries it out:
// Made says whether the change was made; Lines are the cart's lines from now
// on (the new ones if made, the old ones otherwise), in every partition, which
// each of Participants is told to hold exactly; ExpiresAt is the deadline;
// Shortfalls say why a change was refused.
type SagaChangeDecided struct {
	Reservation  string            `json:"reservation"`
	Step         int               `json:"step"`
	Made         bool              `json:"made"`
	Participants []int             `json:"participants"`
	Lines        []ReservationLine `json:"lines"`
	ExpiresAt    time.Time         `json:"expires_at"`
	Shortfalls   []Shortfall       `json:"shortfalls,omitempty"`
}

// SagaChangeGrown records, at a participant, that it carried out the grow
// step Step of a change of a cart of another home: Lines are where its new
// lines are held (its holds grew to cover them), or Shortfalls why they
// cannot be, in which case nothing grew.
type SagaChangeGrown struct {
	Reservation string            `json:"reservation"`
	Step        int               `json:"step"`
	Lines       []ReservationLine `json:"lines,omitempty"`
	Shortfalls  []Shortfall       `json:"shortfalls,omitempty"`
}

// SagaChangeTrimmed records, at a participant, that it carried out the trim
// step Step of a change: its lines are now exactly those the home decided,
// with the deadline ExpiresAt. A participant left with no line has left the
// cart, and its part is settled.
type SagaChangeTrimmed struct {
	Reservation string    `json:"reservation"`
	Step        int       `json:"step"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// EventType implements EventData.
func (SagaChangeStarted) EventType() EventType { return TypeSagaChangeStarted }

// EventType implements EventData.
func (SagaChangeAcked) EventType() EventType { return TypeSagaChangeAcked }

// EventType implements EventData.
func (SagaChangeDecided) EventType() EventType { return TypeSagaChangeDecided }

// EventType implements EventData.
func (SagaChangeGrown) EventType() EventType { return TypeSagaChangeGrown }

// EventType implements EventData.
func (SagaChangeTrimmed) EventType() EventType { return TypeSagaChangeTrimmed }

// sagaChange is, at the home, a change in flight.
type sagaChange struct {
	lines       []ReserveLine
	region      string
	expiresAt   int64 // once made
	previous    []ReservationLine
	local       []ReservationLine
	key         string
	keyFP       uint64
	fingerprint uint64
	asked       []int // the participants asked to grow
	// What the grow step gathered: the participants' new lines and
	// shortfalls.
	targets []ReservationLine
	short   []Shortfall
	// Set by SagaChangeDecided: whether it was made, and the lines every
	// partition holds from now on.
	decided bool
	made    bool
	after   []ReservationLine
}

// outcome is what the client of a change is answered once it is settled.
func (c *sagaChange) outcome() error {
	if c.made {
		return nil
	}
	return refusal(c.short...)
}

// sagaGrow asks a participant to grow its lines of a cart to the union of
// what it holds and lines, the lines it is to hold after a change. It says
// what a sagaHold says (expiresAt is the cart's deadline, for a participant
// joining it), and travels the same way.
type sagaGrow sagaHold

// sagaTrim tells a participant to hold exactly lines of a cart: its lines
// after a change, made or refused.
type sagaTrim struct {
	reservation string
	home, step  int
	attempt     uint64
	lines       []ReservationLine
	expiresAt   time.Time
}

func (sagaGrow) Validate(Limits) error { return nil }
func (sagaTrim) Validate(Limits) error { return nil }
func (sagaGrow) route() route          { return route{} }
func (sagaTrim) route() route          { return route{} }

// busy refuses a command on a reservation with a change in flight.
func busy(r *reservation) error {
	if r.saga != nil && r.saga.change != nil {
		return Errorf(CodeReservationBusy, "reservation %q is being changed in other partitions; retry shortly", r.id)
	}
	return nil
}

// liveLines returns the lines of r held in partition p (every partition when
// p is negative) and not released, as ReservationLines.
func (r *reservation) liveLines(p int) []ReservationLine {
	var out []ReservationLine
	for _, l := range r.lines {
		if l.released || (p >= 0 && l.partition != p) {
			continue
		}
		out = append(out, ReservationLine{SKU: l.sku, Quantity: l.quantity, Held: l.quantity, Allocations: l.allocations})
	}
	return out
}

// linesIn returns the lines of partition p among lines.
func linesIn(lines []ReservationLine, p, partitions int) []ReservationLine {
	var out []ReservationLine
	for _, l := range lines {
		if PartitionOf(l.SKU, partitions) == p {
			out = append(out, l)
		}
	}
	return out
}

// unionAllocations returns allocations holding both a and b: at each
// location the larger of the two, b's locations first (in b's order), so
// that taking b's quantity from the union in order takes b.
func unionAllocations(a, b []Allocation) []Allocation {
	out := slices.Clone(b)
	for _, x := range a {
		i := slices.IndexFunc(out, func(y Allocation) bool { return y.Location == x.Location })
		if i < 0 {
			out = append(out, x)
		} else if x.Quantity > out[i].Quantity {
			out[i].Quantity = x.Quantity
		}
	}
	return out
}

// sumAllocations adds up the quantities of allocations.
func sumAllocations(as []Allocation) int64 {
	var n int64
	for _, a := range as {
		n += a.Quantity
	}
	return n
}

// planLines works out where lines — a cart's lines of this partition after a
// change — are held, given the cart's lines held here now (nil for a cart
// this partition does not hold yet): a line that still fits where it is held
// keeps its units there, any other is allocated afresh through checkLine,
// with the cart's own units of its SKU counted as free. With union set, the
// growth a line needs beyond what the cart holds must also fit within its
// SKU's sales cap, since the union is held until the change is trimmed.
// Lines removed are not in the plan. customer and id are the cart's, for
// the per-customer limits.
func (x *decision) planLines(r *reservation, customer, id string, lines []ReserveLine, region string, union bool) ([]lineChange, []Shortfall) {
	s := x.s
	plan := make([]lineChange, 0, len(lines))
	for _, l := range lines {
		var old *resLine
		if r != nil {
			if o := r.line(l.SKU); o != nil && !o.released && o.partition == s.partition {
				old = o
			}
		}
		lc := lineChange{sku: l.SKU, old: old, qty: l.Quantity, line: l}
		if old != nil && old.quantity >= l.Quantity && !s.moves(old.allocations, l, region) {
			lc.allocs = commitAllocations(old.allocations, l.Quantity)
		} else {
			lc.fresh = true
		}
		plan = append(plan, lc)
	}
	short := x.allocateChange(plan, customer, id, region)
	if len(short) > 0 || !union {
		return plan, short
	}
	for _, lc := range plan {
		sk := s.skus[lc.sku]
		if sk == nil || sk.salesCap == 0 {
			continue
		}
		var prev []Allocation
		if lc.old != nil {
			prev = lc.old.allocations
		}
		if grow := sumAllocations(unionAllocations(prev, lc.allocs)) - sumAllocations(prev); grow > sk.capLeft() {
			short = append(short, Shortfall{SKU: lc.sku, Requested: lc.qty, Available: max(sk.capLeft()+sumAllocations(prev), 0), SalesCap: sk.salesCap})
		}
	}
	return plan, short
}

// changeSaga decides, at the home, a change of r that other partitions must
// carry out: it checks the home's own lines, holds the union of their old
// and new allocations, records the grow step and asks the participants
// whose lines change for theirs. The answer waits for the outcome.
func (x *decision) changeSaga(r *reservation, c ChangeReservation, asked []int) error {
	var local []ReserveLine
	for _, l := range c.Lines {
		if PartitionOf(l.SKU, x.s.partitions) == x.s.partition {
			local = append(local, l)
		}
	}
	plan, short := x.planLines(r, r.customer, r.id, local, c.Region, true)
	if len(short) > 0 {
		return refusal(short...)
	}
	expires := r.expiresAt
	if c.TTL > 0 {
		expires = unixNano(x.now.Add(c.TTL))
	}
	step := 1
	if r.saga != nil {
		step = r.saga.step + 1
	}
	data := SagaChangeStarted{
		Reservation: r.id, Step: step, Participants: asked, Lines: c.Lines, Region: c.Region,
		ExpiresAt: fromUnixNano(expires), Previous: r.liveLines(-1),
		Key: x.key, KeyFingerprint: x.keyFP, Fingerprint: Fingerprint(c),
	}
	for _, lc := range plan {
		data.Local = append(data.Local, ReservationLine{SKU: lc.sku, Quantity: lc.qty, Held: lc.qty, Allocations: lc.allocs})
	}
	x.emit("", r.id, data)
	if len(asked) == 0 {
		// Only lines removed from other partitions: nothing needs to
		// grow anywhere, so the change is made at once and the
		// participants trimmed. (Such a cart already has its saga.)
		ch := &sagaChange{lines: c.Lines, expiresAt: expires, previous: data.Previous, local: data.Local, key: x.key, keyFP: x.keyFP}
		x.decideChange(r, ch, step+1, r.saga.participants)
		x.d.Wait = r.id
		return nil
	}
	attempt := r.attempt
	if r.saga == nil && attempt == 0 {
		// A cart held in one partition until now: this change starts its
		// saga, and names its attempt, as a SagaStarted would.
		attempt = x.d.Events[len(x.d.Events)-1].Position
	}
	current := fromUnixNano(r.expiresAt)
	for _, lc := range plan {
		var prevQty int64
		var prev []Allocation
		if lc.old != nil {
			prevQty, prev = lc.old.quantity, lc.old.allocations
		}
		union := unionAllocations(prev, lc.allocs)
		if lc.old != nil && slices.Equal(union, prev) {
			continue
		}
		x.emit(lc.sku, r.id, ReservationChanged{
			Reservation: r.id, Quantity: sumAllocations(union), Allocations: union,
			PreviousQuantity: prevQty, PreviousAllocations: prev, ExpiresAt: current,
		})
	}
	for _, p := range asked {
		m := sagaGrow{
			reservation: r.id, home: x.s.partition, step: step, attempt: attempt,
			region: c.Region, expiresAt: current, customer: r.customer,
		}
		for _, l := range c.Lines {
			if PartitionOf(l.SKU, x.s.partitions) == p {
				m.lines = append(m.lines, l)
			}
		}
		x.send(p, m)
	}
	x.d.Wait = r.id
	return nil
}

// growMessage is the grow step of r's change as participant p is asked for
// it, to send again.
func (r *reservation) growMessage(home, p, partitions int) sagaGrow {
	g := r.saga
	m := sagaGrow{
		reservation: r.id, home: home, step: g.step, attempt: r.attempt, region: g.change.region,
		expiresAt: fromUnixNano(r.expiresAt), customer: r.customer,
	}
	for _, l := range g.change.lines {
		if PartitionOf(l.SKU, partitions) == p {
			m.lines = append(m.lines, l)
		}
	}
	return m
}

// trimMessage is the trim step of r's change as participant p is told it.
func (r *reservation) trimMessage(home, p, partitions int) sagaTrim {
	return sagaTrim{
		reservation: r.id, home: home, step: r.saga.step, attempt: r.attempt,
		lines: linesIn(r.saga.change.after, p, partitions), expiresAt: fromUnixNano(r.expiresAt),
	}
}

// changeAcked records a participant's answer to the grow step and, once every
// participant asked has answered, decides the change.
func (x *decision) changeAcked(r *reservation, c sagaAck) {
	x.emit("", r.id, SagaChangeAcked{Reservation: r.id, Step: c.step, From: c.from, Lines: c.held, Shortfalls: c.shortfalls})
	g := r.saga
	if len(g.pending) > 1 {
		return
	}
	ch := *g.change
	ch.short = append(slices.Clone(ch.short), c.shortfalls...)
	ch.targets = append(slices.Clone(ch.targets), c.held...)
	x.decideChange(r, &ch, g.step+1, g.participants)
}

// decideChange decides a change whose grow step is over — ch holds what it
// gathered — as step: made if no partition fell short, refused otherwise.
// Either way the home's own lines go to the outcome at once (from the union,
// or from the old lines when nothing had to grow), and every participant is
// told to do the same.
func (x *decision) decideChange(r *reservation, ch *sagaChange, step int, participants []int) {
	made := len(ch.short) == 0
	expires := r.expiresAt
	after := ch.previous
	if made {
		expires = ch.expiresAt
		after = nil
		for _, l := range ch.lines {
			p := PartitionOf(l.SKU, x.s.partitions)
			var from []ReservationLine
			switch {
			case p == x.s.partition:
				from = ch.local
			case slices.Contains(ch.asked, p):
				from = ch.targets
			default:
				from = r.liveLines(p) // not asked: unchanged
			}
			if i := slices.IndexFunc(from, func(t ReservationLine) bool { return t.SKU == l.SKU }); i >= 0 {
				after = append(after, from[i])
			}
		}
	}
	d := SagaChangeDecided{
		Reservation: r.id, Step: step, Made: made, Participants: participants,
		Lines: after, ExpiresAt: fromUnixNano(expires), Shortfalls: ch.short,
	}
	x.emit("", r.id, d)
	// The home's own lines, from what they hold now to the outcome.
	now := r.liveLines(x.s.partition)
	skus := make([]string, 0, len(now)+len(after))
	for _, l := range now {
		skus = append(skus, l.SKU)
	}
	for _, l := range linesIn(after, x.s.partition, x.s.partitions) {
		if !slices.Contains(skus, l.SKU) {
			skus = append(skus, l.SKU)
		}
	}
	for _, sku := range skus {
		var cur, t ReservationLine
		if i := slices.IndexFunc(now, func(l ReservationLine) bool { return l.SKU == sku }); i >= 0 {
			cur = now[i]
		}
		if i := slices.IndexFunc(after, func(l ReservationLine) bool { return l.SKU == sku }); i >= 0 {
			t = after[i]
		}
		if t.Quantity == cur.Quantity && slices.Equal(t.Allocations, cur.Allocations) && expires == r.expiresAt {
			continue
		}
		data := ReservationChanged{
			Reservation: r.id, Quantity: t.Quantity, Allocations: t.Allocations,
			PreviousQuantity: cur.Quantity, PreviousAllocations: cur.Allocations, ExpiresAt: d.ExpiresAt,
		}
		if made {
			data.Key, data.KeyFingerprint = ch.key, ch.keyFP
		}
		x.emit(sku, r.id, data)
	}
	for _, p := range participants {
		x.send(p, sagaTrim{
			reservation: r.id, home: x.s.partition, step: d.Step, attempt: r.attempt,
			lines: linesIn(after, p, x.s.partitions), expiresAt: d.ExpiresAt,
		})
	}
}

// sagaGrow carries out a change's grow step at a participant, and answers the
// home. See the comment at the top of this file for what is ignored.
func (x *decision) sagaGrow(c sagaGrow) error {
	if !x.s.otherPartition(c.home) {
		return nil
	}
	ack := sagaAck{reservation: c.reservation, step: c.step, from: x.s.partition, attempt: c.attempt}
	r := x.s.reservations[c.reservation]
	if r != nil && r.home != c.home {
		for _, l := range c.lines {
			ack.shortfalls = append(ack.shortfalls, Shortfall{SKU: l.SKU, Requested: l.Quantity})
		}
		x.send(c.home, ack)
		return nil
	}
	if r != nil && !sameAttempt(r, c.attempt) {
		if c.attempt < r.attempt {
			return nil // a late message of an attempt that has ended
		}
		// A later attempt: whatever is held here for the earlier one is
		// not wanted (as in sagaHold), and this one joins afresh.
		if r.status == StatusHeld {
			for _, l := range r.lines {
				if !l.released {
					x.emit(l.sku, r.id, ReservationReleased{Reservation: r.id, Reason: ReleaseCompensated, Quantity: l.quantity})
				}
			}
		}
		r = nil
	}
	if r != nil && c.step <= r.step {
		// Carried out already (answered as before), or older than a
		// step carried out since: either way nothing more to do.
		if c.step == r.step && r.status == StatusHeld && (r.grown != nil || r.grownShort != nil) {
			ack.held, ack.shortfalls = r.grown, r.grownShort
			x.send(c.home, ack)
		}
		return nil
	}
	if r != nil && r.status != StatusHeld && len(r.lines) > 0 {
		return nil // the cart ended here: a late grow
	}
	joining := r == nil || r.status != StatusHeld
	var held *reservation
	if !joining {
		held = r
	}
	plan, short := x.planLines(held, c.customer, c.reservation, c.lines, c.region, true)
	if held != nil && len(short) == 0 {
		// Lines held here against expected stock do not change (see
		// change): the change is refused as short of them.
		if sku := held.preorderLine(x.s.partition); sku != "" {
			short = []Shortfall{{SKU: sku, Requested: held.line(sku).quantity}}
		}
	}
	if len(short) > 0 {
		if !joining {
			x.emit("", c.reservation, SagaChangeGrown{Reservation: c.reservation, Step: c.step, Shortfalls: short})
		}
		ack.shortfalls = short
		x.send(c.home, ack)
		return nil
	}
	var lines []ReservationLine
	for _, lc := range plan {
		lines = append(lines, ReservationLine{SKU: lc.sku, Quantity: lc.qty, Held: lc.qty, Allocations: lc.allocs})
		switch {
		case joining:
			x.emit(lc.sku, c.reservation, StockReserved{
				Reservation: c.reservation, Quantity: lc.qty, Allocations: lc.allocs, ExpiresAt: c.expiresAt,
				Customer: c.customer, Home: c.home, Attempt: c.attempt,
			})
		case lc.old == nil:
			x.emit(lc.sku, c.reservation, ReservationChanged{
				Reservation: c.reservation, Quantity: lc.qty, Allocations: lc.allocs, ExpiresAt: fromUnixNano(r.expiresAt),
			})
		default:
			union := unionAllocations(lc.old.allocations, lc.allocs)
			if !slices.Equal(union, lc.old.allocations) {
				x.emit(lc.sku, c.reservation, ReservationChanged{
					Reservation: c.reservation, Quantity: sumAllocations(union), Allocations: union,
					PreviousQuantity: lc.old.quantity, PreviousAllocations: lc.old.allocations, ExpiresAt: fromUnixNano(r.expiresAt),
				})
			}
		}
	}
	x.emit("", c.reservation, SagaChangeGrown{Reservation: c.reservation, Step: c.step, Lines: lines})
	ack.held = lines
	x.send(c.home, ack)
	return nil
}

// sagaTrim carries out a change's trim step at a participant: every line goes
// to exactly what the home decided. The participant holds the union of the
// old and new lines (or the old ones, if it did not grow), so this only ever
// gives units back.
func (x *decision) sagaTrim(c sagaTrim) error {
	if !x.s.otherPartition(c.home) {
		return nil
	}
	r := x.s.reservations[c.reservation]
	if r != nil && r.home == c.home && sameAttempt(r, c.attempt) && r.status == StatusHeld && c.step > r.step {
		for _, l := range r.lines {
			if l.released || l.partition != x.s.partition {
				continue
			}
			var t ReservationLine
			if i := slices.IndexFunc(c.lines, func(t ReservationLine) bool { return t.SKU == l.sku }); i >= 0 {
				t = c.lines[i]
			}
			if t.Quantity == l.quantity && slices.Equal(t.Allocations, l.allocations) && unixNano(c.expiresAt) == r.expiresAt {
				continue
			}
			x.emit(l.sku, r.id, ReservationChanged{
				Reservation: r.id, Quantity: t.Quantity, Allocations: t.Allocations,
				PreviousQuantity: l.quantity, PreviousAllocations: l.allocations, ExpiresAt: c.expiresAt,
			})
		}
		x.emit("", r.id, SagaChangeTrimmed{Reservation: r.id, Step: c.step, ExpiresAt: c.expiresAt})
	}
	x.send(c.home, sagaAck{reservation: c.reservation, step: c.step, from: x.s.partition, attempt: c.attempt})
	return nil
}

// applyChangeSaga applies the events of a change of a cart spanning
// partitions: at the home, SagaChangeStarted, SagaChangeAcked and
// SagaChangeDecided; at a participant, SagaChangeGrown and SagaChangeTrimmed.
func (s *State) applyChangeSaga(e Event) {
	switch d := e.Data.(type) {
	case SagaChangeStarted:
		r := s.reservations[d.Reservation]
		if r == nil {
			return
		}
		if r.saga == nil {
			r.saga = &saga{}
			if r.attempt == 0 {
				r.attempt = e.Position
			}
		}
		g := r.saga
		for _, p := range d.Participants {
			if !slices.Contains(g.participants, p) {
				g.participants = append(g.participants, p)
			}
		}
		slices.Sort(g.participants)
		g.step, g.action, g.pending, g.since = d.Step, SagaChange, slices.Clone(d.Participants), unixNano(e.Time)
		g.change = &sagaChange{
			lines: d.Lines, region: d.Region, expiresAt: unixNano(d.ExpiresAt), previous: d.Previous, local: d.Local,
			key: d.Key, keyFP: d.KeyFingerprint, fingerprint: d.Fingerprint, asked: slices.Clone(d.Participants),
		}
	case SagaChangeAcked:
		r := s.reservations[d.Reservation]
		if r == nil || r.saga == nil || r.saga.change == nil {
			return
		}
		g := r.saga
		g.pending = slices.DeleteFunc(g.pending, func(p int) bool { return p == d.From })
		g.change.targets = append(g.change.targets, d.Lines...)
		g.change.short = append(g.change.short, d.Shortfalls...)
	case SagaChangeDecided:
		r := s.reservations[d.Reservation]
		if r == nil || r.saga == nil || r.saga.change == nil {
			return
		}
		g, ch := r.saga, r.saga.change
		g.step, g.action, g.pending, g.since = d.Step, SagaTrim, slices.Clone(d.Participants), unixNano(e.Time)
		ch.decided, ch.made, ch.after, ch.short = true, d.Made, d.Lines, d.Shortfalls
		if d.Made {
			r.remember(ch.key, ch.keyFP)
		}
		// The cart's lines from now on, in the order asked for; the
		// home's own lines are moved by the ReservationChanged events
		// that follow, and those leaving are kept until then.
		lines := make([]*resLine, 0, len(d.Lines))
		for _, t := range d.Lines {
			p := PartitionOf(t.SKU, s.partitions)
			l := r.line(t.SKU)
			if l == nil {
				l = &resLine{sku: t.SKU, partition: p}
			}
			if p != s.partition {
				l.quantity, l.allocations, l.released = t.Quantity, t.Allocations, false
			}
			lines = append(lines, l)
		}
		for _, l := range r.lines {
			if l.partition == s.partition && !slices.Contains(lines, l) {
				lines = append(lines, l)
			}
		}
		r.lines = lines
		if at := unixNano(d.ExpiresAt); at != r.expiresAt {
			r.expiresAt = at
			s.armHold(r)
		}
	case SagaChangeGrown:
		if r := s.reservations[d.Reservation]; r != nil {
			r.step = max(r.step, d.Step)
			r.grown, r.grownShort = d.Lines, d.Shortfalls
		}
	case SagaChangeTrimmed:
		r := s.reservations[d.Reservation]
		if r == nil {
			return
		}
		r.step = max(r.step, d.Step)
		r.grown, r.grownShort = nil, nil
		r.expiresAt = unixNano(d.ExpiresAt)
		if r.allReleased(s.partition) {
			// Left with no line: this partition has left the cart.
			s.setStatus(r, StatusReleased)
		}
	}
}

// changeSettled finishes, at the home, a change whose trim step every
// participant carried out: the saga goes on with the partitions that hold
// lines of the cart.
func (s *State) changeSettled(r *reservation) {
	g := r.saga
	var final []int
	for _, l := range r.lines {
		if l.partition != s.partition && !slices.Contains(final, l.partition) {
			final = append(final, l.partition)
		}
	}
	slices.Sort(final)
	g.participants = final
	g.change = nil
}
