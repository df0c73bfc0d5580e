package stockd

import (
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"
)

// sameLimit compares two SKUs' per-customer limits and what each customer
// has of them: live, rebuilt from the log and decoded from a snapshot, they
// must agree.
func sameLimit(a, b *skuLimit) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.CustomerLimit == b.CustomerLimit && maps.EqualFunc(a.customers, b.customers, func(x, y *customerUse) bool {
		return x.held == y.held && slices.Equal(x.commits, y.commits)
	})
}

// day is the window of the limits the specs below configure.
const day = 24 * time.Hour

// limitedSKU is a SKU with far more stock than its per-customer limit:
// whatever the specs below refuse, the limit refuses, never the stock.
func limitedSKU(units int64) []Command {
	return []Command{recv("r1", "A", "w1", 100), recv("r2", "B", "w1", 100), ConfigureSKU{SKU: "A", CustomerLimit: CustomerLimit{Units: units, Window: day}}}
}

// cart reserves lines for a customer.
func cart(id, customer string, lines ...ReserveLine) Reserve {
	return Reserve{ID: id, Customer: customer, Lines: lines}
}

// heldFor is the event of q units of A held at w1 for a customer's cart
// reserved at t0 plus after, with the default ttl.
func heldFor(id, customer string, q int64, after time.Duration) Event {
	return ev("A", StockReserved{Reservation: id, Quantity: q, Allocations: []Allocation{{"w1", q}}, ExpiresAt: t0.Add(after + 15*time.Minute), Customer: customer})
}

// overLimit is the shortfall of a line of A refused by a limit of units per
// day, the customer having has.
func overLimit(requested, units int64, customer string, has int64) Shortfall {
	return Shortfall{SKU: "A", Requested: requested, Available: max(units-has, 0),
		CustomerLimit: &CustomerLimitShortfall{Units: units, Window: day, Customer: customer, Has: has}}
}

// wantCustomers checks which customers a partition keeps an entry for, of a
// limited SKU: those holding units or with commits in the window.
func wantCustomers(t *testing.T, c *cluster, sku string, want ...string) {
	t.Helper()
	sk := c.states[PartitionOf(sku, c.p)].skus[sku]
	if sk == nil || sk.limit == nil {
		t.Fatalf("%s has no limit", sku)
	}
	got := slices.Sorted(maps.Keys(sk.limit.customers))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s keeps customers %v, want %v", sku, got, want)
	}
}

func TestCustomerLimitIsConfigured(t *testing.T) {
	limit := CustomerLimit{Units: 2, Window: day}
	runSpecs(t, []spec{
		{
			name:  "the config event records the limit and the views show it",
			given: []Command{recv("r1", "A", "w1", 100)},
			when:  ConfigureSKU{SKU: "A", CustomerLimit: limit},
			want:  []Event{ev("A", SKUConfigured{CustomerLimit: limit})},
			check: func(t *testing.T, c *cluster) {
				if v := c.sku("A"); v.CustomerLimit == nil || *v.CustomerLimit != limit {
					t.Fatalf("view shows %+v", v.CustomerLimit)
				}
				cfg, err := c.states[0].SKUConfigResult("A")
				if err != nil || cfg.CustomerLimit == nil || *cfg.CustomerLimit != limit {
					t.Fatalf("config answer %+v, %v", cfg, err)
				}
			},
		},
		{
			name:   "configuring the same limit again is a replay",
			given:  []Command{ConfigureSKU{SKU: "A", CustomerLimit: limit}},
			when:   ConfigureSKU{SKU: "A", CustomerLimit: limit},
			replay: true,
		},
		{
			name:  "a limit left out is removed",
			given: []Command{ConfigureSKU{SKU: "A", CustomerLimit: limit}},
			when:  ConfigureSKU{SKU: "A"},
			want:  []Event{ev("A", SKUConfigured{})},
			check: func(t *testing.T, c *cluster) {
				if v := c.sku("A"); v.CustomerLimit != nil {
					t.Fatalf("view shows %+v after removal", v.CustomerLimit)
				}
			},
		},
		{
			name:   "no units is no limit, whatever the window",
			given:  []Command{ConfigureSKU{SKU: "A", SafetyStock: 1}},
			when:   ConfigureSKU{SKU: "A", SafetyStock: 1, CustomerLimit: CustomerLimit{Window: day}},
			replay: true,
		},
		{name: "a limit without a window is invalid", when: ConfigureSKU{SKU: "A", CustomerLimit: CustomerLimit{Units: 2}}, code: CodeInvalid},
		{name: "negative units are invalid", when: ConfigureSKU{SKU: "A", CustomerLimit: CustomerLimit{Units: -1, Window: day}}, code: CodeInvalid},
		{name: "a window over a year and a day is invalid", when: ConfigureSKU{SKU: "A", CustomerLimit: CustomerLimit{Units: 2, Window: MaxLimitWindow + time.Second}}, code: CodeInvalid},
		{
			name:  "a limit set on a SKU already held counts those holds",
			given: []Command{recv("r1", "A", "w1", 100), cart("c1", "k", line("A", 2))},
			when:  ConfigureSKU{SKU: "A", CustomerLimit: CustomerLimit{Units: 3, Window: day}},
			want:  []Event{ev("A", SKUConfigured{CustomerLimit: CustomerLimit{Units: 3, Window: day}})},
			check: func(t *testing.T, c *cluster) {
				_, _, err := c.do(cart("c2", "k", line("A", 2)))
				if e, ok := err.(*Error); !ok || e.Code != CodeCustomerLimit || e.Lines[0].CustomerLimit.Has != 2 {
					t.Fatalf("a hold past the new limit: %v", err)
				}
			},
		},
	})
}

func TestCustomerLimitRefusesHoldsPastIt(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "a line within the limit is held",
			given: limitedSKU(5),
			when:  cart("c1", "k", line("A", 5)),
			want:  []Event{heldFor("c1", "k", 5, 0)},
			check: func(t *testing.T, c *cluster) { wantCustomers(t, c, "A", "k") },
		},
		{
			name:  "a line past the limit is refused with the limit and what the customer has",
			given: limitedSKU(5),
			when:  cart("c1", "k", line("A", 6)),
			code:  CodeCustomerLimit,
			lines: []Shortfall{overLimit(6, 5, "k", 0)},
			check: func(t *testing.T, c *cluster) {
				wantNoRes(t, c, "c1")
				wantLoc(t, c, "A", "w1", 100, 0, 100, 0, 0)
			},
		},
		{
			name:  "a reservation of a limited SKU without a customer is refused as unprocessable",
			given: limitedSKU(5),
			when:  reserve("c1", line("B", 1), line("A", 1)),
			code:  CodeCustomerRequired,
			lines: []Shortfall{{SKU: "A", Requested: 1, CustomerLimit: &CustomerLimitShortfall{Units: 5, Window: day}}},
			check: func(t *testing.T, c *cluster) {
				wantNoRes(t, c, "c1")
				wantLoc(t, c, "B", "w1", 100, 0, 100, 0, 0)
			},
		},
		{
			name:  "a SKU without a limit needs no customer",
			given: limitedSKU(5),
			when:  reserve("c1", line("B", 7)),
			want:  []Event{ev("B", StockReserved{Reservation: "c1", Quantity: 7, Allocations: []Allocation{{"w1", 7}}, ExpiresAt: t0.Add(15 * time.Minute)})},
		},
		{
			name:  "one line over the limit refuses the whole cart, and nothing changes",
			given: append(limitedSKU(5), cart("c0", "k", line("A", 4))),
			when:  cart("c1", "k", line("B", 3), line("A", 2)),
			code:  CodeCustomerLimit,
			lines: []Shortfall{overLimit(2, 5, "k", 4)},
			check: func(t *testing.T, c *cluster) {
				wantNoRes(t, c, "c1")
				wantLoc(t, c, "B", "w1", 100, 0, 100, 0, 0)
				wantLoc(t, c, "A", "w1", 100, 4, 96, 0, 0)
			},
		},
		{
			name:  "different customers are independent",
			given: append(limitedSKU(5), cart("c1", "k", line("A", 5))),
			when:  cart("c2", "j", line("A", 5)),
			want:  []Event{heldFor("c2", "j", 5, 0)},
			check: func(t *testing.T, c *cluster) { wantCustomers(t, c, "A", "j", "k") },
		},
		{
			name:  "a line past both the limit and the sales cap is refused for the limit",
			given: append(limitedSKU(5), ConfigureSKU{SKU: "A", SalesCap: 3, CustomerLimit: CustomerLimit{Units: 5, Window: day}}),
			when:  cart("c1", "k", line("A", 6)),
			code:  CodeCustomerLimit,
			lines: []Shortfall{overLimit(6, 5, "k", 0)},
		},
		{
			name:  "a line within the limit is still refused by the stock it lacks",
			given: []Command{recv("r1", "A", "w1", 2), ConfigureSKU{SKU: "A", CustomerLimit: CustomerLimit{Units: 5, Window: day}}},
			when:  cart("c1", "k", line("A", 3)),
			code:  CodeInsufficientStock,
			lines: []Shortfall{{SKU: "A", Requested: 3, Available: 2}},
		},
	})
}

// TestCustomerLimitAcrossTwoCartsOfOneCustomer is the hidden corner: two
// reservations of one customer together pass the limit, so the second is
// refused; once the first is released or expires there is room again, and
// units committed keep counting until the window has passed since their
// commit.
func TestCustomerLimitAcrossTwoCartsOfOneCustomer(t *testing.T) {
	first := append(limitedSKU(5), cart("c1", "k", line("A", 3)))
	committed := append(limitedSKU(5), cart("c1", "k", line("A", 3)), CommitReservation{ID: "c1"})
	runSpecs(t, []spec{
		{
			name:  "the second cart is refused when the two together pass the limit",
			given: first,
			when:  cart("c2", "k", line("A", 3)),
			code:  CodeCustomerLimit,
			lines: []Shortfall{overLimit(3, 5, "k", 3)},
			check: func(t *testing.T, c *cluster) { wantRes(t, c, "c1", StatusHeld) },
		},
		{
			name:  "the second cart is held when the two together stay within it",
			given: first,
			when:  cart("c2", "k", line("A", 2)),
			want:  []Event{heldFor("c2", "k", 2, 0)},
		},
		{
			name:  "after the first is released there is room again",
			given: append(first, ReleaseReservation{ID: "c1"}),
			when:  cart("c2", "k", line("A", 5)),
			want:  []Event{heldFor("c2", "k", 5, 0)},
		},
		{
			name:    "after the first expires there is room again",
			given:   first,
			when:    at(15*time.Minute, cart("c2", "k", line("A", 5))),
			wantDue: []Event{ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseExpired, Quantity: 3})},
			want:    []Event{heldFor("c2", "k", 5, 15*time.Minute)},
		},
		{
			name:  "units committed keep counting within the window",
			given: committed,
			when:  at(day-time.Second, cart("c2", "k", line("A", 3))),
			code:  CodeCustomerLimit,
			lines: []Shortfall{overLimit(3, 5, "k", 3)},
		},
		{
			name:  "units committed stop counting once the window has passed",
			given: committed,
			when:  at(day, cart("c2", "k", line("A", 5))),
			want:  []Event{heldFor("c2", "k", 5, day)},
		},
		{
			name:  "the remainder a partial commit releases does not count",
			given: append(limitedSKU(5), cart("c1", "k", line("A", 4)), CommitReservation{ID: "c1", Lines: []CommitLine{{SKU: "A", Quantity: 1}}}),
			when:  cart("c2", "k", line("A", 4)),
			want:  []Event{heldFor("c2", "k", 4, 0)},
		},
		{
			name:  "a commit and a hold of one customer count together",
			given: append(committed, cart("c2", "k", line("A", 1))),
			when:  cart("c3", "k", line("A", 2)),
			code:  CodeCustomerLimit,
			lines: []Shortfall{overLimit(2, 5, "k", 4)},
		},
	})
}

// TestCustomerLimitForgetsCustomersOutsideTheWindow: a partition keeps an
// entry for a customer only while the customer holds units or has commits in
// the window, so that memory follows live work, not history.
func TestCustomerLimitForgetsCustomersOutsideTheWindow(t *testing.T) {
	runSpecs(t, []spec{
		{
			name:  "a customer whose holds are released is forgotten",
			given: append(limitedSKU(5), cart("c1", "k", line("A", 3))),
			when:  ReleaseReservation{ID: "c1"},
			want:  []Event{ev("A", ReservationReleased{Reservation: "c1", Reason: ReleaseRequested, Quantity: 3})},
			check: func(t *testing.T, c *cluster) { wantCustomers(t, c, "A") },
		},
		{
			name:  "a customer who committed is kept within the window",
			given: append(limitedSKU(5), cart("c1", "k", line("A", 3)), CommitReservation{ID: "c1"}),
			when:  at(day-time.Second, recv("r3", "A", "w1", 1)),
			want:  []Event{ev("A", StockReceived{Location: "w1", Quantity: 1})},
			check: func(t *testing.T, c *cluster) { wantCustomers(t, c, "A", "k") },
		},
		{
			name:  "a customer whose commits left the window is forgotten at the next event",
			given: append(limitedSKU(5), cart("c1", "k", line("A", 3)), CommitReservation{ID: "c1"}, cart("c2", "j", line("A", 1)), CommitReservation{ID: "c2"}),
			when:  at(day, recv("r3", "B", "w1", 1)),
			want:  []Event{ev("B", StockReceived{Location: "w1", Quantity: 1})},
			check: func(t *testing.T, c *cluster) { wantCustomers(t, c, "A") },
		},
		{
			name: "a window lengthened keeps the commits it still covers",
			given: append(limitedSKU(5), cart("c1", "k", line("A", 3)), CommitReservation{ID: "c1"},
				ConfigureSKU{SKU: "A", CustomerLimit: CustomerLimit{Units: 5, Window: 2 * day}}),
			when:  at(day+time.Hour, cart("c2", "k", line("A", 3))),
			code:  CodeCustomerLimit,
			lines: []Shortfall{{SKU: "A", Requested: 3, Available: 2, CustomerLimit: &CustomerLimitShortfall{Units: 5, Window: 2 * day, Customer: "k", Has: 3}}},
			check: func(t *testing.T, c *cluster) { wantCustomers(t, c, "A", "k") },
		},
		{
			name:  "a limit removed forgets every customer",
			given: append(limitedSKU(5), cart("c1", "k", line("A", 3)), CommitReservation{ID: "c1"}, ConfigureSKU{SKU: "A"}),
			when:  ConfigureSKU{SKU: "A", CustomerLimit: CustomerLimit{Units: 5, Window: day}},
			want:  []Event{ev("A", SKUConfigured{CustomerLimit: CustomerLimit{Units: 5, Window: day}})},
			check: func(t *testing.T, c *cluster) { wantCustomers(t, c, "A") },
		},
	})
}

// TestCustomerLimitCountsLinesOfOneSKUInOneCartTogether: a cart cannot split
// a SKU over two lines to pass the limit. Reserve refuses two lines of one
// SKU outright; and the check itself counts the units a decision already
// admitted for the cart, so any path that holds one SKU twice in a cart
// (components of a bundle, say) counts them together.
func TestCustomerLimitCountsLinesOfOneSKUInOneCartTogether(t *testing.T) {
	c := newCluster(t, 1, t0)
	c.configureNamed(limitedSKU(5), nil)
	for _, cmd := range limitedSKU(5) {
		mustDo(t, c, cmd)
	}
	if _, _, err := c.do(cart("c1", "k", line("A", 3), line("A", 3))); !IsCode(err, CodeInvalid) {
		t.Fatalf("two lines of one SKU: %v", err)
	}
	x := &decision{s: c.states[0], now: t0}
	if short := x.limited(line("A", 3), "k", "c1"); short != nil {
		t.Fatalf("the first line: %+v", short)
	}
	short := x.limited(line("A", 3), "k", "c1")
	if short == nil || short.Available != 2 || short.CustomerLimit.Has != 0 {
		t.Fatalf("the second line of the same SKU: %+v, want refused with 2 left", short)
	}
	// Another customer's cart decided apart is not affected.
	y := &decision{s: c.states[0], now: t0}
	if short := y.limited(line("A", 5), "j", "c2"); short != nil {
		t.Fatalf("another cart: %+v", short)
	}
}

// TestCustomerLimitRefusesACartSpanningPartitionsAtTheParticipant: the limit
// is checked where the limited SKU's stock is, at a participant of the cart's
// saga, with the customer the hold carries; its shortfall carries the limit
// home, which refuses the cart and releases what it held, so the whole cart
// holds nothing. Without a customer, the participant refuses too.
func TestCustomerLimitRefusesACartSpanningPartitionsAtTheParticipant(t *testing.T) {
	w := newSagaWorld(t, 3, 10)
	mustDo(t, w.cluster, ConfigureSKU{SKU: w.c, CustomerLimit: CustomerLimit{Units: 3, Window: day}})
	// The customer already holds 2 of C, by a cart held in C's partition.
	mustDo(t, w.cluster, cart("c0", "k", line(w.c, 2)))
	w.quiesce()
	for _, tc := range []struct {
		cart Reserve
		code Code
		want []Shortfall
	}{
		{cart("c1", "k", line(w.a, 2), line(w.b, 3), line(w.c, 2)), CodeCustomerLimit,
			[]Shortfall{{SKU: w.c, Requested: 2, Available: 1, CustomerLimit: &CustomerLimitShortfall{Units: 3, Window: day, Customer: "k", Has: 2}}}},
		{reserve("c2", line(w.a, 2), line(w.c, 1)), CodeCustomerRequired,
			[]Shortfall{{SKU: w.c, Requested: 1, CustomerLimit: &CustomerLimitShortfall{Units: 3, Window: day}}}},
	} {
		if _, d, err := w.do(tc.cart); err != nil || d.Wait != tc.cart.ID {
			t.Fatalf("reserve %s: %+v, %v", tc.cart.ID, d, err)
		}
		w.quiesce()
		rs := w.resolved[tc.cart.ID]
		var e *Error
		if len(rs) == 0 || !asError(rs[0].Err, &e) || e.Code != tc.code || !reflect.DeepEqual(e.Lines, tc.want) {
			t.Fatalf("%s: resolutions = %+v", tc.cart.ID, rs)
		}
		wantNoRes(t, w.cluster, tc.cart.ID)
		wantLoc(t, w.cluster, w.a, "w1", 10, 0, 10, 0, 0)
		wantLoc(t, w.cluster, w.b, "w1", 10, 0, 10, 0, 0)
		wantLoc(t, w.cluster, w.c, "w1", 10, 2, 8, 0, 0)
	}
	// Within the limit, the same customer's cart is held everywhere.
	if _, _, err := w.do(cart("c3", "k", line(w.a, 2), line(w.c, 1))); err != nil {
		t.Fatal(err)
	}
	w.quiesce()
	wantRes(t, w.cluster, "c3", StatusHeld)
	wantLoc(t, w.cluster, w.c, "w1", 10, 3, 7, 0, 0)
}

// oracleLimit is the simulation's own reading of a per-customer limit: the
// shortfall of a line of a cart (id, customer) decided at now in the
// partition whose log and state are given, or nil. The limit and the
// commits made while it was set are read from the log alone; the units each
// customer holds are read from the state's reservations (their lines held in
// this partition), because changes of held carts move them through events
// of several kinds, and the simulation checks those lines against the
// holds on its own. What the customer has is those holds (but the cart's
// own) and the commits within the window before now.
func oracleLimit(log []Event, st *State, l ReserveLine, customer, id string, now time.Time) *Shortfall {
	var (
		limit   CustomerLimit
		owner   = map[string]string{}
		commits []struct {
			customer string
			at       time.Time
			qty      int64
		}
	)
	for _, e := range log {
		if e.SKU != l.SKU {
			continue
		}
		switch d := e.Data.(type) {
		case SKUConfigured:
			if d.CustomerLimit.Units == 0 || limit.Units == 0 {
				commits = commits[:0]
			}
			limit = d.CustomerLimit
		case StockReserved:
			owner[d.Reservation] = d.Customer
		case ReservationCommitted:
			if limit.Units > 0 && d.Quantity > 0 {
				who := owner[d.Reservation]
				if r := st.reservations[d.Reservation]; who == "" && r != nil {
					who = r.customer // a line a change added
				}
				if who != "" {
					commits = append(commits, struct {
						customer string
						at       time.Time
						qty      int64
					}{who, e.Time, d.Quantity})
				}
			}
		}
	}
	if limit.Units == 0 {
		return nil
	}
	short := &Shortfall{SKU: l.SKU, Requested: l.Quantity, CustomerLimit: &CustomerLimitShortfall{Units: limit.Units, Window: limit.Window, Customer: customer}}
	if customer == "" {
		return short
	}
	var has int64
	for _, r := range st.reservations {
		if r.customer != customer || r.id == id || (r.status != StatusHeld && r.status != StatusPending) {
			continue
		}
		if rl := r.line(l.SKU); rl != nil && rl.partition == st.partition && !rl.released {
			has += rl.quantity
		}
	}
	for _, c := range commits {
		if c.customer == customer && c.at.Add(limit.Window).After(now) {
			has += c.qty
		}
	}
	if l.Quantity <= limit.Units-has {
		return nil
	}
	short.Available = max(limit.Units-has, 0)
	short.CustomerLimit.Has = has
	return short
}

// viewLimit is the limit a SKU view shows, the zero limit for none.
func viewLimit(v SKUState) CustomerLimit {
	if v.CustomerLimit == nil {
		return CustomerLimit{}
	}
	return *v.CustomerLimit
}
