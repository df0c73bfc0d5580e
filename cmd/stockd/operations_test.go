package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
	"github.com/stockd/stockd/e2e"
	"github.com/stockd/stockd/imports"
)

// cliOperations is, for every declared operation, a command line that
// carries it out against the seed of TestEveryOperationHasACommand.
var cliOperations = map[string][]string{
	"listLocations":      {"location", "list"},
	"putLocation":        {"location", "set", "w2", "--kind", "store", "--priority", "2"},
	"getLocation":        {"location", "show", "w1"},
	"putBundle":          {"bundle", "set", "kit", "A=1", "B=2"},
	"getBundle":          {"bundle", "show", "kit"},
	"listSKUs":           {"sku", "list"},
	"getSKU":             {"sku", "A"},
	"putSKUConfig":       {"sku", "config", "A", "--safety-stock", "1"},
	"getSKUEvents":       {"sku", "history", "A"},
	"postReceipt":        {"receive", "--id", "r-2", "--sku", "A", "--location", "w1", "-q", "3"},
	"postAdjustment":     {"adjust", "--id", "a-1", "--sku", "A", "--location", "w1", "--delta", "-1", "--reason", "damaged"},
	"postCount":          {"count", "--id", "c-1", "--sku", "B", "--location", "w1", "--on-hand", "4"},
	"postTransfer":       {"transfer", "--id", "t-2", "--sku", "A", "--from", "w1", "--to", "w2", "-q", "1"},
	"getTransfer":        {"transfer", "show", "t-1"},
	"arriveTransfer":     {"transfer", "arrive", "t-1"},
	"postReservation":    {"reserve", "--id", "cart-2", "--customer", "c-9", "A=1"},
	"listReservations":   {"reservation", "list", "--customer", "c-9"},
	"getReservation":     {"reservation", "show", "cart-1"},
	"commitReservation":  {"commit", "cart-1"},
	"releaseReservation": {"release", "cart-3"},
	"extendReservation":  {"extend", "cart-4", "--ttl", "20m"},
	"getAvailability":    {"availability", "A", "B"},
	"postBatch":          {"batch", "BATCH"},

	// The intake, in declaration order: a command is shown after it is
	// submitted, a report after its file is imported.
	"postCommand": {"commands", "submit", "receive", `{"id":"r-q1","sku":"A","location":"w1","quantity":1}`, "--id", "cmd-1", "--wait"},
	"getCommand":  {"commands", "show", "cmd-1"},
	"postImport":  {"import", "--location", "w1", "DELIVERY"},
	"listImports": {"imports", "list"},
	"getImport":   {"imports", "show", "REPORT"},

	"getFeed":               {"feed", "--limit", "5"},
	"listSubscriptions":     {"subscription", "list"},
	"putSubscription":       {"subscription", "create", "bi", "--from", "now"},
	"getSubscription":       {"subscription", "show", "erp"},
	"deleteSubscription":    {"subscription", "delete", "old"},
	"getSubscriptionEvents": {"subscription", "events", "erp"},
	"ackSubscription":       {"subscription", "ack", "erp", stockd.FeedCursor(make([]uint64, 8)).String()},
	"resetSubscription":     {"subscription", "reset", "erp", "--to", "beginning"},
	"listConsumers":         {"consumers", "list"},
	"deleteConsumer":        {"consumers", "delete", "publish/gone"},
	"getCluster":            {"cluster"},
	// Webhooks, in declaration order: put first, delete last.
	"putWebhook":               {"webhooks", "put", "shop", "https://hooks.invalid/stockd", "--secret", "s", "--type", "StockReceived"},
	"listWebhooks":             {"webhooks", "list"},
	"getWebhook":               {"webhooks", "show", "shop"},
	"listWebhookDeadLetters":   {"webhooks", "dead-letters", "shop"},
	"replayWebhookDeadLetters": {"webhooks", "replay", "shop"},
	"deleteWebhook":            {"webhooks", "delete", "shop"},
}

// TestEveryOperationHasACommand keeps the CLI in step with the operation
// table: every declared operation has a command, and running that command
// against the real server is seen by the server's own request metrics on
// exactly that operation's route.
func TestEveryOperationHasACommand(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	delivery := filepath.Join(t.TempDir(), "delivery.csv")
	if err := os.WriteFile(delivery, []byte("sku,quantity\nC,5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// stockd import's file is new content: its batch is its name.
	report := imports.ReportID(imports.SHA256([]byte("sku,quantity\nC,5\n")), "delivery.csv")
	batch := filepath.Join(t.TempDir(), "ops.json")
	if err := os.WriteFile(batch, []byte(`{"operations":[{"op":"receive","body":{"id":"r-b1","sku":"B","location":"w1","quantity":2}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"location", "set", "w1", "--kind", "warehouse", "--priority", "1"},
		{"location", "set", "w3", "--kind", "store", "--priority", "3"},
		{"receive", "--id", "r-1", "--sku", "A", "--location", "w1", "-q", "20"},
		{"transfer", "--id", "t-1", "--sku", "A", "--from", "w1", "--to", "w3", "-q", "1"},
		{"reserve", "--id", "cart-1", "--customer", "c-9", "A=1"},
		{"reserve", "--id", "cart-3", "A=1"},
		{"reserve", "--id", "cart-4", "A=1"},
		{"expected", "--id", "po-2", "--sku", "A", "--location", "w1", "-q", "5", "--at", "2027-04-01T08:00:00Z"},
		{"subscription", "create", "erp", "--from", "beginning"},
		{"subscription", "create", "old", "--from", "now"},
	} {
		if code, _, errOut := run(t, s, args...); code != 0 {
			t.Fatalf("seed %v: exit %d: %s", args, code, errOut)
		}
	}
	// A publisher that is gone left a checkpoint behind.
	if err := s.Store.SetCheckpoint(t.Context(), "publish/gone", 0, stockd.Checkpoint{Position: 1}); err != nil {
		t.Fatal(err)
	}
	ops := append([]*api.Operation{&api.Batch}, opsOf(api.Operations)...)
	declared := map[string]bool{}
	for _, op := range ops {
		declared[op.Name] = true
		args, ok := cliOperations[op.Name]
		if !ok {
			t.Errorf("%s (%s) has no CLI command", op.Name, op.Pattern())
			continue
		}
		args = slices.Clone(args)
		for i, a := range args {
			switch a {
			case "DELIVERY":
				args[i] = delivery
			case "BATCH":
				args[i] = batch
			case "REPORT":
				args[i] = report
			}
		}
		before := routeCount(t, s, op.Pattern())
		if code, out, errOut := run(t, s, args...); code != 0 {
			t.Errorf("stockd %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
			continue
		}
		if after := routeCount(t, s, op.Pattern()); after <= before {
			t.Errorf("stockd %s did not call %s", strings.Join(args, " "), op.Pattern())
		}
	}
	for name := range cliOperations {
		if !declared[name] {
			t.Errorf("cliOperations names %s, which no operation declares", name)
		}
	}
}

func opsOf(hs []api.Handler) []*api.Operation {
	out := make([]*api.Operation, len(hs))
	for i, h := range hs {
		out[i] = h.Op()
	}
	return out
}

// routeCount is how many requests the server has answered on route.
func routeCount(t *testing.T, s *e2e.Server, route string) float64 {
	t.Helper()
	n, err := s.Requests(route)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
