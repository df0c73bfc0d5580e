package drops_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/drops"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/imports"
	"github.com/stockd/stockd/internal/testclock"
)

// setup starts a server with location w1 and a watcher of a fresh folder
// with the given settle time, driven by Scan (no background loop).
func setup(t *testing.T, settle time.Duration, now func() time.Time) (*e2e.Server, *drops.Watcher, string) {
	t.Helper()
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1")
	dir := t.TempDir()
	w := open(t, s, dir, settle, now)
	return s, w, dir
}

func open(t *testing.T, s *e2e.Server, dir string, settle time.Duration, now func() time.Time) *drops.Watcher {
	t.Helper()
	w, err := drops.Open(t.Context(), drops.Options{
		URL: "file://" + dir, Settle: settle, SettleSet: true, Location: "w1", Now: now,
		Imports: s.Importer, Records: s.Store, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func drop(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func scan(t *testing.T, w *drops.Watcher) {
	t.Helper()
	if err := w.Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func onHand(t *testing.T, s *e2e.Server, sku string) int64 {
	t.Helper()
	st, err := s.Client.SKU(t.Context(), sku, stockd.AsOf{})
	if stockd.IsCode(err, stockd.CodeNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.OnHand
}

func report(t *testing.T, s *e2e.Server, content string) stockd.ImportReport {
	t.Helper()
	r, err := s.Client.GetImport(t.Context(), imports.SHA256([]byte(content)))
	if err != nil {
		t.Fatalf("the report of the file: %v", err)
	}
	return r
}

// TestDroppedTwiceAndRenamedAppliedOnce: a file dropped, then dropped again
// under another name (and in a subfolder), books its rows once; its one
// report, named by its SHA-256, lists every name; looking again, or a new
// watcher after a restart, reads nothing twice.
func TestDroppedTwiceAndRenamedAppliedOnce(t *testing.T) {
	s, w, dir := setup(t, 0, nil)
	const content = "sku,quantity,best_before\nA,10,2099-03-15\nB,5,\n"
	drop(t, dir, "delivery.csv", content)
	drop(t, dir, "notes.txt", "not a CSV file")
	scan(t, w)
	if a, b := onHand(t, s, "A"), onHand(t, s, "B"); a != 10 || b != 5 {
		t.Fatalf("after the first drop A, B = %d, %d", a, b)
	}
	r := report(t, s, content)
	if r.Batch != r.SHA256 || r.Applied != 2 || r.Rows != 2 || r.Deliveries != 1 || r.Status != stockd.ImportDone {
		t.Fatalf("first report = %+v", r)
	}
	drop(t, dir, "delivery (1).csv", content)
	drop(t, dir, "again/delivery-copy.CSV", content)
	scan(t, w)
	scan(t, w) // nothing new
	if a, b := onHand(t, s, "A"), onHand(t, s, "B"); a != 10 || b != 5 {
		t.Errorf("after the same file twice more A, B = %d, %d, want 10, 5", a, b)
	}
	r = report(t, s, content)
	want := []string{"delivery.csv", "again/delivery-copy.CSV", "delivery (1).csv"}
	if r.Deliveries != 3 || r.Applied != 0 || r.AlreadyApplied != 2 || !sameSet(r.Files, want) {
		t.Errorf("report after three drops = %+v, want 3 deliveries naming %v", r, want)
	}
	page, err := s.Client.ListImports(t.Context(), stockd.ImportQuery{})
	if err != nil || len(page.Items) != 1 {
		t.Errorf("imports = %+v %v, want one report", page, err)
	}
	// A new watcher (a restart) reads no file again.
	w.Close()
	scan(t, open(t, s, dir, 0, nil))
	if r := report(t, s, content); r.Deliveries != 3 {
		t.Errorf("a new watcher read a file again: %d deliveries", r.Deliveries)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestDropWithBadRows: the good rows of a file with bad ones are booked;
// the report lists every bad row, and every row the service refuses, by
// line with its reason.
func TestDropWithBadRows(t *testing.T) {
	s, w, dir := setup(t, 0, nil)
	const content = "sku,quantity,location\nA,3,\nB,x,\nC,2,nowhere\n,4,\nD,1,w1\n"
	drop(t, dir, "mixed.csv", content)
	scan(t, w)
	r := report(t, s, content)
	if r.Rows != 5 || r.Applied != 2 || len(r.Refused) != 3 {
		t.Fatalf("report = %+v", r)
	}
	want := []struct {
		line int
		code stockd.Code
	}{{3, stockd.CodeInvalid}, {4, stockd.CodeUnknownLocation}, {5, stockd.CodeInvalid}}
	for i, w := range want {
		got := r.Refused[i]
		if got.Line != w.line || got.Code != w.code || got.Reason == "" {
			t.Errorf("refused[%d] = %+v, want line %d, %s, with a reason", i, got, w.line, w.code)
		}
	}
	if a, d, c := onHand(t, s, "A"), onHand(t, s, "D"), onHand(t, s, "C"); a != 3 || d != 1 || c != 0 {
		t.Errorf("A, D, C = %d, %d, %d, want 3, 1, 0", a, d, c)
	}
}

// TestDropSettles: a file is read only once it has stayed unchanged for the
// settle time; one still growing is not read half-written.
func TestDropSettles(t *testing.T) {
	clk := testclock.New(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	s, w, dir := setup(t, time.Minute, clk.Now)
	drop(t, dir, "growing.csv", "sku,quantity\nA,1\n")
	scan(t, w)
	clk.Advance(50 * time.Second)
	scan(t, w)
	if n := onHand(t, s, "A"); n != 0 {
		t.Fatalf("a file was read before it settled: A = %d", n)
	}
	// Still being written: it grows, and settles anew.
	const whole = "sku,quantity\nA,1\nB,2\n"
	drop(t, dir, "growing.csv", whole)
	clk.Advance(30 * time.Second)
	scan(t, w)
	if n := onHand(t, s, "A"); n != 0 {
		t.Fatalf("a changed file was read before it settled again: A = %d", n)
	}
	clk.Advance(31 * time.Second)
	scan(t, w)
	if n := onHand(t, s, "A"); n != 0 {
		t.Fatalf("a file was read 31 s after it changed, before it settled: A = %d", n)
	}
	clk.Advance(30 * time.Second)
	scan(t, w)
	if a, b := onHand(t, s, "A"), onHand(t, s, "B"); a != 1 || b != 2 {
		t.Fatalf("the settled file: A, B = %d, %d, want 1, 2", a, b)
	}
	if r := report(t, s, whole); r.Rows != 2 {
		t.Errorf("report = %+v", r)
	}
}

// TestBadFileDoesNotStopTheWatcher: a file that cannot be read as a
// delivery (no usable header) is recorded as failed and not tried again
// until it changes; the files beside it are imported.
func TestBadFileDoesNotStopTheWatcher(t *testing.T) {
	s, w, dir := setup(t, 0, nil)
	const bad, good = "A,1\n", "sku,quantity\nE,6\n"
	drop(t, dir, "a-broken.csv", bad)
	drop(t, dir, "b-good.csv", good)
	scan(t, w)
	if n := onHand(t, s, "E"); n != 6 {
		t.Fatalf("the good file beside a broken one: E = %d", n)
	}
	r := report(t, s, bad)
	if r.Status != stockd.ImportFailed || r.Error == "" {
		t.Errorf("the broken file's report = %+v", r)
	}
	scan(t, w)
	if r := report(t, s, bad); r.Deliveries != 1 {
		t.Errorf("the broken file was read again unchanged: %d deliveries", r.Deliveries)
	}
	// Fixed, it is read again.
	const fixed = "sku,quantity\nA,1\n"
	drop(t, dir, "a-broken.csv", fixed)
	scan(t, w)
	if n := onHand(t, s, "A"); n != 1 {
		t.Errorf("the fixed file: A = %d", n)
	}
}
