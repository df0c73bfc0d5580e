package client

import (
	"context"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/api"
)

// PutWebhook creates or changes a webhook endpoint with
// PUT /v1/webhooks/{name}, and reports whether it was created. The answer
// never carries the secret.
func (c *Client) PutWebhook(ctx context.Context, cmd stockd.PutWebhook) (stockd.Webhook, bool, error) {
	w, created, err := call(ctx, c, api.PutWebhook, &api.WebhookRequest{Name: cmd.Name, URL: cmd.URL, Secret: cmd.Secret, Types: cmd.Types, From: cmd.From})
	return fixWebhook(w), created, err
}

// GetWebhook returns a webhook endpoint with GET /v1/webhooks/{name}.
func (c *Client) GetWebhook(ctx context.Context, name string) (stockd.Webhook, error) {
	w, _, err := call(ctx, c, api.GetWebhook, &api.WebhookNameRequest{Name: name})
	return fixWebhook(w), err
}

// ListWebhooks returns a page of webhook endpoints in name order with
// GET /v1/webhooks. Pass a page's Next as the After of the following query.
func (c *Client) ListWebhooks(ctx context.Context, q stockd.WebhookQuery) (stockd.WebhookPage, error) {
	p, _, err := call(ctx, c, api.ListWebhooks, &api.WebhookListRequest{After: q.After, Limit: limit(q.Limit)})
	if p.Items == nil {
		p.Items = []stockd.Webhook{}
	}
	for i := range p.Items {
		p.Items[i] = fixWebhook(p.Items[i])
	}
	return p, err
}

// DeleteWebhook deletes a webhook endpoint, its position and its dead
// letters with DELETE /v1/webhooks/{name}, and returns it as it was.
func (c *Client) DeleteWebhook(ctx context.Context, name string) (stockd.Webhook, error) {
	w, _, err := call(ctx, c, api.DeleteWebhook, &api.WebhookNameRequest{Name: name})
	return fixWebhook(w), err
}

// WebhookDeadLetters returns a page of an endpoint's dead letters with
// GET /v1/webhooks/{name}/dead-letters.
func (c *Client) WebhookDeadLetters(ctx context.Context, q stockd.DeadLetterQuery) (stockd.DeadLetterPage, error) {
	p, _, err := call(ctx, c, api.WebhookDeadLetters, &api.DeadLettersRequest{Name: q.Name, After: q.After, Limit: limit(q.Limit)})
	if p.Items == nil {
		p.Items = []stockd.DeadLetter{}
	}
	return p, err
}

// ReplayWebhookDeadLetters sends an endpoint's dead letters again with
// POST /v1/webhooks/{name}/dead-letters/replay: those named, or every one.
func (c *Client) ReplayWebhookDeadLetters(ctx context.Context, cmd stockd.ReplayDeadLetters) (stockd.DeadLetterReplay, error) {
	r, _, err := call(ctx, c, api.ReplayWebhookDeadLetters, &api.ReplayRequest{Name: cmd.Name, EventIDs: cmd.EventIDs})
	for _, l := range []*[]string{&r.Delivered, &r.Failed, &r.NotFound} {
		if *l == nil {
			*l = []string{}
		}
	}
	return r, err
}

// fixWebhook makes a decoded endpoint's lists empty rather than nil, as the
// server's are.
func fixWebhook(w stockd.Webhook) stockd.Webhook {
	if w.Types == nil {
		w.Types = []string{}
	}
	return w
}
