package api

import (
	"context"

	"github.com/stockd/stockd"
)

// BundleRequest is PUT /v1/bundles/{sku}: the bundle's components, each a
// SKU and the units of it one bundle takes.
type BundleRequest struct {
	SKU        string                   `json:"-" path:"sku"`
	Components []stockd.BundleComponent `json:"components"`
}

// BundleSKURequest names a bundle by the {sku} of its route.
type BundleSKURequest struct {
	SKU string `json:"-" path:"sku"`
}

// The operations of bundles. A definition answers 200 whether it was new,
// changed or the same again, as the other configuration routes do
// (PUT /v1/locations/{id}, PUT /v1/skus/{sku}/config).
var (
	DefineBundle = declare(&Endpoint[BundleRequest, stockd.Bundle]{
		Operation: Operation{Name: "putBundle", Method: "PUT", Path: "/v1/bundles/{sku}", Scope: stockd.ScopeStockWrite, Summary: "Define a bundle"},
		Call: func(ctx context.Context, s stockd.API, r *BundleRequest) (stockd.Bundle, bool, error) {
			b, err := s.DefineBundle(ctx, stockd.DefineBundle{SKU: r.SKU, Components: r.Components})
			return b, false, err
		},
	})
	GetBundle = declare(&Endpoint[BundleSKURequest, stockd.Bundle]{
		Operation: Operation{Name: "getBundle", Method: "GET", Path: "/v1/bundles/{sku}", Scope: stockd.ScopeStockRead, Summary: "Get a bundle's definition"},
		Call: func(ctx context.Context, s stockd.API, r *BundleSKURequest) (stockd.Bundle, bool, error) {
			b, err := s.Bundle(ctx, r.SKU)
			return b, false, err
		},
	})
)
