package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	nethttp "net/http"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/postgres"
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
		if err := postgres.DropSchema(ctx, dsn, schema); err != nil {
			t.Error(err)
		}
	})
	return Config{Addr: "127.0.0.1:0", Data: t.TempDir(), Store: dsn, StoreSchema: schema, Partitions: 4,
		Logger: slog.New(slog.DiscardHandler)}
}

// TestAStandbyNodeWaitsForTheLeasesAndTakesOverWithEverything: a second
// node on one schema waits in Open while the first holds the partitions'
// leases, answering on its address that it is alive but not ready, takes
// them over once the first stops (releasing them), and serves every write
// the first acknowledged, on the same address.
func TestAStandbyNodeWaitsForTheLeasesAndTakesOverWithEverything(t *testing.T) {
	ctx := context.Background()
	cfg := postgresConfig(t)
	cfg.LeaseTTL = time.Second
	a, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	if _, err := a.Engine.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Engine.Receive(ctx, stockd.ReceiveStock{ID: "r-a", SKU: "A", Location: "w1", Quantity: 5}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 3*cfg.LeaseTTL)
	defer cancel()
	if b, err := Open(short, cfg); err == nil {
		b.Close(ctx)
		t.Fatal("a second node opened while the first held every partition")
	}
	// The standby listens while it waits: alive, not ready, and every
	// request refused as unavailable with Retry-After.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	standbyAddr := l.Addr().String()
	l.Close()
	bcfg := cfg
	bcfg.Addr = standbyAddr
	opened := make(chan *App, 1)
	go func() {
		b, err := Open(ctx, bcfg)
		if err != nil {
			t.Error(err)
		}
		opened <- b
	}()
	get := func(path string) (*nethttp.Response, error) {
		c := &nethttp.Client{Timeout: 2 * time.Second}
		return c.Get("http://" + standbyAddr + path)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		res, err := get("/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
				t.Fatalf("the standby's /readyz = %d (Retry-After %q), want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not answer within 30 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for path, want := range map[string]int{"/healthz": 200, "/v1/skus/A": 503} {
		res, err := get(path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("the standby answered %s with %d, want %d", path, res.StatusCode, want)
		}
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var b *App
	select {
	case b = <-opened:
	case <-time.After(30 * time.Second):
		t.Fatal("the standby did not take over within 30 s of the first node stopping")
	}
	if b == nil {
		t.FailNow()
	}
	defer b.Close(ctx)
	if st, err := b.Engine.SKU(ctx, "A", stockd.AsOf{}); err != nil || st.OnHand != 5 {
		t.Fatalf("A on the new node = %+v, %v; want the 5 the first acknowledged", st, err)
	}
	if _, _, err := b.Engine.Receive(ctx, stockd.ReceiveStock{ID: "r-b", SKU: "A", Location: "w1", Quantity: 1}); err != nil {
		t.Fatalf("the new node cannot write: %v", err)
	}
	// Once it took over, the same address serves the API.
	b.Serve()
	res, err := get("/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("the new node's /readyz = %v, %v; want 200", res, err)
	}
	res.Body.Close()
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
