package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/imports"
)

// import books a supplier's CSV file of receipts through POST /v1/imports:
// the service parses it, derives every row's receipt id and keeps a report,
// with the same code (package imports) as the watcher of supplier file drops.
// Suppliers send files like
//
//	ingredient,quantity,best_before
//	pepperoni,2000,2019-03-15
//
// and often send the same file twice, sometimes edited. A delivery (a batch)
// is known by its file name, and a row within it by what it receives (see
// imports.ID). A file whose content was imported before, under any name or
// by a drop, keeps the batch it had, so it books nothing twice. Importing an
// edited file again replays the unchanged rows, receives the new ones, and
// the service refuses the rows whose quantity changed as an idempotency
// mismatch, which import reports by line.

func init() {
	register(command{name: "import", summary: "receive the rows of a supplier CSV file (re-importing books nothing twice)", run: runImport})
}

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

// changedRow is a row whose receipt was booked by an earlier import of the
// batch with another quantity.
type changedRow struct {
	Line  int    `json:"line"`
	ID    string `json:"id"`
	Error string `json:"error"`
}

// importReport is what import tells, as JSON with --json. Report is the
// id of the service's report of the file (stockd imports show ID).
type importReport struct {
	File     string       `json:"file"`
	Batch    string       `json:"batch"`
	SHA256   string       `json:"sha256"`
	Report   string       `json:"report,omitempty"`
	Rows     int          `json:"rows"`
	Created  int          `json:"created"`
	Replayed int          `json:"already_imported"`
	Changed  []changedRow `json:"changed_rows"`
	Bad      []badRow     `json:"bad_rows"`
	Failed   []badRow     `json:"failed_rows"`
	Sent     bool         `json:"sent"`
}

// parseImport reads a CSV file as the service will (imports.Parse), so that
// bad rows are reported by line before anything is sent.
func parseImport(data []byte, batch, defLocation string) ([]importRow, []badRow, error) {
	rows, bad, err := imports.Parse(data, batch, defLocation)
	if err != nil {
		return nil, nil, err
	}
	out := make([]importRow, len(rows))
	for i, r := range rows {
		out[i] = importRow{line: r.Line, body: r.Body}
	}
	bads := make([]badRow, len(bad))
	for i, b := range bad {
		bads[i] = badRow{Line: b.Line, Error: b.Error}
	}
	return out, bads, nil
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("import", "import [--location LOC] [--batch NAME] [--skip-bad] FILE.csv",
		`Receives every row of a supplier CSV file. The header names the columns, in any order:
sku (or ingredient) and quantity are required; best_before (YYYY-MM-DD), location and lot
are optional. Rows without a location use --location.

The file goes to the service (POST /v1/imports, at most the server's body limit, 1 MiB by
default; larger files go through the drop folder, see docs/intake.md), which books it and
keeps a report (stockd imports show). A file is one delivery, its batch, named by the file's
name without its directory (or by --batch NAME). A row's receipt id comes from the batch
name and the row's sku, location, lot and best_before (not its quantity or line), plus a
count for rows repeating all four: imp-<batch>-<hash>. So importing a file again books
nothing twice, even edited: unchanged rows are replays ("already imported"), new rows are
received, and a row whose quantity changed is not booked but listed by line as changed
(exit 3; book the difference with stockd receive or adjust). The service also knows a file
by its content: the same content again, under any name or dropped in the drop folder, keeps
the batch it had. A supplier reusing a file name for a new delivery needs --batch with a new
name; the same delivery edited under another file name needs --batch with the first name.

A file with bad rows is not sent at all (every bad row is listed by line number) unless
--skip-bad is given. Exit status: 0 every row received or already imported; 1 bad rows
(nothing sent) or a failure; 3 some rows changed or refused by the service.`,
		`stockd import --location w1 delivery-2026-11-27.csv
stockd import --location w1 --batch delivery-2026-11-27.csv "delivery-2026-11-27 (1).csv"
stockd import --location w1 --skip-bad --json delivery.csv`, stdout, stderr)
	var defLocation, batch string
	var skipBad bool
	c.fs.StringVar(&defLocation, "location", "", "location of rows that name none")
	c.fs.StringVar(&batch, "batch", "", "name of the delivery, part of every receipt id (default: the file's name without its directory)")
	c.fs.BoolVar(&skipBad, "skip-bad", false, "send the good rows of a file that has bad ones")
	c.retryFlag()
	pos, code, ok := c.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError("name one CSV file")
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
	rep := importReport{File: pos[0], Batch: batch, SHA256: imports.SHA256(data), Changed: []changedRow{}, Bad: []badRow{}, Failed: []badRow{}}
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
	sub := stockd.SubmitImport{Name: filepath.Base(pos[0]), CSV: data, Location: defLocation, NameBatch: true}
	if c.isSet("batch") {
		sub.Batch = batch
	}
	var got stockd.ImportReport
	// The service knows a file by its content: sending it again books
	// nothing twice.
	err = c.send(ctx, "file "+pos[0], func() (err error) {
		got, err = cl.SubmitImport(ctx, sub)
		return err
	})
	if err != nil {
		if c.json {
			c.printJSON(rep)
		}
		fmt.Fprintf(stderr, "stockd import: ")
		return c.fail(err)
	}
	rep.Batch, rep.Report, rep.Created, rep.Replayed = got.Batch, got.ID, got.Applied, got.AlreadyApplied
	for _, r := range got.Refused {
		switch {
		case r.ID == "": // a bad row, reported above
		case r.Code == stockd.CodeIdempotencyMismatch:
			rep.Changed = append(rep.Changed, changedRow{Line: r.Line, ID: r.ID, Error: r.Reason})
		default:
			rep.Failed = append(rep.Failed, badRow{Line: r.Line, Error: r.Reason})
		}
	}
	if got.RefusedMore > 0 {
		fmt.Fprintf(stderr, "stockd import: %d more refused row(s) are not listed; see stockd imports show %s\n", got.RefusedMore, got.ID)
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

// message is the client-facing text of a domain error, or "" for none.
func message(err error) string { return imports.Message(err) }
