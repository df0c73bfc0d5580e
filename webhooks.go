package stockd

import (
	"context"
	"encoding/json"
	"time"
)

// Webhooks manages the endpoints the log is delivered to by HTTP POST, and
// the events each could not deliver (its dead letters). Every operation needs
// the admin scope. An endpoint's secret is written, never read back: no
// answer carries it.
type Webhooks interface {
	// PutWebhook creates or replaces an endpoint and reports whether it
	// created it. The change takes effect at once: a new endpoint starts
	// delivering, a changed one delivers from where it was with its new
	// configuration. Putting an endpoint exactly as it is changes nothing.
	PutWebhook(ctx context.Context, cmd PutWebhook) (Webhook, bool, error)
	// GetWebhook returns an endpoint, or CodeNotFound.
	GetWebhook(ctx context.Context, name string) (Webhook, error)
	// ListWebhooks returns a page of endpoints in name order.
	ListWebhooks(ctx context.Context, q WebhookQuery) (WebhookPage, error)
	// DeleteWebhook stops an endpoint and forgets it, its position and its
	// dead letters, and returns it as it was; CodeNotFound if there is
	// none.
	DeleteWebhook(ctx context.Context, name string) (Webhook, error)
	// WebhookDeadLetters returns a page of an endpoint's dead letters in
	// event id order.
	WebhookDeadLetters(ctx context.Context, q DeadLetterQuery) (DeadLetterPage, error)
	// ReplayWebhookDeadLetters sends an endpoint's dead letters again, once
	// each: those named, or every one. A dead letter the endpoint
	// acknowledges leaves the list; one it refuses again stays, with its
	// attempts and last error brought up to date.
	ReplayWebhookDeadLetters(ctx context.Context, cmd ReplayDeadLetters) (DeadLetterReplay, error)
}

// WebhookFrom values say where a new endpoint starts delivering.
const (
	// WebhookFromNow delivers the events written after the endpoint is
	// created: what a shop adding a receiver expects. The default.
	WebhookFromNow = "now"
	// WebhookFromBeginning delivers the whole log first, archived events
	// included.
	WebhookFromBeginning = "beginning"
)

// PutWebhook creates or replaces the webhook endpoint Name.
type PutWebhook struct {
	// Name names the endpoint (the rules of ids apply).
	Name string
	// URL is where events are POSTed: http or https, without
	// credentials.
	URL string
	// Secret keys the HMAC-SHA256 signature of every delivery. Required.
	Secret string
	// Types, when not empty, are the event type names delivered; others
	// are skipped. Empty delivers every type.
	Types []string
	// From is WebhookFromNow (default) or WebhookFromBeginning. It counts
	// only when the endpoint is created: a changed endpoint keeps its
	// position.
	From string
}

// Webhook is an endpoint as the API shows it: never its secret.
type Webhook struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Types are the event types delivered; [] means every type.
	Types     []string  `json:"types"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Lag is the number of durable events the endpoint has not yet
	// delivered, dead-lettered or skipped, summed over partitions.
	Lag uint64 `json:"lag"`
	// DeadLetters is the number of events on its dead-letter list.
	DeadLetters int `json:"dead_letters"`
}

// WebhookQuery asks for a page of endpoints: those named after After, at
// most Limit (0: the default).
type WebhookQuery struct {
	After string
	Limit int
}

// WebhookPage is a page of endpoints. Next is the After of the following
// page, "" on the last.
type WebhookPage struct {
	Items []Webhook `json:"items"`
	Next  string    `json:"next"`
}

// DeadLetterQuery asks for a page of endpoint Name's dead letters: those
// whose event id sorts after After, at most Limit (0: the default).
type DeadLetterQuery struct {
	Name  string
	After string
	Limit int
}

// DeadLetter is an event an endpoint did not acknowledge within its retry
// budget. Event is the body that was sent, which a replay sends again.
type DeadLetter struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	SKU       string `json:"sku"`
	// Attempts counts every delivery of the event, replays included.
	Attempts     int       `json:"attempts"`
	FirstAttempt time.Time `json:"first_attempt"`
	LastAttempt  time.Time `json:"last_attempt"`
	// LastStatus is the HTTP status of the last answer, 0 when there was
	// none (a refused connection, a timeout).
	LastStatus int `json:"last_status"`
	// LastError says what went wrong the last time.
	LastError string          `json:"last_error"`
	Event     json.RawMessage `json:"event"`
}

// DeadLetterPage is a page of dead letters. Next is the After of the
// following page, "" on the last.
type DeadLetterPage struct {
	Items []DeadLetter `json:"items"`
	Next  string       `json:"next"`
}

// ReplayDeadLetters sends endpoint Name's dead letters again: those whose
// event ids are listed, or every one when EventIDs is empty.
type ReplayDeadLetters struct {
	Name     string
	EventIDs []string
}

// DeadLetterReplay is the outcome of a replay, by event id. Delivered ones
// have left the list; Failed ones stay on it. NotFound lists the ids asked
// for that were not on the list. A replay of every dead letter that runs out
// of time leaves the rest untried, on the list: replay again.
type DeadLetterReplay struct {
	Delivered []string `json:"delivered"`
	Failed    []string `json:"failed"`
	NotFound  []string `json:"not_found"`
}
