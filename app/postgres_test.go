package app

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/internal/pgtest"
)

// postgresConfig returns a Config whose store is a fresh schema of the
// database STOCKD_TEST_POSTGRES names, dropped when the test ends; it skips
// the test without one.
func postgresConfig(t *testing.T) Config {
	t.Helper()
	dsn, schema := pgtest.Schema(t, "app_", "no PostgreSQL to test against")
	return Config{Addr: "127.0.0.1:0", Data: t.TempDir(), Store: dsn, StoreSchema: schema, Partitions: 4,
		Logger: slog.New(slog.DiscardHandler)}
}

// TestANodeWhoseLeaseIsTakenStopsAndWritesNothingMore: when another node
// takes a partition (its lease ran out while this one was paused, say), this
// node's next append carries a stale lease and is refused, and the engine
// stops: it answers nothing more, and the other node's writes stand.
func TestANodeWhoseLeaseIsTakenStopsAndWritesNothingMore(t *testing.T) {
	ctx := context.Background()
	cfg := postgresConfig(t)
	cfg.LeaseTTL = time.Hour // no renewal during the test: the append finds out
	a, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	if _, err := a.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	// An intruder takes partition 0 (locations live there) as a node
	// whose wait for an expired lease ended would.
	ls := a.Store.(stockd.Leases)
	conn, err := pgx.Connect(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE "+pgx.Identifier{cfg.StoreSchema, "leases"}.Sanitize()+" SET expires_at = now() - interval '1 second' WHERE part = 0"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ls.AcquireLease(ctx, 0, "intruder", time.Hour); err != nil || !ok {
		t.Fatalf("the intruder's acquire: %v %v", ok, err)
	}
	head := a.Engine.DurableHead(0)
	_, err = a.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w2", Kind: stockd.KindStore, Priority: 2})
	if err == nil {
		t.Fatal("a node appended to a partition another node had taken")
	}
	select {
	case <-a.Engine.Fatal():
	case <-time.After(10 * time.Second):
		t.Fatalf("the node did not stop after its lease was lost (%v)", err)
	}
	if !stockd.IsCode(a.Engine.Err(), stockd.CodeLeaseLost) {
		t.Errorf("the engine stopped with %v, want lease_lost", a.Engine.Err())
	}
	if _, err := a.Engine.SKU(ctx, "A", stockd.AsOf{}); err == nil {
		t.Error("a stopped node still answers")
	}
	evs, err := a.Store.ReadPartition(ctx, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(evs)) != head {
		t.Fatalf("partition 0 holds %d events after the refused append, want %d", len(evs), head)
	}
}
