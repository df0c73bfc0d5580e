package client

import (
	"context"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// Change replaces a held reservation's lines, all or nothing, with
// PATCH /v1/reservations/{id}. A zero TTL keeps the deadline; cmd.Key, when
// set, is sent as the Idempotency-Key header.
func (c *Client) Change(ctx context.Context, cmd stockd.ChangeReservation) (stockd.Reservation, error) {
	lines := cmd.Lines
	if lines == nil {
		lines = []stockd.ReserveLine{}
	}
	req := &api.ChangeRequest{ID: cmd.ID, Region: cmd.Region, Lines: lines, IdempotencyKey: cmd.Key}
	if cmd.TTL != 0 {
		req.TTL = api.FormatDuration(cmd.TTL)
	}
	r, _, err := call(ctx, c, api.Change, req)
	return r, err
}
