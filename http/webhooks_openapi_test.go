package http

import (
	"context"

	"github.com/stockd/stockd"
)

// oaFakeAPI's webhook operations, for the OpenAPI tests: every field set,
// and the webhook "missing" not found.

func (oaFakeAPI) PutWebhook(_ context.Context, cmd stockd.PutWebhook) (stockd.Webhook, bool, error) {
	return oaFilled(stockd.Webhook{}), true, nil
}

func (oaFakeAPI) GetWebhook(_ context.Context, name string) (stockd.Webhook, error) {
	if name == "missing" {
		return stockd.Webhook{}, stockd.Errorf(stockd.CodeNotFound, "no webhook %q", name)
	}
	return oaFilled(stockd.Webhook{}), nil
}

func (oaFakeAPI) ListWebhooks(context.Context, stockd.WebhookQuery) (stockd.WebhookPage, error) {
	return oaFilled(stockd.WebhookPage{}), nil
}

func (oaFakeAPI) DeleteWebhook(context.Context, string) (stockd.Webhook, error) {
	return oaFilled(stockd.Webhook{}), nil
}

func (oaFakeAPI) WebhookDeadLetters(context.Context, stockd.DeadLetterQuery) (stockd.DeadLetterPage, error) {
	return oaFilled(stockd.DeadLetterPage{}), nil
}

func (oaFakeAPI) ReplayWebhookDeadLetters(context.Context, stockd.ReplayDeadLetters) (stockd.DeadLetterReplay, error) {
	return oaFilled(stockd.DeadLetterReplay{}), nil
}
