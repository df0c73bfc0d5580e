package client

import (
	"context"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// ListConsumers returns every checkpointed consumer of the log with
// GET /v1/consumers.
func (c *Client) ListConsumers(ctx context.Context) (stockd.ConsumerList, error) {
	l, _, err := call(ctx, c, api.ListConsumers, &api.ConsumersRequest{})
	if l.Items == nil {
		l.Items = []stockd.Consumer{}
	}
	return l, err
}

// DeleteConsumer deletes the checkpoints of a consumer this server does not
// run with DELETE /v1/consumers/{name}, and returns it as it was.
func (c *Client) DeleteConsumer(ctx context.Context, name string) (stockd.Consumer, error) {
	v, _, err := call(ctx, c, api.DeleteConsumer, &api.ConsumerNameRequest{Name: name})
	return v, err
}
