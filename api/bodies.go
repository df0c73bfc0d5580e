package api

import (
	"time"

	"github.com/stockd/stockd"
)

// Request types. Each decodes strictly: a field not listed is an error.

// LocationRequest is PUT /v1/locations/{id}.
type LocationRequest struct {
	ID       string              `json:"id,omitempty" path:"id"`
	Kind     stockd.LocationKind `json:"kind"`
	Priority int                 `json:"priority"`
	Region   string              `json:"region"`
}

// IDRequest names one entity by the {id} of its route.
type IDRequest struct {
	ID string `json:"id,omitempty" path:"id"`
}

// SKUConfigRequest is PUT /v1/skus/{sku}/config. LowStockThreshold is
// optional: absent or 0, the SKU never signals LowStock (see
// stockd.ConfigureSKU).
type SKUConfigRequest struct {
	SKU               string `json:"sku,omitempty" path:"sku"`
	SafetyStock       int64  `json:"safety_stock"`
	LowStockThreshold int64  `json:"low_stock_threshold"`
	// SalesCap is optional: absent or 0, the SKU has no sales cap.
	SalesCap int64 `json:"sales_cap"`
	// CustomerLimit is optional: absent, or with no units, the SKU has no
	// per-customer limit.
	CustomerLimit *CustomerLimitBody `json:"customer_limit,omitempty"`
	// Preorders is optional: absent or false, reservations never hold
	// expected stock.
	Preorders bool `json:"preorders"`
}

// CustomerLimitBody is a SKU's per-customer limit in PUT
// /v1/skus/{sku}/config: {"units":2,"window":"24h"}.
type CustomerLimitBody struct {
	Units  int64  `json:"units"`
	Window string `json:"window"`
}

// Limit builds the domain's limit: none for a nil body.
func (b *CustomerLimitBody) Limit() (stockd.CustomerLimit, error) {
	if b == nil {
		return stockd.CustomerLimit{}, nil
	}
	w, err := Duration("customer_limit.window", b.Window)
	if err != nil {
		return stockd.CustomerLimit{}, err
	}
	return stockd.CustomerLimit{Units: b.Units, Window: w}, nil
}

// LimitBody is the body of a domain limit: nil for none.
func LimitBody(l stockd.CustomerLimit) *CustomerLimitBody {
	if l.Units == 0 {
		return nil
	}
	return &CustomerLimitBody{Units: l.Units, Window: FormatDuration(l.Window)}
}

// ReceiptRequest is POST /v1/receipts.
type ReceiptRequest struct {
	ID         string `json:"id"`
	SKU        string `json:"sku"`
	Location   string `json:"location"`
	Quantity   int64  `json:"quantity"`
	Lot        string `json:"lot,omitempty"`
	BestBefore string `json:"best_before,omitempty"`
}

// AdjustmentRequest is POST /v1/adjustments.
type AdjustmentRequest struct {
	ID       string              `json:"id"`
	SKU      string              `json:"sku"`
	Location string              `json:"location"`
	Delta    int64               `json:"delta"`
	Reason   stockd.AdjustReason `json:"reason"`
	Lot      string              `json:"lot,omitempty"`
}

// CountRequest is POST /v1/counts. OnHand is a pointer so that a count of 0
// is told apart from a forgotten field.
type CountRequest struct {
	ID       string `json:"id"`
	SKU      string `json:"sku"`
	Location string `json:"location"`
	OnHand   *int64 `json:"on_hand"`
}

// TransferRequest is POST /v1/transfers.
type TransferRequest struct {
	ID       string `json:"id"`
	SKU      string `json:"sku"`
	From     string `json:"from"`
	To       string `json:"to"`
	Quantity int64  `json:"quantity"`
}

// ReservationRequest is POST /v1/reservations.
type ReservationRequest struct {
	ID       string               `json:"id"`
	TTL      string               `json:"ttl,omitempty"`
	Customer string               `json:"customer,omitempty"`
	Region   string               `json:"region,omitempty"`
	Lines    []stockd.ReserveLine `json:"lines"`
}

// CommitRequest is POST /v1/reservations/{id}/commit. Without lines (or
// without a body) the whole reservation is committed.
type CommitRequest struct {
	ID             string              `json:"id,omitempty" path:"id"`
	Lines          []stockd.CommitLine `json:"lines,omitempty"`
	IdempotencyKey string              `json:"-" header:"Idempotency-Key"`
}

// ReleaseRequest is POST /v1/reservations/{id}/release, which has no body.
type ReleaseRequest struct {
	ID             string `json:"id,omitempty" path:"id"`
	IdempotencyKey string `json:"-" header:"Idempotency-Key"`
}

// ExtendRequest is POST /v1/reservations/{id}/extend.
type ExtendRequest struct {
	ID             string `json:"id,omitempty" path:"id"`
	TTL            string `json:"ttl"`
	IdempotencyKey string `json:"-" header:"Idempotency-Key"`
}

// SKURequest is GET /v1/skus/{sku}: now, or as of a past time (as_of, RFC
// 3339) or partition position.
type SKURequest struct {
	SKU      string `json:"-" path:"sku"`
	AsOf     string `json:"-" query:"as_of"`
	Position string `json:"-" query:"position"`
}

// EventsRequest is GET /v1/skus/{sku}/events.
type EventsRequest struct {
	SKU   string `json:"-" path:"sku"`
	After string `json:"-" query:"after"`
	Limit string `json:"-" query:"limit"`
}

// SKUListRequest is GET /v1/skus.
type SKUListRequest struct {
	Prefix string `json:"-" query:"prefix"`
	After  string `json:"-" query:"after"`
	Limit  string `json:"-" query:"limit"`
}

// AvailabilityRequest is GET /v1/availability?sku=A&sku=B.
type AvailabilityRequest struct {
	SKUs []string `json:"-" query:"sku"`
}

// CustomerReservationsRequest is GET /v1/reservations?customer=.
type CustomerReservationsRequest struct {
	Customer string `json:"-" query:"customer"`
	After    string `json:"-" query:"after"`
	Limit    string `json:"-" query:"limit"`
}

// NoRequest is the request of an operation that takes nothing.
type NoRequest struct{}

// Command builds the domain command.
func (b *ReceiptRequest) Command() stockd.ReceiveStock {
	return stockd.ReceiveStock{ID: b.ID, SKU: b.SKU, Location: b.Location, Quantity: b.Quantity, Lot: b.Lot, BestBefore: b.BestBefore}
}

// Command builds the domain command.
func (b *AdjustmentRequest) Command() stockd.AdjustStock {
	return stockd.AdjustStock{ID: b.ID, SKU: b.SKU, Location: b.Location, Delta: b.Delta, Reason: b.Reason, Lot: b.Lot}
}

// Command builds the domain command.
func (b *CountRequest) Command() (stockd.CountStock, error) {
	if b.OnHand == nil {
		return stockd.CountStock{}, stockd.Errorf(stockd.CodeInvalid, "on_hand is required")
	}
	return stockd.CountStock{ID: b.ID, SKU: b.SKU, Location: b.Location, OnHand: *b.OnHand}, nil
}

// Command builds the domain command.
func (b *TransferRequest) Command() stockd.TransferStock {
	return stockd.TransferStock{ID: b.ID, SKU: b.SKU, From: b.From, To: b.To, Quantity: b.Quantity}
}

// Command builds the domain command.
func (b *ReservationRequest) Command() (stockd.Reserve, error) {
	ttl, err := Duration("ttl", b.TTL)
	if err != nil {
		return stockd.Reserve{}, err
	}
	if b.TTL != "" && ttl <= 0 {
		return stockd.Reserve{}, stockd.Errorf(stockd.CodeInvalid, "ttl must be positive, got %q", b.TTL)
	}
	return stockd.Reserve{ID: b.ID, TTL: ttl, Customer: b.Customer, Region: b.Region, Lines: b.Lines}, nil
}

// Duration parses a Go-style duration such as "15m". An empty string is the
// zero duration.
func Duration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, stockd.Errorf(stockd.CodeInvalid, "%s must be a duration like \"15m\" or \"90s\", got %q", field, s)
	}
	return d, nil
}

// FormatDuration writes d as a Go duration string without the zero units
// time.Duration.String leaves at the end: "15m" rather than "15m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if len(s) > 3 && s[len(s)-3:] == "m0s" {
		s = s[:len(s)-2]
	}
	if len(s) > 3 && s[len(s)-3:] == "h0m" {
		s = s[:len(s)-2]
	}
	return s
}
