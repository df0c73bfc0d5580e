package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
)

// TestDeletingAGoneConsumerLetsArchivingGoOn: a publisher removed from the
// configuration leaves its checkpoint behind, and archiving waits for it;
// deleting that consumer through the admin API lets archiving pass it. A
// consumer the server runs cannot be deleted, and one without checkpoints is
// not found.
func TestDeletingAGoneConsumerLetsArchivingGoOn(t *testing.T) {
	ctx := context.Background()
	var clock sync.Mutex
	now := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	tick := func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
	cfg := Config{
		Addr: "127.0.0.1:0", Data: t.TempDir(), Partitions: 1,
		Engine: engine.Options{Now: tick},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	a, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "wh-1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range 1200 { // more than the 1,000 events a segment needs at least
		if _, _, err := a.Engine.Receive(ctx, stockd.ReceiveStock{ID: fmt.Sprintf("r-%d", i), SKU: "A", Location: "wh-1", Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// The Kafka publisher ran once, got to position 2, and was removed.
	if err := a.Store.SetCheckpoint(ctx, "publish/kafka", 0, stockd.Checkpoint{Position: 2}); err != nil {
		t.Fatal(err)
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
	admin := consumerAdmin{a}
	if err := a.Archiver.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if start, _ := a.Store.LogStart(ctx, 0); start > 2 {
		t.Fatalf("archived up to %d past the gone publisher's checkpoint 2", start)
	}
	list, err := admin.ListConsumers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := a.Engine.DurableHead(0)
	want := fmt.Sprint([]stockd.Consumer{{Name: "availability", Running: true, Lag: list.Items[0].Lag}, {Name: "publish/kafka", Running: false, Lag: head - 2}})
	if got := fmt.Sprint(list.Items); got != want {
		t.Fatalf("consumers %s, want %s", got, want)
	}

	if _, err := admin.DeleteConsumer(ctx, "availability"); !stockd.IsCode(err, stockd.CodeInUse) {
		t.Fatalf("deleting the running read model: %v, want in_use", err)
	}
	if _, err := admin.DeleteConsumer(ctx, "publish/nats"); !stockd.IsCode(err, stockd.CodeNotFound) {
		t.Fatalf("deleting a consumer without checkpoints: %v, want not_found", err)
	}
	gone, err := admin.DeleteConsumer(ctx, "publish/kafka")
	if err != nil || gone.Name != "publish/kafka" || gone.Lag != head-2 {
		t.Fatalf("delete: %+v, %v", gone, err)
	}
	if list, _ := admin.ListConsumers(ctx); len(list.Items) != 1 || list.Items[0].Name != "availability" {
		t.Fatalf("after the delete: %+v", list.Items)
	}
	// Wait for the read model's checkpoint to pass the old events: the
	// read model saves it on its own schedule, so archiving may also wait
	// for it; the gone publisher must no longer be what holds it back.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if err := a.Archiver.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if start, _ := a.Store.LogStart(ctx, 0); start > 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("archiving did not pass position 2 within 20 s of deleting the gone publisher")
		}
		<-time.After(10 * time.Millisecond)
	}
}
