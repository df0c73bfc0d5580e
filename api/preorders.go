package api

import (
	"context"
	"time"

	"github.com/stockd/stockd"
)

// ExpectedReceiptRequest is POST /v1/expected-receipts.
type ExpectedReceiptRequest struct {
	ID         string    `json:"id"`
	SKU        string    `json:"sku"`
	Location   string    `json:"location"`
	Quantity   int64     `json:"quantity"`
	ExpectedAt time.Time `json:"expected_at"`
}

// ArriveExpectedRequest is POST /v1/expected-receipts/{id}/arrive. Without
// a body, or without quantity, the quantity expected arrives.
type ArriveExpectedRequest struct {
	ID         string `json:"id,omitempty" path:"id"`
	Quantity   int64  `json:"quantity,omitempty"`
	Lot        string `json:"lot,omitempty"`
	BestBefore string `json:"best_before,omitempty"`
}

// The operations of incoming stock. They are not batchable: purchase order
// lines are few, and a batch answers only the entities it encodes by hand.
var (
	ExpectReceipt = declare(&Endpoint[ExpectedReceiptRequest, stockd.ExpectedReceipt]{
		Operation: Operation{Name: "postExpectedReceipt", Method: "POST", Path: "/v1/expected-receipts", Scope: stockd.ScopeStockWrite, Summary: "Record incoming stock", Creates: true},
		Call: func(ctx context.Context, s stockd.API, r *ExpectedReceiptRequest) (stockd.ExpectedReceipt, bool, error) {
			return s.ExpectReceipt(ctx, stockd.ExpectReceipt{ID: r.ID, SKU: r.SKU, Location: r.Location, Quantity: r.Quantity, ExpectedAt: r.ExpectedAt})
		},
	})
	GetExpectedReceipt = declare(&Endpoint[IDRequest, stockd.ExpectedReceipt]{
		Operation: Operation{Name: "getExpectedReceipt", Method: "GET", Path: "/v1/expected-receipts/{id}", Scope: stockd.ScopeStockRead, Summary: "Get an expected receipt"},
		Call: func(ctx context.Context, s stockd.API, r *IDRequest) (stockd.ExpectedReceipt, bool, error) {
			v, err := s.GetExpectedReceipt(ctx, r.ID)
			return v, false, err
		},
	})
	ArriveExpected = declare(&Endpoint[ArriveExpectedRequest, stockd.ExpectedReceipt]{
		Operation: Operation{Name: "arriveExpectedReceipt", Method: "POST", Path: "/v1/expected-receipts/{id}/arrive", Scope: stockd.ScopeStockWrite, Summary: "Book an expected receipt's arrival", OptionalBody: true},
		Call: func(ctx context.Context, s stockd.API, r *ArriveExpectedRequest) (stockd.ExpectedReceipt, bool, error) {
			v, err := s.ArriveExpected(ctx, stockd.ArriveExpected{ID: r.ID, Quantity: r.Quantity, Lot: r.Lot, BestBefore: r.BestBefore})
			return v, false, err
		},
	})
	CancelExpected = declare(&Endpoint[IDRequest, stockd.ExpectedReceipt]{
		Operation: Operation{Name: "cancelExpectedReceipt", Method: "POST", Path: "/v1/expected-receipts/{id}/cancel", Scope: stockd.ScopeStockWrite, Summary: "Cancel an expected receipt"},
		Call: func(ctx context.Context, s stockd.API, r *IDRequest) (stockd.ExpectedReceipt, bool, error) {
			v, err := s.CancelExpected(ctx, stockd.CancelExpected{ID: r.ID})
			return v, false, err
		},
	})
)
