package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/app"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/imports"
)

// TestImportAndDropBookNothingTwice: stockd import and the drop folder share
// one code path and know a file by its content, in either order: a file
// imported with stockd import and then dropped books nothing more, and a
// file dropped and then imported with stockd import books nothing more
// (import reports its rows as already imported). Each file has one report
// naming both deliveries, readable with stockd imports.
func TestImportAndDropBookNothingTwice(t *testing.T) {
	dropDir := t.TempDir()
	s := e2e.Start(t, e2e.Options{App: func(c *app.Config) {
		c.Intake.DropsURL, c.Intake.DropsSettleSet, c.Intake.DropsLocation = "file://"+dropDir, true, "w1"
	}})
	e2e.ConfigureLocations(t, s.Client, "w1")
	ctx := t.Context()
	if s.Drops == nil {
		t.Fatal("--drops did not start the watcher")
	}

	// stockd import first, then the same file dropped under another name.
	const first = "sku,quantity\nA,10\nB,5\n"
	p := writeFile(t, "delivery-1.csv", first)
	runCases(t, s, []cliCase{
		{"import", []string{"import", "--location", "w1", p}, 0, `2 row\(s\): 2 received, 0 already imported`, "", false},
	})
	if err := os.WriteFile(filepath.Join(dropDir, "from-supplier.csv"), []byte(first), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Drops.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	// A file new to the service gets stockd import's batch, its name.
	id := imports.ReportID(imports.SHA256([]byte(first)), "delivery-1.csv")
	r, err := s.Client.GetImport(ctx, id)
	if err != nil || r.Deliveries != 2 || r.Applied != 0 || r.AlreadyApplied != 2 || strings.Join(r.Files, ",") != "delivery-1.csv,from-supplier.csv" {
		t.Fatalf("report after import then drop = %+v %v", r, err)
	}

	// Dropped first, then given to stockd import.
	const second = "sku,quantity\nC,7\n"
	if err := os.WriteFile(filepath.Join(dropDir, "dropped.csv"), []byte(second), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Drops.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	p2 := writeFile(t, "delivery-2.csv", second)
	code, out, errOut := run(t, s, "import", "--location", "w1", "--json", p2)
	var rep importReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Created != 0 || rep.Replayed != 1 || rep.Batch != imports.SHA256([]byte(second)) {
		t.Fatalf("import of a dropped file: exit %d %+v %v\n%s%s", code, rep, err, out, errOut)
	}
	for sku, want := range map[string]int64{"A": 10, "B": 5, "C": 7} {
		if st := must(s.Client.SKU(ctx, sku, stockd.AsOf{})); st.OnHand != want {
			t.Errorf("%s = %d on hand, want %d", sku, st.OnHand, want)
		}
	}
	runCases(t, s, []cliCase{
		{"imports list", []string{"imports", "list"}, 0, `done\s+dropped.csv,delivery-2.csv\s+1\s+1\s+0`, "", false},
		{"imports show", []string{"imports", "show", rep.Report}, 0, `(?s)files: dropped.csv, delivery-2.csv\n.*rows: 1: 1 booked \(0 by the latest delivery, 1 before it\), 0 refused`, "", false},
		{"imports show missing", []string{"imports", "show", "nope"}, 3, "", `not found`, false},
	})
}

// TestCommandsCLI: stockd commands submit queues a command and, with
// --wait, shows it applied; a refused one exits 3 with the problem.
func TestCommandsCLI(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1")
	runCases(t, s, []cliCase{
		{"receive", []string{"commands", "submit", "receive", `{"id":"r-1","sku":"A","location":"w1","quantity":3}`, "--id", "cmd-1", "--wait"}, 0, `command cmd-1 \(receive\): applied\nresult: \{"id":"r-1"`, "", false},
		{"too much", []string{"commands", "submit", "adjust", `{"id":"a-1","sku":"A","location":"w1","delta":-9,"reason":"lost"}`, "--id", "cmd-2", "--wait"}, 3, `command cmd-2 \(adjust\): failed\nrefused: .*insufficient_stock`, "", false},
		{"show", []string{"commands", "show", "cmd-1"}, 0, `applied`, "", false},
		{"bad type", []string{"commands", "submit", "reserve", `{"id":"x","sku":"A"}`}, 3, "", `type must be`, false},
	})
}
