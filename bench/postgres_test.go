package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// testDSN returns the PostgreSQL DSN of STOCKD_TEST_POSTGRES, or skips.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("STOCKD_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("STOCKD_TEST_POSTGRES is not set; set it to a PostgreSQL DSN (e.g. postgres://root@127.0.0.1:5432/test) to run the pg-rowlock and pg-events targets")
	}
	return dsn
}

func pgConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func schemaExists(t *testing.T, c *pgx.Conn, name string) bool {
	t.Helper()
	var n int
	if err := c.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// benchSchemas lists the schemas the bench made in this process
// (stockd_bench_<pid>_…), not those of a test running beside it.
func benchSchemas(t *testing.T, c *pgx.Conn) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE $1`,
		fmt.Sprintf(`stockd\_bench\_%d\_%%`, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestPostgresNeverOversells runs both PostgreSQL peers on little stock and
// more attempts than units, concurrently, and checks that exactly the stock
// is granted, that no SKU ends below zero, and that each target's schema is
// gone after Close.
func TestPostgresNeverOversells(t *testing.T) {
	dsn := testDSN(t)
	check := pgConnect(t, dsn)
	ctx := context.Background()
	for _, mk := range []func(string) *PG{NewPGRowLock, NewPGEvents} {
		for _, c := range []struct {
			w       Workload
			ops     int64
			clients int
		}{
			{Workload{Name: "hot", SKUs: 1, Stock: 50}, 200, 16},
			{Workload{Name: "uniform", SKUs: 20, Stock: 5}, 400, 16},
		} {
			p := mk(dsn)
			t.Run(p.Name()+"/"+c.w.Name, func(t *testing.T) {
				defer func() {
					if err := p.Close(); err != nil {
						t.Errorf("close: %v", err)
					}
					if schemaExists(t, check, p.Schema()) {
						t.Errorf("schema %s still exists after Close", p.Schema())
					}
				}()
				rep, err := Run(ctx, Config{Workloads: []Workload{c.w}, Clients: []int{c.clients}, Ops: c.ops}, []Target{p})
				if err != nil {
					t.Fatal(err)
				}
				if !schemaExists(t, check, p.Schema()) {
					t.Fatalf("the target did not work in its own schema %s", p.Schema())
				}
				r := rep.Results[0]
				stock := int64(c.w.SKUs) * c.w.Stock
				if r.OK != stock || r.Errors.Insufficient != c.ops-stock || r.Errors.Other != 0 || r.Requests != c.ops {
					t.Errorf("ok %d, errors %+v, requests %d; want %d ok, %d insufficient of %d", r.OK, r.Errors, r.Requests, stock, c.ops-stock, c.ops)
				}
				s := pgx.Identifier{p.Schema()}.Sanitize()
				var negative, left int64
				table := ".stock"
				if p.events {
					table = ".stock_heads"
				}
				if err := check.QueryRow(ctx, `SELECT count(*) FILTER (WHERE available < 0), coalesce(sum(available), 0) FROM `+s+table).Scan(&negative, &left); err != nil {
					t.Fatal(err)
				}
				if negative != 0 || left != 0 {
					t.Errorf("%d SKUs below zero, %d units left; want 0 and 0", negative, left)
				}
				if p.events {
					// The log agrees with the heads: one receipt event
					// and one event per granted unit per SKU, versions
					// gap-free, summing to zero; and no running sum
					// ever went below zero.
					var events, skus, badHeads, belowZero int64
					q := `SELECT (SELECT count(*) FROM %[1]s.stock_events),
						(SELECT count(DISTINCT sku) FROM %[1]s.stock_events),
						(SELECT count(*) FROM %[1]s.stock_heads h WHERE h.version <> (SELECT max(version) FROM %[1]s.stock_events e WHERE e.sku = h.sku)
							OR h.available <> (SELECT sum(delta) FROM %[1]s.stock_events e WHERE e.sku = h.sku)
							OR h.version <> (SELECT count(*) FROM %[1]s.stock_events e WHERE e.sku = h.sku)),
						(SELECT count(*) FROM (SELECT sum(delta) OVER (PARTITION BY sku ORDER BY version) AS running FROM %[1]s.stock_events) x WHERE running < 0)`
					if err := check.QueryRow(ctx, strings.ReplaceAll(q, "%[1]s", s)).Scan(&events, &skus, &badHeads, &belowZero); err != nil {
						t.Fatal(err)
					}
					if events != int64(c.w.SKUs)+stock || skus != int64(c.w.SKUs) || badHeads != 0 || belowZero != 0 {
						t.Errorf("events %d (want %d), skus %d, heads disagreeing with the log %d, running sums below zero %d",
							events, int64(c.w.SKUs)+stock, skus, badHeads, belowZero)
					}
					t.Logf("%d optimistic-concurrency conflicts retried", r.Retries)
				}
			})
		}
	}
}

// TestMainPostgres runs the command with both PostgreSQL peers and the noop
// target briefly and checks the tables, the ratios and that every schema it
// created is gone.
func TestMainPostgres(t *testing.T) {
	dsn := testDSN(t)
	check := pgConnect(t, dsn)
	before := benchSchemas(t, check)
	var out, errb bytes.Buffer
	args := []string{"--postgres", dsn, "--targets", "noop,pg-rowlock,pg-events", "--workloads", "hot,uniform",
		"--skus", "1000", "--clients", "1,8", "--duration", "150ms", "--warmup", "20ms"}
	if code := Main(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	t.Logf("\n%s", out.String())
	for _, s := range []string{"pg-rowlock", "pg-events", "pg-rowlock/noop"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q", s)
		}
	}
	for _, s := range benchSchemas(t, check) {
		if !slices.Contains(before, s) {
			t.Errorf("schema %s left behind", s)
		}
	}
}

// TestPostgresPoolCap checks that a level with more clients than the server
// accepts connections runs on a capped pool and says so.
func TestPostgresPoolCap(t *testing.T) {
	dsn := testDSN(t)
	p := NewPGRowLock(dsn)
	defer p.Close()
	ctx := context.Background()
	if err := p.Prepare(ctx, Hot()); err != nil {
		t.Fatal(err)
	}
	_, maxConns, err := p.freeConns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clients := maxConns + 10
	rep, err := Run(ctx, Config{Workloads: []Workload{Hot()}, Clients: []int{clients}, Ops: 300}, []Target{p})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Conns >= maxConns || r.Conns < 1 || !strings.Contains(r.Note, "max_connections") || r.OK != 300 {
		t.Errorf("conns %d (max_connections %d), note %q, ok %d", r.Conns, maxConns, r.Note, r.OK)
	}
}
