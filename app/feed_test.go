package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
)

// TestFeedServesArchivedEvents archives the old part of the log, then reads
// the feed from the beginning: the archived events come back from cold
// storage, followed by the recent ones, each once and in order, and a
// subscription reset to a time inside the archived range replays from there.
func TestFeedServesArchivedEvents(t *testing.T) {
	ctx := context.Background()
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := old
	tick := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
	cfg := Config{
		Addr: "127.0.0.1:0", Data: t.TempDir(), Partitions: 1, MinFreeBytes: -1,
		Engine: engine.Options{Now: tick}, Logger: slog.New(slog.DiscardHandler),
	}
	a, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range 1500 { // the archiver wants 1,000 events a partition
		if _, _, err := a.Engine.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprintf("r-%d", i), SKU: fmt.Sprintf("S%d", i%9), Location: "w1", Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.ArchiveAfter, cfg.ArchiveEvery = time.Hour, time.Hour
	a, err = Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	if err := a.Archiver.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var archived uint64
	for p := range 1 {
		start, err := a.Store.LogStart(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		archived += start
	}
	if archived < 1000 {
		t.Fatalf("%d events archived, want most of the 1,501 old ones", archived)
	}
	// Recent events, after the archived ones (the clock is now real).
	mu.Lock()
	now = time.Now()
	mu.Unlock()
	for i := range 20 {
		if _, _, err := a.Engine.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprintf("new-%d", i), SKU: fmt.Sprintf("S%d", i%9), Location: "w1", Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var got []stockd.Event
	for q := (stockd.FeedQuery{Limit: 50}); ; {
		p, err := a.Feed.FeedPage(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Events...)
		if len(p.Events) == 0 {
			break
		}
		q.After = p.Next
	}
	signals := 0
	for _, e := range got {
		if e.Type().IsSignal() { // the first receipt of each SKU also says BackInStock
			signals++
		}
	}
	if len(got)-signals != 1521 {
		t.Fatalf("%d events besides signals from the beginning, want 1,521 (the location, 1,500 archived receipts, 20 new)", len(got)-signals)
	}
	last := map[string]uint64{}
	for _, e := range got {
		if e.SKU != "" {
			if e.Version != last[e.SKU]+1 {
				t.Fatalf("SKU %s: version %d after %d", e.SKU, e.Version, last[e.SKU])
			}
			last[e.SKU] = e.Version
		}
	}

	// A reset to a time inside the archived range.
	cut := got[700].Time
	want := 0
	for _, e := range got {
		if e.Time.After(cut) {
			want++
		}
	}
	if _, _, err := a.Feed.PutSubscription(ctx, "audit", cut.Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		p, err := a.Feed.SubscriptionEvents(ctx, "audit", 100)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Events)
		if _, err := a.Feed.AckSubscription(ctx, "audit", p.Next); err != nil {
			t.Fatal(err)
		}
		if len(p.Events) == 0 {
			break
		}
	}
	if n != want {
		t.Fatalf("a subscription from %v replays %d events, want %d", cut, n, want)
	}
}
