package main

import (
	"strings"
	"testing"

	"github.com/stockd/stockd/e2e"
)

func init() {
	// po-2 is seeded to be cancelled; po-1 is made, shown and arrives.
	cliOperations["postExpectedReceipt"] = []string{"expected", "--id", "po-1", "--sku", "B", "--location", "w1", "-q", "5", "--at", "2027-04-01T08:00:00Z"}
	cliOperations["getExpectedReceipt"] = []string{"expected", "show", "po-1"}
	cliOperations["arriveExpectedReceipt"] = []string{"expected", "arrive", "po-1", "-q", "4"}
	cliOperations["cancelExpectedReceipt"] = []string{"expected", "cancel", "po-2"}
}

// TestExpectedCommandsPreorderAndArrive drives a preorder through the CLI: a
// SKU configured with --preorders is reserved beyond its stock against an
// expected receipt, which then arrives.
func TestExpectedCommandsPreorderAndArrive(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	for _, args := range [][]string{
		{"location", "set", "w1", "--kind", "warehouse", "--priority", "1"},
		{"sku", "config", "A", "--preorders"},
		{"receive", "--id", "r-1", "--sku", "A", "--location", "w1", "-q", "1"},
		{"expected", "--id", "po-1", "--sku", "A", "--location", "w1", "-q", "5", "--at", "2027-04-01T08:00:00Z"},
		{"reserve", "--id", "cart-1", "A=3"},
	} {
		if code, _, errOut := run(t, s, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	if code, out, errOut := run(t, s, "expected", "show", "po-1"); code != 0 || !strings.Contains(out, "2 promised") {
		t.Fatalf("expected show: exit %d: %s%s", code, out, errOut)
	}
	if code, out, errOut := run(t, s, "expected", "arrive", "po-1"); code != 0 || !strings.Contains(out, "arrived (5 arrived") {
		t.Fatalf("expected arrive: exit %d: %s%s", code, out, errOut)
	}
	code, out, errOut := run(t, s, "reservation", "show", "cart-1", "--json")
	if code != 0 || !strings.Contains(strings.ReplaceAll(out, " ", ""), `"preorder":0`) {
		t.Fatalf("the reservation after arrival: exit %d: %s%s; want preorder 0", code, out, errOut)
	}
	if code, _, errOut := run(t, s, "expected", "cancel", "po-1"); code == 0 {
		t.Fatalf("cancel after arrival succeeded: %s", errOut)
	}
	if code, _, errOut := run(t, s, "expected", "--sku", "A", "--location", "w1", "-q", "5", "--at", "soon"); code == 0 {
		t.Fatalf("an --at that is not a time was accepted: %s", errOut)
	}
}
