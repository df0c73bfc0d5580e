package imports_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/imports"
	"github.com/stockd/stockd/pebble"
)

// ledger is a fake service that books receipts by id as the engine does: a
// new id is created, the same id and body is a replay, another body a
// mismatch. failOn makes receipts of that SKU fail as unavailable.
type ledger struct {
	stockd.Service
	mu     sync.Mutex
	booked map[string]stockd.ReceiveStock
	failOn string
}

func (l *ledger) Receive(_ context.Context, c stockd.ReceiveStock) (stockd.Receipt, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.SKU == l.failOn {
		return stockd.Receipt{}, false, stockd.Errorf(stockd.CodeUnavailable, "stopping")
	}
	if c.Location == "nowhere" {
		return stockd.Receipt{}, false, stockd.Errorf(stockd.CodeUnknownLocation, "location %q is not configured", c.Location)
	}
	r := stockd.Receipt{ID: c.ID, SKU: c.SKU, Location: c.Location, Quantity: c.Quantity}
	if prev, ok := l.booked[c.ID]; ok {
		if prev != c {
			return stockd.Receipt{}, false, stockd.Errorf(stockd.CodeIdempotencyMismatch, "mismatch")
		}
		return r, false, nil
	}
	l.booked[c.ID] = c
	return r, true, nil
}

func (l *ledger) total() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, c := range l.booked {
		n += c.Quantity
	}
	return n
}

func newImporter(t *testing.T) (*imports.Importer, *ledger) {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), pebble.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l := &ledger{booked: map[string]stockd.ReceiveStock{}}
	return imports.New(imports.Options{Service: l, Records: st, Logger: slog.New(slog.DiscardHandler), Concurrency: 4}), l
}

// TestInterruptedImportIsFinishedByTheNextDelivery: an import the service
// stops answering is reported failed (not its rows refused) and answered
// unavailable; the next delivery of the file, under another name, keeps the
// batch, books what was left and replays what was booked.
func TestInterruptedImportIsFinishedByTheNextDelivery(t *testing.T) {
	im, l := newImporter(t)
	const file = "sku,quantity\nA,1\nB,2\nC,4\n"
	l.failOn = "B"
	rep, err := im.SubmitImport(t.Context(), stockd.SubmitImport{Name: "a.csv", CSV: []byte(file), Location: "w1"})
	if !stockd.IsCode(err, stockd.CodeUnavailable) || rep.Status != stockd.ImportFailed || rep.Error == "" || len(rep.Refused) != 0 {
		t.Fatalf("interrupted import = %+v, %v", rep, err)
	}
	l.failOn = ""
	rep, err = im.SubmitImport(t.Context(), stockd.SubmitImport{Name: "b.csv", CSV: []byte(file), Location: "w1"})
	if err != nil || rep.Status != stockd.ImportDone || rep.Applied+rep.AlreadyApplied != 3 || rep.Applied == 0 || rep.Deliveries != 2 ||
		rep.Batch != imports.SHA256([]byte(file)) || len(rep.Files) != 2 {
		t.Fatalf("the next delivery = %+v, %v", rep, err)
	}
	if n := l.total(); n != 7 {
		t.Errorf("booked %d units, want 7", n)
	}
}

// TestBatchOfAContent: a new content's batch is its SHA-256 (or its name,
// with NameBatch); a content seen before keeps its batch whatever the
// request says, unless a batch is named explicitly, which is a new delivery
// with new receipt ids. Bad rows and refusals are listed by line.
func TestBatchOfAContent(t *testing.T) {
	im, l := newImporter(t)
	const file = "sku,quantity,location\nA,1,\nB,x,\nC,2,nowhere\n"
	first, err := im.SubmitImport(t.Context(), stockd.SubmitImport{Name: "d.csv", CSV: []byte(file), Location: "w1", NameBatch: true})
	if err != nil || first.Batch != "d.csv" || first.ID != imports.ReportID(first.SHA256, "d.csv") || first.Applied != 1 {
		t.Fatalf("first = %+v %v", first, err)
	}
	if len(first.Refused) != 2 || first.Refused[0].Line != 3 || first.Refused[0].Code != stockd.CodeInvalid || first.Refused[0].ID != "" ||
		first.Refused[1].Line != 4 || first.Refused[1].Code != stockd.CodeUnknownLocation || first.Refused[1].ID == "" {
		t.Errorf("refused = %+v", first.Refused)
	}
	again, err := im.SubmitImport(t.Context(), stockd.SubmitImport{Name: "copy.csv", CSV: []byte(file), Location: "w1"})
	if err != nil || again.ID != first.ID || again.Batch != "d.csv" || again.Applied != 0 || again.AlreadyApplied != 1 || again.Deliveries != 2 {
		t.Fatalf("again = %+v %v", again, err)
	}
	named, err := im.SubmitImport(t.Context(), stockd.SubmitImport{Name: "d.csv", CSV: []byte(file), Location: "w1", Batch: "2026-12-02"})
	if err != nil || named.ID == first.ID || named.Batch != "2026-12-02" || named.Applied != 1 {
		t.Fatalf("explicit batch = %+v %v", named, err)
	}
	if n := l.total(); n != 2 {
		t.Errorf("booked %d units, want 2 (one row, delivered twice as two batches)", n)
	}
	page, err := im.ListImports(t.Context(), stockd.ImportQuery{Limit: 1})
	if err != nil || len(page.Items) != 1 || page.Next == "" {
		t.Fatalf("page 1 = %+v %v", page, err)
	}
	page, err = im.ListImports(t.Context(), stockd.ImportQuery{After: page.Next, Limit: 1})
	if err != nil || len(page.Items) != 1 || page.Next != "" {
		t.Errorf("page 2 = %+v %v", page, err)
	}
	if _, err := im.GetImport(t.Context(), "nope"); !stockd.IsCode(err, stockd.CodeNotFound) {
		t.Errorf("a missing report: %v", err)
	}
}
