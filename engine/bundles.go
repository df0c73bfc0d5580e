package engine

import (
	"context"

	"github.com/stockd/stockd"
)

func bundleOf(s *stockd.State, c stockd.DefineBundle) (stockd.Bundle, error) {
	return s.BundleResult(c.SKU)
}

// DefineBundle makes a SKU a bundle of components, or changes its
// definition. It is decided in stockd.LocationPartition, whose log holds the
// catalog every partition learns.
func (e *Engine) DefineBundle(ctx context.Context, c stockd.DefineBundle) (stockd.Bundle, error) {
	b, _, err := run(ctx, e, c, bundleOf)
	return b, err
}

// Bundle returns a bundle's definition. A bundle this node does not know
// yet may have been defined through another node a moment ago: it looks at
// the catalog again before answering not found.
func (e *Engine) Bundle(ctx context.Context, sku string) (stockd.Bundle, error) {
	if b, ok := e.bundle(ctx, sku); ok {
		return b, nil
	}
	return stockd.Bundle{}, stockd.Errorf(stockd.CodeNotFound, "bundle %q not found", sku)
}

// bundle returns the definition of sku if it is a bundle, looking at the
// catalog again (see refreshLocations) when this node does not know it.
func (e *Engine) bundle(ctx context.Context, sku string) (stockd.Bundle, bool) {
	seen := e.locs.Load()
	if b, ok := seen.Bundles[sku]; ok {
		return b, true
	}
	if e.refreshLocations(ctx, seen) {
		b, ok := e.locs.Load().Bundles[sku]
		return b, ok
	}
	return stockd.Bundle{}, false
}

// SKU returns a SKU's state now, or as of a past time or position. A
// bundle's is derived from its components' (stockd.BundleStock). A SKU
// with no events of its own may be a bundle defined through another node
// a moment ago: the catalog is looked at again before answering not found,
// not on every read.
func (e *Engine) SKU(ctx context.Context, sku string, at stockd.AsOf) (stockd.SKUState, error) {
	if b, ok := e.locs.Load().Bundles[sku]; ok {
		return stockd.DeriveBundleSKU(ctx, b, at, e.stockOf)
	}
	v, err := e.stockOf(ctx, sku, at)
	if stockd.IsCode(err, stockd.CodeNotFound) {
		if b, ok := e.bundle(ctx, sku); ok {
			return stockd.DeriveBundleSKU(ctx, b, at, e.stockOf)
		}
	}
	return v, err
}

// expandedLines returns the lines a cart holds once its bundles are
// expanded with the catalog this node knows, for telling which stock a
// refusal is about; c.Lines if that fails.
func (e *Engine) expandedLines(c stockd.Reserve) []stockd.ReserveLine {
	lines, _, err := e.locs.Load().Bundles.Expand(c.Lines, e.opts.Limits)
	if err != nil {
		return c.Lines
	}
	return lines
}

// KnownBundle returns the definition of sku if this node knows it is a
// bundle, without looking at the catalog again: for reads of any SKU,
// which must not cost a read of the store each.
func (e *Engine) KnownBundle(sku string) (stockd.Bundle, bool) {
	b, ok := e.locs.Load().Bundles[sku]
	return b, ok
}
