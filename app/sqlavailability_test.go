package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/client"
	"github.com/stockd/stockd/internal/stockmix"
	"github.com/stockd/stockd/internal/testclock"
	"github.com/stockd/stockd/postgres"
	"github.com/stockd/stockd/publish"
)

// sqlRow is a row of the availability table.
type sqlRow struct {
	SKU, Location                                 string
	Part                                          int
	OnHand, Reserved, SafetyStock, Available, Pos int64
	EventAt, UpdatedAt                            time.Time
}

// sqlAvailabilityRows reads the availability table of cfg's schema, ordered
// by SKU and location.
func sqlAvailabilityRows(t *testing.T, cfg Config) []sqlRow {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT sku, location, part, on_hand, reserved, safety_stock, available, position, event_at, updated_at FROM `+
		pgx.Identifier{cfg.StoreSchema, "availability"}.Sanitize()+` ORDER BY sku, location`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sqlRow, error) {
		var x sqlRow
		err := r.Scan(&x.SKU, &x.Location, &x.Part, &x.OnHand, &x.Reserved, &x.SafetyStock, &x.Available, &x.Pos, &x.EventAt, &x.UpdatedAt)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sqlAvailabilityApp opens an App on a fresh PostgreSQL schema with the
// availability table, on a test clock, serving HTTP; it skips without
// PostgreSQL.
func sqlAvailabilityApp(t *testing.T, cfg Config, clock *testclock.Clock) *App {
	t.Helper()
	cfg.SQLAvailability = true
	cfg.Engine.Now = clock.Now
	a, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Serve()
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

// sqlAvailabilityRunner returns the Runner of the table.
func sqlAvailabilityRunner(t *testing.T, a *App) *publish.Runner {
	t.Helper()
	for _, r := range a.Publishers {
		if r.Name() == SQLAvailabilityName {
			return r
		}
	}
	t.Fatal("no sql-availability publisher running")
	return nil
}

// settle fires whatever fell due on the test clock (a read of every SKU goes
// through its partition, which fires due timers first) and waits until the
// read model and the table have applied every durable event.
func settle(t *testing.T, a *App, c *client.Client) {
	t.Helper()
	ctx := context.Background()
	a.Engine.Poke()
	for _, sku := range stockmix.SKUs() {
		if _, err := c.SKU(ctx, sku, stockd.AsOf{}); err != nil {
			t.Fatal(err)
		}
	}
	r := sqlAvailabilityRunner(t, a)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		behind := ""
		for p := range a.Engine.Partitions() {
			head := a.Engine.DurableHead(p)
			if r.Position(p) < head || a.ReadModel.Position(p) < head {
				behind = fmt.Sprintf("partition %d: durable head %d, table at %d, read model at %d", p, head, r.Position(p), a.ReadModel.Position(p))
				break
			}
		}
		if behind == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not caught up within 30 s: %s", behind)
		}
	}
}

// checkAgainstTheAPI fails unless the table holds, row for row, what GET
// /v1/availability answers for every SKU, caught up, and the documented
// per-SKU query gives the API's SKU totals.
func checkAgainstTheAPI(t *testing.T, a *App, cfg Config, c *client.Client) {
	t.Helper()
	ctx := context.Background()
	av, err := c.Availability(ctx, stockmix.SKUs())
	if err != nil {
		t.Fatal(err)
	}
	if av.Lag.Events != 0 {
		t.Fatalf("the read model is %d events behind after settling", av.Lag.Events)
	}
	var want []string
	for _, it := range av.Items {
		p := stockd.PartitionOf(it.SKU, a.Engine.Partitions())
		for _, l := range it.Locations {
			want = append(want, fmt.Sprintf("%s@%s p%d on_hand %d reserved %d available %d", it.SKU, l.Location, p, l.OnHand, l.Reserved, l.Available))
		}
	}
	slices.Sort(want)
	var got []string
	rows := sqlAvailabilityRows(t, cfg)
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s@%s p%d on_hand %d reserved %d available %d", r.SKU, r.Location, r.Part, r.OnHand, r.Reserved, r.Available))
		if head := a.Engine.DurableHead(r.Part); r.Pos <= 0 || uint64(r.Pos) > head {
			t.Errorf("row %s@%s is at position %d, beyond its partition's head %d", r.SKU, r.Location, r.Pos, head)
		}
	}
	if len(want) < 24 {
		t.Fatalf("the API shows only %d SKU × location rows: the workload did too little", len(want))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the table differs from GET /v1/availability:\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The SKU's own figures, as docs/sql-availability.md sums them.
	conn, err := pgx.Connect(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	q := `SELECT sku, sum(on_hand), sum(reserved), sum(greatest(available, 0)) FROM ` + pgx.Identifier{cfg.StoreSchema, "availability"}.Sanitize() + ` GROUP BY sku`
	res, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	totals := map[string][3]int64{}
	for res.Next() {
		var sku string
		var x [3]int64
		if err := res.Scan(&sku, &x[0], &x[1], &x[2]); err != nil {
			t.Fatal(err)
		}
		totals[sku] = x
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	for _, it := range av.Items {
		if len(it.Locations) == 0 {
			continue
		}
		if got, want := totals[it.SKU], [3]int64{it.OnHand, it.Reserved, it.Available}; got != want {
			t.Errorf("%s: the SQL totals (on_hand, reserved, available) are %v, the API's %v", it.SKU, got, want)
		}
	}
}

// TestTheAvailabilityTableMatchesTheAPIRowForRow: a realistic workload
// through a server on PostgreSQL — receipts (some in dated lots that expire),
// safety stock, carts of up to three lines across partitions, partial and
// full commits, releases, holds expiring on the test clock, adjustments,
// counts, transfers that arrive — leaves the availability table holding,
// once caught up, exactly what GET /v1/availability answers, SKU × location
// by SKU × location, and SKU totals that the documented query sums right.
func TestTheAvailabilityTableMatchesTheAPIRowForRow(t *testing.T) {
	cfg := postgresConfig(t)
	clock := testclock.New(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	a := sqlAvailabilityApp(t, cfg, clock)
	c := client.New(a.URL())
	m := stockmix.New(c, 3, clock.Now, func(d time.Duration) { clock.Advance(d); a.Engine.Poke() })
	m.Setup(t)
	m.Run(t, 300)
	settle(t, a, c)
	checkAgainstTheAPI(t, a, cfg, c)
	// It is a consumer like the others: listed, and caught up.
	cs, err := c.ListConsumers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range cs.Items {
		if x.Name == publish.Consumer(SQLAvailabilityName) {
			found = x.Running && x.Lag == 0
		}
	}
	if !found {
		t.Errorf("GET /v1/consumers does not list %s running and caught up: %+v", publish.Consumer(SQLAvailabilityName), cs)
	}
}

// TestTheAvailabilityTableIsUnchangedByAReplayFromTheStart: after a restart
// whose table must be rebuilt in memory from the log (its saved folds gone)
// and whose delivery starts again from position 0 in every partition (the
// checkpoints set back, as after a crash that lost them), every event is
// offered again and the table does not change by a single row, not even a
// row's updated_at; then the workload goes on, and the table still matches
// the API row for row.
func TestTheAvailabilityTableIsUnchangedByAReplayFromTheStart(t *testing.T) {
	ctx := context.Background()
	cfg := postgresConfig(t)
	clock := testclock.New(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	a := sqlAvailabilityApp(t, cfg, clock)
	c := client.New(a.URL())
	m := stockmix.New(c, 4, clock.Now, func(d time.Duration) { clock.Advance(d); a.Engine.Poke() })
	m.Setup(t)
	m.Run(t, 200)
	settle(t, a, c)
	before := sqlAvailabilityRows(t, cfg)
	heads := make([]uint64, a.Engine.Partitions())
	for p := range heads {
		heads[p] = a.Engine.DurableHead(p)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Set every delivery back to the start and drop the saved folds.
	s, err := postgres.Open(ctx, cfg.Store, postgres.Options{Schema: cfg.StoreSchema, Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	for p := range heads {
		if err := s.SetCheckpoint(ctx, publish.Consumer(SQLAvailabilityName), p, stockd.Checkpoint{}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	conn, err := pgx.Connect(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, `UPDATE `+pgx.Identifier{cfg.StoreSchema, "availability_partitions"}.Sanitize()+` SET state = NULL, state_position = 0`)
	if err != nil || tag.RowsAffected() != int64(len(heads)) {
		t.Fatalf("dropping the saved folds: %v rows, %v", tag.RowsAffected(), err)
	}

	a = sqlAvailabilityApp(t, cfg, clock)
	c = client.New(a.URL())
	for p, h := range heads {
		if got := a.Engine.DurableHead(p); got != h {
			t.Fatalf("partition %d's head moved across the restart, %d to %d", p, h, got)
		}
	}
	settle(t, a, c)
	var replayed uint64
	for _, h := range heads {
		replayed += h
	}
	if sent := publishedEvents(t, a); sent < replayed {
		t.Errorf("the table was offered %d events after the restart, want every one of the %d in the log", sent, replayed)
	}
	after := sqlAvailabilityRows(t, cfg)
	if !slices.Equal(before, after) {
		t.Errorf("the replay changed the table:\nbefore %v\nafter  %v", before, after)
	}

	// The log goes on: the table follows.
	m.Svc = c
	m.Advance = func(d time.Duration) { clock.Advance(d); a.Engine.Poke() }
	m.Run(t, 150)
	settle(t, a, c)
	checkAgainstTheAPI(t, a, cfg, c)
}

// publishedEvents returns what /metrics says the table's Runner delivered
// since the App started.
func publishedEvents(t *testing.T, a *App) uint64 {
	t.Helper()
	res, err := nethttp.Get(a.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	prefix := `stockd_publisher_events_total{publisher="` + SQLAvailabilityName + `"} `
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return uint64(n)
		}
	}
	t.Fatalf("/metrics has no %s", prefix)
	return 0
}

// TestSQLAvailabilityIsRefusedWithoutAPostgreSQLStore: the table lives in
// the PostgreSQL store, so asking for it on the embedded store is refused
// before anything is opened, saying what it needs.
func TestSQLAvailabilityIsRefusedWithoutAPostgreSQLStore(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Addr: "127.0.0.1:0", Data: dir, SQLAvailability: true}
	cfg.setDefaults()
	if err := cfg.Check(); !errors.Is(err, errSQLAvailabilityStore) {
		t.Fatalf("Check = %v, want the refusal of --sql-availability without --store", err)
	}
	a, err := Open(context.Background(), cfg)
	if err == nil {
		a.Close(context.Background())
		t.Fatal("Open started an App with SQLAvailability on the embedded store")
	}
	if !strings.Contains(err.Error(), "--store postgres://") {
		t.Errorf("the refusal does not say what it needs: %v", err)
	}
}
