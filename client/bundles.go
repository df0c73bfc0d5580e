package client

import (
	"context"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// DefineBundle makes a SKU a bundle with PUT /v1/bundles/{sku}.
func (c *Client) DefineBundle(ctx context.Context, cmd stockd.DefineBundle) (stockd.Bundle, error) {
	b, _, err := call(ctx, c, api.DefineBundle, &api.BundleRequest{SKU: cmd.SKU, Components: cmd.Components})
	return b, err
}

// Bundle returns a bundle's definition with GET /v1/bundles/{sku}.
func (c *Client) Bundle(ctx context.Context, sku string) (stockd.Bundle, error) {
	b, _, err := call(ctx, c, api.GetBundle, &api.BundleSKURequest{SKU: sku})
	return b, err
}
