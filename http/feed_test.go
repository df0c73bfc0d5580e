package http

import (
	"context"

	"github.com/stockd/stockd"
)

// The feed's side of oaFakeAPI: every answer filled in, like the rest.

func (oaFakeAPI) FeedPage(context.Context, stockd.FeedQuery) (stockd.FeedPage, error) {
	e := oaFilled(stockd.Event{})
	e.Data = oaFilled(stockd.StockReceived{})
	return stockd.FeedPage{Events: []stockd.Event{e}, Next: stockd.FeedCursor{3, 1}.String()}, nil
}

func (oaFakeAPI) PutSubscription(context.Context, string, string) (stockd.Subscription, bool, error) {
	return oaFilled(stockd.Subscription{}), true, nil
}

func (oaFakeAPI) Subscription(context.Context, string) (stockd.Subscription, error) {
	return oaFilled(stockd.Subscription{}), nil
}

func (oaFakeAPI) Subscriptions(context.Context, stockd.SubscriptionListQuery) (stockd.SubscriptionPage, error) {
	return oaFilled(stockd.SubscriptionPage{}), nil
}

func (f oaFakeAPI) SubscriptionEvents(ctx context.Context, _ string, limit int) (stockd.FeedPage, error) {
	return f.FeedPage(ctx, stockd.FeedQuery{Limit: limit})
}

func (oaFakeAPI) AckSubscription(context.Context, string, string) (stockd.Subscription, error) {
	return oaFilled(stockd.Subscription{}), nil
}

func (oaFakeAPI) ResetSubscription(context.Context, string, string) (stockd.Subscription, error) {
	return oaFilled(stockd.Subscription{}), nil
}

func (oaFakeAPI) DeleteSubscription(context.Context, string) (stockd.Subscription, error) {
	return oaFilled(stockd.Subscription{}), nil
}
