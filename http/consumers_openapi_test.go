package http

import (
	"context"

	"github.com/stockd/stockd"
)

// oaFakeAPI's consumer operations, for the OpenAPI tests: every field set.

func (oaFakeAPI) ListConsumers(context.Context) (stockd.ConsumerList, error) {
	return stockd.ConsumerList{Items: []stockd.Consumer{{Name: "publish/nats", Running: true, Lag: 3}}}, nil
}

func (oaFakeAPI) DeleteConsumer(_ context.Context, name string) (stockd.Consumer, error) {
	return stockd.Consumer{Name: name, Running: true, Lag: 3}, nil
}
