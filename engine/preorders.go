package engine

import (
	"context"

	"github.com/stockd/stockd"
)

// Incoming stock: expected receipts, decided in their SKU's partition like
// receipts, and found again by their id's key like transfers.

// ExpectReceipt records incoming stock.
func (e *Engine) ExpectReceipt(ctx context.Context, c stockd.ExpectReceipt) (stockd.ExpectedReceipt, bool, error) {
	return run(ctx, e, c, (*stockd.State).ExpectedReceiptResult)
}

// ArriveExpected books an expected receipt into stock.
func (e *Engine) ArriveExpected(ctx context.Context, c stockd.ArriveExpected) (stockd.ExpectedReceipt, error) {
	v, _, err := run(ctx, e, c, (*stockd.State).ExpectedArrivalResult)
	return v, err
}

// CancelExpected cancels an expected receipt that has not arrived.
func (e *Engine) CancelExpected(ctx context.Context, c stockd.CancelExpected) (stockd.ExpectedReceipt, error) {
	v, _, err := run(ctx, e, c, (*stockd.State).ExpectedCancelResult)
	return v, err
}

// GetExpectedReceipt returns an expected receipt as it is now.
func (e *Engine) GetExpectedReceipt(ctx context.Context, id string) (stockd.ExpectedReceipt, error) {
	key := stockd.Key{Kind: stockd.KindExpectedReceipt, ID: id}
	return getEntity(ctx, e, key, func(s *stockd.State) (stockd.ExpectedReceipt, bool) { return s.ExpectedReceiptView(id) })
}
