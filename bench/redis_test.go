package bench

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestRedisLuaNeverGrantsBeyondStock runs the redis-lua target against the
// machine's Redis (STOCKD_TEST_REDIS): 8 clients ask 160 times for 100 units
// of one key; exactly 100 are granted, the report notes how durable the
// server's writes are, and Close leaves no key behind.
func TestRedisLuaNeverGrantsBeyondStock(t *testing.T) {
	addr := os.Getenv("STOCKD_TEST_REDIS")
	if addr == "" {
		t.Skip("STOCKD_TEST_REDIS is not set: no Redis to run the redis-lua target against (.ci/run sets it)")
	}
	ctx := context.Background()
	r := NewRedisLua(addr)
	w := Workload{Name: "hot", SKUs: 1, Stock: 100}
	if err := r.Prepare(ctx, w); err != nil {
		t.Fatal(err)
	}
	l, err := r.Start(ctx, w, 8)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l.Note, "appendfsync") {
		t.Errorf("note %q does not say how the server fsyncs", l.Note)
	}
	var mu sync.Mutex
	var total Outcome
	var wg sync.WaitGroup
	for _, wk := range l.Workers {
		wg.Go(func() {
			for range 20 {
				o := wk.Do(ctx, 1)
				mu.Lock()
				total.OK += o.OK
				total.Insufficient += o.Insufficient
				total.Other += o.Other
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if total.OK != 100 || total.Insufficient != 60 || total.Other != 0 {
		t.Errorf("granted %d, insufficient %d, other %d; want 100, 60, 0", total.OK, total.Insufficient, total.Other)
	}
	key := r.key(w, 0)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	check := NewRedisLua(addr)
	check.Prepare(ctx, Workload{Name: "hot", SKUs: 0})
	defer check.Close()
	if n, err := check.rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Errorf("key %s still exists after Close (%d, %v)", key, n, err)
	}
}
