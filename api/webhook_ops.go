package api

import (
	"context"

	"github.com/stockd/stockd"
)

// WebhookRequest is PUT /v1/webhooks/{name}. Types empty means every event
// type; From ("now", the default, or "beginning") counts only when the
// endpoint is created.
type WebhookRequest struct {
	Name   string   `json:"name,omitempty" path:"name"`
	URL    string   `json:"url"`
	Secret string   `json:"secret"`
	Types  []string `json:"types,omitempty"`
	From   string   `json:"from,omitempty"`
}

// WebhookNameRequest names one webhook endpoint by the {name} of its route.
type WebhookNameRequest struct {
	Name string `json:"name,omitempty" path:"name"`
}

// WebhookListRequest is GET /v1/webhooks.
type WebhookListRequest struct {
	After string `json:"-" query:"after"`
	Limit string `json:"-" query:"limit"`
}

// DeadLettersRequest is GET /v1/webhooks/{name}/dead-letters.
type DeadLettersRequest struct {
	Name  string `json:"-" path:"name"`
	After string `json:"-" query:"after"`
	Limit string `json:"-" query:"limit"`
}

// ReplayRequest is POST /v1/webhooks/{name}/dead-letters/replay. Without
// event ids (or without a body) every dead letter is replayed.
type ReplayRequest struct {
	Name     string   `json:"name,omitempty" path:"name"`
	EventIDs []string `json:"event_ids,omitempty"`
}

// The webhook operations. Every one needs the admin scope: an endpoint's
// URL and secret decide where the whole log goes. Delete comes last, so that
// tests walking the operations in order find the endpoint the others name.
var (
	PutWebhook = declare(&Endpoint[WebhookRequest, stockd.Webhook]{
		Operation: Operation{Name: "putWebhook", Method: "PUT", Path: "/v1/webhooks/{name}", Scope: stockd.ScopeAdmin, Summary: "Create or change a webhook endpoint", Creates: true},
		Call: func(ctx context.Context, s stockd.API, r *WebhookRequest) (stockd.Webhook, bool, error) {
			return s.PutWebhook(ctx, stockd.PutWebhook{Name: r.Name, URL: r.URL, Secret: r.Secret, Types: r.Types, From: r.From})
		},
	})
	ListWebhooks = declare(&Endpoint[WebhookListRequest, stockd.WebhookPage]{
		Operation: Operation{Name: "listWebhooks", Method: "GET", Path: "/v1/webhooks", Scope: stockd.ScopeAdmin, Summary: "List webhook endpoints"},
		Call: func(ctx context.Context, s stockd.API, r *WebhookListRequest) (stockd.WebhookPage, bool, error) {
			limit, err := Limit(r.Limit)
			if err != nil {
				return stockd.WebhookPage{}, false, err
			}
			p, err := s.ListWebhooks(ctx, stockd.WebhookQuery{After: r.After, Limit: limit})
			return p, false, err
		},
	})
	GetWebhook = declare(&Endpoint[WebhookNameRequest, stockd.Webhook]{
		Operation: Operation{Name: "getWebhook", Method: "GET", Path: "/v1/webhooks/{name}", Scope: stockd.ScopeAdmin, Summary: "Get a webhook endpoint"},
		Call: func(ctx context.Context, s stockd.API, r *WebhookNameRequest) (stockd.Webhook, bool, error) {
			w, err := s.GetWebhook(ctx, r.Name)
			return w, false, err
		},
	})
	WebhookDeadLetters = declare(&Endpoint[DeadLettersRequest, stockd.DeadLetterPage]{
		Operation: Operation{Name: "listWebhookDeadLetters", Method: "GET", Path: "/v1/webhooks/{name}/dead-letters", Scope: stockd.ScopeAdmin, Summary: "List a webhook endpoint's dead letters"},
		Call: func(ctx context.Context, s stockd.API, r *DeadLettersRequest) (stockd.DeadLetterPage, bool, error) {
			limit, err := Limit(r.Limit)
			if err != nil {
				return stockd.DeadLetterPage{}, false, err
			}
			p, err := s.WebhookDeadLetters(ctx, stockd.DeadLetterQuery{Name: r.Name, After: r.After, Limit: limit})
			return p, false, err
		},
	})
	ReplayWebhookDeadLetters = declare(&Endpoint[ReplayRequest, stockd.DeadLetterReplay]{
		Operation: Operation{Name: "replayWebhookDeadLetters", Method: "POST", Path: "/v1/webhooks/{name}/dead-letters/replay", Scope: stockd.ScopeAdmin, Summary: "Replay a webhook endpoint's dead letters", OptionalBody: true},
		Call: func(ctx context.Context, s stockd.API, r *ReplayRequest) (stockd.DeadLetterReplay, bool, error) {
			v, err := s.ReplayWebhookDeadLetters(ctx, stockd.ReplayDeadLetters{Name: r.Name, EventIDs: r.EventIDs})
			return v, false, err
		},
	})
	DeleteWebhook = declare(&Endpoint[WebhookNameRequest, stockd.Webhook]{
		Operation: Operation{Name: "deleteWebhook", Method: "DELETE", Path: "/v1/webhooks/{name}", Scope: stockd.ScopeAdmin, Summary: "Delete a webhook endpoint"},
		Call: func(ctx context.Context, s stockd.API, r *WebhookNameRequest) (stockd.Webhook, bool, error) {
			w, err := s.DeleteWebhook(ctx, r.Name)
			return w, false, err
		},
	})
)
