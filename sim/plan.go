package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// The plan: every decision the simulated shop makes, drawn from the seed.
// A cart's contents and fate depend only on the seed and the cart's number,
// a supplier drop's only on the seed and the drop's number, so the same
// seed makes the same decisions however the run is scheduled; what the
// server answers (which carts find stock) depends on timing and may differ.

// Outcome is what a customer does with a cart the shop held.
type Outcome uint8

// The outcomes of a held cart.
const (
	// Pay commits the whole cart after the customer's think time.
	Pay Outcome = iota
	// Release gives the cart back after the think time.
	Release
	// Abandon leaves the cart to expire at its hold's deadline.
	Abandon
)

func (o Outcome) String() string {
	switch o {
	case Pay:
		return "pay"
	case Release:
		return "release"
	case Abandon:
		return "abandon"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// PlanConfig are the parameters the decisions are drawn with.
type PlanConfig struct {
	Seed uint64
	// SKUs is how many SKUs the shop sells; SKU i is named SKUName(i).
	SKUs int
	// Pay is the fraction of held carts that are paid for; of the rest, half
	// are released and half left to expire.
	Pay float64
	// Hold is the hold's time to live; a customer thinks for up to half of
	// it before paying or releasing.
	Hold time.Duration
	// Rate is the reservation attempts a second and DropEvery the time
	// between supplier drops: together they size the drops, so that the
	// shop receives about as many units as customers ask for.
	Rate      float64
	DropEvery time.Duration
}

// MaxLines and MaxQuantity bound a cart: 1 or 2 lines of 1 to 3 units.
const (
	MaxLines    = 2
	MaxQuantity = 3
)

// Line is one line of a cart: a SKU by index and a quantity.
type Line struct {
	SKU      int
	Quantity int64
}

// Cart is the n-th reservation attempt of a run.
type Cart struct {
	N        int
	Lines    []Line
	Customer int
	Outcome  Outcome
	// Think is how long the customer waits between the hold and paying or
	// releasing (zero for Abandon).
	Think time.Duration
}

// Row is one row of a supplier drop: Quantity of SKU with a best-before
// Days after the day of the drop (0: the lot expires when that day ends).
type Row struct {
	SKU      int
	Quantity int64
	Days     int
}

// Drop is the k-th supplier CSV file of a run.
type Drop struct {
	K    int
	Rows []Row
}

// Plan draws the decisions of a run. It is pure: its methods depend only
// on the configuration and their argument, and are safe for concurrent use.
type Plan struct {
	cfg PlanConfig
	// cum is the cumulative popularity of the SKUs: SKU i is chosen with
	// weight 1/(i+1), so the first SKUs run out and the last ones keep
	// stock long enough for lots to expire.
	cum []float64
}

// NewPlan returns the plan of cfg.
func NewPlan(cfg PlanConfig) *Plan {
	if cfg.SKUs < 1 {
		cfg.SKUs = 1
	}
	p := &Plan{cfg: cfg, cum: make([]float64, cfg.SKUs)}
	total := 0.0
	for i := range cfg.SKUs {
		total += 1 / float64(i+1)
		p.cum[i] = total
	}
	for i := range p.cum {
		p.cum[i] /= total
	}
	return p
}

// Streams of the random source: each cart and each drop has its own.
const (
	streamCart = 1
	streamDrop = 2
)

func (p *Plan) rng(stream, n int) *rand.Rand {
	return rand.New(rand.NewPCG(p.cfg.Seed, uint64(n)<<2|uint64(stream)))
}

// pickSKU draws a SKU by popularity.
func (p *Plan) pickSKU(r *rand.Rand) int {
	x := r.Float64()
	for i, c := range p.cum {
		if x < c {
			return i
		}
	}
	return len(p.cum) - 1
}

// Cart returns the n-th cart of the run.
func (p *Plan) Cart(n int) Cart {
	r := p.rng(streamCart, n)
	c := Cart{N: n, Customer: r.IntN(1000)}
	lines := 1
	if p.cfg.SKUs > 1 && r.IntN(4) == 0 {
		lines = 2
	}
	for len(c.Lines) < lines {
		sku := p.pickSKU(r)
		if len(c.Lines) == 1 && c.Lines[0].SKU == sku {
			sku = (sku + 1) % p.cfg.SKUs
		}
		c.Lines = append(c.Lines, Line{SKU: sku, Quantity: 1 + r.Int64N(MaxQuantity)})
	}
	switch x := r.Float64(); {
	case x < p.cfg.Pay:
		c.Outcome = Pay
	case x < p.cfg.Pay+(1-p.cfg.Pay)/2:
		c.Outcome = Release
	default:
		c.Outcome = Abandon
	}
	if c.Outcome != Abandon && p.cfg.Hold > 0 {
		c.Think = time.Duration(r.Int64N(int64(p.cfg.Hold / 2)))
	}
	return c
}

// Drop returns the k-th supplier drop of the run. Drop 0, before the first
// customer, is twice as large. Each SKU gets a row with probability 4/5,
// of about an equal share of the units customers ask for between drops
// (so the popular SKUs run out and the others keep stock), best before the
// day of the drop (2 in 5), the next day or the one after.
func (p *Plan) Drop(k int) Drop {
	r := p.rng(streamDrop, k)
	d := Drop{K: k}
	meanCart := (1 + float64(MaxQuantity)) / 2 * (1 + 0.25) // units per cart
	perSKU := p.cfg.Rate * p.cfg.DropEvery.Seconds() * meanCart / float64(p.cfg.SKUs)
	if k == 0 {
		perSKU *= 2
	}
	base := max(int64(math.Round(perSKU)), 1)
	for i := range p.cfg.SKUs {
		if r.IntN(5) == 0 {
			continue
		}
		q := base/2 + r.Int64N(base+1) // base/2 .. 3base/2
		days := 0
		switch x := r.IntN(5); {
		case x < 2:
			days = 0
		case x < 4:
			days = 1
		default:
			days = 2
		}
		d.Rows = append(d.Rows, Row{SKU: i, Quantity: max(q, 1), Days: days})
	}
	return d
}

// SKUName is the name of SKU i of a shop of n SKUs: SIM-01, SIM-02, ...
func SKUName(i, n int) string {
	w := max(len(strconv.Itoa(n)), 2)
	return fmt.Sprintf("SIM-%0*d", w, i+1)
}
