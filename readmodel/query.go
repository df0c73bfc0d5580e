package readmodel

import (
	"cmp"
	"slices"
	"time"

	"github.com/stockd/stockd"
)

// Availability is the answer to a question about many SKUs.
//
// AsOf is the moment up to which the answer is complete: every write
// acknowledged before AsOf is reflected, for each SKU listed. For a partition
// that has applied everything durable when it is read, that moment is the
// time of the query (writes are acknowledged only once durable, and the
// durable head is read after the query's clock). For a partition that is
// behind, nothing after its last applied event is known, so it is the time of
// that event: the answer may be missing any write made since. AsOf is the
// earliest of these over the partitions involved, so one lagging partition
// makes the whole answer as old as it is. It is the zero time when an
// involved partition is behind and has applied nothing at all yet.
type Availability struct {
	// Items holds one entry per SKU asked for, in the order asked,
	// without repeats. A SKU without events is listed with nothing
	// available and no locations.
	Items []Item    `json:"items"`
	AsOf  time.Time `json:"as_of"`
	Lag   Lag       `json:"lag"`
}

// Item is the availability of one SKU over its locations. Available is what
// can be sold: the sum over locations of what each can sell, so that a
// location short of held units does not take stock away from the others (as
// in GET /v1/skus/{sku}).
type Item struct {
	SKU       string                 `json:"sku"`
	Available int64                  `json:"available"`
	OnHand    int64                  `json:"on_hand"`
	Reserved  int64                  `json:"reserved"`
	Locations []LocationAvailability `json:"locations"`
}

// LocationAvailability is the availability of one SKU at one location, sorted
// by location id. Available is on_hand − reserved − safety stock, and is
// negative only when held units are missing (a shortage), which is reported
// rather than hidden.
type LocationAvailability struct {
	Location  string `json:"location"`
	Available int64  `json:"available"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
}

// Lag says how far an answer is behind the durable log of the partitions it
// involves, read when the answer was made.
type Lag struct {
	// Events is the number of durable events not yet applied, summed over
	// the partitions involved: durable head − applied position.
	Events uint64 `json:"events"`
	// Partitions is the number of partitions involved that are behind.
	Partitions int `json:"partitions"`
}

// Reservations is a page of a customer's reservations, newest first, with the
// freshness of the read model across every partition (see Availability for
// AsOf and Lag): a customer's reservations may live in any of them.
type Reservations struct {
	Items []stockd.Reservation `json:"items"`
	AsOf  time.Time            `json:"as_of"`
	Lag   Lag                  `json:"lag"`
}

// freshness accumulates AsOf and Lag over the partitions an answer involves.
type freshness struct {
	now  time.Time
	asOf time.Time
	lag  Lag
}

func newFreshness(now time.Time) freshness { return freshness{now: now, asOf: now} }

// add accounts for a partition whose durable head was read after the query's
// clock and before its State, which had applied up to applied, the last event
// at clock.
func (f *freshness) add(durable, applied uint64, clock time.Time) {
	if applied >= durable {
		return // complete as of now
	}
	f.lag.Events += durable - applied
	f.lag.Partitions++
	if clock.Before(f.asOf) {
		f.asOf = clock
	}
}

// Availability returns the availability of skus, as the projection knows it,
// with how fresh that is. Each partition is read once, under its read lock,
// however many of its SKUs are asked for; SKUs of one partition are therefore
// consistent with each other, SKUs of different partitions may be at
// different moments (each no older than AsOf).
func (pr *Projection) Availability(skus []string) Availability {
	f := newFreshness(pr.opts.Now())
	out := Availability{Items: make([]Item, 0, len(skus))}
	byPartition := make(map[int][]int)
	seen := make(map[string]struct{}, len(skus))
	for _, sku := range skus {
		if _, dup := seen[sku]; dup {
			continue
		}
		seen[sku] = struct{}{}
		p := stockd.PartitionOf(sku, len(pr.parts))
		byPartition[p] = append(byPartition[p], len(out.Items))
		out.Items = append(out.Items, Item{SKU: sku, Locations: []LocationAvailability{}})
	}
	for p, items := range byPartition {
		part := pr.parts[p]
		durable := pr.durableHead(p)
		part.mu.RLock()
		for _, i := range items {
			v, ok := part.state.StockLevels(out.Items[i].SKU)
			if !ok {
				continue
			}
			it := &out.Items[i]
			it.Available, it.OnHand, it.Reserved = v.Available, v.OnHand, v.Reserved
			it.Locations = make([]LocationAvailability, len(v.Locations))
			for j, l := range v.Locations {
				it.Locations[j] = LocationAvailability{Location: l.Location, Available: l.Available, OnHand: l.OnHand, Reserved: l.Reserved}
			}
		}
		applied, clock := part.head, part.clock
		part.mu.RUnlock()
		f.add(durable, applied, clock)
	}
	out.AsOf, out.Lag = f.asOf, f.lag
	return out
}

// ReservationsByCustomer returns up to limit of a customer's reservations,
// across every partition, newest first: by creation time, latest first, then
// by id, greatest first. A limit of 0 or less means DefaultReservations; more
// than MaxReservations means MaxReservations. Reservations of a cart spanning
// partitions are listed once, whole, as their home partition has them; a cart
// still being held across partitions is not listed until it is held, and one
// that could not be held is never listed.
func (pr *Projection) ReservationsByCustomer(customer string, limit int) Reservations {
	if limit <= 0 {
		limit = DefaultReservations
	}
	limit = min(limit, MaxReservations)
	f := newFreshness(pr.opts.Now())
	var found []stockd.Reservation
	for p, part := range pr.parts {
		durable := pr.durableHead(p)
		part.mu.RLock()
		if customer != "" {
			// Each list is sorted oldest first, so the newest of this
			// partition are at its end; the newest overall are among
			// them.
			list := part.customers[customer]
			taken := 0
			for i := len(list) - 1; i >= 0 && taken < limit; i-- {
				r, ok := part.state.ReservationView(list[i].id)
				if !ok || r.Status == stockd.StatusPending || r.Customer != customer {
					continue
				}
				found = append(found, r)
				taken++
			}
		}
		applied, clock := part.head, part.clock
		part.mu.RUnlock()
		f.add(durable, applied, clock)
	}
	slices.SortFunc(found, func(a, b stockd.Reservation) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(found) > limit {
		found = found[:limit]
	}
	if found == nil {
		found = []stockd.Reservation{}
	}
	return Reservations{Items: found, AsOf: f.asOf, Lag: f.lag}
}
