package readmodel

import (
	"cmp"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stockd/stockd"
)

// freshness accumulates AsOf and Lag over the partitions an answer involves.
type freshness struct {
	now  time.Time
	asOf time.Time
	lag  stockd.Lag
}

func newFreshness(now time.Time) freshness { return freshness{now: now, asOf: now} }

// add accounts for a partition whose durable head was read after the query's
// clock and before its State, which had applied up to applied, the last event
// at clock. known is when that durable head was known to be the partition's
// (Options.HeadKnownAt): before it, for a partition another node writes.
func (f *freshness) add(durable, applied uint64, clock, known time.Time) {
	if known.Before(f.asOf) {
		f.asOf = known
	}
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
func (pr *Projection) Availability(skus []string) stockd.Availability {
	f := newFreshness(pr.opts.Now())
	out := stockd.Availability{Items: make([]stockd.AvailabilityItem, 0, len(skus))}
	byPartition := make(map[int][]int)
	seen := make(map[string]struct{}, len(skus))
	for _, sku := range skus {
		if _, dup := seen[sku]; dup {
			continue
		}
		seen[sku] = struct{}{}
		p := stockd.PartitionOf(sku, len(pr.parts))
		byPartition[p] = append(byPartition[p], len(out.Items))
		out.Items = append(out.Items, stockd.AvailabilityItem{SKU: sku, Locations: []stockd.LocationAvailability{}})
	}
	for p, items := range byPartition {
		part := pr.parts[p]
		durable, known := pr.durableHead(p), pr.headKnownAt(p, f.now)
		part.mu.RLock()
		for _, i := range items {
			if v, ok := part.state.Availability(out.Items[i].SKU); ok {
				out.Items[i] = v
			}
		}
		applied, clock := part.head, part.clock
		part.mu.RUnlock()
		f.add(durable, applied, clock, known)
	}
	out.AsOf, out.Lag = f.asOf, f.lag
	return out
}

// Reservations returns a page of a customer's held reservations, across every
// partition, newest first: by creation time, latest first, then by id,
// greatest first. A limit of 0 or less means DefaultReservations; more than
// MaxReservations is refused. Next is a cursor after the page's last
// reservation, or "" when no reservation follows it. Reservations of a cart
// spanning partitions are listed once, whole, as their home partition has
// them; a cart still being held across partitions is not listed until it is
// held, and one that could not be held is never listed. A reservation leaves
// the listing once it is committed, released or expired (GET
// /v1/reservations/{id} still shows it).
//
// A page costs a binary search and at most limit+1 reservations per
// partition, however many reservations the customer has.
func (pr *Projection) Reservations(q stockd.CustomerQuery) (stockd.ReservationPage, error) {
	if err := stockd.CheckName("customer", q.Customer); err != nil {
		return stockd.ReservationPage{}, err
	}
	limit, err := pageLimit(q.Limit, DefaultReservations, MaxReservations)
	if err != nil {
		return stockd.ReservationPage{}, err
	}
	var cursor *stockd.CustomerCursor
	if q.After != "" {
		c, err := decodeReservationCursor(q.After)
		if err != nil {
			return stockd.ReservationPage{}, err
		}
		cursor = &c
	}
	f := newFreshness(pr.opts.Now())
	var found []stockd.Reservation
	for p, part := range pr.parts {
		durable, known := pr.durableHead(p), pr.headKnownAt(p, f.now)
		part.mu.RLock()
		// One more than the page tells whether another page follows.
		taken := 0
		for r := range part.state.CustomerHeld(q.Customer, cursor) {
			found = append(found, r)
			if taken++; taken > limit {
				break
			}
		}
		applied, clock := part.head, part.clock
		part.mu.RUnlock()
		f.add(durable, applied, clock, known)
	}
	slices.SortFunc(found, func(a, b stockd.Reservation) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	page := stockd.ReservationPage{Items: found, AsOf: f.asOf, Lag: f.lag}
	if len(found) > limit {
		page.Items = found[:limit]
		last := page.Items[limit-1]
		page.Next = encodeReservationCursor(stockd.CustomerCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	if page.Items == nil {
		page.Items = []stockd.Reservation{}
	}
	return page, nil
}

// SKUs returns a page of the SKUs the read model knows, in lexical order,
// with their stock summed over locations. A SKU is known once it has an
// event. A limit of 0 or less means DefaultSKUs; more than MaxSKUs is
// refused. Next is the last SKU of the page when more follow, else "".
//
// A page scans the SKU names of every partition (O(SKUs) comparisons, no
// copies of what does not qualify) and sorts at most limit+1 per partition.
func (pr *Projection) SKUs(q stockd.SKUListQuery) (stockd.SKUPage, error) {
	limit, err := pageLimit(q.Limit, DefaultSKUs, MaxSKUs)
	if err != nil {
		return stockd.SKUPage{}, err
	}
	if q.Prefix != "" && len(q.Prefix) > stockd.MaxIDLength {
		return stockd.SKUPage{}, stockd.Errorf(stockd.CodeInvalid, "prefix is longer than %d bytes", stockd.MaxIDLength)
	}
	f := newFreshness(pr.opts.Now())
	var found []stockd.SKUSummary
	for p, part := range pr.parts {
		durable, known := pr.durableHead(p), pr.headKnownAt(p, f.now)
		part.mu.RLock()
		names := part.state.SKUPage(q.Prefix, q.After, limit+1)
		for _, sku := range names {
			v, ok := part.state.Availability(sku)
			if !ok {
				continue
			}
			found = append(found, stockd.SKUSummary{SKU: sku, OnHand: v.OnHand, Reserved: v.Reserved, Available: v.Available})
		}
		applied, clock := part.head, part.clock
		part.mu.RUnlock()
		f.add(durable, applied, clock, known)
	}
	slices.SortFunc(found, func(a, b stockd.SKUSummary) int { return cmp.Compare(a.SKU, b.SKU) })
	page := stockd.SKUPage{Items: found, AsOf: f.asOf, Lag: f.lag}
	if len(found) > limit {
		page.Items = found[:limit]
		page.Next = page.Items[limit-1].SKU
	}
	if page.Items == nil {
		page.Items = []stockd.SKUSummary{}
	}
	return page, nil
}

// pageLimit applies a listing's default and refuses a limit above its
// maximum, rather than cutting the page short without saying so.
func pageLimit(limit, def, most int) (int, error) {
	switch {
	case limit <= 0:
		return def, nil
	case limit > most:
		return 0, stockd.Errorf(stockd.CodeInvalid, "limit must be between 1 and %d, got %d", most, limit)
	}
	return limit, nil
}

// A reservation cursor is the creation time and id of the last reservation
// of a page, opaque to clients: base64url of "<unix nanoseconds>:<id>".
func encodeReservationCursor(c stockd.CustomerCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixNano(), 10) + ":" + c.ID))
}

func decodeReservationCursor(s string) (stockd.CustomerCursor, error) {
	bad := stockd.Errorf(stockd.CodeInvalid, "after must be a cursor returned as next, got %q", s)
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return stockd.CustomerCursor{}, bad
	}
	ns, id, ok := strings.Cut(string(raw), ":")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return stockd.CustomerCursor{}, bad
	}
	return stockd.CustomerCursor{CreatedAt: time.Unix(0, n).UTC(), ID: id}, nil
}
