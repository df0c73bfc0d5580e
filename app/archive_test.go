package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/archive"
	"github.com/stockd/stockd/engine"
)

// TestArchiveWiring fills a store with old events, restarts with cold storage
// on, archives, and checks that history, as_of and the read model answer as
// before, across another restart on the trimmed store.
func TestArchiveWiring(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	now := old
	tick := func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
	cfg := Config{
		Addr: "127.0.0.1:0", Data: dir, Partitions: 1,
		Engine: engine.Options{Now: tick},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	open := func(cfg Config) *App {
		t.Helper()
		a, err := Open(ctx, cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return a
	}
	a := open(cfg)
	if a.Archiver != nil || a.ArchiveLog != nil {
		t.Fatalf("cold storage opened with ArchiveAfter 0 on a fresh store")
	}
	if _, err := a.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "wh-1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				sku := fmt.Sprintf("sku-%d", i%3)
				if _, _, err := a.Engine.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprintf("r-%d-%d", w, i), SKU: sku, Location: "wh-1", Quantity: 1}); err != nil {
					t.Errorf("Receive: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	type answers struct {
		history []stockd.HistoryPage
		asOf    stockd.SKUState
		avail   []stockd.AvailabilityItem
	}
	read := func(a *App) answers {
		t.Helper()
		var ans answers
		for after := uint64(0); ; {
			page, err := a.Engine.History(ctx, "sku-1", stockd.HistoryQuery{After: after, Limit: 70})
			if err != nil {
				t.Fatalf("History: %v", err)
			}
			ans.history = append(ans.history, page)
			if len(page.Events) == 0 {
				break
			}
			after = page.Next
		}
		var err error
		if ans.asOf, err = a.Engine.SKU(ctx, "sku-2", stockd.AsOf{Time: old.Add(500 * time.Millisecond)}); err != nil {
			t.Fatalf("SKU as of: %v", err)
		}
		// The read model is eventually consistent: compare answers it
		// gives once it has applied every durable event.
		for deadline := time.Now().Add(10 * time.Second); a.ReadModel.Lag() > 0; {
			if time.Now().After(deadline) {
				t.Fatalf("read model still %d events behind after 10 s", a.ReadModel.Lag())
			}
			<-time.After(2 * time.Millisecond)
		}
		ans.avail = a.ReadModel.Availability([]string{"sku-0", "sku-1", "sku-2"}).Items
		return ans
	}
	before := read(a)
	if err := a.Close(ctx); err != nil { // snapshots and checkpoints at the head
		t.Fatal(err)
	}

	cfg.ArchiveAfter, cfg.ArchiveEvery = time.Hour, time.Hour
	a = open(cfg)
	if a.Archiver == nil {
		t.Fatal("no archiver with ArchiveAfter set")
	}
	if err := a.Archiver.RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	start, _ := a.Store.LogStart(ctx, 0)
	if start < 1000 {
		t.Fatalf("archived up to %d, want the whole old log", start)
	}
	after := read(a)
	for i, pair := range [][2]any{{before.history, after.history}, {before.asOf, after.asOf}, {before.avail, after.avail}} {
		if norm(pair[0]) != norm(pair[1]) {
			t.Errorf("answer %d changed by archiving:\nbefore %s\nafter  %s", i, norm(pair[0]), norm(pair[1]))
		}
	}
	a.Close(ctx)

	// A restart on the trimmed store, archiving off: archived history
	// stays readable.
	cfg.ArchiveAfter = 0
	a = open(cfg)
	defer a.Close(ctx)
	if a.ArchiveLog == nil {
		t.Fatal("a trimmed store opened without its archive")
	}
	if !reflect.DeepEqual(norm(before), norm(read(a))) {
		t.Errorf("answers changed after a restart on the trimmed store")
	}
	r, err := archive.Verify(ctx, mustBucket(t, dir), a.Store)
	if err != nil || !r.OK() || r.Segments == 0 {
		t.Errorf("Verify: %+v, %v", r, err)
	}
}

// norm prints a for comparison.
func norm(a any) string { return fmt.Sprintf("%v", a) }

func mustBucket(t *testing.T, dir string) *archive.Bucket {
	u, err := DefaultArchiveURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := archive.OpenBucket(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
