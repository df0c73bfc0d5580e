package stockd

import (
	"encoding/json"
	"fmt"
	"time"
)

// Per-customer limits (anti-hoarding, OWASP API6 "unrestricted access to
// sensitive business flows"). A SKU may limit the units one customer holds
// and commits within a window: a reservation line is refused when what the
// customer already has of the SKU, and the line, together pass the limit.
//
// What a customer "has" of a SKU, decided at a moment now:
//   - the units held by the customer's reservations (held, or being held by
//     a saga), whenever they were held: a hold counts until it is committed,
//     released or expires;
//   - the units committed by the customer's reservations at a moment t with
//     now - window < t, i.e. a commit counts for one window after it;
//   - never the units released or expired, nor the remainder a partial
//     commit released.
//
// Commits are counted only while the SKU has a limit: a limit set later does
// not see the commits made before it (they were not kept), and removing the
// limit forgets them. Holds are always counted, since they are known from
// the reservations.
//
// The check is made where the SKU's stock is, in its own partition (the
// customer's holds and commits of a SKU are known nowhere else), for every
// reservation line held there: at a cart's home and at a saga's participant
// alike. A line of a limited SKU in a reservation that names no customer is
// refused too: a limit cannot be kept without knowing whose units they are.
//
// Memory follows live work: a partition keeps, per limited SKU, an entry per
// customer who holds units or committed some within the window. An entry is
// dropped when its last hold settles and its last commit leaves the window;
// commits leaving the window are pruned as the partition's clock passes them
// (see pruneLimits), so decisions never depend on when that happens.

// MaxLimitWindow bounds a customer limit's window: a year and a day is long
// enough for any campaign, and bounds what a partition keeps per customer.
const MaxLimitWindow = 366 * 24 * time.Hour

// CustomerLimit is a SKU's per-customer limit: at most Units units held and
// committed per customer within Window. Units 0 means no limit. Its JSON
// form writes the window as a Go duration string: {"units":2,"window":"24h"}.
type CustomerLimit struct {
	Units  int64
	Window time.Duration
}

// customerLimitJSON is the JSON form of a CustomerLimit.
type customerLimitJSON struct {
	Units  int64  `json:"units"`
	Window string `json:"window"`
}

// MarshalJSON writes the window as a duration string such as "24h".
func (l CustomerLimit) MarshalJSON() ([]byte, error) {
	return json.Marshal(customerLimitJSON{Units: l.Units, Window: formatWindow(l.Window)})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (l *CustomerLimit) UnmarshalJSON(data []byte) error {
	var v customerLimitJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	w, err := parseWindow(v.Window)
	if err != nil {
		return err
	}
	*l = CustomerLimit{Units: v.Units, Window: w}
	return nil
}

// CustomerLimitShortfall says why a reservation line passed its SKU's
// per-customer limit: the limit, the customer (empty when the reservation
// named none, which a limited SKU refuses), and the units the customer
// already had of the SKU (held, and committed within the window) before the
// cart. Its JSON form writes the window as a duration string.
type CustomerLimitShortfall struct {
	Units    int64
	Window   time.Duration
	Customer string
	Has      int64
}

// customerShortfallJSON is the JSON form of a CustomerLimitShortfall.
type customerShortfallJSON struct {
	Units    int64  `json:"units"`
	Window   string `json:"window"`
	Customer string `json:"customer,omitempty"`
	Has      int64  `json:"has"`
}

// MarshalJSON writes the window as a duration string such as "24h".
func (l CustomerLimitShortfall) MarshalJSON() ([]byte, error) {
	return json.Marshal(customerShortfallJSON{Units: l.Units, Window: formatWindow(l.Window), Customer: l.Customer, Has: l.Has})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (l *CustomerLimitShortfall) UnmarshalJSON(data []byte) error {
	var v customerShortfallJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	w, err := parseWindow(v.Window)
	if err != nil {
		return err
	}
	*l = CustomerLimitShortfall{Units: v.Units, Window: w, Customer: v.Customer, Has: v.Has}
	return nil
}

// formatWindow writes d as a Go duration without the zero units
// time.Duration.String leaves at the end: "24h" rather than "24h0m0s".
func formatWindow(d time.Duration) string {
	s := d.String()
	if len(s) > 3 && s[len(s)-3:] == "m0s" {
		s = s[:len(s)-2]
	}
	if len(s) > 3 && s[len(s)-3:] == "h0m" {
		s = s[:len(s)-2]
	}
	return s
}

func parseWindow(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

// checkCustomerLimit validates a configured limit.
func checkCustomerLimit(l CustomerLimit, lim Limits) error {
	switch {
	case l.Units < 0 || l.Units > lim.MaxQuantity:
		return invalid("customer_limit.units must be between 0 and %d", lim.MaxQuantity)
	case l.Units > 0 && (l.Window <= 0 || l.Window > MaxLimitWindow):
		return invalid("customer_limit.window must be positive and at most %s, got %s", formatWindow(MaxLimitWindow), formatWindow(l.Window))
	case l.Units == 0 && l.Window < 0:
		return invalid("customer_limit.window must not be negative")
	}
	return nil
}

// normalLimit is the limit a configuration records: without units there is
// no limit, whatever window was given, so that configuring "none" twice is
// a replay.
func normalLimit(l CustomerLimit) CustomerLimit {
	if l.Units == 0 {
		return CustomerLimit{}
	}
	return l
}

// skuLimit is a limited SKU's limit and what each customer has of it in this
// partition. It exists only while the SKU has a limit.
type skuLimit struct {
	CustomerLimit
	customers map[string]*customerUse
}

// customerUse is what one customer has of a limited SKU: units held now, and
// the commits not yet pruned, oldest first.
type customerUse struct {
	held    int64
	commits []limitCommit
}

// limitCommit is units committed at a moment (Unix nanoseconds).
type limitCommit struct {
	at  int64
	qty int64
}

// limitTimer names a customer's oldest commit of a SKU, due to leave the
// window at at; see pruneLimits.
type limitTimer struct {
	at            int64
	sku, customer string
}

func (a limitTimer) before(b limitTimer) bool { return a.at < b.at }

// has returns the units the customer has of the SKU at now: held, and
// committed within the window.
func (lim *skuLimit) has(customer string, now int64) int64 {
	u := lim.customers[customer]
	if u == nil {
		return 0
	}
	n := u.held
	for _, c := range u.commits {
		if c.at+int64(lim.Window) > now {
			n += c.qty
		}
	}
	return n
}

// limited checks a line against its SKU's per-customer limit for a cart of
// customer with id reservation, at now: it returns the shortfall when the
// customer has no id, or when what the customer has of the SKU, the units
// this decision already admitted of it for the same cart (pending) and the
// line's quantity together pass the limit, and nil otherwise or when the SKU
// has no limit. The cart's own lines already held here (a later attempt of
// the same cart replacing an earlier one) do not count against it.
func (s *State) limited(l ReserveLine, customer, reservation string, now time.Time, pending int64) *Shortfall {
	sk := s.skus[l.SKU]
	if sk == nil || sk.limit == nil {
		return nil
	}
	lim := sk.limit
	short := &Shortfall{SKU: l.SKU, Requested: l.Quantity, CustomerLimit: &CustomerLimitShortfall{Units: lim.Units, Window: lim.Window, Customer: customer}}
	if customer == "" {
		return short
	}
	has := lim.has(customer, unixNano(now))
	if r := s.reservations[reservation]; r != nil && r.customer == customer && (r.status == StatusHeld || r.status == StatusPending) {
		if rl := r.line(l.SKU); rl != nil && rl.partition == s.partition && !rl.released {
			has -= rl.quantity
		}
	}
	left := lim.Units - has - pending
	if l.Quantity <= left {
		return nil
	}
	short.Available = max(left, 0)
	short.CustomerLimit.Has = has
	return short
}

// limited checks a line of the cart being decided against its SKU's
// per-customer limit (see State.limited), counting the units of the same SKU
// this decision admitted before it, so that lines of one SKU in one cart
// count together.
func (x *decision) limited(l ReserveLine, customer, reservation string) *Shortfall {
	if sk := x.s.skus[l.SKU]; sk == nil || sk.limit == nil {
		return nil // most SKUs: one lookup on the reservation path
	}
	short := x.s.limited(l, customer, reservation, x.now, x.limitPending[l.SKU])
	if short == nil {
		if x.limitPending == nil {
			x.limitPending = make(map[string]int64, 1)
		}
		x.limitPending[l.SKU] += l.Quantity
	}
	return short
}

// customerLimitOf is what views show of a SKU's limit: nil without one.
func (sk *skuState) customerLimitOf() *CustomerLimit {
	if sk.limit == nil {
		return nil
	}
	l := sk.limit.CustomerLimit
	return &l
}

// configureLimit applies a SKU's configured limit. A limit set where there
// was none counts the holds of the reservations this partition has; one
// removed forgets what customers had.
func (s *State) configureLimit(sk *skuState, l CustomerLimit) {
	if l.Units == 0 {
		sk.limit = nil
		return
	}
	if sk.limit == nil {
		sk.limit = &skuLimit{customers: map[string]*customerUse{}}
		sk.limit.CustomerLimit = l
		s.reholdLimit(sk)
		return
	}
	changed := sk.limit.Window != l.Window
	sk.limit.CustomerLimit = l
	if changed {
		// Each customer's oldest commit now leaves the window at
		// another moment: schedule it (entries of the old window
		// find it still inside and do nothing).
		for c, u := range sk.limit.customers {
			s.armLimit(sk, c, u)
		}
	}
}

// reholdLimit counts, for a SKU that has just been given a limit, the units
// each customer holds by the reservations of this partition.
func (s *State) reholdLimit(sk *skuState) {
	for _, r := range s.reservations {
		if r.customer == "" || (r.status != StatusHeld && r.status != StatusPending) {
			continue
		}
		if l := r.line(sk.id); l != nil && l.partition == s.partition && !l.released {
			s.limitHold(sk, r.customer, l.quantity)
		}
	}
}

// limitHold adds q units (negative: removes) to what customer holds of a
// limited SKU, and forgets a customer left with nothing.
func (s *State) limitHold(sk *skuState, customer string, q int64) {
	if sk == nil || sk.limit == nil || customer == "" || q == 0 {
		return
	}
	u := sk.limit.customers[customer]
	if u == nil {
		u = &customerUse{}
		sk.limit.customers[customer] = u
	}
	u.held += q
	if u.held <= 0 && len(u.commits) == 0 {
		delete(sk.limit.customers, customer)
	}
}

// limitCommitted records that customer committed committed units of a limited
// SKU whose line held held units, now: the held units leave the count and
// the committed ones count for a window.
func (s *State) limitCommitted(sk *skuState, customer string, held, committed int64) {
	if sk == nil || sk.limit == nil || customer == "" {
		return
	}
	if committed > 0 {
		u := sk.limit.customers[customer]
		if u == nil {
			u = &customerUse{}
			sk.limit.customers[customer] = u
		}
		u.commits = append(u.commits, limitCommit{at: unixNano(s.clock), qty: committed})
		if len(u.commits) == 1 {
			s.armLimit(sk, customer, u)
		}
	}
	s.limitHold(sk, customer, -held)
}

// armLimit schedules the moment a customer's oldest commit leaves the window.
func (s *State) armLimit(sk *skuState, customer string, u *customerUse) {
	if len(u.commits) > 0 {
		s.limitTimers.push(limitTimer{at: u.commits[0].at + int64(sk.limit.Window), sku: sk.id, customer: customer})
	}
}

// pruneLimits drops the commits that have left their window by the
// partition's clock, and the customers then left with nothing. Apply calls
// it with every event, so it depends only on the log; decisions count commits
// by their own moment and do not depend on it.
func (s *State) pruneLimits() {
	now := unixNano(s.clock)
	for len(s.limitTimers) > 0 && s.limitTimers[0].at <= now {
		t := s.limitTimers.pop()
		sk := s.skus[t.sku]
		if sk == nil || sk.limit == nil {
			continue
		}
		u := sk.limit.customers[t.customer]
		if u == nil {
			continue
		}
		n := 0
		for n < len(u.commits) && u.commits[n].at+int64(sk.limit.Window) <= now {
			n++
		}
		if n == 0 {
			continue // an entry of an earlier window; the current one is armed
		}
		u.commits = append(u.commits[:0:0], u.commits[n:]...)
		if len(u.commits) == 0 {
			u.commits = nil
			if u.held <= 0 {
				delete(sk.limit.customers, t.customer)
			}
			continue
		}
		s.armLimit(sk, t.customer, u)
	}
}

// rearmLimits rebuilds the schedule of commits leaving their window, after a
// snapshot is loaded.
func (s *State) rearmLimits() {
	s.limitTimers = nil
	for _, sk := range s.skus {
		if sk.limit == nil {
			continue
		}
		for c, u := range sk.limit.customers {
			s.armLimit(sk, c, u)
		}
	}
}

// limit writes a SKU's limit and what customers have of it, for a
// snapshot. Held units are not written: they are counted again from the
// reservations.
func (w *writer) limit(sk *skuState) {
	if sk.limit == nil {
		w.varint(0)
		return
	}
	w.varint(sk.limit.Units)
	w.varint(int64(sk.limit.Window))
	n := 0
	for _, u := range sk.limit.customers {
		if len(u.commits) > 0 {
			n++
		}
	}
	w.uvarint(uint64(n))
	for c, u := range sk.limit.customers {
		if len(u.commits) == 0 {
			continue
		}
		w.string(c)
		w.uvarint(uint64(len(u.commits)))
		for _, m := range u.commits {
			w.varint(m.at)
			w.varint(m.qty)
		}
	}
}

// limit reads what writer.limit wrote into sk.
func (r *reader) limit(sk *skuState) {
	units := r.varint()
	if units == 0 {
		return
	}
	if units < 0 {
		r.fail("customer limit of %d units", units)
		return
	}
	sk.limit = &skuLimit{CustomerLimit: CustomerLimit{Units: units, Window: time.Duration(r.varint())}, customers: map[string]*customerUse{}}
	if sk.limit.Window <= 0 {
		r.fail("customer limit window %d", sk.limit.Window)
		return
	}
	for n := r.count(); n > 0 && r.err == nil; n-- {
		c := r.string()
		u := &customerUse{}
		for m := r.count(); m > 0 && r.err == nil; m-- {
			u.commits = append(u.commits, limitCommit{at: r.varint(), qty: r.varint()})
		}
		if c == "" || len(u.commits) == 0 || sk.limit.customers[c] != nil {
			r.fail("customer entry %q of a limited SKU", c)
			return
		}
		sk.limit.customers[c] = u
	}
}

// reholdLimits counts again, after a snapshot is loaded, the units each
// customer holds of every limited SKU.
func (s *State) reholdLimits() {
	for _, sk := range s.skus {
		if sk.limit != nil {
			s.reholdLimit(sk)
		}
	}
}

// limitShortfall writes a shortfall's customer limit, which reader's
// limitShortfall reads back (event format 4, snapshot format 5, retired record format 4 and
// message format 3 carry it).
func (w *writer) limitShortfall(l *CustomerLimitShortfall) {
	w.bool(l != nil)
	if l != nil {
		w.varint(l.Units)
		w.varint(int64(l.Window))
		w.string(l.Customer)
		w.varint(l.Has)
	}
}

func (r *reader) limitShortfall() *CustomerLimitShortfall {
	if !r.bool() {
		return nil
	}
	return &CustomerLimitShortfall{Units: r.varint(), Window: time.Duration(r.varint()), Customer: r.string(), Has: r.varint()}
}

// limitRefusal returns the coded error for a reservation refused by a
// per-customer limit, or nil when no line was: customer_required when a
// limited SKU was reserved without a customer, else customer_limit.
func limitRefusal(lines []Shortfall) *Error {
	var first *Shortfall
	for i, l := range lines {
		if l.CustomerLimit == nil {
			continue
		}
		if l.CustomerLimit.Customer == "" {
			return &Error{
				Code:    CodeCustomerRequired,
				Message: fmt.Sprintf("sku %q limits the units per customer: a reservation of it must name its customer", l.SKU),
				Lines:   lines,
			}
		}
		if first == nil {
			first = &lines[i]
		}
	}
	if first == nil {
		return nil
	}
	l := first.CustomerLimit
	return &Error{
		Code: CodeCustomerLimit,
		Message: fmt.Sprintf("customer limit of %q reached: %d per customer in %s, customer %q has %d, requested %d",
			first.SKU, l.Units, formatWindow(l.Window), l.Customer, l.Has, first.Requested),
		Lines: lines,
	}
}

// is reports whether a SKU's limit (nil: none) is the configured one.
func (lim *skuLimit) is(l CustomerLimit) bool {
	l = normalLimit(l)
	if lim == nil {
		return l.Units == 0
	}
	return lim.CustomerLimit == l
}
