package main

import (
	"testing"

	"github.com/stockd/stockd"
)

// FuzzParseImport feeds arbitrary files to the CSV parser of `stockd import`.
// Whatever the input, it must not panic; every row it accepts must be one the
// service accepts too (the parser checks rows so that a bad file is reported
// by line before anything is sent, and must not let through what the service
// would refuse); and every row it reports is named by a line after the
// header, once.
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
		last := 0
		for _, r := range rows {
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
