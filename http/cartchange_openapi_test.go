package http

import (
	"context"

	"github.com/stockd/stockd"
)

// Change answers like Commit: "not-held" is a reservation no longer held.
func (oaFakeAPI) Change(_ context.Context, c stockd.ChangeReservation) (stockd.Reservation, error) {
	if c.ID == "not-held" {
		return stockd.Reservation{}, &stockd.Error{Code: stockd.CodeNotHeld, Message: `reservation "not-held" is committed`, Status: stockd.StatusCommitted}
	}
	return oaFilled(stockd.Reservation{}), nil
}

func init() { oaEventData = append(oaEventData, stockd.ReservationChanged{}) }

func init() {
	oaEventData = append(oaEventData, stockd.SagaChangeStarted{}, stockd.SagaChangeAcked{}, stockd.SagaChangeDecided{},
		stockd.SagaChangeGrown{}, stockd.SagaChangeTrimmed{})
}
