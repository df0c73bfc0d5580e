package app

import (
	"slices"

	"github.com/stockd/stockd"
)

// bundleAvailability answers an availability query whose SKUs may be
// bundles: a bundle has no stock of its own in the read model, so its
// components are asked for with the rest and its availability derived from
// theirs (stockd.BundleAvailability). The answer's freshness covers the
// components. Without bundles among skus it is read as it is.
func bundleAvailability(skus []string, bundle func(string) (stockd.Bundle, bool), read func([]string) stockd.Availability) stockd.Availability {
	defs := map[string]stockd.Bundle{}
	ask := skus
	for _, sku := range skus {
		if b, ok := bundle(sku); ok {
			if len(defs) == 0 {
				ask = slices.Clone(skus)
			}
			defs[sku] = b
			for _, c := range b.Components {
				ask = append(ask, c.SKU)
			}
		}
	}
	if len(defs) == 0 {
		return read(skus)
	}
	got := read(ask)
	items := make(map[string]stockd.AvailabilityItem, len(got.Items))
	for _, it := range got.Items {
		items[it.SKU] = it
	}
	out := stockd.Availability{Items: make([]stockd.AvailabilityItem, 0, len(skus)), AsOf: got.AsOf, Lag: got.Lag}
	seen := map[string]bool{}
	for _, sku := range skus {
		if seen[sku] {
			continue
		}
		seen[sku] = true
		b, ok := defs[sku]
		if !ok {
			out.Items = append(out.Items, items[sku])
			continue
		}
		comps := make([]stockd.AvailabilityItem, len(b.Components))
		for i, c := range b.Components {
			comps[i] = items[c.SKU]
		}
		out.Items = append(out.Items, stockd.BundleAvailability(b, comps))
	}
	return out
}
