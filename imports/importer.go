package imports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stockd/stockd"
)

// Kind is the kind of Records the reports are kept under, keyed by report
// id.
const Kind = "imports"

// Limits of a report and of the files taken.
const (
	// MaxRefusedListed bounds the refused rows a report lists; the rest
	// are counted (RefusedMore), so that a report stays well within a
	// record's size however bad the file.
	MaxRefusedListed = 1000
	// MaxFiles bounds the names a report keeps.
	MaxFiles = 100
	// DefaultLimit is the page size of a listing that names none.
	DefaultLimit = 100
)

// Options configure an Importer.
type Options struct {
	// Service books the receipts.
	Service stockd.Service
	// Records keeps the reports.
	Records stockd.Records
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives a line per file imported.
	Logger *slog.Logger
	// Concurrency is the rows of one file sent at once; default 16. The
	// engine takes concurrent receipts in one group commit, so a file of
	// 50,000 rows takes seconds, while the engine's own admission
	// (overloaded, which an import waits out) keeps checkout's share.
	Concurrency int
}

// Importer books CSV files, each once, and keeps a report per file. It is
// safe for concurrent use; the imports of one content run one at a time,
// which is what decides a file's batch without a race between two
// deliveries of it.
type Importer struct {
	opts Options
	mu   sync.Mutex
	busy map[string]*contentLock // by content hash
}

// contentLock serializes the imports of one content.
type contentLock struct {
	sync.Mutex
	users int
}

// lock takes the lock of a content and returns its release.
func (im *Importer) lock(sha string) func() {
	im.mu.Lock()
	l := im.busy[sha]
	if l == nil {
		l = &contentLock{}
		im.busy[sha] = l
	}
	l.users++
	im.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		im.mu.Lock()
		if l.users--; l.users == 0 {
			delete(im.busy, sha)
		}
		im.mu.Unlock()
	}
}

// New returns an Importer.
func New(opts Options) *Importer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	return &Importer{opts: opts, busy: map[string]*contentLock{}}
}

// ReportID is the id of the report of the file with content hash sha
// imported as batch: sha itself when the batch is the content, else sha, a
// dash and 16 hex digits of the SHA-256 of the batch name. Every report of
// a content therefore starts with its hash.
func ReportID(sha, batch string) string {
	if batch == sha {
		return sha
	}
	return sha + "-" + SHA256([]byte(batch))[:16]
}

// SubmitImport implements stockd.Imports. A file's batch is Batch when
// given; else the batch of an earlier import of the same content (so a file
// dropped twice, or under another name, or given to `stockd import` after it
// was dropped, books nothing twice); else its name with NameBatch, or its
// SHA-256. The report is written, with the batch, before any row is booked,
// so that an import a crash cut short is finished by the next delivery under
// the same batch. Every row is then sent; rows already booked are replays.
// A file that cannot be read at all fails with CodeInvalid, its report
// saying why.
func (im *Importer) SubmitImport(ctx context.Context, cmd stockd.SubmitImport) (stockd.ImportReport, error) {
	if len(cmd.CSV) == 0 {
		return stockd.ImportReport{}, stockd.Errorf(stockd.CodeInvalid, "the file is empty: it needs a header such as sku,quantity,best_before")
	}
	if cmd.Batch != "" {
		if err := stockd.CheckName("batch", cmd.Batch); err != nil {
			return stockd.ImportReport{}, err
		}
	}
	if err := checkFileName(cmd.Name); err != nil {
		return stockd.ImportReport{}, err
	}
	if cmd.NameBatch && cmd.Batch == "" && cmd.Name == "" {
		return stockd.ImportReport{}, stockd.Errorf(stockd.CodeInvalid, "name_batch needs the file's name")
	}
	sha := SHA256(cmd.CSV)
	defer im.lock(sha)()
	var rep stockd.ImportReport
	var found bool
	var err error
	batch := cmd.Batch
	if batch != "" {
		rep, found, err = im.get(ctx, ReportID(sha, batch))
	} else {
		rep, found, err = im.findContent(ctx, sha)
		switch {
		case found:
			batch = rep.Batch
		case cmd.NameBatch:
			batch = cmd.Name
		default:
			batch = sha
		}
	}
	if err != nil {
		return stockd.ImportReport{}, err
	}
	now := im.opts.Now().UTC()
	if !found {
		rep = stockd.ImportReport{ID: ReportID(sha, batch), SHA256: sha, Batch: batch, FirstAt: now, Files: []string{}}
	}
	if cmd.Name != "" && !slices.Contains(rep.Files, cmd.Name) && len(rep.Files) < MaxFiles {
		rep.Files = append(rep.Files, cmd.Name)
	}
	rep.Deliveries++
	rep.LastAt = now
	rep.Status = stockd.ImportApplying
	rep.Rows, rep.Applied, rep.AlreadyApplied, rep.RefusedMore = 0, 0, 0, 0
	rep.Refused = []stockd.RefusedRow{}
	rep.Error = ""
	rows, bad, perr := Parse(cmd.CSV, batch, cmd.Location)
	if perr != nil {
		rep.Status, rep.Error = stockd.ImportFailed, perr.Error()
		if err := im.put(ctx, rep); err != nil {
			return rep, err
		}
		return rep, stockd.Errorf(stockd.CodeInvalid, "%s", perr.Error())
	}
	rep.Rows = len(rows) + len(bad)
	// The batch is durable before anything is booked.
	if err := im.put(ctx, rep); err != nil {
		return rep, err
	}
	var refused []stockd.RefusedRow
	for _, b := range bad {
		refused = append(refused, stockd.RefusedRow{Line: b.Line, Code: stockd.CodeInvalid, Reason: b.Error})
	}
	outcomes := im.book(ctx, rows)
	for i, row := range rows {
		o := outcomes[i]
		code := stockd.ErrorCode(o.err)
		switch {
		case o.err == nil && o.created:
			rep.Applied++
		case o.err == nil:
			rep.AlreadyApplied++
		case code == stockd.CodeIdempotencyMismatch:
			refused = append(refused, stockd.RefusedRow{Line: row.Line, ID: row.Body.ID, Code: code,
				Reason: fmt.Sprintf("changed since batch %q was imported: this row (%d of %s, receipt %s) was booked then with another quantity; not booked again",
					batch, row.Body.Quantity, row.Body.SKU, row.Body.ID)})
		case interrupted(code, o.err):
			// Not a refusal of the row: the service could not answer
			// (or the row was not tried). The next delivery of the file
			// finishes the import: what was booked is then a replay.
			rep.Status, rep.Error = stockd.ImportFailed, fmt.Sprintf("interrupted at line %d: %s", row.Line, Message(o.err))
			im.finish(&rep, refused)
			if perr := im.put(context.WithoutCancel(ctx), rep); perr != nil {
				im.opts.Logger.Warn("saving an import report", "id", rep.ID, "err", perr)
			}
			if code == stockd.CodeInternal && ctx.Err() == nil {
				return rep, o.err
			}
			return rep, &stockd.Error{Code: stockd.CodeUnavailable, Message: "the import was interrupted: " + rep.Error + "; send the file again to finish it (nothing is booked twice)", Err: o.err}
		default:
			refused = append(refused, stockd.RefusedRow{Line: row.Line, ID: row.Body.ID, Code: code, Reason: Message(o.err)})
		}
	}
	rep.Status = stockd.ImportDone
	im.finish(&rep, refused)
	if err := im.put(ctx, rep); err != nil {
		return rep, err
	}
	im.opts.Logger.Info("imported a file", "id", rep.ID, "files", strings.Join(rep.Files, ", "), "batch", batch,
		"rows", rep.Rows, "applied", rep.Applied, "already_applied", rep.AlreadyApplied, "refused", len(rep.Refused)+rep.RefusedMore)
	return rep, nil
}

// outcome is what became of one row.
type outcome struct {
	created bool
	err     error
}

// errNotTried marks a row left untried after the import was interrupted.
var errNotTried = errors.New("not tried: the import was interrupted")

// interrupted reports an outcome that is not the service's verdict on the
// row.
func interrupted(code stockd.Code, err error) bool {
	return code == stockd.CodeInternal || code == stockd.CodeUnavailable || retryable(code) || errors.Is(err, errNotTried) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// book sends the rows, Concurrency at a time (the engine puts concurrent
// receipts into one group commit), and returns each row's outcome. Once one
// row is interrupted, the rows not yet sent are left untried.
func (im *Importer) book(ctx context.Context, rows []Row) []outcome {
	out := make([]outcome, len(rows))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(im.opts.Concurrency, len(rows)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				created, err := receive(ctx, im.opts.Service, rows[i])
				out[i] = outcome{created, err}
				if err != nil && interrupted(stockd.ErrorCode(err), err) {
					cancel()
				}
			}
		}()
	}
	sent := 0
feed:
	for ; sent < len(rows); sent++ {
		select {
		case next <- sent:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for i := sent; i < len(rows); i++ {
		out[i] = outcome{err: errNotTried}
	}
	return out
}

// finish sorts the refused rows into the report, listing at most
// MaxRefusedListed.
func (im *Importer) finish(rep *stockd.ImportReport, refused []stockd.RefusedRow) {
	slices.SortFunc(refused, func(a, b stockd.RefusedRow) int { return a.Line - b.Line })
	if len(refused) > MaxRefusedListed {
		rep.RefusedMore = len(refused) - MaxRefusedListed
		refused = refused[:MaxRefusedListed]
	}
	if refused == nil {
		refused = []stockd.RefusedRow{}
	}
	rep.Refused = refused
}

// receive books one row, waiting out refusals the service asks to retry
// (overloaded: an import must never crowd out checkout) a few times.
func receive(ctx context.Context, s stockd.Service, row Row) (bool, error) {
	wait := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		_, created, err := s.Receive(ctx, row.Body.Command())
		if err == nil || !retryable(stockd.ErrorCode(err)) || attempt == 8 {
			return created, err
		}
		if ra := retryAfterOf(err); ra > 0 {
			wait = ra
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// retryable reports the codes a row is sent again after: those the service
// asks to retry, but unavailable, which interrupts the import at once (the
// next delivery of the file finishes it).
func retryable(c stockd.Code) bool {
	return c.Retryable() && c != stockd.CodeUnavailable
}

func retryAfterOf(err error) time.Duration {
	if e, ok := err.(*stockd.Error); ok && e.RetryAfter <= 2*time.Second {
		return e.RetryAfter
	}
	return 0
}

// GetImport implements stockd.Imports.
func (im *Importer) GetImport(ctx context.Context, id string) (stockd.ImportReport, error) {
	if err := stockd.CheckName("id", id); err != nil {
		return stockd.ImportReport{}, err
	}
	rep, ok, err := im.get(ctx, id)
	if err != nil {
		return rep, err
	}
	if !ok {
		return rep, stockd.Errorf(stockd.CodeNotFound, "import %q not found", id)
	}
	return rep, nil
}

// ListImports implements stockd.Imports.
func (im *Importer) ListImports(ctx context.Context, q stockd.ImportQuery) (stockd.ImportPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	recs, err := im.opts.Records.ListRecords(ctx, Kind, q.After, limit+1)
	if err != nil {
		return stockd.ImportPage{}, err
	}
	page := stockd.ImportPage{Items: []stockd.ImportReport{}}
	for i, r := range recs {
		if i == limit {
			page.Next = page.Items[len(page.Items)-1].ID
			break
		}
		rep, err := decode(r.Value)
		if err != nil {
			return page, err
		}
		page.Items = append(page.Items, rep)
	}
	return page, nil
}

// findContent returns the earliest report of a content, if any: the one
// whose batch is the content itself comes first, then those of named
// batches.
func (im *Importer) findContent(ctx context.Context, sha string) (stockd.ImportReport, bool, error) {
	if rep, ok, err := im.get(ctx, sha); ok || err != nil {
		return rep, ok, err
	}
	recs, err := im.opts.Records.ListRecords(ctx, Kind, sha, 1)
	if err != nil || len(recs) == 0 || !strings.HasPrefix(recs[0].Key, sha+"-") {
		return stockd.ImportReport{}, false, err
	}
	rep, err := decode(recs[0].Value)
	return rep, err == nil, err
}

func (im *Importer) get(ctx context.Context, id string) (stockd.ImportReport, bool, error) {
	b, ok, err := im.opts.Records.GetRecord(ctx, Kind, id)
	if err != nil || !ok {
		return stockd.ImportReport{}, false, err
	}
	rep, err := decode(b)
	return rep, err == nil, err
}

func (im *Importer) put(ctx context.Context, rep stockd.ImportReport) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	return im.opts.Records.PutRecord(ctx, Kind, rep.ID, b)
}

func decode(b []byte) (stockd.ImportReport, error) {
	var rep stockd.ImportReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("imports: a stored report does not decode: %w", err)
	}
	if rep.Files == nil {
		rep.Files = []string{}
	}
	if rep.Refused == nil {
		rep.Refused = []stockd.RefusedRow{}
	}
	return rep, nil
}

// checkFileName checks a file's name, which may be a path within a drop
// folder: at most 1,024 bytes of UTF-8 without control characters.
func checkFileName(name string) error {
	if len(name) > 1024 || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return stockd.Errorf(stockd.CodeInvalid, "name must be at most 1024 bytes of UTF-8 without control characters")
	}
	return nil
}
