package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// benchSchemas lists the schemas the bench made in this process
// (stockd_bench_<pid>_…), not those of a test running beside it.
func benchSchemas(t *testing.T, dsn string) []string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE $1`,
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

// TestBenchPostgresCluster runs the PostgreSQL targets of stockd bench on
// the real embedded server: stockd-pg on one node, stockd-pg3 on three
// nodes of one schema (two requests in three forwarded), each also through
// the batching client, briefly, and checks every operation succeeded, the
// ratios between them, and that no schema is left behind. It needs
// STOCKD_TEST_POSTGRES.
func TestBenchPostgresCluster(t *testing.T) {
	dsn := os.Getenv("STOCKD_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("STOCKD_TEST_POSTGRES is not set: no PostgreSQL for the stockd-pg targets")
	}
	before := benchSchemas(t, dsn)
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "--json", "--postgres", dsn,
		"--targets", "stockd-pg,stockd-pg-client,stockd-pg3,stockd-pg3-client,pg-rowlock",
		"--workloads", "hot,uniform", "--skus", "500", "--clients", "6", "--ops", "300", "--warmup", "50ms"}
	cwd, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	if code := Run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if after, err := os.ReadDir("."); err != nil || len(after) != len(cwd) {
		t.Errorf("the bench wrote into the current directory: %d entries before, %d after (%v)", len(cwd), len(after), err)
	}
	if !strings.Contains(stderr.String(), "settled in") {
		t.Errorf("no progress about the cluster settling:\n%s", stderr.String())
	}
	var rep struct {
		Results []struct {
			Workload, Target string
			OK               int64 `json:"ok"`
			Errors           struct {
				Insufficient, Overloaded, Other int64
			} `json:"errors"`
			FirstError string `json:"first_error"`
		} `json:"results"`
		Ratios []struct {
			Workload, Name string
			Value          float64
		} `json:"ratios"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if len(rep.Results) != 2*5 {
		t.Fatalf("%d results, want 10:\n%s", len(rep.Results), stdout.String())
	}
	for _, r := range rep.Results {
		if r.OK != 300 || r.Errors.Insufficient+r.Errors.Overloaded+r.Errors.Other != 0 {
			t.Errorf("%s %s: %d ok, errors %+v (%s); want 300 ok", r.Workload, r.Target, r.OK, r.Errors, r.FirstError)
		}
	}
	var names []string
	for _, r := range rep.Ratios {
		if r.Workload == "uniform" && r.Value > 0 {
			names = append(names, r.Name)
		}
	}
	for _, want := range []string{"stockd-pg3/stockd-pg", "stockd-pg3-client/stockd-pg-client", "stockd-pg3/pg-rowlock", "stockd-pg3-client/pg-rowlock"} {
		if !slices.Contains(names, want) {
			t.Errorf("ratio %s missing from %v", want, names)
		}
	}
	for _, s := range benchSchemas(t, dsn) {
		if !slices.Contains(before, s) {
			t.Errorf("schema %s left behind", s)
		}
	}
}
