package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stockd/stockd"
)

// postgresConfig returns a Config whose store is a fresh schema of the
// database STOCKD_TEST_POSTGRES names, dropped when the test ends; it skips
// the test without one.
func postgresConfig(t *testing.T) Config {
	t.Helper()
	dsn := os.Getenv("STOCKD_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("STOCKD_TEST_POSTGRES is not set: no PostgreSQL to test against")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "app_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return Config{Addr: "127.0.0.1:0", Data: t.TempDir(), Store: dsn, StoreSchema: schema, Partitions: 4,
		Logger: slog.New(slog.DiscardHandler)}
}

// TestASecondNodeOnOneSchemaStopsWithoutWriting: until partitions are
// leased, two nodes on one schema are safe, not useful: the node whose
// append names a head the other has moved is refused and stops (fail-stop),
// writing nothing; the other goes on, and nothing acknowledged is lost.
func TestASecondNodeOnOneSchemaStopsWithoutWriting(t *testing.T) {
	ctx := context.Background()
	cfg := postgresConfig(t)
	a, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if _, _, err := a.Engine.Receive(ctx, stockd.ReceiveStock{ID: "r-a", SKU: "A", Location: "w1", Quantity: 5}); !stockd.IsCode(err, stockd.CodeUnknownLocation) {
		t.Fatalf("receive before the location: %v", err)
	}
	if _, err := a.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Engine.Receive(ctx, stockd.ReceiveStock{ID: "r-a", SKU: "A", Location: "w1", Quantity: 5}); err != nil {
		t.Fatal(err)
	}
	// b still believes the heads it loaded: its append is refused.
	_, err = b.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w2", Kind: stockd.KindStore, Priority: 2})
	if err == nil {
		t.Fatal("the second node appended at a head the first had moved")
	}
	select {
	case <-b.Engine.Fatal():
	case <-time.After(10 * time.Second):
		t.Fatalf("the second node did not stop after its append was refused (%v)", err)
	}
	// The first node goes on, and holds everything it acknowledged.
	if _, err := a.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w3", Kind: stockd.KindStore, Priority: 3}); err != nil {
		t.Fatalf("the first node after the second stopped: %v", err)
	}
	st, err := a.Engine.SKU(ctx, "A", stockd.AsOf{})
	if err != nil || st.OnHand != 5 {
		t.Fatalf("A = %+v, %v; want 5 on hand", st, err)
	}
}
