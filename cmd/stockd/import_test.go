package main

import (
	"context"
	"encoding/json"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
)

// FuzzParseImport feeds arbitrary files to the CSV parser of `stockd import`.
// Whatever the input, it must not panic; every row it accepts must be one the
// service accepts too (the parser checks rows so that a bad file is reported
// by line before anything is sent, and must not let through what the service
// would refuse); no two rows share a receipt id; and every row it reports
// is named by a line after the header, once.
func FuzzParseImport(f *testing.F) {
	for _, seed := range []string{
		"sku,quantity,best_before\nA,10,2027-03-15\nB,5,\n",
		"\xef\xbb\xbfsku,quantity,best_before,location,lot\nA,1,2027-01-01,w2,L7\n",
		"ingredient,quantity,best_before\nflour,3,2026-12-31\n",
		"sku,quantity\nA,x\nB,0\nC,-1\n,4\nD,99999999999999999999\n",
		"sku,quantity,best_before\n\"A,B\",1,\n\"C\"\"D\",2,\nE,3,2027-13-40\n",
		"sku,quantity\nA,1,extra\n\n   \nB,2\n",
		"sku,quantity,lot\nA,1,has space\nB,2,a/b\nC,3,\x01\n",
		"quantity,sku\n7,Z\n",
		"sku,sku,quantity\nA,A,1\n",
		"sku,quantity\n\"unterminated,1\n",
		"sku,quantity,lot\n.,1,\nA,1,..\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, bad, err := parseImport(data, "delivery.csv", "w1")
		if err != nil {
			return // the header itself is unusable: the whole file is refused
		}
		seen := map[int]bool{}
		ids := map[string]int{}
		last := 0
		for _, r := range rows {
			if prev, dup := ids[r.body.ID]; dup {
				t.Fatalf("lines %d and %d have the same receipt id %s", prev, r.line, r.body.ID)
			}
			ids[r.body.ID] = r.line
			if err := r.body.Command().Validate(stockd.DefaultLimits); err != nil {
				t.Fatalf("line %d passed the parser but the service would refuse it: %v (%+v)", r.line, err, r.body)
			}
			if r.line <= last {
				t.Fatalf("good rows out of order: line %d after %d", r.line, last)
			}
			last = r.line
			seen[r.line] = true
		}
		for _, b := range bad {
			if b.Line < 2 {
				t.Fatalf("a bad row is reported at line %d, the header's or before: %q", b.Line, b.Error)
			}
			if seen[b.Line] {
				t.Fatalf("line %d is reported both good and bad", b.Line)
			}
			seen[b.Line] = true
			if b.Error == "" {
				t.Fatalf("line %d is reported bad with no reason", b.Line)
			}
		}
	})
}

// TestImportIDs: a row's receipt id depends on the batch name and the row's
// identity only, never on other rows, its line or its quantity; it stays
// within the service's rules for ids whatever the names.
func TestImportIDs(t *testing.T) {
	ids := func(batch, file string) map[string]string { // "sku/lot#n" -> id
		t.Helper()
		rows, bad, err := parseImport([]byte(file), batch, "w1")
		if err != nil || len(bad) > 0 {
			t.Fatalf("parse %q: %v %v", file, bad, err)
		}
		out := map[string]string{}
		seen := map[string]int{}
		for _, r := range rows {
			k := r.body.SKU + "/" + r.body.Lot
			seen[k]++
			k += "#" + strconv.Itoa(seen[k])
			if err := r.body.Command().Validate(stockd.DefaultLimits); err != nil {
				t.Errorf("row %+v: %v", r.body, err)
			}
			out[k] = r.body.ID
		}
		return out
	}
	first := ids("delivery-2026-11-30.csv", "sku,quantity,lot\nA,10,L1\nB,5,\nA,3,L1\nC,1,\n")
	// Rows added before, removed, reordered, a quantity changed.
	edited := ids("delivery-2026-11-30.csv", "lot,sku,quantity\n,D,9\n,B,6\nL1,A,10\nL1,A,3\n")
	for _, k := range []string{"A/L1#1", "A/L1#2", "B/#1"} {
		if first[k] == "" || first[k] != edited[k] {
			t.Errorf("%s: id %q before the edit, %q after", k, first[k], edited[k])
		}
	}
	if first["A/L1#1"] == first["A/L1#2"] {
		t.Errorf("two rows of the same identity share id %s", first["A/L1#1"])
	}
	if other := ids("delivery-2026-12-01.csv", "sku,quantity,lot\nA,10,L1\n"); other["A/L1#1"] == first["A/L1#1"] {
		t.Errorf("the same row in another batch has the same id %s", other["A/L1#1"])
	}
	// Location and best-before are part of a row's identity.
	rows, _, _ := parseImport([]byte("sku,quantity,location,best_before\nA,1,w1,\nA,1,w2,\nA,1,w1,2099-01-01\n"), "b", "")
	if rows[0].body.ID == rows[1].body.ID || rows[0].body.ID == rows[2].body.ID || rows[1].body.ID == rows[2].body.ID {
		t.Errorf("rows differing in location or best-before share an id: %+v", rows)
	}
	// Long and odd names still make valid ids, readable where they can be.
	long := strings.Repeat("x", 128)
	for _, batch := range []string{"delivery 30.11.2026 (copy).csv", strings.Repeat("é", 100) + ".csv", "..", ".", "a/b"} {
		for id := range maps.Values(ids(batch, "sku,quantity,lot\n"+long+",1,"+long+"\n")) {
			if err := stockd.CheckName("id", id); err != nil || len(id) > stockd.MaxIDLength || !strings.HasPrefix(id, "imp-") {
				t.Errorf("batch %q: id %q: %v", batch, id, err)
			}
		}
	}
	if got := ids("delivery-2026-11-30.csv", "sku,quantity\nA,1\n")["A/#1"]; !regexp.MustCompile(`^imp-delivery-2026-11-30\.csv-[0-9a-f]{24}$`).MatchString(got) {
		t.Errorf("id = %q", got)
	}
}

// TestImportEdited: importing an edited supplier file again books its new
// rows, replays its unchanged ones, and reports by line the rows whose
// quantity changed, booking nothing for them (exit 3). The directory is not
// part of the batch; --batch names it explicitly.
func TestImportEdited(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1")
	ctx := context.Background()
	first := writeFile(t, "delivery-2026-11-30.csv", "sku,quantity,best_before,lot\nA,10,2099-03-15,L1\nB,5,,\nC,3,,\n")
	runCases(t, s, []cliCase{
		{"first", []string{"import", "--location", "w1", first}, 0, `3 row\(s\): 3 received, 0 already imported\n`, "", false},
	})
	// The supplier drops the file again, edited: a new row at the top, rows
	// reordered, B's quantity changed. It lands in another directory.
	edited := writeFile(t, "delivery-2026-11-30.csv", "sku,quantity,best_before,lot\nD,4,,\nC,3,,\nB,6,,\nA,10,2099-03-15,L1\n")
	code, out, errOut := run(t, s, "import", "--location", "w1", edited)
	if code != exitRejected ||
		!strings.Contains(out, "as batch delivery-2026-11-30.csv") ||
		!strings.Contains(out, "4 row(s): 1 received, 2 already imported, 1 changed (not booked)") ||
		!regexp.MustCompile(`delivery-2026-11-30\.csv:4: changed since batch "delivery-2026-11-30.csv" was imported: this row \(6 of B, receipt imp-delivery-2026-11-30\.csv-[0-9a-f]{24}\) was booked then with another quantity; not booked again`).MatchString(errOut) {
		t.Errorf("import of the edited file: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for sku, want := range map[string]int64{"A": 10, "B": 5, "C": 3, "D": 4} {
		if st := must(s.Client.SKU(ctx, sku, stockd.AsOf{})); st.OnHand != want {
			t.Errorf("%s after importing the edited file = %d on hand, want %d", sku, st.OnHand, want)
		}
	}
	code, out, _ = run(t, s, "import", "--location", "w1", "--json", edited)
	var rep importReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitRejected || rep.Created != 0 || rep.Replayed != 3 ||
		len(rep.Changed) != 1 || rep.Changed[0].Line != 4 || rep.Batch != "delivery-2026-11-30.csv" {
		t.Errorf("import --json of the edited file again: exit %d %+v %v\n%s", code, rep, err, out)
	}
	// The same delivery under another name: --batch names the first.
	copyName := writeFile(t, "delivery-2026-11-30 (1).csv", "sku,quantity,best_before,lot\nA,10,2099-03-15,L1\nB,5,,\nC,3,,\n")
	runCases(t, s, []cliCase{
		{"another name", []string{"import", "--location", "w1", "--batch", "delivery-2026-11-30.csv", copyName}, 0, `3 row\(s\): 0 received, 3 already imported\n`, "", false},
		{"empty batch", []string{"import", "--location", "w1", "--batch", "", copyName}, 2, "", `--batch must not be empty`, false},
		// A new delivery under a reused name needs a new batch name.
		{"new batch", []string{"import", "--location", "w1", "--batch", "2026-12-01", first}, 0, `as batch 2026-12-01 .*3 row\(s\): 3 received`, "", false},
	})
	if st := must(s.Client.SKU(ctx, "C", stockd.AsOf{})); st.OnHand != 6 {
		t.Errorf("C after the second delivery = %d, want 6", st.OnHand)
	}
}
