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

// freshPreorders brings up to date the preorder lines of a held reservation
// that another partition holds. The home learns where such a line is held
// when it is held, and nothing after: an arrival there turns its preorder
// units into ordinary holds without a saga step. The participant's own view
// of the line is read instead; a participant this node does not serve (or
// that does not answer) leaves the line as the home knows it.
func (e *Engine) freshPreorders(ctx context.Context, r *stockd.Reservation) {
	if r.Status != stockd.StatusHeld {
		return
	}
	for i := range r.Lines {
		l := &r.Lines[i]
		if l.Preorder == 0 {
			continue
		}
		p := stockd.PartitionOf(l.SKU, len(e.slots))
		held, err := queryAs(ctx, e, p, func(s *stockd.State) ([]stockd.ReservationLine, error) {
			return s.HeldLines(r.ID), nil
		})
		if err != nil {
			continue
		}
		for _, h := range held {
			if h.SKU == l.SKU {
				l.Allocations, l.Preorder, l.Preorders = h.Allocations, h.Preorder, h.Preorders
			}
		}
	}
}
