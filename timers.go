package stockd

import (
	"math"
	"time"
)

// Timers. A partition keeps two min-heaps of the moments something must
// happen on its own: holds reaching their deadline and lots reaching their
// best-before. Entries are never removed when a deadline moves or a lot is
// used up; an entry is checked against the state when it comes due and
// dropped if it no longer matches. The heaps are derived state: they are
// rebuilt from the reservations and lots after a snapshot is loaded, which is
// how timers are re-armed after a restart.
//
// A hot SKU can hold millions of reservations, so a hold entry is kept small
// and free of strings: a time and a pointer to the reservation. Most carts
// are committed or released long before their deadline, and an entry would
// keep its settled (even retired) reservation alive until then: so once dead
// entries outnumber live ones the schedule is rebuilt from the live ones,
// which keeps it, and what it holds on to, in proportion to the holds.

type timers struct {
	holds  minHeap[holdTimer]
	lots   minHeap[lotTimer]
	retire minHeap[retireTimer] // settled entities, see retire.go
	// compactHolds is the length of holds at which it is rebuilt from its
	// live entries.
	compactHolds int
}

// minCompactHolds is the least length of the hold schedule worth rebuilding.
const minCompactHolds = 4096

type holdTimer struct {
	at int64 // Unix nanoseconds
	r  *reservation
}

func (a holdTimer) before(b holdTimer) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.r.id < b.r.id
}

type lotTimer struct {
	at                             int64
	sku, location, lot, bestBefore string
}

func (a lotTimer) before(b lotTimer) bool {
	switch {
	case a.at != b.at:
		return a.at < b.at
	case a.sku != b.sku:
		return a.sku < b.sku
	case a.location != b.location:
		return a.location < b.location
	case a.lot != b.lot:
		return a.lot < b.lot
	}
	return a.bestBefore < b.bestBefore
}

// minHeap is a binary min-heap ordered by the elements' before method. Ties
// are broken by identity in before, so timers due at the same moment fire in
// the same order however the heap was built.
type minHeap[T interface{ before(T) bool }] []T

func (h *minHeap[T]) push(x T) {
	*h = append(*h, x)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s[i].before(s[parent]) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *minHeap[T]) pop() T {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	var zero T
	s[last] = zero // drop the reference for the garbage collector
	s = s[:last]
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < len(s) && s[l].before(s[small]) {
			small = l
		}
		if r < len(s) && s[r].before(s[small]) {
			small = r
		}
		if small == i {
			break
		}
		s[i], s[small] = s[small], s[i]
		i = small
	}
	*h = s
	return top
}

// init orders an arbitrary slice into a heap.
func (h minHeap[T]) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		for j := i; ; {
			small, l, r := j, 2*j+1, 2*j+2
			if l < len(h) && h[l].before(h[small]) {
				small = l
			}
			if r < len(h) && h[r].before(h[small]) {
				small = r
			}
			if small == j {
				break
			}
			h[j], h[small] = h[small], h[j]
			j = small
		}
	}
}

// LotExpiry returns the moment a lot with the given best-before date expires:
// the end of that day, UTC. It returns false for undated stock.
func LotExpiry(bestBefore string) (time.Time, bool) {
	if bestBefore == "" {
		return time.Time{}, false
	}
	d, err := time.Parse(time.DateOnly, bestBefore)
	if err != nil {
		return time.Time{}, false
	}
	return d.AddDate(0, 0, 1), true
}

// armHold schedules a home reservation's deadline.
func (s *State) armHold(r *reservation) {
	h := &s.timers.holds
	if len(*h) >= max(s.timers.compactHolds, minCompactHolds) {
		live := (*h)[:0]
		for _, t := range *h {
			if s.liveHold(t) {
				live = append(live, t)
			}
		}
		clear((*h)[len(live):]) // drop the references for the collector
		*h = live
		h.init()
		s.timers.compactHolds = 2 * len(live)
	}
	h.push(holdTimer{at: r.expiresAt, r: r})
}

// armLot schedules a dated lot's expiry.
func (s *State) armLot(sku, location, lotID, bestBefore string) {
	if at, ok := LotExpiry(bestBefore); ok {
		s.timers.lots.push(lotTimer{at: at.UnixNano(), sku: sku, location: location, lot: lotID, bestBefore: bestBefore})
	}
}

// liveHold reports whether a hold timer still matches the state: the same
// reservation (not one re-created with its id), still driven here, still
// held, with that deadline.
func (s *State) liveHold(t holdTimer) bool {
	r := t.r
	return s.reservations[r.id] == r && r.home == s.partition && r.expiresAt == t.at &&
		(r.status == StatusHeld || r.status == StatusPending)
}

// liveLot reports whether a lot timer's lot still has stock.
func (s *State) liveLot(t lotTimer) bool {
	sk := s.skus[t.sku]
	if sk == nil {
		return false
	}
	st := sk.find(t.location)
	return st != nil && st.lotQty(t.lot, t.bestBefore) > 0
}

func (st *stock) lotQty(id, bestBefore string) int64 {
	for _, l := range st.lots {
		if l.id == id && l.bestBefore == bestBefore {
			return l.qty
		}
	}
	return 0
}

// NextDeadline returns the earliest moment something in this partition is
// due, and false if nothing is scheduled.
func (s *State) NextDeadline() (time.Time, bool) {
	h, l, rt := &s.timers.holds, &s.timers.lots, &s.timers.retire
	for len(*h) > 0 && !s.liveHold((*h)[0]) {
		h.pop()
	}
	for len(*l) > 0 && !s.liveLot((*l)[0]) {
		l.pop()
	}
	for len(*rt) > 0 && !s.retirable((*rt)[0]) {
		rt.pop()
	}
	next := int64(math.MaxInt64)
	if len(*h) > 0 {
		next = (*h)[0].at
	}
	if len(*l) > 0 {
		next = min(next, (*l)[0].at)
	}
	if len(*rt) > 0 {
		next = min(next, (*rt)[0].at)
	}
	if next == math.MaxInt64 {
		return time.Time{}, false
	}
	return time.Unix(0, next).UTC(), true
}

// Due removes from the schedule everything due at now and returns the
// commands that carry it out: expiries of holds and lots, in time order, then
// the retirement of settled entities whose retention has passed (at most
// maxRetiredPerEvent of them; the rest stay due). Deciding and applying them
// is the caller's job, in the same batch.
func (s *State) Due(now time.Time) []Command {
	n := now.UnixNano()
	h, l := &s.timers.holds, &s.timers.lots
	var cmds []Command
	for {
		holdDue := len(*h) > 0 && (*h)[0].at <= n
		lotDue := len(*l) > 0 && (*l)[0].at <= n
		switch {
		case holdDue && (!lotDue || (*h)[0].at <= (*l)[0].at):
			if t := h.pop(); s.liveHold(t) {
				cmds = append(cmds, expireReservation{id: t.r.id})
			}
		case lotDue:
			if t := l.pop(); s.liveLot(t) {
				cmds = append(cmds, expireLot{sku: t.sku, location: t.location, lot: t.lot, bestBefore: t.bestBefore})
			}
		default:
			if due := s.dueRetirements(n); len(due) > 0 {
				cmds = append(cmds, retireEntities{due: due})
			}
			return cmds
		}
	}
}

// rearm rebuilds the schedule from the state.
func (s *State) rearm() {
	s.timers.holds = s.timers.holds[:0]
	s.timers.lots = s.timers.lots[:0]
	s.timers.retire = s.timers.retire[:0]
	retain := s.limits.Retain
	for _, r := range s.reservations {
		if r.home == s.partition && (r.status == StatusHeld || r.status == StatusPending) {
			s.timers.holds = append(s.timers.holds, holdTimer{at: r.expiresAt, r: r})
		}
		if retain > 0 && s.settled(r) {
			s.timers.retire = append(s.timers.retire, retireTimer{at: r.settledAt + int64(retain), kind: retireReservation, id: r.id})
		}
	}
	if retain > 0 {
		for _, t := range s.transfers {
			if !t.arrivedAt.IsZero() {
				s.timers.retire = append(s.timers.retire, retireTimer{at: t.arrivedAt.Add(retain).UnixNano(), kind: retireTransfer, id: t.id})
			}
		}
		for k, r := range s.records {
			s.timers.retire = append(s.timers.retire, retireTimer{at: r.time.Add(retain).UnixNano(), kind: retireRecord, id: k})
		}
	}
	for _, sk := range s.skus {
		for loc, st := range sk.all() {
			for _, l := range st.lots {
				if at, ok := LotExpiry(l.bestBefore); ok {
					s.timers.lots = append(s.timers.lots, lotTimer{at: at.UnixNano(), sku: sk.id, location: loc, lot: l.id, bestBefore: l.bestBefore})
				}
			}
		}
	}
	s.timers.holds.init()
	s.timers.lots.init()
	s.timers.retire.init()
}
