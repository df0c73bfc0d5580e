package sim

import (
	"reflect"
	"testing"
	"time"
)

func testPlan(seed uint64) *Plan {
	return NewPlan(PlanConfig{Seed: seed, SKUs: 8, Pay: 0.6, Hold: 2 * time.Second, Rate: 50, DropEvery: 5 * time.Second})
}

// TestPlanSameSeedSameDecisions: the decisions of a run are a function of
// the seed and the cart's or drop's number alone, whatever the order they
// are drawn in; another seed decides otherwise.
func TestPlanSameSeedSameDecisions(t *testing.T) {
	a, b := testPlan(1), testPlan(1)
	const n = 2000
	carts := make([]Cart, n)
	for i := range n {
		carts[i] = a.Cart(i)
	}
	for i := n - 1; i >= 0; i-- { // the other way round
		if got := b.Cart(i); !reflect.DeepEqual(got, carts[i]) {
			t.Fatalf("cart %d: %+v, then %+v", i, carts[i], got)
		}
	}
	for k := range 50 {
		if x, y := a.Drop(k), b.Drop(k); !reflect.DeepEqual(x, y) {
			t.Fatalf("drop %d: %+v, then %+v", k, x, y)
		}
	}
	other := testPlan(2)
	same := 0
	for i := range n {
		if reflect.DeepEqual(other.Cart(i), carts[i]) {
			same++
		}
	}
	if same > n/10 {
		t.Errorf("seed 2 made %d of %d carts as seed 1 did", same, n)
	}
	if reflect.DeepEqual(other.Drop(1), a.Drop(1)) {
		t.Errorf("seed 2 made drop 1 as seed 1 did")
	}
}

// TestPlanShape: carts and drops stay within their bounds, and the
// outcomes and popularity come out about as configured.
func TestPlanShape(t *testing.T) {
	p := testPlan(7)
	const n = 20000
	outcomes := map[Outcome]int{}
	perSKU := make([]int, 8)
	for i := range n {
		c := p.Cart(i)
		if c.N != i || len(c.Lines) < 1 || len(c.Lines) > MaxLines {
			t.Fatalf("cart %d: %+v", i, c)
		}
		if len(c.Lines) == 2 && c.Lines[0].SKU == c.Lines[1].SKU {
			t.Fatalf("cart %d has one SKU twice: %+v", i, c)
		}
		for _, l := range c.Lines {
			if l.SKU < 0 || l.SKU >= 8 || l.Quantity < 1 || l.Quantity > MaxQuantity {
				t.Fatalf("cart %d: line %+v", i, l)
			}
			perSKU[l.SKU]++
		}
		if c.Think < 0 || c.Think >= time.Second || (c.Outcome == Abandon && c.Think != 0) {
			t.Fatalf("cart %d thinks %s (%s)", i, c.Think, c.Outcome)
		}
		outcomes[c.Outcome]++
	}
	if f := float64(outcomes[Pay]) / n; f < 0.57 || f > 0.63 {
		t.Errorf("%.3f of carts paid, want about 0.6", f)
	}
	if r, a := outcomes[Release], outcomes[Abandon]; r < n/6 || a < n/6 {
		t.Errorf("%d released, %d abandoned of %d", r, a, n)
	}
	if perSKU[0] < 3*perSKU[7] {
		t.Errorf("SKU 0 chosen %d times, SKU 7 %d: the first SKUs should be the popular ones", perSKU[0], perSKU[7])
	}
	days := map[int]int{}
	for k := range 200 {
		d := p.Drop(k)
		seen := map[int]bool{}
		for _, r := range d.Rows {
			if seen[r.SKU] || r.Quantity < 1 || r.Days < 0 || r.Days > 2 {
				t.Fatalf("drop %d: row %+v", k, r)
			}
			seen[r.SKU] = true
			days[r.Days]++
		}
	}
	if days[0] == 0 || days[1] == 0 || days[2] == 0 {
		t.Errorf("best-before days drawn: %v", days)
	}
}

func TestSKUName(t *testing.T) {
	for _, c := range []struct {
		i, n int
		want string
	}{{0, 8, "SIM-01"}, {9, 10, "SIM-10"}, {4, 120, "SIM-005"}} {
		if got := SKUName(c.i, c.n); got != c.want {
			t.Errorf("SKUName(%d, %d) = %q, want %q", c.i, c.n, got, c.want)
		}
	}
}

func TestSpark(t *testing.T) {
	if got, want := spark([]int64{0, 1, 4, 8, -2}, 8), "·▁▄█·"; got != want {
		t.Errorf("spark = %q, want %q", got, want)
	}
}
