package main

import (
	"context"
	"testing"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/e2e"
)

func TestBundleCommands(t *testing.T) {
	s := e2e.Start(t, e2e.Options{})
	e2e.ConfigureLocations(t, s.Client, "w1")
	ctx := context.Background()
	must3(s.Client.Receive(ctx, stockd.ReceiveStock{ID: "r-f", SKU: "frame", Location: "w1", Quantity: 3}))
	must3(s.Client.Receive(ctx, stockd.ReceiveStock{ID: "r-w", SKU: "wheel", Location: "w1", Quantity: 5}))
	runCases(t, s, []cliCase{
		{"bundle set", []string{"bundle", "set", "bike", "frame=1", "wheel=2"}, 0, `bundle bike = frame×1 \+ wheel×2`, "", false},
		{"bundle set again", []string{"bundle", "set", "bike", "frame=1", "wheel=2", "--json"}, 0, `"quantity": 2`, "", true},
		{"bundle show", []string{"bundle", "show", "bike"}, 0, `bundle bike = frame×1 \+ wheel×2`, "", false},
		{"bundle derived stock", []string{"sku", "bike", "--json"}, 0, `(?s)"available": 2.*"derived": true`, "", true},
		{"bundle nested", []string{"bundle", "set", "tandem", "bike=2"}, 3, "", `bundles do not nest`, false},
		{"bundle bad component", []string{"bundle", "set", "bike", "frame"}, 2, "", `not COMPONENT=QTY`, false},
		{"bundle no components", []string{"bundle", "set", "bike"}, 2, "", `at least one COMPONENT=QTY`, false},
		{"bundle unknown", []string{"bundle", "show", "frame"}, 3, "", `not_found`, false},
	})
}
