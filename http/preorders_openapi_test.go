package http

import (
	"context"

	"github.com/stockd/stockd"
)

// The incoming stock operations of the OpenAPI test double.

func (oaFakeAPI) ExpectReceipt(context.Context, stockd.ExpectReceipt) (stockd.ExpectedReceipt, bool, error) {
	return oaFilled(stockd.ExpectedReceipt{}), true, nil
}

func (oaFakeAPI) ArriveExpected(context.Context, stockd.ArriveExpected) (stockd.ExpectedReceipt, error) {
	return oaFilled(stockd.ExpectedReceipt{}), nil
}

func (oaFakeAPI) CancelExpected(context.Context, stockd.CancelExpected) (stockd.ExpectedReceipt, error) {
	return oaFilled(stockd.ExpectedReceipt{}), nil
}

func (oaFakeAPI) GetExpectedReceipt(context.Context, string) (stockd.ExpectedReceipt, error) {
	return oaFilled(stockd.ExpectedReceipt{}), nil
}

func init() {
	oaEventData = append(oaEventData, stockd.ExpectedReceiptRecorded{}, stockd.ExpectedReceiptArrived{}, stockd.ExpectedReceiptCancelled{})
}
