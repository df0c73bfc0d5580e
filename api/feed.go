package api

import (
	"context"
	"time"

	"github.com/stockd/stockd"
)

// FeedRequest is GET /v1/feed, as a page or (with Accept:
// text/event-stream) as Server-Sent Events. LastEventID, sent by an SSE
// client that reconnects, takes the place of After.
type FeedRequest struct {
	After       string   `json:"-" query:"after"`
	Limit       string   `json:"-" query:"limit"`
	Types       []string `json:"-" query:"type"`
	SKUPrefix   string   `json:"-" query:"sku_prefix"`
	Wait        string   `json:"-" query:"wait"`
	LastEventID string   `json:"-" header:"Last-Event-ID"`
}

// MaxFeedWait bounds the wait of a long poll of GET /v1/feed.
const MaxFeedWait = 30 * time.Second

// Query checks the request and builds the domain query.
func (r *FeedRequest) Query() (stockd.FeedQuery, error) {
	q := stockd.FeedQuery{After: r.After, SKUPrefix: r.SKUPrefix}
	if r.LastEventID != "" {
		q.After = r.LastEventID
	}
	limit, err := Limit(r.Limit)
	if err != nil {
		return q, err
	}
	q.Limit = limit
	for _, name := range r.Types {
		t, ok := stockd.EventTypeNamed(name)
		if !ok {
			return q, stockd.Errorf(stockd.CodeInvalid, "type %q is not an event type", name)
		}
		if !stockd.InFeed(t) {
			return q, stockd.Errorf(stockd.CodeInvalid, "type %s is bookkeeping and never in the feed", name)
		}
		q.Types = append(q.Types, t)
	}
	wait, err := Duration("wait", r.Wait)
	if err != nil {
		return q, err
	}
	if wait < 0 || wait > MaxFeedWait {
		return q, stockd.Errorf(stockd.CodeInvalid, "wait must be between 0s and %v, got %q", MaxFeedWait, r.Wait)
	}
	q.Wait = wait
	return q, nil
}

// SubscriptionRequest is PUT /v1/subscriptions/{name}.
type SubscriptionRequest struct {
	Name string `json:"name,omitempty" path:"name"`
	From string `json:"from"`
}

// SubscriptionNameRequest names one subscription by the {name} of its route.
type SubscriptionNameRequest struct {
	Name string `json:"name,omitempty" path:"name"`
}

// SubscriptionListRequest is GET /v1/subscriptions.
type SubscriptionListRequest struct {
	After string `json:"-" query:"after"`
	Limit string `json:"-" query:"limit"`
}

// SubscriptionEventsRequest is GET /v1/subscriptions/{name}/events.
type SubscriptionEventsRequest struct {
	Name  string `json:"-" path:"name"`
	Limit string `json:"-" query:"limit"`
}

// AckRequest is POST /v1/subscriptions/{name}/ack.
type AckRequest struct {
	Name   string `json:"name,omitempty" path:"name"`
	Cursor string `json:"cursor"`
}

// ResetRequest is POST /v1/subscriptions/{name}/reset.
type ResetRequest struct {
	Name string `json:"name,omitempty" path:"name"`
	To   string `json:"to"`
}

// NewFeedPage renders a page of the feed as the API shows it.
func NewFeedPage(p stockd.FeedPage) (EventPage, error) {
	out := EventPage{Events: make([]EventJSON, 0, len(p.Events)), Next: p.Next}
	for _, e := range p.Events {
		ej, err := NewEventJSON(e)
		if err != nil {
			return EventPage{}, err
		}
		out.Events = append(out.Events, ej)
	}
	return out, nil
}

// The operations of the change feed and its subscriptions. Reading needs
// stock:read; so does acknowledging, which only moves a subscription forward
// over what its reader has read. Creating, resetting and deleting one needs
// admin.
var (
	GetFeed = declare(&Endpoint[FeedRequest, EventPage]{
		Operation: Operation{Name: "getFeed", Method: "GET", Path: "/v1/feed", Scope: stockd.ScopeStockRead, Summary: "Read the change feed"},
		Call: func(ctx context.Context, s stockd.API, r *FeedRequest) (EventPage, bool, error) {
			q, err := r.Query()
			if err != nil {
				return EventPage{}, false, err
			}
			p, err := s.FeedPage(ctx, q)
			if err != nil {
				return EventPage{}, false, err
			}
			out, err := NewFeedPage(p)
			return out, false, err
		},
	})
	ListSubscriptions = declare(&Endpoint[SubscriptionListRequest, stockd.SubscriptionPage]{
		Operation: Operation{Name: "listSubscriptions", Method: "GET", Path: "/v1/subscriptions", Scope: stockd.ScopeStockRead, Summary: "List feed subscriptions"},
		Call: func(ctx context.Context, s stockd.API, r *SubscriptionListRequest) (stockd.SubscriptionPage, bool, error) {
			limit, err := Limit(r.Limit)
			if err != nil {
				return stockd.SubscriptionPage{}, false, err
			}
			p, err := s.Subscriptions(ctx, stockd.SubscriptionListQuery{After: r.After, Limit: limit})
			if p.Items == nil {
				p.Items = []stockd.Subscription{}
			}
			return p, false, err
		},
	})
	PutSubscription = declare(&Endpoint[SubscriptionRequest, stockd.Subscription]{
		Operation: Operation{Name: "putSubscription", Method: "PUT", Path: "/v1/subscriptions/{name}", Scope: stockd.ScopeAdmin, Summary: "Create a feed subscription", Creates: true},
		Call: func(ctx context.Context, s stockd.API, r *SubscriptionRequest) (stockd.Subscription, bool, error) {
			return s.PutSubscription(ctx, r.Name, r.From)
		},
	})
	GetSubscription = declare(&Endpoint[SubscriptionNameRequest, stockd.Subscription]{
		Operation: Operation{Name: "getSubscription", Method: "GET", Path: "/v1/subscriptions/{name}", Scope: stockd.ScopeStockRead, Summary: "Get a feed subscription"},
		Call: func(ctx context.Context, s stockd.API, r *SubscriptionNameRequest) (stockd.Subscription, bool, error) {
			v, err := s.Subscription(ctx, r.Name)
			return v, false, err
		},
	})
	DeleteSubscription = declare(&Endpoint[SubscriptionNameRequest, stockd.Subscription]{
		Operation: Operation{Name: "deleteSubscription", Method: "DELETE", Path: "/v1/subscriptions/{name}", Scope: stockd.ScopeAdmin, Summary: "Delete a feed subscription"},
		Call: func(ctx context.Context, s stockd.API, r *SubscriptionNameRequest) (stockd.Subscription, bool, error) {
			v, err := s.DeleteSubscription(ctx, r.Name)
			return v, false, err
		},
	})
	SubscriptionEvents = declare(&Endpoint[SubscriptionEventsRequest, EventPage]{
		Operation: Operation{Name: "getSubscriptionEvents", Method: "GET", Path: "/v1/subscriptions/{name}/events", Scope: stockd.ScopeStockRead, Summary: "Read a subscription's events"},
		Call: func(ctx context.Context, s stockd.API, r *SubscriptionEventsRequest) (EventPage, bool, error) {
			limit, err := Limit(r.Limit)
			if err != nil {
				return EventPage{}, false, err
			}
			p, err := s.SubscriptionEvents(ctx, r.Name, limit)
			if err != nil {
				return EventPage{}, false, err
			}
			out, err := NewFeedPage(p)
			return out, false, err
		},
	})
	AckSubscription = declare(&Endpoint[AckRequest, stockd.Subscription]{
		Operation: Operation{Name: "ackSubscription", Method: "POST", Path: "/v1/subscriptions/{name}/ack", Scope: stockd.ScopeStockRead, Summary: "Acknowledge a subscription's events"},
		Call: func(ctx context.Context, s stockd.API, r *AckRequest) (stockd.Subscription, bool, error) {
			v, err := s.AckSubscription(ctx, r.Name, r.Cursor)
			return v, false, err
		},
	})
	ResetSubscription = declare(&Endpoint[ResetRequest, stockd.Subscription]{
		Operation: Operation{Name: "resetSubscription", Method: "POST", Path: "/v1/subscriptions/{name}/reset", Scope: stockd.ScopeAdmin, Summary: "Reset a feed subscription"},
		Call: func(ctx context.Context, s stockd.API, r *ResetRequest) (stockd.Subscription, bool, error) {
			v, err := s.ResetSubscription(ctx, r.Name, r.To)
			return v, false, err
		},
	})
)
