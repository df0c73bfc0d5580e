package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/engine"
)

// run runs the command line against s and returns the exit code and output.
func run(t *testing.T, s *e2e.Server, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	full := args
	if s != nil {
		full = append(append([]string{}, args...), "--url", s.URL)
	}
	code := Run(context.Background(), full, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

type cliCase struct {
	name   string
	args   []string
	code   int
	stdout string // a regular expression the output must match
	stderr string // a regular expression stderr must match
	json   bool   // stdout must be a JSON document
}

func runCases(t *testing.T, s *e2e.Server, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		code, out, errOut := run(t, s, tc.args...)
		if code != tc.code {
			t.Errorf("%s: stockd %s: exit %d, want %d\nstdout: %s\nstderr: %s", tc.name, strings.Join(tc.args, " "), code, tc.code, out, errOut)
			continue
		}
		if tc.stdout != "" && !regexp.MustCompile(tc.stdout).MatchString(out) {
			t.Errorf("%s: stdout does not match %q:\n%s", tc.name, tc.stdout, out)
		}
		if tc.stderr != "" && !regexp.MustCompile(tc.stderr).MatchString(errOut) {
			t.Errorf("%s: stderr does not match %q:\n%s", tc.name, tc.stderr, errOut)
		}
		if tc.json && !json.Valid([]byte(out)) {
			t.Errorf("%s: stdout is not JSON:\n%s", tc.name, out)
		}
	}
}

func TestStockCommands(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1", "s1")
	runCases(t, s, []cliCase{
		{"receive", []string{"receive", "--sku", "A", "--location", "w1", "--quantity", "10", "--lot", "L1", "--best-before", "2099-03-15", "--id", "r-1"}, 0, `receipt r-1: 10 of A at w1 lot L1 best before 2099-03-15`, "", false},
		{"receive replay", []string{"receive", "--sku", "A", "--location", "w1", "--quantity", "10", "--lot", "L1", "--best-before", "2099-03-15", "--id", "r-1"}, 0, `already done earlier`, "", false},
		{"receive mismatch", []string{"receive", "--sku", "A", "--location", "w1", "--quantity", "11", "--id", "r-1"}, 3, "", `already used with a different request \(idempotency_mismatch\)`, false},
		{"receive generated id", []string{"receive", "--sku", "A", "--location", "w1", "--quantity", "5"}, 0, `receipt r-[0-9a-f]{12}: 5 of A`, "", false},
		{"receive json", []string{"receive", "--sku", "B", "--location", "w1", "--quantity", "5", "--json", "--id", "rb"}, 0, `"id": "rb"`, "", true},
		{"receive invalid", []string{"receive", "--sku", "A", "--location", "w1", "--quantity", "0"}, 3, "", `quantity must be between 1`, false},
		{"receive missing flag", []string{"receive", "--sku", "A", "--quantity", "1"}, 2, "", `--location is required`, false},
		{"receive missing quantity", []string{"receive", "--sku", "A", "--location", "w1"}, 2, "", `--quantity is required`, false},
		{"receive bad flag", []string{"receive", "--colour", "red"}, 2, "", `flag provided but not defined`, false},
		{"adjust", []string{"adjust", "--sku", "A", "--location", "w1", "--delta", "-2", "--reason", "damaged", "--id", "adj-1"}, 0, `adjustment adj-1: -2 of A at w1 \(damaged\)`, "", false},
		{"adjust too much", []string{"adjust", "--sku", "A", "--location", "w1", "--delta", "-1000", "--reason", "lost"}, 3, "", `(?s)insufficient_stock.*SKU +REQUESTED +AVAILABLE.*A +1000 +13`, false},
		{"adjust bad reason", []string{"adjust", "--sku", "A", "--location", "w1", "--delta", "1", "--reason", "magic"}, 3, "", `reason must be one of`, false},
		{"count", []string{"count", "--sku", "A", "--location", "w1", "--on-hand", "12", "--id", "c-1"}, 0, `count c-1: A at w1 is 12 \(-1\)`, "", false},
		{"count json", []string{"count", "--sku", "A", "--location", "w1", "--on-hand", "12", "--id", "c-1", "--json"}, 0, `"on_hand": 12`, "", true},
		{"count missing", []string{"count", "--sku", "A", "--location", "w1"}, 2, "", `--on-hand is required`, false},
		{"transfer", []string{"transfer", "--sku", "A", "--from", "w1", "--to", "s1", "--quantity", "3", "--id", "t-1"}, 0, `(?s)transfer t-1: 3 of A from w1 to s1, in_transit.*L1 +3 +2099-03-15`, "", false},
		{"transfer too much", []string{"transfer", "--sku", "A", "--from", "w1", "--to", "s1", "--quantity", "300"}, 3, "", `insufficient_stock`, false},
		{"transfer show", []string{"transfer", "show", "t-1"}, 0, `transfer t-1: 3 of A from w1 to s1, in_transit`, "", false},
		{"transfer arrive", []string{"transfer", "arrive", "t-1"}, 0, `transfer t-1: .* arrived at`, "", false},
		{"transfer arrive again json", []string{"transfer", "arrive", "t-1", "--json"}, 0, `"status": "arrived"`, "", true},
		{"transfer arrive unknown", []string{"transfer", "arrive", "t-none"}, 3, "", `not found \(not_found\)`, false},
		{"transfer arrive no id", []string{"transfer", "arrive"}, 2, "", `name one transfer id`, false},
	})
	st := must(s.Client.SKU(context.Background(), "A", stockd.AsOf{}))
	if st.OnHand != 12 || st.InTransit != 0 || len(st.Locations) != 2 {
		t.Errorf("A after the commands = %+v, want 12 on hand over w1 and s1", st)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestReservationCommands(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	c := s.Client
	ctx := context.Background()
	must(c.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}))
	for _, sku := range []string{"A", "B"} {
		must3(c.Receive(ctx, stockd.ReceiveStock{ID: "r-" + sku, SKU: sku, Location: "w1", Quantity: 10}))
	}
	runCases(t, s, []cliCase{
		{"reserve", []string{"reserve", "--id", "cart-42", "--ttl", "15m", "--customer", "c-9", "A=2@w1", "B=1"}, 0, `(?s)reservation cart-42\nstatus held, expires .*customer c-9.*A +2 +2 +w1:2.*B +1 +1 +w1:1`, "", false},
		{"reserve replay", []string{"reserve", "--id", "cart-42", "--ttl", "15m", "--customer", "c-9", "A=2@w1", "B=1"}, 0, `already done earlier`, "", false},
		{"reserve flags after lines", []string{"reserve", "A=1", "--id", "cart-43", "--json"}, 0, `"status": "held"`, "", true},
		{"reserve generated id", []string{"reserve", "A=1"}, 0, `reservation res-[0-9a-f]{12}`, "", false},
		{"reserve insufficient", []string{"reserve", "A=100", "B=1"}, 3, "", `(?s)not enough stock.*\(insufficient_stock\).*A +100 +6`, false},
		{"reserve insufficient json", []string{"reserve", "A=100", "--json"}, 3, `"code": "insufficient_stock"`, ``, true},
		{"reserve no lines", []string{"reserve", "--id", "x"}, 2, "", `name at least one line`, false},
		{"reserve bad line", []string{"reserve", "A"}, 2, "", `write SKU=QUANTITY`, false},
		{"reserve bad qty", []string{"reserve", "A=two"}, 2, "", `not a whole number`, false},
		{"reserve zero", []string{"reserve", "A=0"}, 3, "", `quantity must be between 1`, false},
		{"reserve bad ttl", []string{"reserve", "--ttl", "soon", "A=1"}, 2, "", `invalid value "soon"`, false},
		{"extend", []string{"extend", "cart-42", "--ttl", "1h", "--idempotency-key", "ext-1"}, 0, `status held, expires .* \(in (59m5\d|1h0m0)s\)`, "", false},
		{"extend replay", []string{"extend", "cart-42", "--ttl", "1h", "--idempotency-key", "ext-1"}, 0, `status held`, "", false},
		{"extend mismatch", []string{"extend", "cart-42", "--ttl", "2h", "--idempotency-key", "ext-1"}, 3, "", `idempotency_mismatch`, false},
		{"extend no ttl", []string{"extend", "cart-42"}, 2, "", `--ttl is required`, false},
		{"commit partial", []string{"commit", "cart-42", "A=1", "--idempotency-key", "pay-1"}, 0, `(?s)status committed.*A +1 +2 +w1:1.*B +0 +1`, "", false},
		{"commit retry", []string{"commit", "cart-42", "--json"}, 0, `"status": "committed"`, "", true},
		{"release committed", []string{"release", "cart-42"}, 3, "", `(?s)reservation_not_held.*The reservation is committed`, false},
		{"extend committed", []string{"extend", "cart-42", "--ttl", "1m"}, 3, "", `reservation_not_held`, false},
		{"release", []string{"release", "cart-43"}, 0, `status released`, "", false},
		{"release again", []string{"release", "cart-43"}, 0, `status released`, "", false},
		{"commit released", []string{"commit", "cart-43"}, 3, "", `is released \(reservation_not_held\)`, false},
		{"commit unknown", []string{"commit", "nope"}, 3, "", `not_found`, false},
		{"commit bad line", []string{"commit", "cart-43", "A=1@w1"}, 2, "", `takes no location`, false},
		{"commit no id", []string{"commit"}, 2, "", `name the reservation id`, false},
		{"reservation show", []string{"reservation", "cart-42"}, 0, `(?s)reservation cart-42\nstatus committed`, "", false},
		{"reservation show json", []string{"reservation", "show", "cart-42", "--json"}, 0, `"id": "cart-42"`, "", true},
		{"reservation unknown", []string{"reservation", "nope"}, 3, "", `not_found`, false},
	})
	// The list shows held reservations only (cart-42 is committed); the
	// read model catches up in a moment.
	must3(c.Reserve(ctx, stockd.Reserve{ID: "cart-44", TTL: time.Hour, Customer: "c-9", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 1}}}))
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, _ := run(t, s, "reservation", "list", "--customer", "c-9")
		if code == 0 && regexp.MustCompile(`cart-44 +held`).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reservation list: %d %s", code, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	runCases(t, s, []cliCase{
		{"reservation list", []string{"reservation", "list", "--customer", "c-9"}, 0, `(?s)ID +STATUS.*cart-44 +held .*A=1.*1 reservation\(s\) of c-9`, "", false},
		{"reservation list json", []string{"reservation", "list", "--customer", "c-9", "--json"}, 0, `"items"`, "", true},
		{"reservation list none", []string{"reservation", "list", "--customer", "nobody", "--json"}, 0, `"items": \[\]`, "", true},
		{"reservation list no customer", []string{"reservation", "list"}, 2, "", `--customer is required`, false},
	})
}

func must3[T any](v T, _ bool, err error) T { return must(v, err) }

func TestSKUAndLocationCommands(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1")
	c := s.Client
	ctx := context.Background()
	r1 := must3(c.Receive(ctx, stockd.ReceiveStock{ID: "r-1", SKU: "A", Location: "w1", Quantity: 10, Lot: "L1", BestBefore: "2099-03-15"}))
	time.Sleep(5 * time.Millisecond)
	for i := range 4 {
		must3(c.Receive(ctx, stockd.ReceiveStock{ID: "r-more-" + string(rune('a'+i)), SKU: "A", Location: "w1", Quantity: 1}))
	}
	must3(c.Reserve(ctx, stockd.Reserve{ID: "cart", Customer: "c-1", Lines: []stockd.ReserveLine{{SKU: "A", Quantity: 3}}}))
	runCases(t, s, []cliCase{
		{"sku", []string{"sku", "A"}, 0, `(?s)A now \(version 7, position \d+\): on hand 14, reserved 3, available 11.*LOCATION.*w1 +14 +3 +11 +0 +1 +(L1 bb 2099-03-15:10, \(undated\):4|\(undated\):4, L1 bb 2099-03-15:10)`, "", false},
		{"sku show json", []string{"sku", "show", "A", "--json"}, 0, `"on_hand": 14`, "", true},
		{"sku as of", []string{"sku", "A", "--as-of", r1.Time.Format(time.RFC3339Nano)}, 0, `A as of .*: on hand 10, reserved 0`, "", false},
		{"sku as of position", []string{"sku", "A", "--position", "1", "--json"}, 0, `"on_hand": 10`, "", true},
		{"sku as of bad", []string{"sku", "A", "--as-of", "yesterday"}, 2, "", `not an RFC 3339 time`, false},
		{"sku as of too early", []string{"sku", "A", "--as-of", "2000-01-01T00:00:00Z"}, 3, "", `not_found`, false},
		{"sku unknown", []string{"sku", "nope"}, 3, "", `not_found`, false},
		{"sku no name", []string{"sku"}, 2, "", `name one SKU`, false},
		{"sku history", []string{"sku", "history", "A", "--limit", "2"}, 0, `(?s)VERSION.*1 .*StockReceived +r-1 .*2 .*BackInStock +r-1 .*next page: stockd sku history A --after 2 --limit 2`, "", false},
		{"sku history page 2", []string{"sku", "history", "A", "--after", "2", "--limit", "2"}, 0, `(?s)3 .*4 .*--after 4`, "", false},
		{"sku history all json", []string{"sku", "history", "A", "--all", "--limit", "2", "--json"}, 0, `(?s)"version": 7.*"next": "7"`, "", true},
		{"sku history end", []string{"sku", "history", "A", "--after", "7"}, 0, `no more events`, "", false},
		{"sku history bad limit", []string{"sku", "history", "A", "--limit", "5000"}, 3, "", `limit must be between 1 and 1000`, false},
		{"sku config", []string{"sku", "config", "A", "--safety-stock", "1", "--low-stock", "5"}, 0, `sku A: safety stock 1, low-stock threshold 5`, "", false},
		{"sku config bad", []string{"sku", "config", "A", "--safety-stock", "-1"}, 3, "", `safety_stock`, false},
		{"location set", []string{"location", "set", "w1", "--kind", "warehouse", "--priority", "1", "--region", "eu"}, 0, `(?s)ID +KIND +PRIORITY +REGION\nw1 +warehouse +1 +eu`, "", false},
		{"location set json", []string{"location", "set", "s1", "--kind", "store", "--json"}, 0, `"kind": "store"`, "", true},
		{"location set bad kind", []string{"location", "set", "x", "--kind", "castle"}, 3, "", `kind must be`, false},
		{"location set no kind", []string{"location", "set", "x"}, 2, "", `--kind is required`, false},
		{"location show", []string{"location", "show", "w1"}, 0, `w1 +warehouse +1 +eu`, "", false},
		{"location show unknown", []string{"location", "show", "nope"}, 3, "", `not_found`, false},
		{"location list", []string{"location", "list"}, 0, `(?s)s1 +store.*w1 +warehouse`, "", false},
		{"location list json", []string{"location", "list", "--json"}, 0, `"items"`, "", true},
		{"location no sub", []string{"location"}, 2, "", `name a subcommand`, false},
		{"location bad sub", []string{"location", "delete"}, 2, "", `unknown subcommand`, false},
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, _ := run(t, s, "availability", "A", "B")
		if code == 0 && regexp.MustCompile(`A +10 +14 +3 +w1:10`).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("availability: %d %s", code, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	runCases(t, s, []cliCase{
		{"availability", []string{"availability", "A", "B"}, 0, `(?s)SKU +AVAILABLE.*A +10 +14 +3 +w1:10\nB +0 +0 +0 +-\nas of`, "", false},
		{"availability json", []string{"availability", "A", "--json"}, 0, `"as_of"`, "", true},
		{"availability none", []string{"availability"}, 2, "", `name at least one SKU`, false},
	})
}

func TestGlobalBehaviour(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	// Every command has --help with an example, and exits 0.
	for _, args := range [][]string{
		{"receive"}, {"adjust"}, {"count"}, {"transfer"}, {"transfer", "arrive"}, {"transfer", "show"},
		{"reserve"}, {"commit"}, {"release"}, {"extend"}, {"reservation"}, {"reservation", "list"},
		{"sku"}, {"sku", "history"}, {"sku", "config"}, {"location"}, {"location", "set"}, {"location", "show"},
		{"location", "list"}, {"availability"}, {"import"},
	} {
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), append(args, "--help"), &stdout, &stderr)
		if code != 0 || !strings.Contains(stdout.String(), "Usage: stockd") || !strings.Contains(stdout.String(), "Example:") || !strings.Contains(stdout.String(), "-url") {
			t.Errorf("stockd %s --help: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
	}
	// stockd help CMD is CMD --help.
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"help", "reserve"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "stockd reserve --id cart-42") {
		t.Errorf("stockd help reserve: %d %s", code, stdout.String())
	}
	// The usage lists every client command.
	stdout.Reset()
	Run(context.Background(), nil, &stdout, &stderr)
	for _, name := range []string{"receive", "adjust", "count", "transfer", "reserve", "commit", "release", "extend", "sku", "reservation", "location", "availability", "import", "bench", "serve"} {
		if !regexp.MustCompile(`(?m)^  ` + name + ` `).MatchString(stdout.String()) {
			t.Errorf("usage does not list %s:\n%s", name, stdout.String())
		}
	}
	runCases(t, nil, []cliCase{
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command`, false},
		{"unreachable", []string{"sku", "A", "--url", "http://127.0.0.1:1"}, 1, "", `(?s)no answer.*Is the service running at http://127.0.0.1:1`, false},
	})
	// STOCKD_URL is the default --url.
	e2e.ConfigureLocations(t, s.Client, "w1")
	t.Setenv("STOCKD_URL", s.URL)
	stdout.Reset()
	stderr.Reset()
	if code := Run(context.Background(), []string{"receive", "--sku", "E", "--location", "w1", "--quantity", "1"}, &stdout, &stderr); code != 0 {
		t.Fatalf("receive with STOCKD_URL: %d %s", code, stderr.String())
	}
	// STOCKD_KEY is the default --key; the key's name is the actor.
	keys, tokens := e2e.NewKeys(t, map[string][]stockd.Scope{"ops-bot": {stockd.ScopeStockWrite}})
	keyed := e2e.Start(t, e2e.Options{Keys: keys})
	must(keyed.Engine.ConfigureLocation(context.Background(), stockd.ConfigureLocation{ID: "w1", Kind: stockd.KindWarehouse, Priority: 1}))
	t.Setenv("STOCKD_URL", keyed.URL)
	if code := Run(context.Background(), []string{"receive", "--sku", "E", "--location", "w1", "--quantity", "1"}, &stdout, &stderr); code != exitRejected {
		t.Errorf("receive without a key: exit %d, want %d (refused)", code, exitRejected)
	}
	t.Setenv("STOCKD_KEY", tokens["ops-bot"])
	if code := Run(context.Background(), []string{"receive", "--sku", "E", "--location", "w1", "--quantity", "1"}, &stdout, &stderr); code != 0 {
		t.Fatalf("receive with STOCKD_KEY: %d %s", code, stderr.String())
	}
	if code := Run(context.Background(), []string{"sku", "E"}, &stdout, &stderr); code != exitRejected {
		t.Errorf("ops-bot holds no stock:read, yet read the SKU: exit %d", code)
	}
	page := must(keyed.Engine.History(context.Background(), "E", stockd.HistoryQuery{}))
	// The receipt and the BackInStock it caused: both name the key.
	if len(page.Events) != 2 || page.Events[0].Actor != "ops-bot" || page.Events[1].Actor != "ops-bot" {
		t.Errorf("the key's name is not the actor: %+v", page.Events)
	}
	t.Setenv("STOCKD_URL", s.URL)
	t.Setenv("STOCKD_KEY", "")
	// A 5xx or unexpected answer is a failure (1), not a refusal.
	bad := e2e.Start(t, e2e.Options{NoReadModel: true})
	runCases(t, bad, []cliCase{
		{"read model down", []string{"availability", "A"}, 1, "", `read model is not running \(unavailable\)`, false},
	})
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImport(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1", "w2")
	ctx := context.Background()
	good := writeFile(t, "delivery.csv", "sku,quantity,best_before,lot\nA,10,2099-03-15,L1\nB,5,,\nA,2,2099-01-01,L0\n")
	runCases(t, s, []cliCase{
		{"first import", []string{"import", "--location", "w1", good}, 0, `imported .*delivery.csv as batch delivery.csv \(sha256 [0-9a-f]{12}\): 3 row\(s\): 3 received, 0 already imported`, "", false},
		{"second import", []string{"import", "--location", "w1", good}, 0, `3 row\(s\): 0 received, 3 already imported`, "", false},
		{"second import json", []string{"import", "--location", "w1", "--json", good}, 0, `"already_imported": 3`, "", true},
	})
	if st := must(s.Client.SKU(ctx, "A", stockd.AsOf{})); st.OnHand != 12 {
		t.Errorf("A after importing twice = %+v, want on hand 12", st)
	}
	if st := must(s.Client.SKU(ctx, "B", stockd.AsOf{})); st.OnHand != 5 {
		t.Errorf("B after importing twice = %+v, want on hand 5", st)
	}
	// The same rows in another file are another delivery.
	other := writeFile(t, "delivery2.csv", "quantity,location,sku\n7,w2,A\n")
	runCases(t, s, []cliCase{
		{"other file", []string{"import", other}, 0, `1 row\(s\): 1 received`, "", false},
	})

	// Every bad row is reported by line, and nothing is sent.
	bad := writeFile(t, "bad.csv", "ingredient,quantity,best_before\nC,3,2099-01-01\nC,zero,2099-01-01\nbad\u200bsku,1,\nC,-4,\nC,2,31/12/2099\nC,1,2099-01-01,extra\n\"C,1\n")
	code, out, errOut := run(t, s, "import", "--location", "w1", bad)
	if code != 1 {
		t.Errorf("import with bad rows: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		`bad.csv:3: quantity "zero" is not a whole number`,
		`bad.csv:4: sku contains U+200B, a format character (invisible)`,
		`bad.csv:5: quantity -4 must be between 1`,
		`bad.csv:6: best_before "31/12/2099" is not a date`,
		`bad.csv:7: 4 field(s), but the header has 3`,
		`bad.csv:8: `,
		`6 bad row(s) in`,
		`nothing was sent`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if _, err := s.Client.SKU(ctx, "C", stockd.AsOf{}); stockd.ErrorCode(err) != stockd.CodeNotFound {
		t.Errorf("a file with bad rows sent something: %v", err)
	}
	// With --skip-bad the good row goes, the bad ones are still reported.
	code, out, errOut = run(t, s, "import", "--location", "w1", "--skip-bad", bad)
	if code != 0 || !strings.Contains(out, "7 row(s): 1 received, 0 already imported, 6 bad row(s) skipped") || !strings.Contains(errOut, "bad.csv:3:") {
		t.Errorf("import --skip-bad: exit %d\n%s\n%s", code, out, errOut)
	}
	if st := must(s.Client.SKU(ctx, "C", stockd.AsOf{})); st.OnHand != 3 {
		t.Errorf("C after --skip-bad = %+v", st)
	}
	// Rows without a location and no --location are bad rows.
	noLoc := writeFile(t, "noloc.csv", "sku,quantity\nD,1\n")
	runCases(t, s, []cliCase{
		{"no location", []string{"import", noLoc}, 1, "", `noloc.csv:2: no location: add a location column or pass --location`, false},
		{"no header", []string{"import", writeFile(t, "nohead.csv", "A,1,2099-01-01\n")}, 1, "", `unknown column "A"`, false},
		{"missing column", []string{"import", writeFile(t, "nocol.csv", "sku,best_before\nA,2099-01-01\n")}, 1, "", `no quantity column`, false},
		{"empty file", []string{"import", writeFile(t, "empty.csv", "")}, 1, "", `the file is empty`, false},
		{"missing file", []string{"import", filepath.Join(t.TempDir(), "nope.csv")}, 1, "", `no such file`, false},
		{"no file", []string{"import"}, 2, "", `name one CSV file`, false},
	})
}

// TestImportSeedSample imports the supplier sample of seed 001 (pizza
// ingredients, header ingredient,quantity,best_before) as it is printed
// there, on a server whose clock is set
// to when the sample was fresh; its lots expire when that clock reaches
// today. Imported today, its rows are refused: their dates have passed.
func TestImportSeedSample(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2018, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	s := e2e.Start(t, e2e.Options{Engine: engine.Options{Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }}})
	e2e.ConfigureLocations(t, s.Client, "kitchen")
	sample := "ingredient,quantity,best_before\npepperoni,2000,2019-03-15\nmushroom,1000,2018-11-30\npineapple,500,2018-03-15\nham,3000,2018-12-31\n"
	if seed, err := os.ReadFile("/work/shared/seeds/001_b6ce5bfdd53de691.txt"); err == nil && !strings.Contains(string(seed), sample) {
		t.Fatalf("the sample no longer matches seed 001")
	}
	p := writeFile(t, "pizza.csv", sample)
	runCases(t, s, []cliCase{
		{"seed sample", []string{"import", "--location", "kitchen", p}, 0, `4 row\(s\): 4 received, 0 already imported`, "", false},
		{"seed sample again", []string{"import", "--location", "kitchen", p}, 0, `4 row\(s\): 0 received, 4 already imported`, "", false},
	})
	ctx := context.Background()
	for _, sku := range []string{"pepperoni", "mushroom", "pineapple", "ham"} {
		page := must(s.Client.History(ctx, sku, stockd.HistoryQuery{}))
		if len(page.Events) == 0 || page.Events[0].Type() != stockd.TypeStockReceived || !strings.HasPrefix(page.Events[0].CommandID, "imp-") {
			t.Errorf("%s history = %+v", sku, page.Events)
		}
	}
	// Today the sample's dates are long past: its lots expire at once.
	now.Store(time.Now().UnixNano())
	s.Engine.Poke()
	deadline := time.Now().Add(10 * time.Second)
	for must(s.Client.SKU(ctx, "ham", stockd.AsOf{})).OnHand != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the expired lot of ham stayed on hand")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A row with such a date delivered today is refused, and says why.
	today := writeFile(t, "pizza-today.csv", "ingredient,quantity,best_before\nham,10,2018-12-31\n")
	runCases(t, s, []cliCase{
		{"past date today", []string{"import", "--location", "kitchen", today}, 3, `1 row\(s\): 0 received, 0 already imported, 1 refused`, `pizza-today.csv:2: refused: best_before 2018-12-31 has already passed: the lot would expire at once`, false},
	})
}

// TestImportLarge imports more rows than one batch holds.
func TestImportLarge(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1")
	var b strings.Builder
	b.WriteString("sku,quantity,location\n")
	for i := range 2500 {
		b.WriteString("bulk-")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(",1,w1\n")
	}
	p := writeFile(t, "big.csv", b.String())
	runCases(t, s, []cliCase{
		{"large", []string{"import", p}, 0, `2500 row\(s\): 2500 received, 0 already imported`, "", false},
		{"large again", []string{"import", p}, 0, `2500 row\(s\): 0 received, 2500 already imported`, "", false},
	})
	var total int64
	for i := range 7 {
		total += must(s.Client.SKU(context.Background(), "bulk-"+strings.Repeat("x", i), stockd.AsOf{})).OnHand
	}
	if total != 2500 {
		t.Errorf("on hand over the bulk SKUs = %d, want 2500", total)
	}
}

// TestBenchEmbedded checks the bench wiring: the embedded server starts on a
// free port and answers.
func TestBenchEmbedded(t *testing.T) {
	url, stop, err := startEmbedded(context.Background(), t.TempDir(), "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	code, out, errOut := run(t, nil, "location", "list", "--url", url)
	if code != 0 {
		t.Fatalf("location list against the embedded server: %d %s %s", code, out, errOut)
	}
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"bench", "--help"}, &stdout, &stderr); code != 0 {
		t.Errorf("bench --help: %d %s %s", code, stdout.String(), stderr.String())
	}
}
