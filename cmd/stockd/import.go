package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/client"
)

// import books a supplier's CSV file of receipts. Suppliers send files like
//
//	ingredient,quantity,best_before
//	pepperoni,2000,2019-03-15
//
// and often send the same file twice, sometimes edited. A delivery (a batch)
// is known by its file name, and a row within it by what it receives: the
// receipt id of a row is made from the batch name and the row's identity
// (sku, location, lot, best_before), never from its line or its quantity,
// so that a row's id does not change when other rows do (see importID).
// Importing an edited file again replays the unchanged rows, receives the
// new ones, and the service refuses the rows whose quantity changed as an
// idempotency mismatch, which import reports by line.

func init() {
	register(command{name: "import", summary: "receive the rows of a supplier CSV file (re-importing books nothing twice)", run: runImport})
}

// maxImportChunk is the most receipts sent in one batch request: the
// service's default batch limit.
const maxImportChunk = 1000

// importRow is one good row of a file.
type importRow struct {
	line int
	body api.ReceiptRequest
}

// importIdentity is what a row receives, apart from how many: the rows of
// two imports of a batch are the same row when their identities are.
type importIdentity struct {
	sku, location, lot, bestBefore string
}

// importID is the receipt id of the occurrence-th row (from 1) with identity
// id in batch:
//
//	imp-<batch, as a name>-<24 hex digits of SHA-256>
//
// The hash covers the whole batch name, the identity and the occurrence, each
// length-prefixed, so ids of different rows differ (to 96 bits); the batch
// name in front is only for people reading an event's command id: characters
// other than letters, digits, '.', '_' and '-' become '_' and it is cut to
// 48 bytes. The id is at most 4+48+1+24 = 77 bytes of ASCII, whatever the
// names, so it always passes the service's rules for ids.
//
// This rule is part of what import promises: changing it would make every
// file imported before it a new delivery.
func importID(batch string, id importIdentity, occurrence int) string {
	h := sha256.New()
	for _, part := range []string{"stockd import 1", batch, id.sku, id.location, id.lot, id.bestBefore, strconv.Itoa(occurrence)} {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(part)))])
		h.Write([]byte(part))
	}
	return "imp-" + batchLabel(batch) + "-" + hex.EncodeToString(h.Sum(nil))[:24]
}

// batchLabel is the readable part of an import id: batch with every byte
// that is not a letter, digit, '.', '_' or '-' replaced by '_', at most 48
// bytes.
func batchLabel(batch string) string {
	const max = 48
	b := make([]byte, 0, min(len(batch), max))
	for i := 0; i < len(batch) && len(b) < max; i++ {
		c := batch[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	return string(b)
}

// badRow is a row that cannot be imported, and why.
type badRow struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// changedRow is a row whose receipt was booked by an earlier import of the
// batch with another quantity.
type changedRow struct {
	Line  int    `json:"line"`
	ID    string `json:"id"`
	Error string `json:"error"`
}

// importReport is what import tells, as JSON with --json.
type importReport struct {
	File     string       `json:"file"`
	Batch    string       `json:"batch"`
	SHA256   string       `json:"sha256"`
	Rows     int          `json:"rows"`
	Created  int          `json:"created"`
	Replayed int          `json:"already_imported"`
	Changed  []changedRow `json:"changed_rows"`
	Bad      []badRow     `json:"bad_rows"`
	Failed   []badRow     `json:"failed_rows"`
	Sent     bool         `json:"sent"`
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("import", "import [--location LOC] [--batch NAME] [--skip-bad] FILE.csv",
		`Receives every row of a supplier CSV file. The header names the columns, in any order:
sku (or ingredient) and quantity are required; best_before (YYYY-MM-DD), location and lot
are optional. Rows without a location use --location.

A file is one delivery, its batch, named by the file's name without its directory (or by
--batch NAME). A row's receipt id comes from the batch name and the row's sku, location,
lot and best_before (not its quantity or line), plus a count for rows repeating all four:
imp-<batch>-<hash>. So importing a file again books nothing twice, even edited: unchanged rows
are replays ("already imported"), new rows are received, and a row whose quantity changed
is not booked but listed by line as changed (exit 3; book the difference with stockd
receive or adjust). A supplier reusing a file name for a new delivery needs --batch with
a new name; the same delivery under another file name needs --batch with the first name.

A file with bad rows is not sent at all (every bad row is listed by line number) unless
--skip-bad is given. Exit status: 0 every row received or already imported; 1 bad rows
(nothing sent) or a failure; 3 some rows changed or refused by the service.`,
		`stockd import --location w1 delivery-2026-11-27.csv
stockd import --location w1 --batch delivery-2026-11-27.csv "delivery-2026-11-27 (1).csv"
stockd import --location w1 --skip-bad --json delivery.csv`, stdout, stderr)
	var defLocation, batch string
	var skipBad bool
	var chunk int
	c.fs.StringVar(&defLocation, "location", "", "location of rows that name none")
	c.fs.StringVar(&batch, "batch", "", "name of the delivery, part of every receipt id (default: the file's name without its directory)")
	c.fs.BoolVar(&skipBad, "skip-bad", false, "send the good rows of a file that has bad ones")
	c.fs.IntVar(&chunk, "chunk", maxImportChunk, "receipts per batch request, at most 1000")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one CSV file")
	}
	if chunk < 1 || chunk > maxImportChunk {
		return c.usageError("--chunk must be between 1 and %d", maxImportChunk)
	}
	if batch == "" {
		if c.isSet("batch") {
			return c.usageError("--batch must not be empty")
		}
		batch = filepath.Base(pos[0])
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "stockd import: %v\n", err)
		return exitFailure
	}
	sum := sha256.Sum256(data)
	rep := importReport{File: pos[0], Batch: batch, SHA256: hex.EncodeToString(sum[:]), Changed: []changedRow{}, Bad: []badRow{}, Failed: []badRow{}}
	rows, bad, err := parseImport(data, batch, defLocation)
	if err != nil {
		fmt.Fprintf(stderr, "stockd import: %s: %v\n", pos[0], err)
		return exitFailure
	}
	rep.Rows, rep.Bad = len(rows)+len(bad), bad
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintf(stderr, "%s:%d: %s\n", pos[0], b.Line, b.Error)
		}
		if !skipBad {
			fmt.Fprintf(stderr, "stockd import: %d bad row(s) in %s; nothing was sent (fix them, or pass --skip-bad to send the %d good row(s))\n", len(bad), pos[0], len(rows))
			if c.json {
				c.printJSON(rep)
			}
			return exitFailure
		}
	}
	cl := c.client()
	rep.Sent = true
	for start := 0; start < len(rows); start += chunk {
		part := rows[start:min(start+chunk, len(rows))]
		if err := c.sendImportChunk(ctx, cl, part, &rep); err != nil {
			if c.json {
				c.printJSON(rep)
			}
			fmt.Fprintf(stderr, "stockd import: after %d received and %d already imported: ", rep.Created, rep.Replayed)
			return c.fail(err)
		}
	}
	slices.SortFunc(rep.Changed, func(a, b changedRow) int { return a.Line - b.Line })
	slices.SortFunc(rep.Failed, func(a, b badRow) int { return a.Line - b.Line })
	for _, f := range rep.Changed {
		fmt.Fprintf(stderr, "%s:%d: %s\n", pos[0], f.Line, f.Error)
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(stderr, "%s:%d: refused: %s\n", pos[0], f.Line, f.Error)
	}
	if len(rep.Changed) > 0 {
		fmt.Fprintf(stderr, "stockd import: %d row(s) changed since batch %q was imported and were not booked: book a difference with 'stockd receive' or 'stockd adjust'\n", len(rep.Changed), batch)
	}
	if c.json {
		c.printJSON(rep)
	} else {
		fmt.Fprintf(stdout, "imported %s as batch %s (sha256 %s): %d row(s): %d received, %d already imported", pos[0], batch, rep.SHA256[:12], rep.Rows, rep.Created, rep.Replayed)
		if c.retried && rep.Replayed > 0 {
			fmt.Fprint(stdout, " (some perhaps by this import's attempt whose answer was lost)")
		}
		if len(rep.Changed) > 0 {
			fmt.Fprintf(stdout, ", %d changed (not booked)", len(rep.Changed))
		}
		if len(rep.Bad) > 0 {
			fmt.Fprintf(stdout, ", %d bad row(s) skipped", len(rep.Bad))
		}
		if len(rep.Failed) > 0 {
			fmt.Fprintf(stdout, ", %d refused", len(rep.Failed))
		}
		fmt.Fprintln(stdout)
	}
	if len(rep.Failed) > 0 || len(rep.Changed) > 0 {
		return exitRejected
	}
	return exitOK
}

// sendImportChunk sends rows as one batch request and counts the outcome in
// rep. What the service was too busy to take, and a request that got no
// answer, is sent again (the ids make that safe), up to --retries times.
func (c *clientCmd) sendImportChunk(ctx context.Context, cl *client.Client, rows []importRow, rep *importReport) error {
	pending := rows
	for attempt := 0; ; attempt++ {
		ops := make([]api.BatchOperation, len(pending))
		for i, r := range pending {
			op, err := client.BatchOp("receive", r.body)
			if err != nil {
				return err
			}
			ops[i] = op
		}
		var resp api.BatchResponse
		err := c.send(ctx, fmt.Sprintf("%d receipt(s)", len(pending)), func() (err error) {
			resp, err = cl.Batch(ctx, ops)
			return err
		})
		if err != nil {
			return err
		}
		if len(resp.Results) != len(pending) {
			return &stockd.Error{Code: stockd.CodeInternal, Message: fmt.Sprintf("the batch answered %d results for %d operations", len(resp.Results), len(pending))}
		}
		var again []importRow
		var hint error
		for i, res := range resp.Results {
			row := pending[i]
			switch {
			case res.Status == 201:
				rep.Created++
			case res.Status == 200:
				rep.Replayed++
			default:
				err := client.ResultError(res)
				if retryable(err) && attempt < c.retries {
					again = append(again, row)
					hint = err
					continue
				}
				if stockd.ErrorCode(err) == stockd.CodeIdempotencyMismatch {
					rep.Changed = append(rep.Changed, changedRow{Line: row.line, ID: row.body.ID,
						Error: fmt.Sprintf("changed since batch %q was imported: this row (%d of %s, receipt %s) was booked then with another quantity; not booked again",
							rep.Batch, row.body.Quantity, row.body.SKU, row.body.ID)})
					continue
				}
				if exitCode(err) != exitRejected {
					return err
				}
				rep.Failed = append(rep.Failed, badRow{Line: row.line, Error: message(err)})
			}
		}
		if len(again) == 0 {
			return nil
		}
		wait := client.RetryAfter(hint)
		if wait <= 0 || wait > maxRetryWait {
			wait = backoff(attempt)
		}
		fmt.Fprintf(c.stderr, "stockd import: %d row(s) refused for now: %s; sending them again in %s\n", len(again), errText(hint), wait.Round(time.Millisecond))
		if err := pause(ctx, wait); err != nil {
			return err
		}
		pending = again
	}
}

// importColumns are the names a header may use, by field.
var importColumns = map[string]string{
	"sku": "sku", "ingredient": "sku",
	"quantity": "quantity", "qty": "quantity",
	"best_before": "best_before", "best-before": "best_before", "bestbefore": "best_before",
	"location": "location",
	"lot":      "lot",
}

// parseImport reads a CSV file into receipts, with ids made by importID from
// batch and each row's identity. It returns every bad row, not only the
// first; an error means the file as a whole cannot be read (no header, a
// required column missing).
func parseImport(data []byte, batch, defLocation string) ([]importRow, []badRow, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte-order mark from spreadsheets
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, errors.New("the file is empty: it needs a header such as sku,quantity,best_before")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		name, ok := importColumns[strings.ToLower(strings.TrimSpace(h))]
		if !ok {
			return nil, nil, fmt.Errorf("line 1: unknown column %q: use sku (or ingredient), quantity, best_before, location, lot", h)
		}
		if _, dup := col[name]; dup {
			return nil, nil, fmt.Errorf("line 1: column %q appears twice", h)
		}
		col[name] = i
	}
	for _, req := range []string{"sku", "quantity"} {
		if _, ok := col[req]; !ok {
			return nil, nil, fmt.Errorf("line 1: the header %q has no %s column; the header is required, such as sku,quantity,best_before", strings.Join(header, ","), req)
		}
	}
	var rows []importRow
	var bad []badRow
	seen := map[importIdentity]int{} // occurrences of each identity so far
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, badRow{Line: pe.StartLine, Error: pe.Err.Error()})
				continue
			}
			return nil, nil, err
		}
		line, _ := r.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line of spaces
		}
		if len(rec) != len(header) {
			bad = append(bad, badRow{Line: line, Error: fmt.Sprintf("%d field(s), but the header has %d", len(rec), len(header))})
			continue
		}
		get := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		b := api.ReceiptRequest{
			SKU:        get("sku"),
			Location:   get("location"),
			Lot:        get("lot"),
			BestBefore: get("best_before"),
		}
		if b.Location == "" {
			b.Location = defLocation
		}
		// Bad rows count as occurrences too, so that fixing one does not
		// change the ids of the rows after it.
		ident := importIdentity{sku: b.SKU, location: b.Location, lot: b.Lot, bestBefore: b.BestBefore}
		seen[ident]++
		b.ID = importID(batch, ident, seen[ident])
		var problems []string
		if err := checkImportName("sku", b.SKU, true); err != "" {
			problems = append(problems, err)
		}
		q := get("quantity")
		n, err := strconv.ParseInt(q, 10, 64)
		switch {
		case q == "":
			problems = append(problems, "quantity is empty")
		case err != nil:
			problems = append(problems, fmt.Sprintf("quantity %q is not a whole number", q))
		case n < 1 || n > stockd.DefaultLimits.MaxQuantity:
			problems = append(problems, fmt.Sprintf("quantity %d must be between 1 and %d", n, stockd.DefaultLimits.MaxQuantity))
		}
		b.Quantity = n
		if b.Location == "" {
			problems = append(problems, "no location: add a location column or pass --location")
		} else if err := checkImportName("location", b.Location, true); err != "" {
			problems = append(problems, err)
		}
		if err := checkImportName("lot", b.Lot, false); err != "" {
			problems = append(problems, err)
		}
		if b.BestBefore != "" {
			if _, err := time.Parse(time.DateOnly, b.BestBefore); err != nil || len(b.BestBefore) != len(time.DateOnly) {
				problems = append(problems, fmt.Sprintf("best_before %q is not a date like 2027-03-15", b.BestBefore))
			}
		}
		if len(problems) == 0 {
			// The checks above name every problem of a row at once; the
			// service's own validation has the last word, so that no row
			// it would refuse is sent.
			if msg := message(b.Command().Validate(stockd.DefaultLimits)); msg != "" {
				problems = append(problems, msg)
			}
		}
		if len(problems) > 0 {
			bad = append(bad, badRow{Line: line, Error: strings.Join(problems, "; ")})
			continue
		}
		rows = append(rows, importRow{line: line, body: b})
	}
	return rows, bad, nil
}

// checkImportName checks a name by the service's own rules, so that a bad
// row is reported before anything is sent.
func checkImportName(field, s string, required bool) string {
	if s == "" && !required {
		return ""
	}
	return message(stockd.CheckName(field, s))
}

// message is the client-facing text of a domain error, or "" for none.
func message(err error) string {
	var e *stockd.Error
	if errors.As(err, &e) {
		return e.Message
	}
	if err != nil {
		return err.Error()
	}
	return ""
}
