package api

import (
	"context"

	"github.com/stockd/stockd"
)

// ConsumersRequest is GET /v1/consumers.
type ConsumersRequest struct{}

// ConsumerNameRequest names one consumer by the {name} of its route; names
// hold '/', which the client escapes.
type ConsumerNameRequest struct {
	Name string `json:"name,omitempty" path:"name"`
}

// The consumer operations need the admin scope: deleting a consumer's
// checkpoints makes it start again from the beginning if it ever runs again.
var (
	ListConsumers = declare(&Endpoint[ConsumersRequest, stockd.ConsumerList]{
		Operation: Operation{Name: "listConsumers", Method: "GET", Path: "/v1/consumers", Scope: stockd.ScopeAdmin, Summary: "List the checkpointed consumers of the log"},
		Call: func(ctx context.Context, s stockd.API, _ *ConsumersRequest) (stockd.ConsumerList, bool, error) {
			l, err := s.ListConsumers(ctx)
			return l, false, err
		},
	})
	DeleteConsumer = declare(&Endpoint[ConsumerNameRequest, stockd.Consumer]{
		Operation: Operation{Name: "deleteConsumer", Method: "DELETE", Path: "/v1/consumers/{name}", Scope: stockd.ScopeAdmin, Summary: "Delete the checkpoints of a consumer that is gone"},
		Call: func(ctx context.Context, s stockd.API, r *ConsumerNameRequest) (stockd.Consumer, bool, error) {
			c, err := s.DeleteConsumer(ctx, r.Name)
			return c, false, err
		},
	})
)
