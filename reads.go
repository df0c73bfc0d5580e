package stockd

import (
	"context"
	"time"
)

// Reads are the eventually consistent queries, answered by the read model
// rather than by the partitions: they may look at many SKUs or every
// partition at once, so they must not load the write path. Every answer says
// how fresh it is (AsOf and Lag).
type Reads interface {
	// Availability returns the availability of skus, in the order asked,
	// without repeats.
	Availability(ctx context.Context, skus []string) (Availability, error)
	// CustomerReservations returns a page of a customer's held reservations,
	// newest first.
	CustomerReservations(ctx context.Context, q CustomerQuery) (ReservationPage, error)
	// SKUs returns a page of SKUs in lexical order.
	SKUs(ctx context.Context, q SKUListQuery) (SKUPage, error)
}

// API is everything the HTTP API offers: the commands and read-your-writes
// queries of Service and the read model's Reads, the feed, webhooks, and the
// asynchronous intake of commands and supplier files. The server serves one;
// the Go client is one.
type API interface {
	Service
	Reads
	Feed
	Webhooks
	ConsumerAdmin
	ClusterAdmin
	Intake
	Imports
}

// Availability is the answer to a question about many SKUs.
//
// AsOf is the moment up to which the answer is complete: every write
// acknowledged before AsOf is reflected, for each SKU listed. For a partition
// that has applied everything durable when it is read, that moment is the
// time of the query (writes are acknowledged only once durable, and the
// durable head is read after the query's clock). For a partition that is
// behind, nothing after its last applied event is known, so it is the time of
// that event: the answer may be missing any write made since. AsOf is the
// earliest of these over the partitions involved, so one lagging partition
// makes the whole answer as old as it is. It is the zero time when an
// involved partition is behind and has applied nothing at all yet.
type Availability struct {
	// Items holds one entry per SKU asked for, in the order asked,
	// without repeats. A SKU without events is listed with nothing
	// available and no locations.
	Items []AvailabilityItem `json:"items"`
	AsOf  time.Time          `json:"as_of"`
	Lag   Lag                `json:"lag"`
}

// AvailabilityItem is the availability of one SKU over its locations.
// Available is what can be sold: the sum over locations of what each can
// sell, so that a location short of held units does not take stock away from
// the others (as in GET /v1/skus/{sku}).
type AvailabilityItem struct {
	SKU       string                 `json:"sku"`
	Available int64                  `json:"available"`
	OnHand    int64                  `json:"on_hand"`
	Reserved  int64                  `json:"reserved"`
	Locations []LocationAvailability `json:"locations"`
	// Derived is true for a bundle, whose availability is derived from
	// its Components' (see BundleAvailability).
	Derived    bool              `json:"derived,omitempty"`
	Components []BundleComponent `json:"components,omitempty"`
}

// LocationAvailability is the availability of one SKU at one location, sorted
// by location id. Available is on_hand − reserved − safety stock, and is
// negative only when held units are missing (a shortage), which is reported
// rather than hidden.
type LocationAvailability struct {
	Location  string `json:"location"`
	Available int64  `json:"available"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
}

// Lag says how far an answer is behind the durable log of the partitions it
// involves, read when the answer was made.
type Lag struct {
	// Events is the number of durable events not yet applied, summed over
	// the partitions involved: durable head − applied position.
	Events uint64 `json:"events"`
	// Partitions is the number of partitions involved that are behind.
	Partitions int `json:"partitions"`
}

// CustomerQuery selects a page of a customer's reservations.
type CustomerQuery struct {
	// Customer is the customer id; it is required.
	Customer string
	// After is the Next of the previous page; empty starts with the newest.
	After string
	// Limit bounds the page; 0 means a default.
	Limit int
}

// ReservationPage is a page of a customer's held reservations, newest first,
// with the freshness of the read model across every partition (see
// Availability for AsOf and Lag): a customer's reservations may live in any
// of them. A reservation leaves the listing once it is committed, released or
// expired. Next is the cursor of the following page, or "" on the last one.
type ReservationPage struct {
	Items []Reservation `json:"items"`
	Next  string        `json:"next"`
	AsOf  time.Time     `json:"as_of"`
	Lag   Lag           `json:"lag"`
}

// SKUListQuery selects a page of SKUs.
type SKUListQuery struct {
	// Prefix, when set, lists only SKUs that start with it.
	Prefix string
	// After is the Next of the previous page: the last SKU already seen.
	After string
	// Limit bounds the page; 0 means a default.
	Limit int
}

// SKUPage is a page of SKUs in lexical order with their stock, from the read
// model. Next is the cursor of the following page, or "" on the last one.
type SKUPage struct {
	Items []SKUSummary `json:"items"`
	Next  string       `json:"next"`
	AsOf  time.Time    `json:"as_of"`
	Lag   Lag          `json:"lag"`
}

// SKUSummary is one SKU of a listing: its stock summed over locations.
type SKUSummary struct {
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
}
