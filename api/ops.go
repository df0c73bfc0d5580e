package api

import (
	"context"
	"reflect"
	"strconv"
	"time"

	"github.com/stockd/stockd"
)

// Operation describes one operation of the HTTP API. Everything that serves,
// calls, documents or authorizes an operation reads it from here.
type Operation struct {
	// Name is the OpenAPI operationId, such as "postReservation".
	Name string
	// Method and Path are the route, such as POST /v1/reservations/{id}/commit.
	Method, Path string
	// Scope is the scope a key needs. An empty Scope means any valid key
	// (POST /v1/batch, whose operations are checked one by one).
	Scope stockd.Scope
	// Summary is a one-line description.
	Summary string
	// BatchName, when set, makes the operation available in POST /v1/batch
	// under that name.
	BatchName string
	// Creates marks a command that answers 201 when it created its entity
	// and 200 when it repeated an accepted one.
	Creates bool
	// OptionalBody marks an operation whose JSON body may be left out.
	OptionalBody bool
	// Accepted marks an operation that only queues its work: it answers
	// 202, with a Location header naming StatusPath with the answer's id
	// in its {id}, where the work's progress can be read.
	Accepted   bool
	StatusPath string
	// Request and Response are the Go types of the request and the
	// answer.
	Request, Response reflect.Type
}

// Pattern is the route as net/http's ServeMux writes it: "POST /v1/receipts".
func (o *Operation) Pattern() string { return o.Method + " " + o.Path }

// Endpoint is an operation with its typed request and answer, and how it is
// carried out on a stockd.API.
type Endpoint[Req, Res any] struct {
	Operation
	// Call carries out the operation on s. created is true when a command
	// made its entity now (201).
	Call func(ctx context.Context, s stockd.API, req *Req) (res Res, created bool, err error)
}

// Handler is what every Endpoint offers a server, whatever its types.
type Handler interface {
	// Op returns the operation's description.
	Op() *Operation
	// Invoke makes a new request, fills it with bind, carries the
	// operation out on s and returns the HTTP status and the JSON answer.
	Invoke(ctx context.Context, s stockd.API, bind func(req any) error) (status int, body []byte, err error)
}

// Op implements Handler.
func (e *Endpoint[Req, Res]) Op() *Operation { return &e.Operation }

// Invoke implements Handler. The answer is encoded from its own type, by
// hand for the entities of the batchable operations (see marshal).
func (e *Endpoint[Req, Res]) Invoke(ctx context.Context, s stockd.API, bind func(any) error) (int, []byte, error) {
	var req Req
	if err := bind(&req); err != nil {
		return 0, nil, err
	}
	res, created, err := e.Call(ctx, s, &req)
	if err != nil {
		return 0, nil, err
	}
	body, err := marshal(&res)
	if err != nil {
		return 0, nil, err
	}
	if e.Accepted {
		return 202, body, nil
	}
	if e.Creates && created {
		return 201, body, nil
	}
	return 200, body, nil
}

// declare fills in an endpoint's types.
func declare[Req, Res any](e *Endpoint[Req, Res]) *Endpoint[Req, Res] {
	e.Request = reflect.TypeFor[Req]()
	e.Response = reflect.TypeFor[Res]()
	Operations = append(Operations, e)
	if e.BatchName != "" {
		batchable[e.BatchName] = e
	}
	return e
}

// Operations lists every declared operation in declaration order, except
// POST /v1/batch (Batch), which runs the others.
var Operations []Handler

var batchable = map[string]Handler{}

// Batchable returns the operation a batch names op, and false if no
// operation may be batched under that name.
func Batchable(op string) (Handler, bool) {
	h, ok := batchable[op]
	return h, ok
}

// Batch is POST /v1/batch. The server runs it itself: each of its
// operations is checked against the key's scopes and carried out as if sent
// alone.
var Batch = Operation{
	Name: "postBatch", Method: "POST", Path: "/v1/batch",
	Summary: "Run many operations", Request: reflect.TypeFor[BatchRequest](), Response: reflect.TypeFor[BatchResponse](),
}

// The operations of the v1 API.
var (
	ListLocations = declare(&Endpoint[NoRequest, LocationList]{
		Operation: Operation{Name: "listLocations", Method: "GET", Path: "/v1/locations", Scope: stockd.ScopeStockRead, Summary: "List locations"},
		Call: func(ctx context.Context, s stockd.API, _ *NoRequest) (LocationList, bool, error) {
			ls, err := s.Locations(ctx)
			if ls == nil {
				ls = []stockd.Location{}
			}
			return LocationList{Items: ls}, false, err
		},
	})
	ConfigureLocation = declare(&Endpoint[LocationRequest, stockd.Location]{
		Operation: Operation{Name: "putLocation", Method: "PUT", Path: "/v1/locations/{id}", Scope: stockd.ScopeStockWrite, Summary: "Configure a location"},
		Call: func(ctx context.Context, s stockd.API, r *LocationRequest) (stockd.Location, bool, error) {
			l, err := s.ConfigureLocation(ctx, stockd.ConfigureLocation{ID: r.ID, Kind: r.Kind, Priority: r.Priority, Region: r.Region})
			return l, false, err
		},
	})
	GetLocation = declare(&Endpoint[IDRequest, stockd.Location]{
		Operation: Operation{Name: "getLocation", Method: "GET", Path: "/v1/locations/{id}", Scope: stockd.ScopeStockRead, Summary: "Get a location"},
		Call: func(ctx context.Context, s stockd.API, r *IDRequest) (stockd.Location, bool, error) {
			l, err := s.Location(ctx, r.ID)
			return l, false, err
		},
	})
	ListSKUs = declare(&Endpoint[SKUListRequest, stockd.SKUPage]{
		Operation: Operation{Name: "listSKUs", Method: "GET", Path: "/v1/skus", Scope: stockd.ScopeStockRead, Summary: "List SKUs"},
		Call: func(ctx context.Context, s stockd.API, r *SKUListRequest) (stockd.SKUPage, bool, error) {
			limit, err := Limit(r.Limit)
			if err != nil {
				return stockd.SKUPage{}, false, err
			}
			p, err := s.SKUs(ctx, stockd.SKUListQuery{Prefix: r.Prefix, After: r.After, Limit: limit})
			return p, false, err
		},
	})
	GetSKU = declare(&Endpoint[SKURequest, stockd.SKUState]{
		Operation: Operation{Name: "getSKU", Method: "GET", Path: "/v1/skus/{sku}", Scope: stockd.ScopeStockRead, Summary: "Get a SKU's stock"},
		Call: func(ctx context.Context, s stockd.API, r *SKURequest) (stockd.SKUState, bool, error) {
			at, err := r.asOf()
			if err != nil {
				return stockd.SKUState{}, false, err
			}
			v, err := s.SKU(ctx, r.SKU, at)
			return v, false, err
		},
	})
	ConfigureSKU = declare(&Endpoint[SKUConfigRequest, stockd.SKUConfig]{
		Operation: Operation{Name: "putSKUConfig", Method: "PUT", Path: "/v1/skus/{sku}/config", Scope: stockd.ScopeStockWrite, Summary: "Configure a SKU"},
		Call: func(ctx context.Context, s stockd.API, r *SKUConfigRequest) (stockd.SKUConfig, bool, error) {
			limit, err := r.CustomerLimit.Limit()
			if err != nil {
				return stockd.SKUConfig{}, false, err
			}
			c, err := s.ConfigureSKU(ctx, stockd.ConfigureSKU{SKU: r.SKU, SafetyStock: r.SafetyStock, LowStockThreshold: r.LowStockThreshold, SalesCap: r.SalesCap, CustomerLimit: limit, Preorders: r.Preorders})
			return c, false, err
		},
	})
	SKUEvents = declare(&Endpoint[EventsRequest, EventPage]{
		Operation: Operation{Name: "getSKUEvents", Method: "GET", Path: "/v1/skus/{sku}/events", Scope: stockd.ScopeStockRead, Summary: "List a SKU's events"},
		Call: func(ctx context.Context, s stockd.API, r *EventsRequest) (EventPage, bool, error) {
			var hq stockd.HistoryQuery
			if r.After != "" {
				after, err := strconv.ParseUint(r.After, 10, 64)
				if err != nil {
					return EventPage{}, false, stockd.Errorf(stockd.CodeInvalid, "after must be a cursor returned as next, got %q", r.After)
				}
				hq.After = after
			}
			limit, err := Limit(r.Limit)
			if err != nil {
				return EventPage{}, false, err
			}
			hq.Limit = limit
			page, err := s.History(ctx, r.SKU, hq)
			if err != nil {
				return EventPage{}, false, err
			}
			out := EventPage{Events: make([]EventJSON, 0, len(page.Events)), Next: strconv.FormatUint(page.Next, 10)}
			for _, e := range page.Events {
				ej, err := NewEventJSON(e)
				if err != nil {
					return EventPage{}, false, err
				}
				out.Events = append(out.Events, ej)
			}
			return out, false, nil
		},
	})
	Receive = declare(&Endpoint[ReceiptRequest, stockd.Receipt]{
		Operation: Operation{Name: "postReceipt", Method: "POST", Path: "/v1/receipts", Scope: stockd.ScopeStockWrite, Summary: "Receive stock", BatchName: "receive", Creates: true},
		Call: func(ctx context.Context, s stockd.API, r *ReceiptRequest) (stockd.Receipt, bool, error) {
			return s.Receive(ctx, r.Command())
		},
	})
	Adjust = declare(&Endpoint[AdjustmentRequest, stockd.Adjustment]{
		Operation: Operation{Name: "postAdjustment", Method: "POST", Path: "/v1/adjustments", Scope: stockd.ScopeStockWrite, Summary: "Adjust stock", BatchName: "adjust", Creates: true},
		Call: func(ctx context.Context, s stockd.API, r *AdjustmentRequest) (stockd.Adjustment, bool, error) {
			return s.Adjust(ctx, r.Command())
		},
	})
	Count = declare(&Endpoint[CountRequest, stockd.Count]{
		Operation: Operation{Name: "postCount", Method: "POST", Path: "/v1/counts", Scope: stockd.ScopeStockWrite, Summary: "Count stock", BatchName: "count", Creates: true},
		Call: func(ctx context.Context, s stockd.API, r *CountRequest) (stockd.Count, bool, error) {
			c, err := r.Command()
			if err != nil {
				return stockd.Count{}, false, err
			}
			return s.Count(ctx, c)
		},
	})
	Transfer = declare(&Endpoint[TransferRequest, stockd.Transfer]{
		Operation: Operation{Name: "postTransfer", Method: "POST", Path: "/v1/transfers", Scope: stockd.ScopeStockWrite, Summary: "Transfer stock", BatchName: "transfer", Creates: true},
		Call: func(ctx context.Context, s stockd.API, r *TransferRequest) (stockd.Transfer, bool, error) {
			return s.Transfer(ctx, r.Command())
		},
	})
	GetTransfer = declare(&Endpoint[IDRequest, stockd.Transfer]{
		Operation: Operation{Name: "getTransfer", Method: "GET", Path: "/v1/transfers/{id}", Scope: stockd.ScopeStockRead, Summary: "Get a transfer"},
		Call: func(ctx context.Context, s stockd.API, r *IDRequest) (stockd.Transfer, bool, error) {
			t, err := s.GetTransfer(ctx, r.ID)
			return t, false, err
		},
	})
	ArriveTransfer = declare(&Endpoint[IDRequest, stockd.Transfer]{
		Operation: Operation{Name: "arriveTransfer", Method: "POST", Path: "/v1/transfers/{id}/arrive", Scope: stockd.ScopeStockWrite, Summary: "Book a transfer's arrival", BatchName: "arrive"},
		Call: func(ctx context.Context, s stockd.API, r *IDRequest) (stockd.Transfer, bool, error) {
			t, err := s.ArriveTransfer(ctx, stockd.ArriveTransfer{ID: r.ID})
			return t, false, err
		},
	})
	Reserve = declare(&Endpoint[ReservationRequest, stockd.Reservation]{
		Operation: Operation{Name: "postReservation", Method: "POST", Path: "/v1/reservations", Scope: stockd.ScopeReservationsWrite, Summary: "Reserve stock", BatchName: "reserve", Creates: true},
		Call: func(ctx context.Context, s stockd.API, r *ReservationRequest) (stockd.Reservation, bool, error) {
			c, err := r.Command()
			if err != nil {
				return stockd.Reservation{}, false, err
			}
			return s.Reserve(ctx, c)
		},
	})
	CustomerReservations = declare(&Endpoint[CustomerReservationsRequest, stockd.ReservationPage]{
		Operation: Operation{Name: "listReservations", Method: "GET", Path: "/v1/reservations", Scope: stockd.ScopeStockRead, Summary: "List a customer's held reservations"},
		Call: func(ctx context.Context, s stockd.API, r *CustomerReservationsRequest) (stockd.ReservationPage, bool, error) {
			if r.Customer == "" {
				return stockd.ReservationPage{}, false, stockd.Errorf(stockd.CodeInvalid, "customer is required: reservations are listed by customer")
			}
			limit, err := Limit(r.Limit)
			if err != nil {
				return stockd.ReservationPage{}, false, err
			}
			p, err := s.CustomerReservations(ctx, stockd.CustomerQuery{Customer: r.Customer, After: r.After, Limit: limit})
			return p, false, err
		},
	})
	GetReservation = declare(&Endpoint[IDRequest, stockd.Reservation]{
		Operation: Operation{Name: "getReservation", Method: "GET", Path: "/v1/reservations/{id}", Scope: stockd.ScopeStockRead, Summary: "Get a reservation"},
		Call: func(ctx context.Context, s stockd.API, r *IDRequest) (stockd.Reservation, bool, error) {
			v, err := s.GetReservation(ctx, r.ID)
			return v, false, err
		},
	})
	Commit = declare(&Endpoint[CommitRequest, stockd.Reservation]{
		Operation: Operation{Name: "commitReservation", Method: "POST", Path: "/v1/reservations/{id}/commit", Scope: stockd.ScopeReservationsWrite, Summary: "Commit a reservation", BatchName: "commit", OptionalBody: true},
		Call: func(ctx context.Context, s stockd.API, r *CommitRequest) (stockd.Reservation, bool, error) {
			v, err := s.Commit(ctx, stockd.CommitReservation{ID: r.ID, Lines: r.Lines, Key: r.IdempotencyKey})
			return v, false, err
		},
	})
	Release = declare(&Endpoint[ReleaseRequest, stockd.Reservation]{
		Operation: Operation{Name: "releaseReservation", Method: "POST", Path: "/v1/reservations/{id}/release", Scope: stockd.ScopeReservationsWrite, Summary: "Release a reservation", BatchName: "release"},
		Call: func(ctx context.Context, s stockd.API, r *ReleaseRequest) (stockd.Reservation, bool, error) {
			v, err := s.Release(ctx, stockd.ReleaseReservation{ID: r.ID, Key: r.IdempotencyKey})
			return v, false, err
		},
	})
	Extend = declare(&Endpoint[ExtendRequest, stockd.Reservation]{
		Operation: Operation{Name: "extendReservation", Method: "POST", Path: "/v1/reservations/{id}/extend", Scope: stockd.ScopeReservationsWrite, Summary: "Extend a reservation", BatchName: "extend"},
		Call: func(ctx context.Context, s stockd.API, r *ExtendRequest) (stockd.Reservation, bool, error) {
			ttl, err := Duration("ttl", r.TTL)
			if err != nil {
				return stockd.Reservation{}, false, err
			}
			v, err := s.Extend(ctx, stockd.ExtendReservation{ID: r.ID, TTL: ttl, Key: r.IdempotencyKey})
			return v, false, err
		},
	})
	GetAvailability = declare(&Endpoint[AvailabilityRequest, stockd.Availability]{
		Operation: Operation{Name: "getAvailability", Method: "GET", Path: "/v1/availability", Scope: stockd.ScopeStockRead, Summary: "Get availability of many SKUs"},
		Call: func(ctx context.Context, s stockd.API, r *AvailabilityRequest) (stockd.Availability, bool, error) {
			if len(r.SKUs) == 0 {
				return stockd.Availability{}, false, stockd.Errorf(stockd.CodeInvalid, "name at least one sku: /v1/availability?sku=A&sku=B")
			}
			if len(r.SKUs) > MaxAvailabilitySKUs {
				return stockd.Availability{}, false, stockd.Errorf(stockd.CodeInvalid, "at most %d skus per request, got %d", MaxAvailabilitySKUs, len(r.SKUs))
			}
			for _, sku := range r.SKUs {
				if err := stockd.CheckName("sku", sku); err != nil {
					return stockd.Availability{}, false, err
				}
			}
			v, err := s.Availability(ctx, r.SKUs)
			return v, false, err
		},
	})
)

// MaxAvailabilitySKUs bounds the SKUs of one availability request.
const MaxAvailabilitySKUs = 1000

// MaxLimit bounds the limit of every listing.
const MaxLimit = 1000

// Limit parses a listing's limit: empty means the listing's default (0).
func Limit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, stockd.Errorf(stockd.CodeInvalid, "limit must be between 1 and %d, got %q", MaxLimit, s)
	}
	return n, nil
}

// asOf parses the query of GET /v1/skus/{sku}.
func (r *SKURequest) asOf() (stockd.AsOf, error) {
	var at stockd.AsOf
	if r.AsOf != "" {
		t, err := time.Parse(time.RFC3339Nano, r.AsOf)
		if err != nil {
			return at, stockd.Errorf(stockd.CodeInvalid, "as_of must be an RFC 3339 time like 2026-11-27T10:00:00Z, got %q", r.AsOf)
		}
		at.Time = t
	}
	if r.Position != "" {
		p, err := strconv.ParseUint(r.Position, 10, 64)
		if err != nil || p == 0 {
			return at, stockd.Errorf(stockd.CodeInvalid, "position must be a positive integer, got %q", r.Position)
		}
		at.Position = p
	}
	return at, nil
}
