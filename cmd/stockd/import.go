package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
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
// and often send the same file twice. Each row's receipt id is derived from
// the file's content (the first 12 hex digits of its SHA-256) and the row's
// line number, so a file dropped again replays the same receipts and adds
// nothing, while a file that differs in any byte is a new delivery.

func init() {
	register(command{name: "import", summary: "receive the rows of a supplier CSV file (re-importing adds nothing)", run: runImport})
}

// maxImportChunk is the most receipts sent in one batch request: the
// service's default batch limit.
const maxImportChunk = 1000

// importRow is one good row of a file.
type importRow struct {
	line int
	body api.ReceiptRequest
}

// badRow is a row that cannot be imported, and why.
type badRow struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// importReport is what import tells, as JSON with --json.
type importReport struct {
	File     string   `json:"file"`
	SHA256   string   `json:"sha256"`
	Rows     int      `json:"rows"`
	Created  int      `json:"created"`
	Replayed int      `json:"already_imported"`
	Bad      []badRow `json:"bad_rows"`
	Failed   []badRow `json:"failed_rows"`
	Sent     bool     `json:"sent"`
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("import", "import [--location LOC] [--skip-bad] FILE.csv",
		`Receives every row of a supplier CSV file. The header names the columns, in any order:
sku (or ingredient) and quantity are required; best_before (YYYY-MM-DD), location and lot
are optional. Rows without a location use --location.

Importing the same file again adds nothing: receipt ids come from the file's SHA-256 and
the row's line number. A file with bad rows is not sent at all (every bad row is listed
by line number) unless --skip-bad is given.`,
		`stockd import --location w1 delivery-2026-11-27.csv
stockd import --location w1 --skip-bad --json delivery.csv`, stdout, stderr)
	var defLocation string
	var skipBad bool
	var chunk int
	c.fs.StringVar(&defLocation, "location", "", "location of rows that name none")
	c.fs.BoolVar(&skipBad, "skip-bad", false, "send the good rows of a file that has bad ones")
	c.fs.IntVar(&chunk, "chunk", maxImportChunk, "receipts per batch request, at most 1000")
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
	data, err := os.ReadFile(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "stockd import: %v\n", err)
		return exitFailure
	}
	sum := sha256.Sum256(data)
	rep := importReport{File: pos[0], SHA256: hex.EncodeToString(sum[:]), Bad: []badRow{}, Failed: []badRow{}}
	rows, bad, err := parseImport(data, rep.SHA256[:12], defLocation)
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
		if err := sendImportChunk(ctx, cl, part, &rep); err != nil {
			if c.json {
				c.printJSON(rep)
			}
			fmt.Fprintf(stderr, "stockd import: after %d received and %d already imported: ", rep.Created, rep.Replayed)
			return c.fail(err)
		}
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(stderr, "%s:%d: refused: %s\n", pos[0], f.Line, f.Error)
	}
	if c.json {
		c.printJSON(rep)
	} else {
		fmt.Fprintf(stdout, "imported %s (sha256 %s): %d row(s): %d received, %d already imported", pos[0], rep.SHA256[:12], rep.Rows, rep.Created, rep.Replayed)
		if len(rep.Bad) > 0 {
			fmt.Fprintf(stdout, ", %d bad row(s) skipped", len(rep.Bad))
		}
		if len(rep.Failed) > 0 {
			fmt.Fprintf(stdout, ", %d refused", len(rep.Failed))
		}
		fmt.Fprintln(stdout)
	}
	if len(rep.Failed) > 0 {
		return exitRejected
	}
	return exitOK
}

// sendImportChunk sends rows as one batch, retrying what the service was too
// busy to take (the ids make a retry safe), and counts the outcome in rep.
func sendImportChunk(ctx context.Context, cl *client.Client, rows []importRow, rep *importReport) error {
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
		resp, err := cl.Batch(ctx, ops)
		if err != nil {
			if retryable(err) && attempt < 5 {
				if err := pause(ctx, client.RetryAfter(err), attempt); err != nil {
					return err
				}
				continue
			}
			return err
		}
		if len(resp.Results) != len(pending) {
			return &stockd.Error{Code: stockd.CodeInternal, Message: fmt.Sprintf("the batch answered %d results for %d operations", len(resp.Results), len(pending))}
		}
		var again []importRow
		var hint error
		for i, res := range resp.Results {
			switch {
			case res.Status == 201:
				rep.Created++
			case res.Status == 200:
				rep.Replayed++
			default:
				err := client.ResultError(res)
				if retryable(err) && attempt < 5 {
					again = append(again, pending[i])
					hint = err
					continue
				}
				if exitCode(err) != exitRejected {
					return err
				}
				rep.Failed = append(rep.Failed, badRow{Line: pending[i].line, Error: err.(*stockd.Error).Message})
			}
		}
		if len(again) == 0 {
			return nil
		}
		if err := pause(ctx, client.RetryAfter(hint), attempt); err != nil {
			return err
		}
		pending = again
	}
}

// retryable reports whether a request refused for err may succeed later.
func retryable(err error) bool {
	code := stockd.ErrorCode(err)
	return code == stockd.CodeOverloaded || code == stockd.CodeConflict ||
		(code == stockd.CodeUnavailable && client.StatusCode(err) != 0)
}

// pause waits before a retry: the service's hint if it gave one, otherwise a
// growing backoff.
func pause(ctx context.Context, hint time.Duration, attempt int) error {
	d := hint
	if d <= 0 {
		d = time.Duration(100<<attempt) * time.Millisecond
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
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

// parseImport reads a CSV file into receipts, with ids made of fileID and the
// line number. It returns every bad row, not only the first; an error means
// the file as a whole cannot be read (no header, a required column missing).
func parseImport(data []byte, fileID, defLocation string) ([]importRow, []badRow, error) {
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
			ID:         fmt.Sprintf("imp-%s-%d", fileID, line),
			SKU:        get("sku"),
			Location:   get("location"),
			Lot:        get("lot"),
			BestBefore: get("best_before"),
		}
		if b.Location == "" {
			b.Location = defLocation
		}
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
