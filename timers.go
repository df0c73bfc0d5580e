package stockd

import (
	"container/heap"
	"time"
)

// Timers. A partition keeps a min-heap of the moments something must happen
// on its own: a hold reaching its deadline, a lot reaching its best-before.
// Entries are never removed when a deadline moves or a lot is used up; an
// entry is checked against the state when it comes due and dropped if it no
// longer matches. The heap is derived state: it is rebuilt from the
// reservations and lots after a snapshot is loaded, which is how timers are
// re-armed after a restart.

type timerKind uint8

const (
	timerHold timerKind = iota + 1
	timerLot
)

type timer struct {
	at   time.Time
	kind timerKind
	// For a hold: id is the reservation. For a lot: id is the SKU and
	// location, lot and bestBefore name the lot.
	id, location, lot, bestBefore string
}

type timerHeap []timer

func (h timerHeap) Len() int { return len(h) }

// Less orders timers by time, then by identity, so that timers due at the same
// moment fire in the same order however the heap was built.
func (h timerHeap) Less(i, j int) bool {
	a, b := &h[i], &h[j]
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	if a.id != b.id {
		return a.id < b.id
	}
	if a.location != b.location {
		return a.location < b.location
	}
	if a.lot != b.lot {
		return a.lot < b.lot
	}
	return a.bestBefore < b.bestBefore
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
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
	heap.Push(&s.timers, timer{at: r.expiresAt, kind: timerHold, id: r.id})
}

// armLot schedules a dated lot's expiry.
func (s *State) armLot(sku, location, lotID, bestBefore string) {
	if at, ok := LotExpiry(bestBefore); ok {
		heap.Push(&s.timers, timer{at: at, kind: timerLot, id: sku, location: location, lot: lotID, bestBefore: bestBefore})
	}
}

// live reports whether a timer still matches the state.
func (s *State) live(t timer) bool {
	switch t.kind {
	case timerHold:
		r := s.reservations[t.id]
		return r != nil && r.home == s.partition && r.expiresAt.Equal(t.at) &&
			(r.status == StatusHeld || r.status == StatusPending)
	case timerLot:
		sk := s.skus[t.id]
		if sk == nil {
			return false
		}
		st := sk.stock[t.location]
		return st != nil && st.lotQty(t.lot, t.bestBefore) > 0
	}
	return false
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
	for len(s.timers) > 0 {
		if s.live(s.timers[0]) {
			return s.timers[0].at, true
		}
		heap.Pop(&s.timers)
	}
	return time.Time{}, false
}

// Due removes from the schedule everything due at now and returns the
// commands that carry it out: expiries of holds and lots. Deciding and
// applying them is the caller's job, in the same batch.
func (s *State) Due(now time.Time) []Command {
	var cmds []Command
	for len(s.timers) > 0 && !s.timers[0].at.After(now) {
		t := heap.Pop(&s.timers).(timer)
		if !s.live(t) {
			continue
		}
		switch t.kind {
		case timerHold:
			cmds = append(cmds, expireReservation{id: t.id})
		case timerLot:
			cmds = append(cmds, expireLot{sku: t.id, location: t.location, lot: t.lot, bestBefore: t.bestBefore})
		}
	}
	return cmds
}

// rearm rebuilds the schedule from the state.
func (s *State) rearm() {
	s.timers = s.timers[:0]
	for _, r := range s.reservations {
		if r.home == s.partition && (r.status == StatusHeld || r.status == StatusPending) {
			s.timers = append(s.timers, timer{at: r.expiresAt, kind: timerHold, id: r.id})
		}
	}
	for _, sk := range s.skus {
		for loc, st := range sk.stock {
			for _, l := range st.lots {
				if at, ok := LotExpiry(l.bestBefore); ok {
					s.timers = append(s.timers, timer{at: at, kind: timerLot, id: sk.id, location: loc, lot: l.id, bestBefore: l.bestBefore})
				}
			}
		}
	}
	heap.Init(&s.timers)
}
