package e2e

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
)

// shrinkingFS reports as free whatever the test sets.
type shrinkingFS struct {
	vfs.FS
	avail *atomic.Uint64
}

func (fs shrinkingFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	u, err := fs.FS.GetDiskUsage(path)
	u.AvailBytes = fs.avail.Load()
	return u, err
}

// TestLowDiskSpaceMakesTheServerReadOnly: when the free space falls below
// the minimum, commands are refused with 503 unavailable and a Retry-After
// and /readyz says why, reads go on and holds still expire; once space is
// freed, commands are taken again. Nothing acknowledged is lost.
func TestLowDiskSpaceMakesTheServerReadOnly(t *testing.T) {
	if OnPostgres() {
		t.Skip("the store is in PostgreSQL: the server's disk is PostgreSQL's to watch, and stockd has no disk guard then")
	}
	var avail atomic.Uint64
	avail.Store(1 << 30)
	s := Start(t, Options{App: func(c *app.Config) {
		c.FS = shrinkingFS{vfs.Default, &avail}
		c.MinFreeBytes = 100 << 20
		c.DiskCheckEvery = 5 * time.Millisecond
	}})
	c := s.Client
	must(c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}))
	receive(t, c, "r-1", "A", "w1", 10)
	must3(c.Reserve(ctx, stockd.Reserve{ID: "cart-1", TTL: time.Second, Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 4}}}))

	avail.Store(50 << 20)
	eventually(t, 5*time.Second, "the server turns read-only", func() bool { return s.Engine.ReadOnly() != nil })
	res := raw(t, s, "POST", "/v1/receipts", `{"id":"r-2","sku":"A","location":"w1","quantity":1}`)
	p := wantProblem(t, res, 503, stockd.CodeUnavailable)
	if res.Header.Get("Retry-After") != "30" {
		t.Errorf("Retry-After = %q, want 30", res.Header.Get("Retry-After"))
	}
	if d, _ := p["detail"].(string); d == "" || !strings.Contains(d, "free") {
		t.Errorf("detail %q does not say the disk is full", d)
	}
	ready := raw(t, s, "GET", "/readyz", nil)
	wantProblem(t, ready, 503, stockd.CodeUnavailable)
	if got := stockOf(t, c, "A"); got.OnHand != 10 {
		t.Errorf("a read while read-only: on hand %d, want 10", got.OnHand)
	}
	// The hold expires on its own even now: timers still write.
	eventually(t, 10*time.Second, "the hold to expire while read-only", func() bool {
		r, err := c.GetReservation(ctx, "cart-1")
		return err == nil && r.Status == stockd.StatusExpired
	})

	avail.Store(1 << 30)
	eventually(t, 5*time.Second, "the server takes commands again", func() bool { return s.Engine.ReadOnly() == nil })
	receive(t, c, "r-2", "A", "w1", 1)
	wantStatus(t, raw(t, s, "GET", "/readyz", nil), 200)
	if got := stockOf(t, c, "A"); got.OnHand != 11 || got.Reserved != 0 {
		t.Errorf("after space was freed: on hand %d reserved %d, want 11 and 0", got.OnHand, got.Reserved)
	}
}

// TestStartOnAFullDiskFailsFast: an App whose disk has less than the
// minimum free refuses to start, at once, saying so, instead of hanging in
// Pebble's open.
func TestStartOnAFullDiskFailsFast(t *testing.T) {
	var avail atomic.Uint64
	avail.Store(1 << 20)
	start := time.Now()
	_, err := app.Open(ctx, app.Config{Addr: "127.0.0.1:0", Data: t.TempDir(), FS: shrinkingFS{vfs.Default, &avail}, Logger: discard})
	if err == nil || !strings.Contains(err.Error(), "free") || !strings.Contains(err.Error(), "--min-free") {
		t.Fatalf("Open on a disk with 1 MiB free: %v", err)
	}
	t.Logf("refused in %v: %v", time.Since(start), err)
}
