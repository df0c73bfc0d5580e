package api

import (
	"context"

	"github.com/stockd/stockd"
)

// ChangeRequest is PATCH /v1/reservations/{id}: the lines the held
// reservation is to hold from now on, all or nothing, and optionally a new
// TTL (the deadline is kept without one).
type ChangeRequest struct {
	ID             string               `json:"-" path:"id"`
	TTL            string               `json:"ttl,omitempty"`
	Region         string               `json:"region,omitempty"`
	Lines          []stockd.ReserveLine `json:"lines"`
	IdempotencyKey string               `json:"-" header:"Idempotency-Key"`
}

// Command returns the change the request asks for.
func (r *ChangeRequest) Command() (stockd.ChangeReservation, error) {
	c := stockd.ChangeReservation{ID: r.ID, Region: r.Region, Lines: r.Lines, Key: r.IdempotencyKey}
	if r.TTL != "" {
		ttl, err := Duration("ttl", r.TTL)
		if err != nil {
			return c, err
		}
		c.TTL = ttl
	}
	return c, nil
}

// Change is PATCH /v1/reservations/{id}.
var Change = declare(&Endpoint[ChangeRequest, stockd.Reservation]{
	Operation: Operation{Name: "changeReservation", Method: "PATCH", Path: "/v1/reservations/{id}", Scope: stockd.ScopeReservationsWrite, Summary: "Change a held reservation's lines"},
	Call: func(ctx context.Context, s stockd.API, r *ChangeRequest) (stockd.Reservation, bool, error) {
		c, err := r.Command()
		if err != nil {
			return stockd.Reservation{}, false, err
		}
		v, err := s.Change(ctx, c)
		return v, false, err
	},
})
