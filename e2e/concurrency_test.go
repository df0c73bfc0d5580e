package e2e

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
)

// TestConcurrentDuplicates: many clients sending the same command at once
// (retries racing each other) get exactly one 201 and 200s, and the stock
// moves once; the same id with different bodies at once gets one 201 and
// the others 200 (their body was the winner's) or 422.
func TestConcurrentDuplicates(t *testing.T) {
	s := Start(t, Options{})
	ConfigureLocations(t, s.Client, "w1")
	const n = 40
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = raw(t, s, "POST", "/v1/receipts", `{"id":"dup","sku":"A","location":"w1","quantity":10}`).Status
		}()
	}
	wg.Wait()
	if count(statuses, 201) != 1 || count(statuses, 200) != n-1 {
		t.Errorf("statuses of one receipt sent %d times at once: %v", n, statuses)
	}
	if st := stockOf(t, s.Client, "A"); st.OnHand != 10 {
		t.Errorf("A = %+v, want 10 on hand", st)
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := `{"id":"dup-res","lines":[{"sku":"A","quantity":` + strconv.Itoa(1+i%2) + `}]}`
			statuses[i] = raw(t, s, "POST", "/v1/reservations", body).Status
		}()
	}
	wg.Wait()
	if count(statuses, 201) != 1 || count(statuses, 201)+count(statuses, 200)+count(statuses, 422) != n || count(statuses, 422) == 0 {
		t.Errorf("statuses of one reservation id with two bodies: %v", statuses)
	}
	r := must(s.Client.GetReservation(ctx, "dup-res"))
	if st := stockOf(t, s.Client, "A"); st.Reserved != r.Lines[0].Quantity {
		t.Errorf("reserved %d, reservation %+v", st.Reserved, r)
	}
	// The same operation twice in one batch.
	b := raw(t, s, "POST", "/v1/batch", `{"operations":[
		{"op":"receive","body":{"id":"in-batch","sku":"B","location":"w1","quantity":3}},
		{"op":"receive","body":{"id":"in-batch","sku":"B","location":"w1","quantity":3}}]}`)
	wantStatus(t, b, 200)
	res := b.JSON(t)["results"].([]any)
	got := []int{int(res[0].(map[string]any)["status"].(float64)), int(res[1].(map[string]any)["status"].(float64))}
	if count(got, 201) != 1 || count(got, 200) != 1 {
		t.Errorf("duplicate receipts in one batch: %v", got)
	}
	if st := stockOf(t, s.Client, "B"); st.OnHand != 3 {
		t.Errorf("B = %+v, want 3", st)
	}
}

func count(xs []int, v int) int {
	n := 0
	for _, x := range xs {
		if x == v {
			n++
		}
	}
	return n
}

// TestHotSKUOverHTTP: many carts at once on one SKU never hold more than is
// stocked.
func TestHotSKUOverHTTP(t *testing.T) {
	s := Start(t, Options{})
	ConfigureLocations(t, s.Client, "w1")
	receive(t, s.Client, "r", "hot", "w1", 50)
	const callers = 200
	var granted, refused, other int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := stockd.Reserve{ID: fmt.Sprintf("c-%d", i), Lines: []stockd.ReserveLine{{SKU: "hot", Quantity: 1}}}
			_, _, err := s.Client.Reserve(ctx, c)
			for backOff(err) {
				_, _, err = s.Client.Reserve(ctx, c)
			}
			mu.Lock()
			defer mu.Unlock()
			switch stockd.ErrorCode(err) {
			case "":
				granted++
			case stockd.CodeInsufficientStock:
				refused++
			default:
				other++
				t.Errorf("reserve: %v", err)
			}
		}()
	}
	wg.Wait()
	if granted != 50 || refused != callers-50 {
		t.Errorf("granted %d, refused %d, other %d", granted, refused, other)
	}
	if st := stockOf(t, s.Client, "hot"); st.Reserved != 50 || st.Available != 0 {
		t.Errorf("hot = %+v", st)
	}
}

// TestCartSpanningPartitions: a cart whose lines live in several partitions
// expires, commits partially and releases as a whole, like a single-partition
// one.
func TestCartSpanningPartitions(t *testing.T) {
	s := Start(t, Options{Partitions: 4})
	c := s.Client
	ConfigureLocations(t, c, "w1")
	skus := []string{}
	seen := map[int]bool{}
	for i := 0; len(skus) < 3; i++ {
		sku := fmt.Sprintf("span-%d", i)
		if p := stockd.PartitionOf(sku, 4); !seen[p] {
			seen[p] = true
			skus = append(skus, sku)
		}
	}
	for _, sku := range skus {
		receive(t, c, "r-"+sku, sku, "w1", 10)
	}
	lines := func(q int64) []stockd.ReserveLine {
		var ls []stockd.ReserveLine
		for _, sku := range skus {
			ls = append(ls, stockd.ReserveLine{SKU: sku, Quantity: q})
		}
		return ls
	}
	// Expiry.
	must3(c.Reserve(ctx, stockd.Reserve{ID: "span-exp", TTL: 300 * time.Millisecond, Lines: lines(4)}))
	eventually(t, 10*time.Second, "the spanning cart expires", func() bool {
		return must(c.GetReservation(ctx, "span-exp")).Status == stockd.StatusExpired
	})
	eventually(t, 10*time.Second, "every line's stock is back", func() bool {
		for _, sku := range skus {
			if stockOf(t, c, sku).Reserved != 0 {
				return false
			}
		}
		return true
	})
	// Partial commit: the first SKU commits 2 of 4, the others are released.
	must3(c.Reserve(ctx, stockd.Reserve{ID: "span-com", TTL: time.Hour, Lines: lines(4)}))
	r := must(c.Commit(ctx, stockd.CommitReservation{ID: "span-com", Lines: []stockd.CommitLine{{SKU: skus[0], Quantity: 2}}}))
	if r.Status != stockd.StatusCommitted {
		t.Fatalf("commit = %+v", r)
	}
	for _, l := range r.Lines {
		want := int64(0)
		if l.SKU == skus[0] {
			want = 2
		}
		if l.Quantity != want || l.Held != 4 {
			t.Errorf("line %+v, want quantity %d", l, want)
		}
	}
	for i, sku := range skus {
		want := int64(10)
		if i == 0 {
			want = 8
		}
		// Read-your-writes: the commit's answer came after every line.
		if st := stockOf(t, c, sku); st.OnHand != want || st.Reserved != 0 {
			t.Errorf("%s after the partial commit = %+v, want on hand %d", sku, st, want)
		}
	}
	// Release, and the replay of the reservation answers it released.
	must3(c.Reserve(ctx, stockd.Reserve{ID: "span-rel", TTL: time.Hour, Lines: lines(1)}))
	if r := must(c.Release(ctx, stockd.ReleaseReservation{ID: "span-rel"})); r.Status != stockd.StatusReleased {
		t.Errorf("release = %+v", r)
	}
	r2, created, err := c.Reserve(ctx, stockd.Reserve{ID: "span-rel", TTL: time.Hour, Lines: lines(1)})
	if err != nil || created || r2.Status != stockd.StatusReleased {
		t.Errorf("replay of released spanning cart = %+v, %v, %v", r2, created, err)
	}
	// And after a restart.
	s2 := s.Restart(t)
	r3, created, err := s2.Client.Reserve(ctx, stockd.Reserve{ID: "span-com", TTL: time.Hour, Lines: lines(4)})
	if err != nil || created || r3.Status != stockd.StatusCommitted {
		t.Errorf("replay of committed spanning cart after restart = %+v, %v, %v", r3, created, err)
	}
}

// TestInsufficientStockListsEveryShortLine: a refused cart's problem lists
// every short line, whether the cart lives in one partition or spans several,
// so a storefront can tell the shopper every item that is short.
func TestInsufficientStockListsEveryShortLine(t *testing.T) {
	s := Start(t, Options{Partitions: 4})
	ConfigureLocations(t, s.Client, "w1")
	var same, spread []string
	for i := 0; len(same) < 2 || len(spread) < 2; i++ {
		sku := fmt.Sprintf("s%d", i)
		p := stockd.PartitionOf(sku, 4)
		if p == 0 && len(same) < 2 {
			same = append(same, sku)
		}
		if p == 1+len(spread) && len(spread) < 2 {
			spread = append(spread, sku)
		}
	}
	for _, sku := range append(same, spread...) {
		receive(t, s.Client, "r-"+sku, sku, "w1", 2)
	}
	check := func(skus []string) {
		t.Helper()
		_, _, err := s.Client.Reserve(ctx, stockd.Reserve{ID: "cart-" + skus[0], Lines: []stockd.ReserveLine{{SKU: skus[0], Quantity: 5}, {SKU: skus[1], Quantity: 6}}})
		e := wantCode(t, err, stockd.CodeInsufficientStock)
		want := []stockd.Shortfall{{SKU: skus[0], Requested: 5, Available: 2}, {SKU: skus[1], Requested: 6, Available: 2}}
		if fmt.Sprint(e.Lines) != fmt.Sprint(want) {
			t.Errorf("cart over %v: shortfall lines %+v, want %+v", skus, e.Lines, want)
		}
	}
	check(same)
	check(spread)
}
