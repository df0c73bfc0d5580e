// Package stockmix is a realistic mixed workload that tests run against a
// service (the engine, or a server through the client): locations, receipts
// with and without dated lots, safety stock, reservations of one line or of
// carts spanning partitions, partial and full commits, releases, expiries
// and lots past their best-before date (a clock the test moves), adjustments,
// counts and transfers that arrive. It is deterministic for a seed.
package stockmix

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// Locations are the locations Setup configures.
var Locations = []string{"w1", "w2", "s1"}

// SKUs returns the SKUs the workload uses.
func SKUs() []string {
	out := make([]string, 12)
	for i := range out {
		out[i] = fmt.Sprintf("SKU-%02d", i)
	}
	return out
}

// Mix drives a service. Advance moves the service's clock on and makes it
// fire what fell due (the engine's Poke); nil leaves out expiries.
type Mix struct {
	Svc     stockd.Service
	Advance func(d time.Duration)
	// Now is the service's clock, for best-before dates; nil: no dated
	// lots.
	Now func() time.Time

	rng       *rand.Rand
	n         int
	held      []string
	transfers []string
}

// New returns a workload on svc with the given seed.
func New(svc stockd.Service, seed uint64, now func() time.Time, advance func(time.Duration)) *Mix {
	return &Mix{Svc: svc, Now: now, Advance: advance, rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
}

// id returns a new id with prefix.
func (m *Mix) id(prefix string) string {
	m.n++
	return fmt.Sprintf("%s-%d", prefix, m.n)
}

// Setup configures the locations, safety stock of some SKUs and a first
// receipt of every SKU at every location.
func (m *Mix) Setup(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	for i, loc := range Locations {
		kind := stockd.KindWarehouse
		if loc[0] == 's' {
			kind = stockd.KindStore
		}
		if _, err := m.Svc.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: loc, Kind: kind, Priority: i + 1, Region: "eu"}); err != nil {
			t.Fatalf("configure location %s: %v", loc, err)
		}
	}
	for i, sku := range SKUs() {
		if i%4 == 0 {
			if _, err := m.Svc.ConfigureSKU(ctx, stockd.ConfigureSKU{SKU: sku, SafetyStock: int64(1 + i%3), LowStockThreshold: 5}); err != nil {
				t.Fatalf("configure %s: %v", sku, err)
			}
		}
		for _, loc := range Locations[:2] {
			m.receive(t, sku, loc, 20+int64(i))
		}
	}
}

// receive books a receipt, dated for some SKUs.
func (m *Mix) receive(t testing.TB, sku, loc string, q int64) {
	t.Helper()
	c := stockd.ReceiveStock{ID: m.id("r"), SKU: sku, Location: loc, Quantity: q}
	if m.Now != nil && m.rng.IntN(3) == 0 {
		c.Lot = m.id("lot")
		c.BestBefore = m.Now().UTC().AddDate(0, 0, m.rng.IntN(3)).Format("2006-01-02")
	}
	if _, _, err := m.Svc.Receive(context.Background(), c); err != nil {
		t.Fatalf("receive %+v: %v", c, err)
	}
}

// Run performs ops random operations.
func (m *Mix) Run(t testing.TB, ops int) {
	t.Helper()
	ctx := context.Background()
	skus := SKUs()
	sku := func() string { return skus[m.rng.IntN(len(skus))] }
	loc := func() string { return Locations[m.rng.IntN(len(Locations))] }
	ok := func(what string, err error, allowed ...stockd.Code) {
		t.Helper()
		if err == nil {
			return
		}
		for _, c := range allowed {
			if stockd.IsCode(err, c) {
				return
			}
		}
		t.Fatalf("%s: %v", what, err)
	}
	for range ops {
		switch k := m.rng.IntN(100); {
		case k < 35: // a cart of 1 to 3 lines, often across partitions
			n := 1 + m.rng.IntN(3)
			c := stockd.Reserve{ID: m.id("cart"), Customer: fmt.Sprintf("c-%d", m.rng.IntN(5)), TTL: time.Duration(1+m.rng.IntN(20)) * time.Minute}
			seen := map[string]bool{}
			for len(c.Lines) < n {
				s := sku()
				if seen[s] {
					continue
				}
				seen[s] = true
				l := stockd.ReserveLine{SKU: s, Quantity: 1 + int64(m.rng.IntN(4))}
				if m.rng.IntN(3) == 0 {
					l.Location = Locations[m.rng.IntN(2)]
				}
				c.Lines = append(c.Lines, l)
			}
			_, _, err := m.Svc.Reserve(ctx, c)
			ok("reserve", err, stockd.CodeInsufficientStock)
			if err == nil {
				m.held = append(m.held, c.ID)
			}
		case k < 50 && len(m.held) > 0: // checkout, sometimes of less
			id := m.take()
			r, err := m.Svc.GetReservation(ctx, id)
			ok("get reservation", err)
			c := stockd.CommitReservation{ID: id}
			if m.rng.IntN(2) == 0 && len(r.Lines) > 0 {
				l := r.Lines[0]
				c.Lines = []stockd.CommitLine{{SKU: l.SKU, Quantity: max(1, l.Quantity-1)}}
			}
			_, err = m.Svc.Commit(ctx, c)
			ok("commit", err, stockd.CodeNotHeld)
		case k < 58 && len(m.held) > 0:
			_, err := m.Svc.Release(ctx, stockd.ReleaseReservation{ID: m.take()})
			ok("release", err, stockd.CodeNotHeld)
		case k < 64:
			m.receive(t, sku(), loc(), 1+int64(m.rng.IntN(10)))
		case k < 72:
			reasons := []stockd.AdjustReason{stockd.ReasonDamaged, stockd.ReasonFound, stockd.ReasonLost, stockd.ReasonReturned}
			d := int64(m.rng.IntN(7) - 3)
			if d == 0 {
				d = 1
			}
			_, _, err := m.Svc.Adjust(ctx, stockd.AdjustStock{ID: m.id("adj"), SKU: sku(), Location: Locations[m.rng.IntN(2)], Delta: d, Reason: reasons[m.rng.IntN(len(reasons))]})
			ok("adjust", err, stockd.CodeInsufficientStock)
		case k < 76:
			_, _, err := m.Svc.Count(ctx, stockd.CountStock{ID: m.id("count"), SKU: sku(), Location: Locations[m.rng.IntN(2)], OnHand: int64(m.rng.IntN(30))})
			ok("count", err, stockd.CodeInsufficientStock)
		case k < 84:
			c := stockd.TransferStock{ID: m.id("tr"), SKU: sku(), From: "w1", To: "s1", Quantity: 1 + int64(m.rng.IntN(3))}
			_, _, err := m.Svc.Transfer(ctx, c)
			ok("transfer", err, stockd.CodeInsufficientStock)
			if err == nil {
				m.transfers = append(m.transfers, c.ID)
			}
		case k < 90 && len(m.transfers) > 0:
			i := m.rng.IntN(len(m.transfers))
			id := m.transfers[i]
			m.transfers = append(m.transfers[:i], m.transfers[i+1:]...)
			_, err := m.Svc.ArriveTransfer(ctx, stockd.ArriveTransfer{ID: id})
			ok("arrive", err)
		case k < 93:
			s := sku()
			_, err := m.Svc.ConfigureSKU(ctx, stockd.ConfigureSKU{SKU: s, SafetyStock: int64(m.rng.IntN(4)), LowStockThreshold: 5})
			ok("configure sku", err)
		default:
			if m.Advance != nil {
				// Holds of a few minutes expire; now and then a day
				// passes, and dated lots expire.
				d := time.Duration(1+m.rng.IntN(8)) * time.Minute
				if m.rng.IntN(6) == 0 {
					d = 25 * time.Hour
				}
				m.Advance(d)
			}
		}
	}
}

// take removes and returns a random held reservation id.
func (m *Mix) take() string {
	i := m.rng.IntN(len(m.held))
	id := m.held[i]
	m.held = append(m.held[:i], m.held[i+1:]...)
	return id
}
