// Package imports reads supplier CSV files of receipts and books them
// through the service, each file once, with a report per file kept in the
// store's Records. `stockd import`, POST /v1/imports and the watcher of
// supplier file drops (package drops) all go through it.
//
// Suppliers send files like
//
//	ingredient,quantity,best_before
//	pepperoni,2000,2019-03-15
//
// and often send the same file twice, sometimes edited, sometimes under
// another name. A delivery (a batch) has a name, and a row within it is
// known by what it receives: the receipt id of a row is made from the batch
// name and the row's identity (sku, location, lot, best_before), never from
// its line or its quantity, so that a row's id does not change when other
// rows do (see ID). Importing an edited file again replays the unchanged
// rows, receives the new ones, and the service refuses the rows whose
// quantity changed as an idempotency mismatch, which the report lists by
// line.
package imports

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// Row is one good row of a file: its line and the receipt it books.
type Row struct {
	Line int
	Body api.ReceiptRequest
}

// BadRow is a row that cannot be imported, and why.
type BadRow struct {
	Line  int
	Error string
}

// Identity is what a row receives, apart from how many: the rows of two
// imports of a batch are the same row when their identities are.
type Identity struct {
	SKU, Location, Lot, BestBefore string
}

// ID is the receipt id of the occurrence-th row (from 1) with identity id in
// batch:
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
func ID(batch string, id Identity, occurrence int) string {
	h := sha256.New()
	for _, part := range []string{"stockd import 1", batch, id.SKU, id.Location, id.Lot, id.BestBefore, strconv.Itoa(occurrence)} {
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

// columns are the names a header may use, by field.
var columns = map[string]string{
	"sku": "sku", "ingredient": "sku",
	"quantity": "quantity", "qty": "quantity",
	"best_before": "best_before", "best-before": "best_before", "bestbefore": "best_before",
	"location": "location",
	"lot":      "lot",
}

// Parse reads a CSV file into receipts, with ids made by ID from batch and
// each row's identity; rows without a location get defLocation. It returns
// every bad row, not only the first; an error means the file as a whole
// cannot be read (no header, a required column missing).
func Parse(data []byte, batch, defLocation string) ([]Row, []BadRow, error) {
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
		name, ok := columns[strings.ToLower(strings.TrimSpace(h))]
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
	var rows []Row
	var bad []BadRow
	seen := map[Identity]int{} // occurrences of each identity so far
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, BadRow{Line: pe.StartLine, Error: pe.Err.Error()})
				continue
			}
			return nil, nil, err
		}
		line, _ := r.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line of spaces
		}
		if len(rec) != len(header) {
			bad = append(bad, BadRow{Line: line, Error: fmt.Sprintf("%d field(s), but the header has %d", len(rec), len(header))})
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
		ident := Identity{SKU: b.SKU, Location: b.Location, Lot: b.Lot, BestBefore: b.BestBefore}
		seen[ident]++
		b.ID = ID(batch, ident, seen[ident])
		var problems []string
		if err := checkName("sku", b.SKU, true); err != "" {
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
		} else if err := checkName("location", b.Location, true); err != "" {
			problems = append(problems, err)
		}
		if err := checkName("lot", b.Lot, false); err != "" {
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
			if msg := Message(b.Command().Validate(stockd.DefaultLimits)); msg != "" {
				problems = append(problems, msg)
			}
		}
		if len(problems) > 0 {
			bad = append(bad, BadRow{Line: line, Error: strings.Join(problems, "; ")})
			continue
		}
		rows = append(rows, Row{Line: line, Body: b})
	}
	return rows, bad, nil
}

// checkName checks a name by the service's own rules, so that a bad row is
// reported before anything is sent.
func checkName(field, s string, required bool) string {
	if s == "" && !required {
		return ""
	}
	return Message(stockd.CheckName(field, s))
}

// Message is the client-facing text of a domain error, or "" for none.
func Message(err error) string {
	var e *stockd.Error
	if errors.As(err, &e) {
		return e.Message
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// SHA256 returns the lowercase hex SHA-256 of a file's content: what a file
// is known by.
func SHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
