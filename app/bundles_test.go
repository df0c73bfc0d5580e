package app

import (
	"testing"

	"github.com/stockd/stockd"
)

// TestAvailabilityOfABundleIsDerivedFromItsComponents: a bundle among the
// SKUs asked for is answered from its components' items, in the order
// asked, and says it is derived; the other SKUs are answered as read.
func TestAvailabilityOfABundleIsDerivedFromItsComponents(t *testing.T) {
	kit := stockd.Bundle{SKU: "K", Components: []stockd.BundleComponent{{SKU: "A", Quantity: 2}, {SKU: "C", Quantity: 1}}}
	bundle := func(sku string) (stockd.Bundle, bool) { return kit, sku == "K" }
	var asked []string
	read := func(skus []string) stockd.Availability {
		asked = skus
		out := stockd.Availability{}
		for _, s := range skus {
			item := stockd.AvailabilityItem{SKU: s, Locations: []stockd.LocationAvailability{}}
			switch s {
			case "A":
				item.Available, item.Locations = 7, []stockd.LocationAvailability{{Location: "w1", Available: 7}}
			case "C":
				item.Available, item.Locations = 5, []stockd.LocationAvailability{{Location: "w1", Available: 5}}
			}
			out.Items = append(out.Items, item)
		}
		return out
	}
	got := bundleAvailability([]string{"X", "K", "A"}, bundle, read)
	if len(asked) != 5 {
		t.Fatalf("read model asked for %v, want the SKUs and the bundle's components", asked)
	}
	if len(got.Items) != 3 || got.Items[0].SKU != "X" || got.Items[2].SKU != "A" || got.Items[2].Available != 7 {
		t.Fatalf("items = %+v", got.Items)
	}
	k := got.Items[1]
	if k.SKU != "K" || !k.Derived || k.Available != 3 || len(k.Locations) != 1 || k.Locations[0].Available != 3 {
		t.Fatalf("bundle item = %+v, want 3 derived at w1", k)
	}
}
