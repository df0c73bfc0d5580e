package client

import (
	"context"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// ExpectReceipt records incoming stock with POST /v1/expected-receipts.
func (c *Client) ExpectReceipt(ctx context.Context, cmd stockd.ExpectReceipt) (stockd.ExpectedReceipt, bool, error) {
	return call(ctx, c, api.ExpectReceipt, &api.ExpectedReceiptRequest{
		ID: cmd.ID, SKU: cmd.SKU, Location: cmd.Location, Quantity: cmd.Quantity, ExpectedAt: cmd.ExpectedAt,
	})
}

// ArriveExpected books an expected receipt into stock with
// POST /v1/expected-receipts/{id}/arrive.
func (c *Client) ArriveExpected(ctx context.Context, cmd stockd.ArriveExpected) (stockd.ExpectedReceipt, error) {
	v, _, err := call(ctx, c, api.ArriveExpected, &api.ArriveExpectedRequest{
		ID: cmd.ID, Quantity: cmd.Quantity, Lot: cmd.Lot, BestBefore: cmd.BestBefore,
	})
	return v, err
}

// CancelExpected cancels an expected receipt with
// POST /v1/expected-receipts/{id}/cancel.
func (c *Client) CancelExpected(ctx context.Context, cmd stockd.CancelExpected) (stockd.ExpectedReceipt, error) {
	v, _, err := call(ctx, c, api.CancelExpected, &api.IDRequest{ID: cmd.ID})
	return v, err
}

// GetExpectedReceipt reads an expected receipt with
// GET /v1/expected-receipts/{id}.
func (c *Client) GetExpectedReceipt(ctx context.Context, id string) (stockd.ExpectedReceipt, error) {
	v, _, err := call(ctx, c, api.GetExpectedReceipt, &api.IDRequest{ID: id})
	return v, err
}
